"""Helpers for the room tests and benchmark: the model server in a process session of its own, always stopped."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from tests.browser import free_port

ROOT = Path(__file__).resolve().parents[1]
ROOM_CODE = "kl-room-test"


def session_processes(sid: int) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid:
                found.append(p)
        except (ProcessLookupError, PermissionError, psutil.Error):
            pass
    return found


class RoomServer:
    """`python -m kandinsky_lab.serve` listening beyond loopback (0.0.0.0; the tests reach it on 127.0.0.1)."""

    def __init__(self, source: str = "tests.room_kits:nano_that_runs_out_at_96", *args: str, ip: str = "0.0.0.0", token: str = ROOM_CODE, timeout_s: float = 180):
        self.token = token
        for attempt in range(3):  # a free port can be taken before the server binds it (Ray's own processes pick ports too)
            if self._start(source, args, ip, timeout_s):
                return
            taken = any("Failed to bind" in line or "address already in use" in line.lower() for line in self.output)
            self.stop()
            if not taken or attempt == 2:
                break
        raise RuntimeError("the room's server did not start:\n" + "".join(self.output[-40:]))

    def _start(self, source: str, args, ip: str, timeout_s: float) -> bool:
        """Start the server on a fresh port; True once it says it is serving."""
        self.port = free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "kandinsky_lab.serve", "--source", source, "--ip", ip, "--port", str(self.port), "--token", self.token, "--cpus", "2", *args]
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "RAY_USAGE_STATS_ENABLED": "0"}
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.sid = self.proc.pid  # start_new_session: the server leads a session; Ray's processes stay in it
        self.output: list[str] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.proc.stdout.readline()
            if not text and self.proc.poll() is not None:
                break
            self.output.append(text)
            if text.startswith("serving at"):
                threading.Thread(target=self._drain, daemon=True).start()  # a full pipe would block the server
                return True
        return False

    def _drain(self) -> None:
        for text in self.proc.stdout:
            self.output.append(text)

    def stop(self, timeout_s: float = 60) -> list[str]:
        """SIGTERM, as Ctrl-C or a service manager would; returns what was still running after it (then killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        while session_processes(self.sid) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = session_processes(self.sid)
        names = []
        for p in left:
            try:
                names.append(f"{p.pid} {p.name()}")
                p.kill()
            except psutil.Error:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        return names
