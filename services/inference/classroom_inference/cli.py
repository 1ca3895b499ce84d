"""Console scripts: `classroom-api` (the HTTP API under uvicorn) and `classroom-jobs` (queue admin)."""

from __future__ import annotations

import argparse
import re
import sys

from classroom_inference.logconfig import configure_logging
from classroom_inference.settings import Settings


def api_main(argv: list[str] | None = None) -> int:
    """Serve the ingest API on API_HOST:API_PORT (flags override) with uvicorn, one process."""
    import uvicorn

    from classroom_inference.api import create_app

    parser = argparse.ArgumentParser(prog="classroom-api", description="Run the classroom ingest API.")
    parser.add_argument("--host", help="default: API_HOST")
    parser.add_argument("--port", type=int, help="default: API_PORT")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.host:
        settings.api_host = args.host
    if args.port:
        settings.api_port = args.port
    configure_logging(settings.log_level)
    if not crop_store_ok(settings):
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep our logging format
        proxy_headers=True,
    )
    return 0


def crop_store_ok(settings: Settings) -> bool:
    """False (after logging why) when the crop store writes to disk and no override is set."""
    import logging

    from classroom_inference.cropstore import CropStorePersists, check_crop_store

    try:
        check_crop_store(settings)
    except CropStorePersists as exc:
        logging.getLogger("classroom_inference").error("refusing to start: %s", exc)
        return False
    return True


def _failure_summary(exc_string: str | None) -> str:
    """One line for a failed job: the exception line of its traceback, plus a gRPC status if any."""
    if not exc_string:
        return "?"
    lines = [line for line in exc_string.strip().splitlines() if line.strip()]
    headline = next((line for line in reversed(lines) if not line[0].isspace() and ":" in line), lines[-1])
    status = re.search(r"StatusCode\.([A-Z_]+)", exc_string)
    return f"{headline.strip()[:160]}{f' [{status.group(1)}]' if status else ''}"


def jobs_main(argv: list[str] | None = None) -> int:
    """List, inspect and requeue failed inference jobs; show queue counts."""
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    from classroom_inference.connection import worker_client
    from classroom_inference.queues import inference_queue

    parser = argparse.ArgumentParser(prog="classroom-jobs", description=jobs_main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("stats", help="queued / started / scheduled / failed counts")
    listing = sub.add_parser("failed", help="list failed jobs, newest first")
    listing.add_argument("--limit", type=int, default=50)
    requeue = sub.add_parser("requeue", help="put failed jobs back on the queue")
    requeue.add_argument("job_ids", nargs="*")
    requeue.add_argument("--all", action="store_true", help="every failed job")
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging("WARNING")
    connection = worker_client(settings)
    queue = inference_queue(connection)
    failed = FailedJobRegistry(queue=queue)

    if args.command == "stats":
        print(f"queued {queue.count}")
        print(f"started {queue.started_job_registry.count}")
        print(f"scheduled {queue.scheduled_job_registry.count}")
        print(f"failed {failed.count}")
        return 0
    if args.command == "failed":
        ids = list(reversed(failed.get_job_ids()))[: args.limit]
        for job in Job.fetch_many(ids, connection=connection):
            if job is None:
                continue
            result = job.latest_result()
            reason = _failure_summary(result.exc_string if result else None)
            print(f"{job.id}\t{job.enqueued_at:%Y-%m-%d %H:%M:%S}\t{job.description}\t{reason}")
        return 0
    ids = failed.get_job_ids() if args.all else args.job_ids
    if not ids:
        print("nothing to requeue (give job ids or --all)", file=sys.stderr)
        return 2
    errors = 0
    for job_id in ids:
        try:
            failed.requeue(job_id)
            print(f"requeued {job_id}")
        except Exception as exc:  # noqa: BLE001 - report each id and go on
            print(f"cannot requeue {job_id}: {exc}", file=sys.stderr)
            errors += 1
    return 1 if errors else 0
