"""`classroom-dashboard`: run the dev server and manage teachers, classes and enrolled students.

    classroom-dashboard serve [--host 127.0.0.1] [--port 8080]
    classroom-dashboard create-teacher --username alice [--password ...] [--admin] [--replace]
    classroom-dashboard create-class --teacher alice --class-id 7b --name "Class 7b"
    classroom-dashboard enrol --class-id 7b --student anna --name "Anna K."     # prints her join link
    classroom-dashboard rotate-credential --class-id 7b --student anna          # a new link; the old one stops
    classroom-dashboard demo-class --teacher demo --class-id demo --students 12 --credentials-file FILE

Redis comes from REDIS_URL (or --redis-url), SECRET_KEY seals the credentials the roster shows again,
PUBLIC_URL is the base of printed join links (default http://127.0.0.1:8000).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from classroom_contract import settings as shared
from classroom_contract import store, tokens

from classroom_dashboard import accounts, config, credentials, security_log
from classroom_dashboard.db import connect

#: Join links printed by the CLI when PUBLIC_URL is not set: the API of a local run.
DEFAULT_CLI_PUBLIC_URL = "http://127.0.0.1:8000"


def _serve(args) -> int:
    # `serve` is the development server: default to development settings unless told otherwise.
    if not os.environ.get("DASHBOARD_ENV"):
        os.environ["DASHBOARD_ENV"] = "development"
    if args.redis_url:
        os.environ["REDIS_URL"] = args.redis_url
    from classroom_dashboard import create_app

    try:
        app = create_app()
    except config.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Classroom dashboard on http://{args.host}:{args.port}/ (Redis {app.config['REDIS_URL']})")
    app.run(host=args.host, port=args.port, threaded=True, debug=False, use_reloader=False)
    return 0


def _create_teacher(args, client) -> int:
    password = args.password
    if password is None:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            print("error: passwords differ", file=sys.stderr)
            return 2
    existed = accounts.get_teacher(client, args.username) is not None
    username = accounts.create_teacher(client, args.username, password, admin=args.admin, replace=args.replace)
    # --replace is the password reset: a new session epoch, so every session of the account ends
    security_log.event("password_changed" if existed else "teacher_created", username=username, admin=args.admin)
    print(f"teacher {username!r} {'updated' if args.replace else 'created'}{' (admin)' if args.admin else ''}")
    return 0


def _create_class(args, client) -> int:
    accounts.create_class(client, args.teacher, args.class_id, args.name)
    security_log.event("class_created", class_id=args.class_id, username=accounts.normalise(args.teacher))
    print(f"class {args.class_id!r} created for {accounts.normalise(args.teacher)!r}; enrol its students next.")
    return 0


def _secret_key() -> str:
    """SECRET_KEY as the dashboard reads it, so the roster can show what the CLI issued."""
    return config.from_env()["SECRET_KEY"]


def _public_url() -> str:
    return (os.environ.get("PUBLIC_URL") or DEFAULT_CLI_PUBLIC_URL).rstrip("/")


def _print_credential(student_id: str, credential: str) -> None:
    print(f"{student_id}: code {tokens.display(credential)}  join link {tokens.join_link(_public_url(), credential)}")


def _enrol(args, client) -> int:
    _check_student(args.student)
    credential = credentials.enrol(client, _secret_key(), args.class_id, args.student, args.name or args.student)
    security_log.event("student_enrolled", class_id=args.class_id, student_id=args.student)
    _print_credential(args.student, credential)
    return 0


def _rotate_credential(args, client) -> int:
    _check_student(args.student)
    credential = credentials.rotate(client, _secret_key(), args.class_id, args.student)
    security_log.event("student_credential_rotated", class_id=args.class_id, student_id=args.student)
    print(f"new credential for {args.student!r}; the old one no longer works:", file=sys.stderr)
    _print_credential(args.student, credential)
    return 0


def _demo_class(args, client) -> int:
    """The demo class with N enrolled students; their credentials go to a 0600 file for the simulated
    agents (never to a command line or a log). Re-running reissues them (the old ones stop working)."""
    secret = _secret_key()
    try:
        accounts.create_class(client, args.teacher, args.class_id, args.name)
    except accounts.AccountError:
        if store.class_info(client, args.class_id) is None:
            raise
    issued = {}
    for i in range(args.students):
        student_id = f"{args.prefix}{i + 1:02d}"
        if store.enrolment(client, args.class_id, student_id) is None:
            issued[student_id] = credentials.enrol(client, secret, args.class_id, student_id, f"Student {i + 1}")
        else:
            issued[student_id] = credentials.rotate(client, secret, args.class_id, student_id)
    _write_private(Path(args.credentials_file), json.dumps(issued, indent=1) + "\n")
    print(f"demo class {args.class_id!r}: {len(issued)} students enrolled; credentials in {args.credentials_file}")
    return 0


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (0600), atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".new")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(partial, path)


def _check_student(student_id: str) -> None:
    if not accounts.CLASS_ID_PATTERN.fullmatch(student_id or ""):
        raise accounts.AccountError("student id must be 1-64 characters: letters, digits, and _ . - (not first)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="classroom-dashboard", description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", help=f"default: $REDIS_URL or {shared.DEFAULT_REDIS_URL}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the development server (use gunicorn in production)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(func=_serve, needs_redis=False)

    teacher = sub.add_parser("create-teacher", help="create a teacher account (or reset it with --replace)")
    teacher.add_argument("--username", required=True)
    teacher.add_argument("--password", help="prompted for when left out (keeps it out of shell history)")
    teacher.add_argument("--admin", action="store_true", help="may open every class")
    teacher.add_argument("--replace", action="store_true", help="overwrite an existing account")
    teacher.set_defaults(func=_create_teacher, needs_redis=True)

    klass = sub.add_parser("create-class", help="create a class (then enrol its students)")
    klass.add_argument("--teacher", required=True)
    klass.add_argument("--class-id", required=True)
    klass.add_argument("--name", required=True)
    klass.set_defaults(func=_create_class, needs_redis=True)

    enrol = sub.add_parser("enrol", help="enrol a student and print their code and join link")
    enrol.add_argument("--class-id", required=True)
    enrol.add_argument("--student", required=True, help="student id: letters, digits, _ . - (max 64)")
    enrol.add_argument("--name", help="name shown to the teacher (default: the id)")
    enrol.set_defaults(func=_enrol, needs_redis=True)

    rotate = sub.add_parser("rotate-credential", help="issue a new credential to one student (the old one stops)")
    rotate.add_argument("--class-id", required=True)
    rotate.add_argument("--student", required=True)
    rotate.set_defaults(func=_rotate_credential, needs_redis=True)

    demo = sub.add_parser("demo-class", help="create the demo class, enrol N students, write their credentials")
    demo.add_argument("--teacher", required=True)
    demo.add_argument("--class-id", required=True)
    demo.add_argument("--name", default="Demo class")
    demo.add_argument("--students", type=int, required=True)
    demo.add_argument("--prefix", default="student-", help="student ids are PREFIX01, PREFIX02, ...")
    demo.add_argument("--credentials-file", required=True, help="JSON {student id: credential}, written 0600")
    demo.set_defaults(func=_demo_class, needs_redis=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    security_log.ensure_handler()
    if not args.needs_redis:
        return args.func(args)
    client = connect(args.redis_url or config.redis_url())
    try:
        return args.func(args, client)
    except (accounts.AccountError, store.RecordExists, store.UnknownRecord, config.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
