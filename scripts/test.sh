#!/usr/bin/env bash
# The one test command: installs what the tests need (once), then lints and runs every test.
#
#   bash scripts/test.sh [pytest args...]
#
# - Python packages go into .venv (pinned, from requirements-dev.txt).
# - Debian packages the tests drive for real: redis-server, chromium and firefox-esr (headless browser
#   tests; Firefox through its built-in Marionette, tests/support/firefox.py), and xvfb (an X display
#   for a headful Chromium: a hidden tab is only hidden there, tests/join/test_hidden_tab.py).
# - Tests start their own redis-server on a free loopback port, so none needs to be running.
# - Then, when no pytest arguments were given, the compose end-to-end test: the README's
#   `docker compose up` in a private Docker Engine (scripts/compose-e2e.sh; needs root). It fails
#   the run when it fails; CLASSROOM_SKIP_COMPOSE_E2E=1 skips it with a message (no root).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
apt_install redis-server chromium firefox-esr busybox xvfb
command -v npm >/dev/null || apt_install nodejs npm  # for the /join page's build (npm ci + esbuild)

# The browser capture page (/join): pinned by package-lock.json, built into services/capture-web/dist
# (served by the API; never committed). npm ci only when the lockfile changed since the last install.
(
  cd services/capture-web
  if ! cmp -s package-lock.json node_modules/.installed-lock.json; then
    npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.installed-lock.json
  fi
  npm run --silent build
)

VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -r requirements-dev.txt

"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/python" -m pytest "$@"
if [ $# -eq 0 ]; then
  VENV=$VENV bash scripts/compose-e2e.sh
fi
