"""Open a page in headless Debian chromium and watch it over the DevTools protocol.

What a person would see: the rendered DOM, console errors, every request the page makes,
and a screenshot. Chromium runs with no network features (no background fetches, no
component updates, no sync) and a throwaway profile; the test then counts requests that
leave the file.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--hide-scrollbars", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]


def chromium() -> str:
    """$TINYREG_CHROMIUM, else Debian's chromium, else a chromium-browser or google-chrome on PATH."""
    import os

    exe = os.environ.get("TINYREG_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") \
        or shutil.which("google-chrome")
    if exe is None:
        pytest.fail("chromium is not installed (make install installs Debian's chromium for the report's browser test)")
    return exe


@dataclass
class PageLoad:
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    dom: dict[str, Any] = field(default_factory=dict)
    screenshot: Path | None = None


class _Session:
    def __init__(self, ws_url: str) -> None:
        import websocket  # websocket-client, the dev extra

        self.ws = websocket.create_connection(ws_url, timeout=20, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 20) -> None:
        end = time.monotonic() + timeout
        if any(e.get("method") == method for e in self.events):
            return
        while time.monotonic() < end:
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == method:
                return
        raise TimeoutError(method)

    def drain(self, seconds: float) -> None:
        self.ws.settimeout(seconds)
        try:
            while True:
                self.events.append(json.loads(self.ws.recv()))
        except Exception:  # the timeout ends the drain
            pass
        self.ws.settimeout(20)


def open_page(page: Path, tmp: Path, script: str, width: int = 1200, height: int = 2400) -> PageLoad:
    """Load ``page`` (a file) in headless chromium; ``script`` (an expression returning JSON-able data) reads the DOM."""
    import tempfile

    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp))
    proc = subprocess.Popen([chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        end = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > end or proc.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.loads(r.read())
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        s = _Session(ws_url)
        for domain in ("Page", "Runtime", "Log", "Network"):
            s.call(f"{domain}.enable")
        s.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        s.call("Page.navigate", url=page.resolve().as_uri())
        s.wait_for("Page.loadEventFired")
        s.drain(0.5)
        load = PageLoad()
        res = s.call("Runtime.evaluate", expression=script, returnByValue=True)
        load.dom = res.get("result", {}).get("value") or {}
        shot = s.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        load.screenshot = tmp / f"{page.stem}.screenshot.png"
        load.screenshot.write_bytes(base64.b64decode(shot["data"]))
        s.drain(0.2)
        for e in s.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Network.requestWillBeSent":
                load.requests.append(str(p.get("request", {}).get("url")))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                load.console_errors.append(json.dumps(p.get("args"))[:500])
            elif m == "Runtime.exceptionThrown":
                load.console_errors.append(json.dumps(p.get("exceptionDetails"))[:500])
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                load.console_errors.append(str(p["entry"].get("text"))[:500])
        s.ws.close()
        return load
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
