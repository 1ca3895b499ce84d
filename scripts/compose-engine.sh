#!/usr/bin/env bash
# A private Docker Engine for the compose end-to-end test (scripts/compose-e2e.sh), on a CI or
# developer machine that has no Docker running and no image registry (root needed).
#
#   bash scripts/compose-engine.sh start    # engine up, base image and stand-ins ready; prints exports
#   bash scripts/compose-engine.sh stop     # stops the engine that `start` started, and only that one
#
# Everything lives under one folder, $COMPOSE_E2E_DIR (default /tmp/classroom-compose-e2e): the
# engine's data (images are kept there between runs, so a second run rebuilds nothing), its socket,
# pid file and logs, and the Compose/buildx plugins. `rm -rf` that folder after `stop` forgets it all.
# It never touches a Docker that was already running, nor the machine's own apt sources.
#
# Where an image the project uses cannot be pulled, a registry-free stand-in is built from the
# Debian packages of the mirror this machine's apt already uses (read from /etc/apt at run time)
# and tagged with the exact name the project uses, so neither the compose file nor any Dockerfile
# changes. Each stand-in carries the label classroom.stand-in (what it is instead); the e2e test
# prints them. Stand-ins prove the compose wiring, our Dockerfiles and our application, not the
# upstream images: tests/deploy/standins/README.md lists them.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
W=${COMPOSE_E2E_DIR:-/tmp/classroom-compose-e2e}
export DOCKER_HOST=unix://$W/docker.sock DOCKER_CONFIG=$W/config
t0=$SECONDS
say() { echo "[compose-engine] $* (+$((SECONDS - t0))s)"; }
die() { echo "[compose-engine] ERROR: $*" >&2; exit 1; }

mirror() {
  local m
  m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '/^deb /{for(i=2;i<=NF;i++) if($i ~ /^https?:/){print $i; exit}}' /etc/apt/sources.list 2>/dev/null | head -1)
  [ -n "$m" ] || die "no Debian mirror found in /etc/apt"
  echo "$m"
}

install_packages() {
  local missing=()
  for pkg in docker.io debootstrap iptables; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Compose v2 and buildx are not packaged in Debian 12; Debian 13's packages are static binaries.
  # A separate apt configuration under $W reads them from the same mirror (the machine's own apt
  # configuration is left as it is).
  if [ ! -x "$DOCKER_CONFIG/cli-plugins/docker-compose" ] || [ ! -x "$DOCKER_CONFIG/cli-plugins/docker-buildx" ]; then
    local a=$W/apt-trixie o
    rm -rf "$a"
    mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$a/x" "$DOCKER_CONFIG/cli-plugins"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(mirror) trixie main" >"$a/sources.list"
    o="-o Dir::Etc::SourceList=$a/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$a/lists"
    o="$o -o Dir::Cache=$a/cache -o APT::Sandbox::User=root"
    # shellcheck disable=SC2086
    apt-get $o update -qq && (cd "$a" && apt-get $o download -qq docker-compose docker-buildx)
    for deb in "$a"/*.deb; do dpkg-deb -x "$deb" "$a/x"; done
    cp "$a"/x/usr/libexec/docker/cli-plugins/* "$DOCKER_CONFIG/cli-plugins/"
    rm -rf "$a"
  fi
}

engine_up() {
  if docker info >/dev/null 2>&1; then
    say "engine already running on $DOCKER_HOST (left by an earlier run; it is reused)"
    return
  fi
  [ -e /sys/class/net/docker0 ] && die "a docker0 bridge exists already: another Docker Engine runs on this machine; stop it or set DOCKER_HOST to use it"
  rm -f "$W/docker.pid" "$W/docker.sock"
  # dockerd turns the FORWARD policy to DROP: remembered here, put back by `stop`.
  iptables -S FORWARD 2>/dev/null | awk '/^-P FORWARD/{print $3}' >"$W/forward-policy" || true
  # setsid: its own session, so a Ctrl-C of the caller does not kill it mid-teardown.
  setsid dockerd --data-root "$W/data" --exec-root "$W/exec" --pidfile "$W/docker.pid" -H "$DOCKER_HOST" \
    --storage-driver overlay2 --userland-proxy=true >"$W/dockerd.log" 2>&1 </dev/null &
  echo $! >"$W/started-by-us.pid"
  for _ in $(seq 90); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 "$W/dockerd.log" >&2; die "dockerd did not start (log: $W/dockerd.log)"; }
  say "dockerd up ($(docker version --format '{{.Server.Version}}'), $(docker compose version --short))"
}

base_image() {
  if docker image inspect debian:bookworm >/dev/null 2>&1; then return; fi
  if timeout 30 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
    docker tag debian:bookworm-slim debian:bookworm
    return
  fi
  say "no registry: building debian:bookworm with debootstrap from the apt mirror"
  local r=$W/rootfs
  rm -rf "$r"
  debootstrap --variant=minbase bookworm "$r" "$(mirror)" >"$W/debootstrap.log" 2>&1 ||
    { tail -20 "$W/debootstrap.log" >&2; die "debootstrap failed"; }
  # HTTPS from containers (pip) goes through this machine's TLS-inspecting proxy: trust its CA too.
  # Only in the local image; never committed.
  mkdir -p "$r/usr/local/share/ca-certificates" "$r/etc/ssl/certs"
  cp /usr/local/share/ca-certificates/*.crt "$r/usr/local/share/ca-certificates/" 2>/dev/null || true
  cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*
  tar -C "$r" -c . | docker import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - debian:bookworm >/dev/null
  rm -rf "$r"
  say "base image debian:bookworm built"
}

# image_or_standin IMAGE STANDIN_DIR [BUILD_ARG...]: pull IMAGE, or build the stand-in under its name.
image_or_standin() {
  local image=$1 dir=$2
  shift 2
  if docker image inspect "$image" >/dev/null 2>&1; then return; fi
  if timeout 30 docker pull -q "$image" >/dev/null 2>&1; then
    say "pulled $image"
    return
  fi
  say "cannot pull $image: building its stand-in from $dir"
  local args=()
  for a in "$@"; do args+=(--build-arg "$a"); done
  DOCKER_BUILDKIT=1 docker build -q "${args[@]}" -t "$image" "$dir" >/dev/null
}

# images_named PATTERN: the image references in docker-compose.yml and the Dockerfiles matching it.
images_named() {
  { grep -hoE "image: *[^ ]+" "$REPO/docker-compose.yml" | awk '{print $2}'
    grep -hoE "(PYTHON|NODE)_IMAGE=[^ ]+" "$REPO"/services/*/Dockerfile | cut -d= -f2
  } | grep -E "$1" | sort -u
}

standins() {
  local s=$REPO/tests/deploy/standins image
  for image in $(images_named '^python:'); do image_or_standin "$image" "$s/python"; done
  for image in $(images_named '^node:'); do image_or_standin "$image" "$s/node"; done
  for image in $(images_named '^redis:'); do image_or_standin "$image" "$s/redis"; done
  for image in $(images_named '^caddy:'); do image_or_standin "$image" "$s/caddy"; done
  for image in $(images_named '^prom/prometheus:'); do image_or_standin "$image" "$s/prometheus"; done
  # tensorflow/serving is built later (compose-e2e.sh), FROM the project's inference image.
}

start() {
  [ "$(id -u)" = 0 ] || die "needs root (to start dockerd); set CLASSROOM_SKIP_COMPOSE_E2E=1 to skip the compose test"
  mkdir -p "$W" "$DOCKER_CONFIG/cli-plugins"
  install_packages
  engine_up
  base_image
  standins
  say "ready: export DOCKER_HOST=$DOCKER_HOST DOCKER_CONFIG=$DOCKER_CONFIG"
}

stop() {
  local pid
  pid=$(cat "$W/started-by-us.pid" 2>/dev/null || true)
  if [ -z "$pid" ]; then
    say "no engine started by this script: nothing to stop"
    return
  fi
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && { say "dockerd $pid did not stop in 60 s: killing it"; kill -9 "$pid"; }
  fi
  rm -f "$W/started-by-us.pid"
  # What dockerd leaves behind on this kind of machine: the netns mount, its bridge, FORWARD=DROP.
  if mountpoint -q "$W/exec/netns/default" 2>/dev/null; then umount "$W/exec/netns/default" || true; fi
  ip link show docker0 >/dev/null 2>&1 && ip link delete docker0 || true
  iptables -P FORWARD "$(cat "$W/forward-policy" 2>/dev/null || echo ACCEPT)" 2>/dev/null || true
  say "engine stopped (images kept in $W/data; rm -rf $W to drop them)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
