#!/usr/bin/env bash
# The whole system on one machine without Docker (local backend: the SavedModel in-process).
#
#   bash scripts/run-local.sh            # then open http://127.0.0.1:8080, log in as demo / demo-password
#
# Starts: redis-server (if none answers on REDIS_URL), the API (uvicorn, :8000), one inference
# worker, the dashboard (:8080) and a demo of simulated students streaming real FER2013 faces.
# Ctrl-C stops everything it started. Set DEMO_STUDENTS=0 to run without the demo agents.
set -euo pipefail
cd "$(dirname "$0")/.."

# VENV: relative to the repository or absolute. Only the runtime packages go in (no torch,
# Playwright or test tools: those are requirements-dev.txt, for scripts/test.sh).
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV=$PWD/$VENV ;; esac
if [ ! -x "$VENV/bin/classroom-api" ] || [ ! -x "$VENV/bin/classroom-demo" ] || [ ! -x "$VENV/bin/classroom-dashboard" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q -e ./contract -e ./services/capture -e ./services/inference -e ./services/frontend
fi
export PATH="$VENV/bin:$PATH"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
# The port redis-server gets when none answers: REDIS_URL's (redis://[:pw@]host[:port][/db]).
redis_port=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).port or 6379)' "$REDIS_URL")
export DASHBOARD_ENV=${DASHBOARD_ENV:-development}
API_PORT=${API_PORT:-8000}
DASHBOARD_PORT=${DASHBOARD_PORT:-8080}
DEMO_STUDENTS=${DEMO_STUDENTS:-12}
mkdir -p .cache/run-local
# The dashboard's SECRET_KEY seals the students' credentials the roster shows: keep one across runs.
if [ -z "${SECRET_KEY:-}" ]; then
  [ -s .cache/run-local/secret-key ] || (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' >.cache/run-local/secret-key)
  SECRET_KEY=$(cat .cache/run-local/secret-key)
fi
export SECRET_KEY
export PUBLIC_URL=${PUBLIC_URL:-http://127.0.0.1:${API_PORT}}  # join links point at the API
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
  echo "starting redis-server on 127.0.0.1:$redis_port"
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir .cache/run-local --appendonly yes >.cache/run-local/redis.log 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
# The crop store: crops only ever live here, in memory (persistence off; the services check it).
export CROP_STORE_URL=${CROP_STORE_URL:-redis://127.0.0.1:6380/0}
if ! redis-cli -u "$CROP_STORE_URL" ping >/dev/null 2>&1; then
  crop_port=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).port or 6379)' "$CROP_STORE_URL")
  echo "starting the crop store (redis-server, no persistence) on 127.0.0.1:$crop_port"
  redis-server --port "$crop_port" --bind 127.0.0.1 --save "" --appendonly no >.cache/run-local/crop-store.log 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -u "$CROP_STORE_URL" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

classroom-dashboard create-teacher --username demo --password demo-password --replace >/dev/null
if [ "$DEMO_STUDENTS" -gt 0 ]; then
  # Enrols the simulated students; each one's credential goes to a 0600 file, not a command line.
  classroom-dashboard demo-class --teacher demo --class-id demo --students "$DEMO_STUDENTS" \
    --credentials-file .cache/run-local/demo-credentials.json >/dev/null
else
  classroom-dashboard create-class --teacher demo --class-id demo --name "Demo class" >/dev/null 2>&1 || true
fi

classroom-api --port "$API_PORT" >.cache/run-local/api.log 2>&1 & pids+=($!)
classroom-worker >.cache/run-local/worker.log 2>&1 & pids+=($!)
classroom-dashboard serve --port "$DASHBOARD_PORT" >.cache/run-local/dashboard.log 2>&1 & pids+=($!)
if [ "$DEMO_STUDENTS" -gt 0 ]; then
  classroom-demo --server "http://127.0.0.1:$API_PORT" --credentials .cache/run-local/demo-credentials.json \
    >.cache/run-local/demo.log 2>&1 & pids+=($!)
fi
echo "dashboard: http://127.0.0.1:$DASHBOARD_PORT  (user demo, password demo-password)"
echo "API docs:  http://127.0.0.1:$API_PORT/docs      logs: .cache/run-local/*.log    Ctrl-C stops all"
wait -n "${pids[@]}"
