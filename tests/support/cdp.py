"""Debian's Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe), without
Playwright: a page Playwright drives stayed 'visible' behind another tab of its window (headful,
under Xvfb), so it is never throttled as a student's hidden tab is (Playwright turns focus emulation
on for every page, the likely cause). A bare DevTools session (Runtime.evaluate only) leaves the page
hidden."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

from tests.support.procs import CHROMIUM


class PipeChromium:
    """Chromium with its DevTools protocol on fds 3 (commands in) and 4 (replies out)."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str]):
        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()

        def wire():
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(
            [CHROMIUM, "--remote-debugging-pipe", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=wire,
            pass_fds=(3, 4),
            start_new_session=True,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._next_id, self._replies, self._lock = 0, {}, threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._from_browser, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        self._replies[message["id"]] = message
                        self._lock.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30):
        """One DevTools command; its result (RuntimeError on a protocol error)."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        with self._lock:
            if not self._lock.wait_for(lambda: ident in self._replies, timeout):
                raise TimeoutError(f"no reply to {method} in {timeout}s")
            reply = self._replies.pop(ident)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def page_target(self, url_prefix: str) -> str | None:
        """The target id of the page whose address starts with `url_prefix`, or None."""
        pages = self.send("Target.getTargets")["targetInfos"]
        found = [t["targetId"] for t in pages if t["type"] == "page" and t["url"].startswith(url_prefix)]
        return found[0] if found else None

    def attach(self, target_id: str) -> str:
        """A DevTools session on the target (a page): Runtime.evaluate in it with evaluate()."""
        return self.send("Target.attachToTarget", {"targetId": target_id, "flatten": True})["sessionId"]

    def evaluate(self, session: str, expression: str):
        """`expression`'s value in the page (awaited when a promise)."""
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        result = self.send("Runtime.evaluate", params, session=session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
            self.popen.wait(10)
        except (TimeoutError, RuntimeError, OSError, subprocess.TimeoutExpired):
            os.killpg(self.popen.pid, 9)
            self.popen.wait(10)
        os.close(self._to_browser)
        self._log.close()
