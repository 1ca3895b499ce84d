"""`classroom-dashboard`: run the dev server and manage teachers, classes and class tokens.

    classroom-dashboard serve [--host 127.0.0.1] [--port 8080]
    classroom-dashboard create-teacher --username alice [--password ...] [--admin] [--replace]
    classroom-dashboard create-class --teacher alice --class-id 7b --name "Class 7b"
    classroom-dashboard rotate-token --class-id 7b

Redis comes from REDIS_URL (or --redis-url). Tokens are printed once and stored only hashed.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from classroom_dashboard import accounts, config, security_log
from classroom_dashboard.db import connect


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
    token = accounts.create_class(client, args.teacher, args.class_id, args.name)
    security_log.event("class_created", class_id=args.class_id, username=accounts.normalise(args.teacher))
    print(f"class {args.class_id!r} created for {accounts.normalise(args.teacher)!r}.", file=sys.stderr)
    print("Class token (give it to the capture agents; it is shown only once):", file=sys.stderr)
    print(token)
    return 0


def _rotate_token(args, client) -> int:
    token = accounts.rotate_class_token(client, args.class_id)
    security_log.event("class_token_rotated", class_id=args.class_id)
    print(f"new token for class {args.class_id!r}; the old one no longer works:", file=sys.stderr)
    print(token)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="classroom-dashboard", description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", help="default: $REDIS_URL or redis://127.0.0.1:6379/0")
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

    klass = sub.add_parser("create-class", help="create a class and print its agent token")
    klass.add_argument("--teacher", required=True)
    klass.add_argument("--class-id", required=True)
    klass.add_argument("--name", required=True)
    klass.set_defaults(func=_create_class, needs_redis=True)

    rotate = sub.add_parser("rotate-token", help="replace a class's agent token and print the new one")
    rotate.add_argument("--class-id", required=True)
    rotate.set_defaults(func=_rotate_token, needs_redis=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    security_log.ensure_handler()
    if not args.needs_redis:
        return args.func(args)
    client = connect(args.redis_url or config.redis_url())
    try:
        return args.func(args, client)
    except accounts.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
