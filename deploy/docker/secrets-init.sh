#!/bin/sh
# secrets-init: the one-shot job that gives a fresh `docker compose up` its secrets (no .env needed).
#
#   sh secrets-init.sh [DIR [COPY_DIR=FILE[,FILE...] ...]]
#
#   DIR default: /run/secrets/classroom (the "secrets" volume, which keeps every secret).
#   Each COPY_DIR=FILE,... gets a copy of just those files (and loses any other): one consumer's
#   volume, so each container sees only the secrets it uses (docker-compose.yml).
#
# For each secret below, a file in DIR:
#   - the variable is set and not empty (from .env or the environment): its value is written to the
#     file, so an admin's own value always wins, also over a secret generated earlier;
#   - otherwise the file is kept when it exists (secrets persist across restarts and upgrades);
#   - otherwise 32 random bytes in hex are generated into it.
#
#   REDIS_PASSWORD         -> DIR/redis-password          (redis, and REDIS_URL of every service)
#   CROP_STORE_PASSWORD    -> DIR/crop-store-password     (crop-store, CROP_STORE_URL of api/worker)
#   SECRET_KEY             -> DIR/secret-key              (signs the dashboard's session cookies)
#   DEMO_TEACHER_PASSWORD  -> DIR/demo-teacher-password   (the demo teacher's login)
#
# DIR becomes root:READER_GID 0750 and each file root:READER_GID 0440: readable by root (the redis
# container before it drops privileges) and by group READER_GID (default 10001, the "app" user of
# our images), by no one else. Needs CAP_CHOWN only. Values are never printed.
# POSIX sh: runs on busybox (the redis:alpine image compose uses), dash and bash.
set -eu

dir=${1:-/run/secrets/classroom}
gid=${READER_GID:-10001}
umask 077

random_hex() { od -A n -N 32 -t x1 /dev/urandom | tr -d ' \n'; }

# put NAME FILE: writes the secret NAME to DIR/FILE by the rules above.
put() {
  name=$1
  file=$dir/$2
  eval "value=\${$name:-}"
  if [ -n "$value" ]; then
    source="$name from the environment (.env)"
  elif [ -s "$file" ]; then
    chgrp "$gid" "$file" && chmod 0440 "$file"
    echo "secrets-init: $file kept"
    return 0
  else
    value=$(random_hex)
    source="generated"
    if [ ${#value} -ne 64 ]; then
      echo "secrets-init: could not read /dev/urandom" >&2
      return 1
    fi
  fi
  case "$name:$value" in
    REDIS_PASSWORD:*[!A-Za-z0-9._~-]* | CROP_STORE_PASSWORD:*[!A-Za-z0-9._~-]*)
      # It goes into redis:// URLs and the redis config: URL-safe characters only.
      echo "secrets-init: $name may only contain A-Z a-z 0-9 . _ ~ - (try: openssl rand -hex 32)" >&2
      return 1
      ;;
  esac
  # Written next to the file and renamed over it, so a reader never sees half a secret.
  tmp=$file.tmp.$$
  printf '%s' "$value" > "$tmp"
  chgrp "$gid" "$tmp"
  chmod 0440 "$tmp"
  mv -f "$tmp" "$file"
  echo "secrets-init: $file $source"
}

mkdir -p "$dir"
chgrp "$gid" "$dir"
chmod 0750 "$dir"
put REDIS_PASSWORD redis-password
put CROP_STORE_PASSWORD crop-store-password
put SECRET_KEY secret-key
put DEMO_TEACHER_PASSWORD demo-teacher-password

# copy DEST FILES: DEST gets exactly FILES (comma-separated) from DIR, same owner and mode.
copy() {
  dest=$1
  mkdir -p "$dest"
  chgrp "$gid" "$dest"
  chmod 0750 "$dest"
  for existing in "$dest"/* "$dest"/.[!.]*; do
    [ -e "$existing" ] || continue
    case ",$2," in
      *",${existing##*/},"*) ;;
      *) rm -rf "$existing" ;;
    esac
  done
  old_ifs=$IFS
  IFS=,
  for file in $2; do
    tmp=$dest/$file.tmp.$$
    cp "$dir/$file" "$tmp"
    chgrp "$gid" "$tmp"
    chmod 0440 "$tmp"
    mv -f "$tmp" "$dest/$file"
  done
  IFS=$old_ifs
  echo "secrets-init: $dest gets $2"
}

[ $# -gt 0 ] && shift
for spec in "$@"; do
  copy "${spec%%=*}" "${spec#*=}"
done
