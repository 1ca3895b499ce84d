#!/usr/bin/env bash
# Back up and restore the compose deployment: Redis (accounts, classes, tokens, results, queue), the
# generated secrets (Redis and crop-store passwords, SECRET_KEY, demo password) and Caddy's data
# (certificates and the local CA that agents trust). Run from the repository root, on the server:
#
#   bash deploy/backup.sh backup  /var/backups/classroom/$(date +%F)   # while the system runs
#   bash deploy/backup.sh restore /var/backups/classroom/2026-11-30     # then: docker compose up -d
#
# backup: a consistent RDB snapshot streamed from the running Redis (redis-cli --rdb, authenticated
#   with the password from the secrets volume, never on a command line), plus tar files of the
#   secrets and caddy-data volumes, into DIR (mode 0700, files 0600). It fails loudly when a part is
#   empty, so a cron job that mails errors tells you.
# restore: stops the project (`docker compose down`, volumes kept or missing alike), puts the
#   secrets and Caddy's data back, loads the RDB into the redis-data volume and rewrites it as the
#   append-only file Redis starts from; then run `docker compose up -d`.
# The crop store is not backed up: it only ever holds crops in transit, in memory.
# Copy DIR off the machine (it holds the secrets: encrypt it where it goes). The compose e2e test
# (scripts/compose-e2e.sh) backs up, wipes every volume, restores and checks the data.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[backup] $*"; }
die() { echo "[backup] ERROR: $*" >&2; exit 1; }
run() { docker compose run --rm --no-deps -T "$@"; }

backup() {
  local dir=$1
  umask 077
  mkdir -p "$dir"
  chmod 0700 "$dir"
  docker compose ps --status running -q redis | grep -q . || die "redis is not running: start the system first"
  # redis-cli --rdb takes a snapshot over the replication protocol: consistent, and nothing is
  # written into the redis-data volume.
  docker compose exec -T redis sh -ec '
    REDISCLI_AUTH=$(cat /run/secrets/classroom/redis-password) redis-cli --rdb /tmp/backup.rdb >/dev/null
    cat /tmp/backup.rdb
    rm -f /tmp/backup.rdb' >"$dir/redis.rdb"
  [ "$(head -c 5 "$dir/redis.rdb")" = REDIS ] || die "the Redis snapshot in $dir/redis.rdb is not an RDB file"
  run --entrypoint tar secrets-init -C /run/secrets/classroom -cf - . >"$dir/secrets.tar"
  tar -tf "$dir/secrets.tar" | grep -q redis-password || die "no secrets in $dir/secrets.tar"
  run --entrypoint tar demo-ca -C /data -cf - . >"$dir/caddy-data.tar"
  date -u +%FT%TZ >"$dir/CREATED"
  say "backed up to $dir: redis.rdb ($(wc -c <"$dir/redis.rdb") bytes), secrets.tar, caddy-data.tar"
}

restore() {
  local dir=$1
  for f in redis.rdb secrets.tar caddy-data.tar; do [ -s "$dir/$f" ] || die "$dir/$f is missing or empty"; done
  say "stopping the project (docker compose down; volumes are kept)"
  docker compose down --timeout 60
  # secrets-init runs as root with CAP_CHOWN only: enough to put the files back with their owner.
  run --entrypoint sh secrets-init -ec 'cd /run/secrets/classroom && find . -mindepth 1 -delete && tar -xf -' \
    <"$dir/secrets.tar"
  run --entrypoint sh proxy -ec 'cd /data && find . -mindepth 1 -delete && tar -xf -' <"$dir/caddy-data.tar"
  # Redis starts from its append-only file, not from dump.rdb: load the RDB in a private server
  # (loopback only, no password needed), turn AOF on (which rewrites the data into appendonlydir),
  # wait for the rewrite, shut down. The next `up` starts from exactly this data.
  run --entrypoint sh redis -ec '
    cd /data
    rm -rf appendonlydir dump.rdb temp-*
    cat > dump.rdb
    redis-server --port 6379 --bind 127.0.0.1 --dir /data --appendonly no --save "" \
      --daemonize yes --logfile /tmp/restore.log
    until redis-cli ping 2>/dev/null | grep -q PONG; do sleep 0.2; done
    redis-cli config set appendonly yes >/dev/null
    while redis-cli info persistence | grep -qE "^aof_rewrite_(in_progress|scheduled):1"; do sleep 0.2; done
    ls appendonlydir/*.manifest >/dev/null
    echo "[backup] $(redis-cli dbsize) keys restored"
    redis-cli shutdown >/dev/null 2>&1 || true
    while redis-cli ping >/dev/null 2>&1; do sleep 0.2; done' <"$dir/redis.rdb"
  say "restored from $dir (created $(cat "$dir/CREATED" 2>/dev/null || echo '?')): now run docker compose up -d"
}

case "${1:-}:${2:-}" in
  backup:?*) backup "$2" ;;
  restore:?*) restore "$2" ;;
  *) echo "usage: bash deploy/backup.sh backup|restore DIR" >&2; exit 2 ;;
esac
