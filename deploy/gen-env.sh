#!/bin/sh
# Optional. Prints .env.example with every empty secret filled with 32 random bytes in hex (URL-safe):
#
#   sh deploy/gen-env.sh > .env && chmod 600 .env
#
# Not needed to start: without .env (or with empty secrets) the compose job secrets-init generates
# the secrets into the "secrets" volume on first start. Use this instead to pin them in .env, e.g. to
# keep a copy in a password manager or to reuse them on another server; values in .env always win.
# Settings that have a value keep it; edit SITE_ADDRESS and TLS afterwards for a real server, and
# set DEMO_STUDENTS=0 there unless you want the demo class.
set -eu
here=$(dirname "$0")
random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    REDIS_PASSWORD= | CROP_STORE_PASSWORD= | SECRET_KEY= | DEMO_TEACHER_PASSWORD=) printf '%s%s\n' "$line" "$(random_hex)" ;;
    *) printf '%s\n' "$line" ;;
  esac
done < "$here/../.env.example"
