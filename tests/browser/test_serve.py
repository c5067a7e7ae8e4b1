"""``loopscope serve`` in a real browser: headless Chromium (Debian's), driven through the
DevTools protocol: the page loads the dashboard, a key press reaches it, a screenshot is taken."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import os
import signal
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT / "traces" / "demo.jsonl"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Chromium's flags for a closed network (no background connections, no first-run work).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,800", "--remote-debugging-port=0"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Page:
    """One browser tab over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[str] = []  # the names of the events the browser sent so far

    async def call(self, method: str, **params: object) -> dict:
        ident = next(self.ids)
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json(timeout=30)
            if "method" in message:
                self.events.append(message["method"])
            if message.get("id") == ident:
                assert "error" not in message, message
                return message.get("result", {})

    async def loaded(self) -> None:
        """Wait for the page's load event."""
        while "Page.loadEventFired" not in self.events:
            message = await self.ws.receive_json(timeout=30)
            if "method" in message:
                self.events.append(message["method"])

    async def until(self, expression: str, timeout: float) -> None:
        """Wait until the page's ``expression`` is true: textual-serve marks its body
        ``-first-byte`` once the dashboard's process has drawn (a fresh venv compiles Textual
        on that first start, which on a loaded machine takes tens of seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            reply = await self.call("Runtime.evaluate", expression=expression)
            if reply["result"].get("value") is True:
                return
            assert time.monotonic() < deadline, f"the page never had {expression}"
            await asyncio.sleep(0.25)

    async def click(self, x: int, y: int) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            await self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                            clickCount=1)

    async def screenshot(self) -> bytes:
        return base64.b64decode((await self.call("Page.captureScreenshot", format="png"))["data"])

    async def key(self, key: str, code: str, vk: int, text: str = "", shift: bool = False) -> None:
        for kind in ("keyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, key=key, code=code,
                            windowsVirtualKeyCode=vk, modifiers=8 if shift else 0,
                            text=text if kind == "keyDown" else "")

    async def changed_from(self, before: bytes, timeout: float = 30.0) -> bytes:
        """The screen once it differs from ``before`` and stopped moving (``before`` if it
        never changes within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.screenshot() != before:
                return await self.settled()
            await asyncio.sleep(0.25)
        return before

    async def settled(self, timeout: float = 30.0) -> bytes:
        """A screenshot once two taken 0.5 s apart are the same (the screen stopped moving)."""
        deadline = time.monotonic() + timeout
        last = await self.screenshot()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            shot = await self.screenshot()
            if shot == last:
                return shot
            last = shot
        raise AssertionError("the page never stopped changing")


async def drive(url: str, profile: Path, shots: Path) -> dict[str, str]:
    browser = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip():
                break
            await asyncio.sleep(0.1)
        devtools = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{devtools}/json/list") as response:
                [tab] = [t for t in await response.json() if t["type"] == "page"]
            async with http.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.call("Page.enable")
                await page.call("Page.navigate", url=url)
                await page.loaded()
                splash = await page.screenshot()  # textual-serve's page before the app draws
                await page.until("document.body.classList.contains('-first-byte')", 180)
                await page.settled()
                await page.click(1000, 500)       # focus the terminal (the detail pane)
                await page.key(" ", "Space", 32, " ")      # pause the replay
                await asyncio.sleep(1)
                paused = await page.settled()
                await page.key("N", "KeyN", 78, "N", shift=True)  # back to the previous block
                home = await page.changed_from(paused, timeout=10)
                shots.write_bytes(home)
                (shots.parent / "paused.png").write_bytes(paused)
                digest = {name: hashlib.sha256(shot).hexdigest()
                          for name, shot in [("splash", splash), ("paused", paused), ("home", home)]}
                return digest
    finally:
        browser.terminate()
        browser.wait(10)


@pytest.mark.timeout(300)  # the first start in a fresh venv: see Page.until
def test_the_dashboard_in_a_browser_answers_keys(tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (.ci/run installs it)"
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "loopscope", "serve", str(TRACE),
                               "--port", str(port)], stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              start_new_session=True)
    try:
        banner = server.stderr.readline()
        assert f"is at http://127.0.0.1:{port}/" in banner
        shot = tmp_path / "dashboard.png"
        digest = asyncio.run(drive(f"http://127.0.0.1:{port}/", tmp_path / "profile", shot))
    finally:
        server.terminate()
        server.wait(10)
    time.sleep(1)
    left = subprocess.run(["pgrep", "-g", str(server.pid)], capture_output=True, text=True).stdout
    if left:
        os.killpg(server.pid, signal.SIGKILL)
    assert not left, "the dashboards the server ran outlived it"
    assert digest["paused"] != digest["splash"], "the dashboard never appeared"
    assert digest["home"] != digest["paused"], "the key press did not move the cursor"
    assert shot.stat().st_size > 10_000


def test_listening_beyond_this_machine_needs_a_flag() -> None:
    proc = subprocess.run([sys.executable, "-m", "loopscope", "serve", str(TRACE), "--host",
                           "0.0.0.0"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("loopscope: error: --host 0.0.0.0 would let other machines")


def fetch(url: str, timeout: float = 30.0) -> bytes:
    """GET ``url``, waiting for the server to listen (it says where before it binds)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read()
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_run_web_serves_the_live_dashboard_of_the_traced_app(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("from reactor import reactor\n"
                   "reactor.callLater(0.01, print, 'app running', flush=True)\n"
                   "reactor.run()\n")
    trace = tmp_path / "t.jsonl"
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "loopscope", "run", "--web", "--port",
                             str(port), "-o", str(trace), str(app)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, start_new_session=True)
    try:
        for line in proc.stderr:
            if f"is at http://127.0.0.1:{port}/" in line:
                break
        page = fetch(f"http://127.0.0.1:{port}/")
        assert b"textual" in page.lower()
        assert proc.stdout.readline().strip() == "app running"
    finally:
        proc.terminate()
        proc.wait(30)
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not left, "the traced app outlived run --web"
    from tracer.reader import read_trace
    header, events = read_trace(str(trace))
    kinds = {e["ev"] for e in events}
    assert "timer" in kinds and "end" in kinds  # the app was traced and its trace finished
