"""A small Chrome DevTools Protocol client for browser tests: Debian's headless Chromium, network off.

:class:`Browser` starts ``chromium --headless`` with a DevTools port on the loopback interface and
every network path closed (a dead proxy, every host name unresolvable, and DevTools' offline
emulation), opens one page and records what a person would notice: resources that failed to load,
uncaught JavaScript exceptions, console errors and the browser log's errors. Only loopback traffic
is made (DevTools' HTTP list and its websocket).
"""
from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field


@dataclass
class PageReport:
    url: str
    failed_loads: list = field(default_factory=list)   # (url, error text)
    js_errors: list = field(default_factory=list)      # exception / console / log error texts
    screenshot: bytes = b""

    @property
    def problems(self) -> list[str]:
        return [f"failed load {u}: {e}" for u, e in self.failed_loads] + [f"JS error: {e}" for e in self.js_errors]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """Headless Chromium driven over the DevTools protocol (use as a context manager)."""

    def __init__(self, width: int = 1200, height: int = 800, timeout: float = 60.0):
        self.width, self.height, self.timeout = width, height, timeout
        self._profile = tempfile.mkdtemp(prefix="ihs-chromium-")
        exe = chromium_path()
        if exe is None:
            raise RuntimeError("chromium not found; `make test` installs it (scripts/install-chromium.sh)")
        args = [exe, "--headless=new", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                f"--user-data-dir={self._profile}", f"--window-size={width},{height}", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-features=MediaRouter,OptimizationHints,Translate",
                # network off: nothing resolves, and anything that tried would go to a closed local port
                "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        self._ws = None
        self._next_id = 0
        # its own process group, so closing ends the renderer and helper processes too
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      start_new_session=True)
        # drain stderr for the browser's whole life (a full pipe would block it); keep the last lines
        self._stderr: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self._port = self._devtools_port()

    # ------------------------------------------------------------------ process and connection
    def _drain(self):
        for line in self._proc.stderr:
            self._stderr.put(line)
        self._stderr.put(None)

    def _devtools_port(self) -> int:
        deadline = time.monotonic() + self.timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self._stderr.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            if line is None:  # chromium exited
                break
            seen.append(line)
            match = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if match:
                return int(match[1])
        self.close()
        raise RuntimeError("chromium did not open its DevTools port:\n" + "".join(seen[-20:]))

    def _connect_page(self):
        import websocket

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
        targets = json.loads(opener.open(f"http://127.0.0.1:{self._port}/json/list", timeout=10).read())
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=self.timeout,
                                               suppress_origin=True)

    def close(self):
        if self._ws is not None:
            self._ws.close()
            self._ws = None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self._proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self._proc.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + 10  # helpers (renderer, GPU, zygote) leave a moment after the browser
        while time.monotonic() < deadline:
            try:
                os.killpg(self._proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reader.join(timeout=10)
        self._proc.stderr.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ protocol
    def _send(self, method: str, params: dict | None = None) -> int:
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params or {}}))
        return self._next_id

    def _pump(self, until, deadline: float):
        """Receive messages, recording events, until ``until(message)`` is true."""
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from chromium in time")
            message = json.loads(self._ws.recv())
            if "method" in message:
                self._record(message["method"], message.get("params", {}))
            if until(message):
                return message

    def call(self, method: str, params: dict | None = None) -> dict:
        call_id = self._send(method, params)
        reply = self._pump(lambda m: m.get("id") == call_id, time.monotonic() + self.timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _record(self, method: str, p: dict):
        report = self._report
        if report is None:
            return
        if method == "Network.requestWillBeSent":
            self._urls[p["requestId"]] = p["request"]["url"]
        elif method == "Network.loadingFailed":
            report.failed_loads.append((self._urls.get(p["requestId"], "?"), p.get("errorText", "")))
        elif method == "Network.responseReceived" and p["response"].get("status", 200) >= 400:
            report.failed_loads.append((p["response"]["url"], f"HTTP {p['response']['status']}"))
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            report.js_errors.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            report.js_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            report.js_errors.append(f"{p['entry'].get('source')}: {p['entry'].get('text')} {p['entry'].get('url', '')}")

    # ------------------------------------------------------------------ one page
    _report: PageReport | None = None
    _urls: dict = {}

    def open(self, url: str, ready: str | None = None, settle_s: float = 0.5) -> PageReport:
        """Load ``url`` with the network off; wait for ``load`` (and the JS expression ``ready``)."""
        if self._ws is None:
            self._connect_page()
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable")
            self.call("Network.emulateNetworkConditions",
                      {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        self._report, self._urls = PageReport(url), {}
        self._send("Page.navigate", {"url": url})
        self._pump(lambda m: m.get("method") == "Page.loadEventFired", time.monotonic() + self.timeout)
        if ready:
            deadline = time.monotonic() + self.timeout
            while not self.evaluate(f"Boolean({ready})"):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url}: {ready} never became true")
                time.sleep(0.1)
        end = time.monotonic() + settle_s
        while time.monotonic() < end:  # late events (image decode errors, async scripts)
            self.evaluate("1")
            time.sleep(0.05)
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        self._report.screenshot = base64.b64decode(shot["data"])
        return self._report
