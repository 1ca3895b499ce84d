"""Debian's Firefox ESR, headless, driven over Marionette (its own remote protocol, built in) with
Mozilla's Python client `marionette-driver`: no geckodriver, no downloaded browser build (Playwright's
Firefox, Selenium Manager and npm's geckodriver all download at run time; the tests' network has only
PyPI, Debian and npm). The /join page's Firefox tests use it; Chromium's go through Playwright."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import warnings
from pathlib import Path

import pytest

from tests.support.procs import Proc, free_port, wait_until

#: Debian's Firefox ESR (apt-get install -y firefox-esr; scripts/test.sh installs it).
FIREFOX = os.environ.get("CLASSROOM_FIREFOX", "/usr/bin/firefox-esr")

#: CI must run the Firefox tests (scripts/test.sh installs the browser): a missing Firefox fails there.
IN_CI = os.environ.get("CI", "").lower() == "true"

needs_firefox = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(FIREFOX).exists() and not IN_CI,
        reason=f"needs Debian's Firefox ESR at {FIREFOX}: apt-get install -y firefox-esr (never skipped when CI=true)",
    ),
]

#: Preferences of the test profile: Firefox's fake camera (a moving test pattern; it cannot play a
#: file) granted without asking, and none of Firefox's own background connections (closed network).
PREFS = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.captive-portal-service.enabled": False,
    "extensions.update.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "services.settings.server": "data:,#remote-settings-off",
}

#: Run in the page's content process with system access (sandbox "system"): every error and CSP
#: report Firefox logged for the current page (its console service: script errors, CSP violations,
#: failed loads) and every console.error() call of the page (the console API's store), by the page's
#: window id: what its web console shows red. (The parent process never sees a page's messages.)
CONSOLE_ERRORS = """
const page = window.windowGlobalChild.innerWindowId;
const out = [];
for (const m of Services.console.getMessageArray() || []) {
  if (!(m instanceof Ci.nsIScriptError) || m.innerWindowID !== page) continue;
  const csp = /CSP|Content[- ]Security/i.test(m.category + ' ' + m.errorMessage);
  if (csp || !(m.flags & (Ci.nsIScriptError.warningFlag | Ci.nsIScriptError.infoFlag))) {
    out.push(`${m.category}: ${m.errorMessage} (${m.sourceName}:${m.lineNumber})`);
  }
}
const storage = Cc['@mozilla.org/consoleAPI-storage;1'].getService(Ci.nsIConsoleAPIStorage);
for (const e of storage.getEvents(String(page))) {
  if (e.level === 'error') out.push(`console.error: ${JSON.stringify(e.arguments)}`);
}
return out;
"""


def _marionette_class():
    """marionette_driver's client, imported without its dependencies' import-time DeprecationWarnings
    (mozinfo calls distro.linux_distribution(), mozrunner imports telnetlib, gone in Python 3.13):
    third-party, and the test run turns warnings into errors."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "distro.linux_distribution", DeprecationWarning)
        warnings.filterwarnings("ignore", "'telnetlib' is deprecated", DeprecationWarning)
        from marionette_driver.marionette import Marionette
    return Marionette


class Firefox:
    """A headless Firefox ESR with a fresh profile, one Marionette session; stop() ends both."""

    def __init__(self, workdir: Path, prefs: dict | None = None):
        if not Path(FIREFOX).exists():  # only under CI=true (needs_firefox skips elsewhere): a failure
            raise AssertionError(f"no Firefox at {FIREFOX}: apt-get install -y firefox-esr (scripts/test.sh does)")
        self.port = free_port()
        profile = Path(tempfile.mkdtemp(prefix="firefox-profile-", dir=workdir))
        prefs = {**PREFS, **(prefs or {}), "marionette.port": self.port}
        user_js = "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())
        (profile / "user.js").write_text(user_js)
        # System access: console_errors() reads Firefox's own console stores (a system sandbox).
        args = [FIREFOX, "--headless", "--marionette", "-remote-allow-system-access", "--no-remote"]
        args += ["--profile", str(profile)]
        # Its own process group (Proc): Firefox restarts itself once on a new profile, and stop() must
        # end the restarted browser and its content processes too.
        self.client = None
        self.proc = Proc(args, workdir / f"firefox-{self.port}.log", env={"MOZ_CRASHREPORTER_DISABLE": "1"})
        try:
            # Our own probe first: marionette_driver's retry loop leaks a socket per refused attempt
            # (a ResourceWarning, an error in this test run); by now its first attempt connects.
            # (Not the first process's exit: on a new profile Firefox may restart itself in its group.)
            try:
                wait_until(self._port_open, timeout=60, interval=0.2, what="Firefox's Marionette port")
            except AssertionError as error:
                raise AssertionError(f"{error}; Firefox's output:\n{self.proc.output()}") from None
            self.client = _marionette_class()(host="127.0.0.1", port=self.port)
            self.client.start_session(timeout=60)
        except BaseException:
            self.stop()
            raise
        self.version = self.client.session_capabilities["browserVersion"]

    def _port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def run(self, expression: str, *args, timeout_s: float = 60):
        """The value of a JS `expression` (awaited if a promise) in the current page's own scope, where
        `args` are arguments[0...]: as Playwright's page.evaluate()."""
        script = (
            "const done = arguments[arguments.length - 1];"
            f"Promise.resolve().then(() => ({expression})).then(done, e => done({{thrown: String(e)}}));"
        )
        value = self.client.execute_async_script(
            script, script_args=args, sandbox=None, script_timeout=timeout_s * 1000
        )
        if isinstance(value, dict) and set(value) == {"thrown"}:
            raise AssertionError(f"the page threw: {value['thrown']}")
        return value

    def wait_for(self, expression: str, timeout: float = 60, what: str | None = None):
        """Wait until a JS expression in the page is truthy."""
        wait_until(lambda: self.run(expression), timeout=timeout, interval=0.3, what=what or expression)

    def console_errors(self) -> list[str]:
        """Errors, CSP violations and console.error() calls of the current page since it loaded."""
        return self.client.execute_script(CONSOLE_ERRORS, sandbox="system")

    def stop(self) -> None:
        try:
            if self.client is not None and self.client.session is not None:
                self.client.delete_session()
        except Exception:  # noqa: BLE001 - the browser may already be gone; the process group goes next
            pass
        self.proc.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
