"""What the student controls: consent before anything is captured, and pause/resume at any time.

Pause is one mechanism that works the same on Linux, macOS and Windows: a pause FILE. While it
exists the agent captures and sends nothing (the camera is released, its light goes off).
Ways to create/remove it:

- `classroom-capture --pause` / `classroom-capture --resume` (from any terminal);
- typing `p` + Enter in the agent's terminal toggles it (`q` + Enter quits);
- on Linux/macOS, `kill -USR1 <pid>` toggles it;
- or simply create/delete the file (its path is printed at start; default: PAUSED in the data dir).

The pause outlives a restart on purpose: a student who paused stays paused until they resume.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO


class PauseControl:
    def __init__(self, path: Path):
        self.path = Path(path)

    def is_paused(self) -> bool:
        return self.path.exists()

    def pause(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("Remove this file (or run `classroom-capture --resume`) to resume capture.\n")

    def resume(self) -> None:
        self.path.unlink(missing_ok=True)

    def toggle(self) -> bool:
        """Flip the state; returns True when now paused."""
        if self.is_paused():
            self.resume()
            return False
        self.pause()
        return True

    def install_signal(self) -> bool:
        """SIGUSR1 toggles pause (POSIX only); False where the platform has no SIGUSR1."""
        sigusr1 = getattr(signal, "SIGUSR1", None)
        if sigusr1 is None or threading.current_thread() is not threading.main_thread():
            return False
        signal.signal(sigusr1, lambda *_: self.toggle())
        return True


def start_key_listener(pause: PauseControl, quit_: Callable[[], None], stream: TextIO | None = None) -> bool:
    """In an interactive terminal: `p` + Enter toggles pause, `r` resumes, `q` quits. False if not a terminal."""
    stream = stream or sys.stdin
    if not (stream and stream.isatty()):
        return False

    def listen() -> None:
        for line in stream:
            command = line.strip().lower()
            if command in ("p", "pause"):
                pause.toggle()  # the agent logs "paused" / "resumed" when it notices
            elif command in ("r", "resume"):
                pause.resume()
            elif command in ("q", "quit", "exit"):
                quit_()
                return

    threading.Thread(target=listen, name="keys", daemon=True).start()
    return True


def consent_text(server: str, student_id: str, rate: float, detector: str, outbox: Path, pause_file: Path) -> str:
    from classroom_capture.detector import DETECTORS, Detector

    landmarks = DETECTORS.get(detector, Detector).gives_landmarks
    pose = " and a rough head angle (yaw/pitch, in degrees)" if landmarks else ""
    return f"""\
Classroom capture: what this program does with your webcam
  * It looks at your webcam {rate:g} time(s) per second, ON THIS LAPTOP.
  * Each time, it sends to {server} as {student_id}:
      - a 48x48-pixel grayscale picture of the largest face it sees (yours), and nothing else of the image;
      - how many faces it saw{pose};
      - the time of the picture.
  * It NEVER sends the camera image itself, video, audio, or anything else from this laptop.
  * Until they are sent, these small pictures wait in {outbox} (deleted once delivered).
  * The server estimates an emotion from each picture for your teacher's class dashboard.
  * Pause at any time: type p + Enter here, or run `classroom-capture --pause`
    (or create the file {pause_file}). Resume the same way. Quit: q + Enter or Ctrl-C.
"""


def ask_consent(text: str, stdin: TextIO | None = None, stdout: TextIO | None = None) -> bool:
    """Show `text` and ask; only an explicit yes counts. False without a terminal to ask on."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stderr
    if not (stdin and stdin.isatty()):
        return False
    stdout.write(text + "\nDo you agree? Type yes to start, anything else to quit: ")
    stdout.flush()
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes")
