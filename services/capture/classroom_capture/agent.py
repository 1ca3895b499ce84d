"""The capture loop: sample -> detect -> crop -> outbox, with a sender thread draining the outbox.

Every observation is committed to the outbox the moment it exists, so a stop (SIGTERM, Ctrl-C, a
crash) can only lose a frame that was still being analysed: nothing captured is lost. On a stop the
sender gets a short grace period to deliver what is pending; whatever it cannot deliver stays in
the outbox for the next run.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass

from classroom_contract import Observation, encode_crop

from classroom_capture.camera import FrameSource
from classroom_capture.control import PauseControl
from classroom_capture.detector import Detector, FrameFacts, analyse
from classroom_capture.outbox import Outbox
from classroom_capture.sender import Sender

log = logging.getLogger(__name__)


def make_observation(facts: FrameFacts, captured_at: float) -> Observation:
    crop = encode_crop(facts.crop.tobytes()) if facts.face_count > 0 else None
    return Observation(
        observation_id=uuid.uuid4(),
        captured_at=captured_at,
        face_count=min(facts.face_count, 64),
        crop=crop,
        head_yaw=facts.head_yaw,
        head_pitch=facts.head_pitch,
    )


@dataclass
class RunResult:
    captured: int  # observations written to the outbox by this run
    finished: bool  # the source ran out (file/folder), as opposed to being stopped
    pending: int  # left in the outbox at exit (0 = everything delivered)
    dropped: int  # dropped by this run because the outbox was full


class Agent:
    def __init__(
        self,
        source: FrameSource,
        detector: Detector,
        outbox: Outbox,
        sender: Sender,
        student_id: str,  # a label for logs only: the server knows the student from the sender's credential
        rate: float = 2.0,
        pause: PauseControl | None = None,
        drain_timeout: float = 30.0,
        stop_grace: float = 2.0,
        send_interval: float = 1.0,
    ):
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.source, self.detector, self.outbox, self.sender = source, detector, outbox, sender
        self.student_id, self.rate, self.pause = student_id, rate, pause
        self.drain_timeout, self.stop_grace, self.send_interval = drain_timeout, stop_grace, send_interval
        self.stop_event = threading.Event()  # set by signals, `q`, or a fatal sender answer
        self.abort_event = threading.Event()  # second Ctrl-C: do not even wait for the grace period
        self.captured = 0
        self.dropped = 0

    def stop(self) -> None:
        if self.stop_event.is_set():
            self.abort_event.set()
        self.stop_event.set()

    def run(self) -> RunResult:
        """Capture until the source ends or `stop()`; raises SenderFatal (e.g. a 401) after saving everything."""
        sender_stop = threading.Event()
        wake = threading.Event()
        thread = threading.Thread(target=self._send_loop, args=(sender_stop, wake), name="sender", daemon=True)
        thread.start()
        finished = False
        try:
            finished = self._capture(wake)
        finally:
            self.source.close()
            sender_stop.set()
            wake.set()
            # One deadline for the whole exit: a request in flight to a hung server must not hold a
            # stop (SIGTERM) past its grace period. What is unanswered stays in the outbox and is
            # resent on the next run with the same ids (the server counts it as a duplicate).
            deadline = time.monotonic() + (self.drain_timeout if finished else self.stop_grace)
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self.sender.fatal is not None:
            raise self.sender.fatal
        if not self.abort_event.is_set() and not thread.is_alive():
            self.sender.drain(self.abort_event, deadline=deadline)
        return RunResult(self.captured, finished, self.sender.pending(), self.dropped)

    def _send_loop(self, sender_stop: threading.Event, wake: threading.Event) -> None:
        self.sender.run(sender_stop, wake, self.send_interval)
        if self.sender.fatal is not None:
            self.stop_event.set()

    def _capture(self, wake: threading.Event) -> bool:
        """True when the source ran out, False when stopped."""
        period = 1.0 / self.rate
        next_due = time.monotonic()
        paused = False
        while not self.stop_event.is_set():
            if self.pause is not None and self.pause.is_paused():
                if not paused:
                    paused = True
                    self.source.suspend()
                    log.info("paused: nothing is captured or sent (resume: classroom-capture --resume)")
                self.stop_event.wait(0.25)
                continue
            if paused:
                paused = False
                self.source.resume()
                log.info("resumed")
                next_due = time.monotonic()
            delay = next_due - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                break
            next_due = max(next_due + period, time.monotonic())  # late: skip, never burst
            frame = self.source.read()
            captured_at = time.time()
            if frame is None:
                return True
            observation = make_observation(analyse(frame, self.detector), captured_at)
            dropped = self.outbox.put(self.sender.owner, observation)
            self.captured += 1
            if dropped:
                self.dropped += dropped
                log.warning("outbox full (%d): dropped the %d oldest observation(s)", self.outbox.max_items, dropped)
            if self.captured == 1 or self.sender.pending() >= self.sender.batch_size:
                wake.set()  # the first one at once: a wrong code or URL shows up immediately
        return False
