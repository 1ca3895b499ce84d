#!/bin/sh
# with-secrets COMMAND [ARG...]: runs COMMAND with the secrets that the compose job secrets-init
# wrote to files (deploy/docker/secrets-init.sh), exported as the variables our services read:
#
#   REDIS_URL              redis://:<DIR/redis-password>@${REDIS_HOST:-redis}:${REDIS_PORT:-6379}/${REDIS_DB:-0}
#   CROP_STORE_URL         redis://:<DIR/crop-store-password>@${CROP_STORE_HOST:-crop-store}:${CROP_STORE_PORT:-6379}/0
#   SECRET_KEY             <DIR/secret-key>
#   DEMO_TEACHER_PASSWORD  <DIR/demo-teacher-password>
#
# DIR is $CLASSROOM_SECRETS_DIR (default /run/secrets/classroom). A variable that is already set
# and not empty is left alone (so REDIS_URL or SECRET_KEY from the environment, e.g. Kubernetes
# Secrets, win), and so is one whose file is missing: without DIR this script only execs COMMAND.
# It is the ENTRYPOINT of the inference and dashboard images (/usr/local/bin/with-secrets); commands
# started with `docker compose exec` skip the entrypoint, so prefix them:
#
#   docker compose exec dashboard with-secrets classroom-dashboard create-teacher --username ann
#
# POSIX sh; values are never printed.
set -eu

if [ $# -eq 0 ]; then
  echo "usage: with-secrets COMMAND [ARG...]" >&2
  exit 2
fi

dir=${CLASSROOM_SECRETS_DIR:-/run/secrets/classroom}

# secret FILE: prints DIR/FILE, or fails when it is not a readable, non-empty file.
secret() {
  [ -s "$dir/$1" ] && [ -r "$dir/$1" ] && cat "$dir/$1"
}

if [ -z "${REDIS_URL:-}" ]; then
  password=${REDIS_PASSWORD:-}
  if [ -z "$password" ]; then
    password=$(secret redis-password) || password=
  fi
  if [ -n "$password" ]; then
    REDIS_URL="redis://:$password@${REDIS_HOST:-redis}:${REDIS_PORT:-6379}/${REDIS_DB:-0}"
    export REDIS_URL
  fi
  unset password
fi

if [ -z "${CROP_STORE_URL:-}" ] && password=$(secret crop-store-password); then
  CROP_STORE_URL="redis://:$password@${CROP_STORE_HOST:-crop-store}:${CROP_STORE_PORT:-6379}/0"
  export CROP_STORE_URL
fi
unset password

if [ -z "${SECRET_KEY:-}" ] && value=$(secret secret-key); then
  SECRET_KEY=$value
  export SECRET_KEY
fi

if [ -z "${DEMO_TEACHER_PASSWORD:-}" ] && value=$(secret demo-teacher-password); then
  DEMO_TEACHER_PASSWORD=$value
  export DEMO_TEACHER_PASSWORD
fi
unset value

exec "$@"
