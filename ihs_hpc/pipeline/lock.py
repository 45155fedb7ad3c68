"""One lock per run directory, safe on the shared filesystems clusters use (Lustre, GPFS, NFS).

The lock is a directory, ``RUN/.ihs-lock``, made with ``mkdir`` — atomic on every POSIX filesystem,
NFS included, where ``flock``/``fcntl`` locks may be unsupported or local to one client. Inside it,
``owner.json`` names the holder (PID, host, start time, a random token) and ``heartbeat`` has its
modification time refreshed every ``heartbeat_s`` seconds by a daemon thread.

A second process finding the lock raises :class:`~ihs_hpc.errors.RunLockedError` (exit code 4) naming
the holder, unless the lock is stale: its PID is dead on this host (or reused by another process), or,
from another host, its heartbeat is older than ``stale_after_s``. A stale lock is taken over with a
message; the takeover renames the old lock directory first, so of two processes taking over at once
only one wins.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import threading
import time
from pathlib import Path

from ..errors import RunLockedError

LOCK_DIR = ".ihs-lock"


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux: field 22 of /proc/PID/stat); None where unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    now = _process_start(pid)
    return started is None or now is None or now == started


class RunLock:
    """Hold ``RUN/.ihs-lock`` while working on a run directory (a context manager).

    Parameters
    ----------
    run_dir : path
        The run directory (must exist).
    heartbeat_s : float, optional
        Interval of heartbeat refreshes (default: ``ihs.lock.heartbeat_s``, 10 s).
    stale_after_s : float, optional
        Age of the heartbeat after which another host's lock counts as abandoned (default:
        ``ihs.lock.stale_after_s``, 120 s).
    echo : callable
        Where a takeover is reported.
    """

    def __init__(self, run_dir, *, heartbeat_s: float | None = None, stale_after_s: float | None = None, echo=print):
        import dask.config

        from .. import config as _config  # noqa: F401  (registers the defaults)

        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_DIR
        self.heartbeat_s = float(heartbeat_s if heartbeat_s is not None else dask.config.get("ihs.lock.heartbeat_s"))
        self.stale_after_s = float(stale_after_s if stale_after_s is not None
                                   else dask.config.get("ihs.lock.stale_after_s"))
        self.echo = echo
        self.token = secrets.token_hex(8)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------------------- holder
    def holder(self) -> dict | None:
        """The current holder's record (None when unlocked or while a holder is still writing it)."""
        try:
            return json.loads((self.path / "owner.json").read_text())
        except (OSError, ValueError):
            return None

    def _heartbeat_age(self) -> float:
        for name in ("heartbeat", "owner.json", ""):
            try:
                return time.time() - (self.path / name).stat().st_mtime
            except OSError:
                continue
        return 0.0

    def _stale_reason(self, holder: dict | None) -> str | None:
        age = self._heartbeat_age()
        if holder is None:
            # a holder between mkdir and writing owner.json, or one that died there
            return f"no owner record and no heartbeat for {age:.0f} s" if age > self.stale_after_s else None
        if holder.get("host") == socket.gethostname():
            if not _alive(int(holder["pid"]), holder.get("process_start")):
                return f"process {holder['pid']} on {holder['host']} is gone"
            return None
        if age > self.stale_after_s:
            return f"no heartbeat from {holder.get('host')} for {age:.0f} s (limit {self.stale_after_s:.0f} s)"
        return None

    @staticmethod
    def describe(holder: dict | None) -> str:
        if not holder:
            return "a process that is still starting"
        return (f"PID {holder.get('pid')} on host {holder.get('host')} since {holder.get('started')}"
                + (f" ({holder['command']})" if holder.get("command") else ""))

    # ----------------------------------------------------------------------------------------- acquire
    def acquire(self) -> "RunLock":
        for _ in range(5):
            try:
                os.mkdir(self.path)
            except FileExistsError:
                holder = self.holder()
                deadline = time.monotonic() + 1.0
                while holder is None and time.monotonic() < deadline and self.path.exists():
                    time.sleep(0.02)  # a holder between its mkdir and writing owner.json
                    holder = self.holder()
                reason = self._stale_reason(holder)
                if reason is None:
                    raise RunLockedError(
                        f"{self.run_dir} is in use by {self.describe(holder)} (lock {self.path}). Wait for it to "
                        f"finish; if that process no longer exists on a host this one cannot see, remove "
                        f"{self.path}.", holder) from None
                stale = self.path.with_name(f"{LOCK_DIR}.stale-{os.getpid()}-{self.token}")
                try:
                    os.rename(self.path, stale)  # only one taker wins the rename
                except OSError:
                    continue
                shutil.rmtree(stale, ignore_errors=True)
                self.echo(f"  took over a stale lock of {self.run_dir}: {reason} (was {self.describe(holder)})")
                continue
            self._write_owner()
            self._thread = threading.Thread(target=self._beat, name="ihs-lock-heartbeat", daemon=True)
            self._thread.start()
            return self
        raise RunLockedError(f"{self.run_dir}: could not take the lock {self.path} after several tries")

    def _write_owner(self) -> None:
        import sys

        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "process_start": _process_start(os.getpid()), "token": self.token,
                  "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200]}
        tmp = self.path / f".owner.{self.token}.tmp"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self.path / "owner.json")
        (self.path / "heartbeat").touch()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                os.utime(self.path / "heartbeat")
            except OSError:
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        holder = self.holder()
        if holder is not None and holder.get("token") == self.token:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
