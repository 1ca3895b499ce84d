"""Container health probe shared by every classroom image (stdlib only; `rq-worker` also uses redis + rq).

Official slim images ship neither curl nor wget, so Docker/Compose healthchecks and Kubernetes exec
probes call this instead:

    python /usr/local/lib/classroom/healthcheck.py http URL [--any-below-500]
    python /usr/local/lib/classroom/healthcheck.py rq-worker

`http` passes on a 2xx answer (with --any-below-500: on any answer below 500, for pages that redirect
to a login). It honours SSL_CERT_FILE, so an HTTPS URL is verified against the CA the container trusts.
`rq-worker` passes while an RQ worker started in this container (same hostname) is registered in Redis
(REDIS_URL): RQ drops a worker's registration when its heartbeat stops, so a hung worker fails.
Exit status 0 = healthy, 1 = unhealthy (the one-line reason goes to stderr).
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request


def check_http(url: str, any_below_500: bool) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            status = response.status
    except urllib.error.HTTPError as error:  # urlopen raises for 4xx/5xx
        status = error.code
    except (OSError, ValueError) as error:
        return f"{url}: {error}"
    if 200 <= status < 300 or (any_below_500 and status < 500):
        return None
    return f"{url}: HTTP {status}"


def check_rq_worker() -> str | None:
    import redis
    from rq import Worker

    try:
        connection = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=3, socket_connect_timeout=3)
        hostname = socket.gethostname()
        if any(worker.hostname == hostname for worker in Worker.all(connection=connection)):
            return None
    except (KeyError, redis.RedisError) as error:
        return f"redis: {error!r}"
    return f"no RQ worker of host {hostname!r} is registered"


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "http":
        problem = check_http(argv[1], "--any-below-500" in argv[2:])
    elif argv == ["rq-worker"]:
        problem = check_rq_worker()
    else:
        sys.stderr.write(__doc__ or "")
        return 2
    if problem:
        sys.stderr.write(f"unhealthy: {problem}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
