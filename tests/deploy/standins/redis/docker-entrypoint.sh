#!/bin/sh
# Like the official image's entrypoint: as root, drop to the redis user; otherwise run as is.
set -e
if [ "$(id -u)" = 0 ] && [ "${1:-}" = redis-server ]; then
  exec setpriv --reuid=999 --regid=1000 --init-groups "$@"
fi
exec "$@"
