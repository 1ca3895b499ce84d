"""`classroom-demo`: a simulated classroom, N students in one process, each a real capture agent
(detector, outbox, sender) fed with frames made from real FER2013 faces instead of a webcam.

Its own module, apart from the agent a student runs (`classroom-capture`, cli.py), so that nothing
simulated is reachable from the shipped agent's command line; the frames come from synthetic.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from classroom_contract.messages import DEFAULT_SAMPLE_RATE_HZ

from classroom_capture.camera import FrameSource
from classroom_capture.detector import Detector, Face, make_detector
from classroom_capture.synthetic import DEFAULT_SAMPLE, SAMPLE_ENV, FrameMaker, load_fer_faces


class SyntheticSource(FrameSource):
    """A simulated webcam: frames from a FrameMaker, forever. `last_box` is where the face really is."""

    live = True

    def __init__(self, maker: FrameMaker, name: str = "synthetic"):
        self.maker, self.name = maker, name
        self.last_box: tuple[int, int, int, int] | None = None

    def describe(self) -> str:
        return f"synthetic webcam {self.name}"

    def read(self) -> np.ndarray:
        frame = self.maker.next()
        self.last_box = frame.box
        return frame.image


class KnownBoxDetector(Detector):
    """`--fast`: skip detection and crop where the face was placed (for many students on a small box)."""

    name = "known-box"

    def __init__(self, source: SyntheticSource):
        super().__init__(work_width=0)
        self.source = source

    def detect(self, frame_bgr: np.ndarray) -> list[Face]:
        box = self.source.last_box
        return [] if box is None else [Face(tuple(float(v) for v in box), 1.0)]


def load_credentials(path: str | os.PathLike) -> list[tuple[str, str]]:
    """(student id, credential) pairs, sorted by id, from the demo's JSON file; ValueError if malformed."""
    from classroom_contract import tokens

    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not data:
        raise ValueError("expected a JSON object {student id: credential}")
    pairs = sorted((str(k), v) for k, v in data.items())
    if any(not isinstance(v, str) or tokens.normalise(v) is None for _, v in pairs):
        raise ValueError("every value must be a student credential")
    return pairs


def _demo_parser():
    import argparse

    p = argparse.ArgumentParser(
        prog="classroom-demo",
        description="Simulated classroom: N students, each a real capture agent (detector, outbox, sender) "
        "fed with frames made from real FER2013 faces instead of a webcam.",
    )
    p.add_argument("--server", default=os.environ.get("CLASSROOM_SERVER"), help="API URL (env CLASSROOM_SERVER)")
    p.add_argument(
        "--credentials",
        default=os.environ.get("CLASSROOM_DEMO_CREDENTIALS"),
        help="JSON file {student id: credential} of the enrolled demo students, as written by "
        "`classroom-dashboard demo-class` (env CLASSROOM_DEMO_CREDENTIALS); never on a command line",
    )
    p.add_argument(
        "--students", type=int, default=int(os.environ.get("CLASSROOM_DEMO_STUDENTS", "0")), help="0 = all in the file"
    )
    p.add_argument(
        "--rate",
        type=float,
        default=float(os.environ.get("CLASSROOM_RATE") or DEFAULT_SAMPLE_RATE_HZ),
        help=f"samples/s each (env CLASSROOM_RATE; default {DEFAULT_SAMPLE_RATE_HZ:g}, a new class's rate)",
    )
    p.add_argument("--duration", type=float, default=0.0, help="seconds to run; 0 = until Ctrl-C/SIGTERM (default)")
    p.add_argument("--detector", choices=["auto", "yunet-cv", "haar", "yunet"], default="auto")
    p.add_argument("--fast", action="store_true", help="no face detection: crop where the face was placed")
    p.add_argument("--sample", default=None, help=f"FER2013 CSV(.gz) (env {SAMPLE_ENV}; default: ./{DEFAULT_SAMPLE})")
    p.add_argument("--outbox-dir", default=None, help="where the students' outboxes live (default: a temp dir)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--status-every", type=float, default=10.0, help="seconds between status lines (0: none)")
    return p


def main(argv: list[str] | None = None) -> int:
    import logging
    import signal
    import sys
    import tempfile
    import threading
    import time

    from classroom_capture.agent import Agent
    from classroom_capture.outbox import Outbox
    from classroom_capture.sender import AuthRejected, Sender, SenderFatal

    args = _demo_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("classroom-demo: %(message)s"))
    root = logging.getLogger("classroom_capture")
    root.handlers[:], root.propagate = [handler], False
    root.setLevel(logging.INFO)

    def fail(code: int, message: str) -> int:
        sys.stderr.write(f"classroom-demo: error: {message}\n")
        return code

    if not args.server or not args.credentials:
        return fail(2, "--server and --credentials (or CLASSROOM_SERVER / CLASSROOM_DEMO_CREDENTIALS) are required")
    try:
        students = load_credentials(args.credentials)
    except (OSError, ValueError) as exc:
        return fail(2, f"--credentials {args.credentials}: {exc}")
    if args.students:
        students = students[: args.students]
    if args.students < 0 or not 0 < args.rate <= 30:
        return fail(2, "--students must be >= 0 and --rate in (0, 30]")
    try:
        faces = load_fer_faces(args.sample)
    except (OSError, ValueError) as exc:
        return fail(4, str(exc))
    outbox_dir = Path(args.outbox_dir or tempfile.mkdtemp(prefix="classroom-demo-"))
    outbox_dir.mkdir(parents=True, exist_ok=True)

    agents: list[Agent] = []
    for i, (student, credential) in enumerate(students):
        rng = np.random.default_rng([args.seed, i])
        maker = FrameMaker(
            faces,
            seed=int(rng.integers(2**31)),
            no_face_ratio=float(rng.uniform(0.05, 0.3)),
            hold=max(1, round(args.rate * rng.uniform(2, 8))),  # an expression lasts a few seconds
            fixed_scene=True,
        )
        source = SyntheticSource(maker, student)
        detector = KnownBoxDetector(source) if args.fast else make_detector(args.detector)
        outbox = Outbox(outbox_dir / f"{student}.sqlite3")
        sender = Sender(args.server, credential, outbox)
        agents.append(Agent(source, detector, outbox, sender, student, rate=args.rate, stop_grace=5.0))

    def stop_all(*_):
        for agent in agents:
            agent.stop()

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    errors: list[BaseException] = []

    def run(agent: Agent, delay: float) -> None:
        if agent.stop_event.wait(delay):  # staggered starts: students are not in lockstep
            return
        try:
            agent.run()
        except (SenderFatal, OSError) as exc:  # OSError: SourceError is not possible here
            errors.append(exc)
            stop_all()

    threads = [
        threading.Thread(target=run, args=(agent, i / len(agents) / args.rate), name=agent.student_id, daemon=True)
        for i, agent in enumerate(agents)
    ]
    for thread in threads:
        thread.start()
    root.info(
        "%d simulated students at %g/s -> %s (%s)",
        len(agents),
        args.rate,
        args.server,
        "fast: no detection" if args.fast else agents[0].detector.name,
    )
    started = time.monotonic()
    last_status = started
    while any(t.is_alive() for t in threads):
        time.sleep(0.2)
        now = time.monotonic()
        if args.duration and now - started >= args.duration:
            stop_all()
        if args.status_every and now - last_status >= args.status_every:
            last_status = now
            root.info("%s", _status(agents))
    for thread in threads:
        thread.join()
    root.info("%s", _status(agents))
    for exc in errors:
        return fail(3 if isinstance(exc, AuthRejected) else 5, str(exc))
    return 0


def _status(agents) -> str:
    captured = sum(a.captured for a in agents)
    delivered = sum(a.sender.stats.accepted for a in agents)
    pending = sum(len(a.outbox) for a in agents)
    return f"{len(agents)} students: captured {captured}, delivered {delivered}, pending {pending}"
