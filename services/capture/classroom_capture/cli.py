"""`classroom-capture`: the agent a student runs on their laptop."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from classroom_contract import tokens
from classroom_contract.messages import DEFAULT_SAMPLE_RATE_HZ

from classroom_capture import __version__
from classroom_capture.paths import default_outbox, default_pause_file

# Exit codes (also in --help).
EXIT_OK, EXIT_USAGE, EXIT_AUTH, EXIT_SOURCE, EXIT_SERVER, EXIT_NO_CONSENT = 0, 2, 3, 4, 5, 6
EXIT_PENDING = 75  # the source ended but the server could not be reached: observations wait in the outbox
EXIT_INTERRUPTED = 130

log = logging.getLogger("classroom_capture")

DESCRIPTION = """\
Classroom capture agent. Samples this laptop's webcam (or a video file, or a folder of images),
finds the largest face, and sends ONLY a 48x48 grayscale face crop, the face count, a rough head
angle and the time to the class server. Camera frames never leave the laptop. Nothing is captured
before the student agrees (or --consent is given for a managed install)."""

EPILOG = """\
examples:
  classroom-capture --join-link "https://class.example.org/join#ABCD..."   (the link on your join card)
  CLASSROOM_TOKEN=ABCD-EFGH-JKMN-PQRS classroom-capture --server http://10.0.0.5:8000 --rate 1
  classroom-capture --source lecture.mp4 ...       (a video file instead of the webcam)
  classroom-capture --source ./frames/ ...         (a folder of .png/.jpg images, in name order)
  classroom-capture --pause    /    classroom-capture --resume

pause / resume (student): type p + Enter in the agent's window; or run --pause / --resume from
any terminal; or on Linux/macOS `kill -USR1 <pid>`; or create / delete the pause file. While
paused nothing is captured or sent and the camera is released.

offline: every observation is saved in the outbox first and deleted only once the server has it,
so a network or server outage, Ctrl-C or a reboot loses nothing; it is sent on the next run.

exit codes: 0 done or stopped; 2 bad arguments; 3 your code was refused (401/403); 4 camera, video
or folder unusable; 5 server URL wrong (other 4xx); 6 no consent; 75 source finished but the
server was unreachable (observations wait in the outbox); 130 interrupted by Ctrl-C."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value else default


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="classroom-capture",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--server",
        default=_env("CLASSROOM_SERVER"),
        help="class server URL, e.g. http://10.0.0.5:8000 (env CLASSROOM_SERVER)",
    )
    p.add_argument(
        "--join-link",
        default=_env("CLASSROOM_JOIN_LINK"),
        help="your join link from your teacher (https://.../join#CODE): gives --server and your code "
        "(env CLASSROOM_JOIN_LINK)",
    )
    p.add_argument(
        "--token",
        default=_env("CLASSROOM_TOKEN"),
        help="your own code from your teacher, e.g. ABCD-EFGH-JKMN-PQRS (env CLASSROOM_TOKEN; prefer the env "
        "var: command lines are visible to other users of this computer)",
    )
    p.add_argument(
        "--source",
        default=_env("CLASSROOM_SOURCE", "0"),
        help="camera index (0 = default webcam), a video file, or a folder of images (default: 0)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=float(_env("CLASSROOM_RATE", "0")) or None,
        help=f"samples per second (default: your class's rate, else {DEFAULT_SAMPLE_RATE_HZ:g})",
    )
    p.add_argument(
        "--detector",
        choices=["auto", "yunet-cv", "haar", "yunet"],
        default="auto",
        help="face detector: auto (default) = yunet-cv (YuNet through OpenCV: finds more faces, gives head "
        "angles), or haar, with a warning, where YuNet cannot run; haar (fewer faces, no head angles); "
        "yunet (the same YuNet from the optional yuface wheel: slower, for checks)",
    )
    p.add_argument(
        "--consent", action="store_true", help="managed installs: the student has already agreed; do not ask"
    )
    p.add_argument(
        "--outbox", type=Path, default=None, help=f"outbox file for unsent observations (default: {default_outbox()})"
    )
    p.add_argument(
        "--outbox-max",
        type=int,
        default=10_000,
        help="most observations kept while offline; when full the oldest are dropped (default: 10000)",
    )
    p.add_argument("--pause-file", type=Path, default=None, help=f"pause file (default: {default_pause_file()})")
    p.add_argument("--loop", action="store_true", help="replay a video file or image folder forever")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="when a file/folder ends, seconds to keep trying to deliver (default: 30)",
    )
    p.add_argument(
        "--send-pending", action="store_true", help="capture nothing: deliver what waits in the outbox, then exit"
    )
    p.add_argument("--pause", action="store_true", help="pause a running agent (creates the pause file) and exit")
    p.add_argument("--resume", action="store_true", help="resume a paused agent (removes the pause file) and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="log every step")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def _setup_logging(args) -> None:
    if args.verbose:
        level = logging.DEBUG
    elif args.quiet:
        level = logging.ERROR
    else:
        level = logging.INFO if sys.stderr.isatty() else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("classroom-capture: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def fail(code: int, message: str) -> int:
    """One line on stderr, no traceback."""
    sys.stderr.write(f"classroom-capture: error: {message}\n")
    sys.stderr.flush()
    return code


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return fail(EXIT_INTERRUPTED, "interrupted")


def _resolve_server_and_code(args) -> str | None:
    """Fill args.server and args.token from --join-link; an error message, or None when all is well."""
    if args.join_link:
        try:
            server, credential = tokens.parse_join_link(args.join_link)
        except ValueError as exc:
            return f"--join-link: {exc}"
        args.server = args.server or server
        args.token = args.token or credential
    missing = [name for name, value in (("server", args.server), ("token", args.token)) if not value]
    if missing:
        return "missing --join-link (or " + " and ".join(f"--{m}" for m in missing) + "; see --help)"
    if tokens.normalise(args.token) is None:
        return "your code must be 16 letters and digits as on your join card, e.g. ABCD-EFGH-JKMN-PQRS"
    return None


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
    from classroom_capture.control import PauseControl, ask_consent, consent_text, start_key_listener

    pause = PauseControl(args.pause_file or default_pause_file())
    if args.pause or args.resume:
        pause.pause() if args.pause else pause.resume()
        print(f"classroom-capture: {'paused' if args.pause else 'resumed'} ({pause.path})")
        return EXIT_OK

    problem = _resolve_server_and_code(args)
    if problem:
        return fail(EXIT_USAGE, problem)
    if not args.server.startswith(("http://", "https://")):
        return fail(EXIT_USAGE, f"--server {args.server!r}: must start with http:// or https://")
    if args.rate is not None and not 0 < args.rate <= 30:
        return fail(EXIT_USAGE, "--rate must be between 0 and 30 samples per second")

    from classroom_capture.sender import AuthRejected, Sender, SenderFatal, fetch_identity

    outbox_path = args.outbox or default_outbox()
    if args.send_pending:
        outbox = _open_outbox(outbox_path, args.outbox_max)
        if isinstance(outbox, int):
            return outbox
        return _send_pending(Sender(args.server, args.token, outbox), outbox, args)

    from classroom_capture.camera import SourceError, open_source
    from classroom_capture.detector import make_detector

    try:
        detector = make_detector(args.detector)
    except (RuntimeError, ValueError) as exc:
        return fail(EXIT_USAGE, str(exc))

    try:  # whom this code belongs to, so the student sees their own name before agreeing
        me = fetch_identity(args.server, args.token)
    except AuthRejected as exc:
        return fail(EXIT_AUTH, str(exc))
    except SenderFatal as exc:
        return fail(EXIT_SERVER, str(exc))
    who = _describe(me)
    rate = args.rate or min(30.0, max(0.1, me.sample_rate_hz if me else DEFAULT_SAMPLE_RATE_HZ))
    if me is None:  # offline is normal: capture anyway, the outbox keeps everything until the server is back
        log.info("server not reachable now; observations wait in the outbox until it is")
    else:
        log.info("you are %s", who)

    if not args.consent:
        text = consent_text(args.server, who, rate, detector.name, Path(outbox_path), pause.path)
        if not sys.stdin or not sys.stdin.isatty():
            return fail(
                EXIT_NO_CONSENT, "consent needed: run in a terminal to be asked, or pass --consent (managed installs)"
            )
        if not ask_consent(text):
            return fail(EXIT_NO_CONSENT, "no consent given: nothing was captured")

    try:
        source = open_source(args.source, rate=rate, loop=args.loop)
    except SourceError as exc:
        return fail(EXIT_SOURCE, str(exc))

    outbox = _open_outbox(outbox_path, args.outbox_max)
    if isinstance(outbox, int):
        source.close()
        return outbox
    sender = Sender(args.server, args.token, outbox)

    from classroom_capture.agent import Agent

    agent = Agent(source, detector, outbox, sender, who, rate=rate, pause=pause, drain_timeout=args.drain_timeout)
    interrupted = {"sigint": False}

    def on_signal(signum, _frame):
        interrupted["sigint"] = interrupted["sigint"] or signum == signal.SIGINT
        agent.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pause.install_signal()
    start_key_listener(pause, agent.stop)
    log.info(
        "capturing %s at %g/s with %s as %s -> %s (outbox %s, pause file %s)",
        source.describe(),
        rate,
        detector.name,
        who,
        args.server,
        outbox_path,
        pause.path,
    )
    if pause.is_paused():
        log.warning("paused (%s exists): run `classroom-capture --resume` to start capturing", pause.path)
    try:
        result = agent.run()
    except AuthRejected as exc:
        return fail(EXIT_AUTH, f"{exc}; {sender.pending()} observation(s) kept in the outbox")
    except SenderFatal as exc:
        return fail(EXIT_SERVER, str(exc))
    except SourceError as exc:
        return fail(EXIT_SOURCE, f"{exc}; {sender.pending()} observation(s) kept in the outbox")
    log.info(
        "captured %d observation(s); delivered %d new, %d already there; %d pending in the outbox",
        result.captured,
        sender.stats.accepted,
        sender.stats.duplicates,
        result.pending,
    )
    if interrupted["sigint"]:
        return EXIT_INTERRUPTED
    if result.finished and result.pending:
        return fail(
            EXIT_PENDING,
            f"server unreachable: {result.pending} observation(s) wait in {outbox_path}; "
            "run again (or with --send-pending) to deliver them",
        )
    return EXIT_OK


def _describe(me) -> str:
    """How the agent names its student: "Anna K. (anna) in Class 7b", or a placeholder while offline."""
    if me is None:
        return "the student of this code (server not reached yet)"
    return f"{me.display_name} ({me.student_id}) in {me.class_name}"


def _open_outbox(path: Path, max_items: int):
    """The outbox, or an exit code after a one-line message."""
    import sqlite3

    from classroom_capture.outbox import Outbox

    try:
        return Outbox(path, max_items=max_items)
    except (OSError, ValueError, sqlite3.Error) as exc:
        return fail(EXIT_USAGE, f"cannot open the outbox {path}: {exc}")


def _send_pending(sender, outbox, args) -> int:
    import time

    from classroom_capture.sender import AuthRejected, SenderFatal

    before = sender.pending()
    try:
        sender.drain(deadline=time.monotonic() + args.drain_timeout)
    except AuthRejected as exc:
        return fail(EXIT_AUTH, str(exc))
    except SenderFatal as exc:
        return fail(EXIT_SERVER, str(exc))
    left = sender.pending()
    log.info("delivered %d of %d pending observation(s)", before - left, before)
    if left:
        return fail(
            EXIT_PENDING, f"server unreachable: {left} observation(s) still wait in {args.outbox or default_outbox()}"
        )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
