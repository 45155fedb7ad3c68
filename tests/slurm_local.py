"""A real single-node Slurm on localhost for tests: start/stop through slurm/start.sh and slurm/stop.sh,
submit jobs, wait for them, read their logs and their accounting records (``sacct -c``).

Used by the session fixture ``local_slurm`` of ``conftest.py``; one Slurm serves the whole session.
"""
from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
FINISHED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                   "BOOT_FAIL", "DEADLINE"}


def _free_port_pair() -> int:
    """A port p with p and p+1 free on loopback (slurmctld, slurmd), so two Slurms never collide."""
    for _ in range(200):
        port = random.randint(20000, 40000)
        sockets = []
        try:
            for p in (port, port + 1):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free pair of ports for slurmctld/slurmd")


@dataclass
class JobRecord:
    """One line of ``sacct -c``: the job's id, name, final state, exit code, CPUs and node."""

    job_id: str
    name: str
    state: str
    exit_code: str
    cpus: int
    node: str
    start: str = ""
    end: str = ""


@dataclass
class LocalSlurm:
    """A Slurm whose configuration, state, logs and PID files live under ``root``."""

    root: Path
    cpus: int | None = None
    port: int | None = None
    env: dict = field(default_factory=dict)

    def __post_init__(self):
        self.root = Path(self.root)
        self.port = self.port or _free_port_pair()
        self.conf = self.root / "etc" / "slurm.conf"
        # Jobs inherit this environment (sbatch --export=ALL): the project's venv first on PATH, so
        # the Python in every job is the venv's; OpenMPI may run as root (tests run as root here).
        self.env = dict(os.environ, SLURM_CONF=str(self.conf), PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",
                        OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", **self.env)

    # ------------------------------------------------------------------------------ daemons
    def start(self, timeout: float = 120) -> None:
        env = dict(self.env, IHS_SLURM_PORT=str(self.port))
        if self.cpus:
            env["IHS_SLURM_CPUS"] = str(self.cpus)
        result = subprocess.run(["bash", str(REPO_ROOT / "slurm" / "start.sh"), str(self.root)], env=env,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"slurm/start.sh failed ({result.returncode}): {result.stderr[-3000:]}\n"
                               f"{self.daemon_logs()}")

    def stop(self, timeout: float = 120) -> None:
        subprocess.run(["bash", str(REPO_ROOT / "slurm" / "stop.sh"), str(self.root)], env=self.env,
                       capture_output=True, text=True, timeout=timeout, check=True)

    def daemon_pids(self) -> dict[str, int]:
        return {p.stem: int(p.read_text()) for p in (self.root / "run").glob("*.pid") if p.read_text().strip()}

    def daemon_logs(self, tail: int = 2000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-tail:]}"
                         for p in sorted((self.root / "log").glob("*.log")))

    # ------------------------------------------------------------------------------ commands
    def run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def sbatch(self, *args: str, env: dict | None = None) -> str:
        """Submit (``sbatch --parsable ARGS``) and return the job id."""
        result = subprocess.run(["sbatch", "--parsable", *map(str, args)], env=dict(self.env, **(env or {})),
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"sbatch {' '.join(map(str, args))} failed: {result.stderr}")
        return result.stdout.strip().split(";")[0]

    def queued(self) -> list[str]:
        """Ids of the jobs slurmctld still holds pending or running."""
        return self.run("squeue", "-h", "-o", "%i").stdout.split()

    def wait(self, job_id: str, timeout: float = 300, poll: float = 0.5) -> JobRecord:
        """Wait until the job has left the queue and return its accounting record."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.record(job_id)
            if record is not None and record.state.split()[0] in FINISHED_STATES and job_id not in self.queued():
                return record
            time.sleep(poll)
        raise TimeoutError(f"job {job_id} not finished after {timeout} s; queue: "
                           f"{self.run('squeue', check=False).stdout}")

    def records(self) -> list[JobRecord]:
        """Every finished job, from the jobcomp text file (``sacct -c``, there is no slurmdbd)."""
        out = self.run("sacct", "-c", "-n", "-P", "--format=JobID,JobName,State,ExitCode,NCPUS,NodeList,Start,End")
        records = []
        for line in out.stdout.splitlines():
            parts = line.split("|")
            if len(parts) >= 8:
                records.append(JobRecord(parts[0], parts[1], parts[2], parts[3], int(parts[4] or 0), parts[5],
                                         parts[6], parts[7]))
        return records

    def record(self, job_id: str) -> JobRecord | None:
        matches = [r for r in self.records() if r.job_id == str(job_id)]
        return matches[-1] if matches else None

    def scancel(self, job_id: str, *signal: str) -> None:
        """Cancel a job (``scancel ID``), or send it a signal (``scancel(ID, "--signal=KILL")``)."""
        self.run("scancel", *signal, str(job_id))

    def wait_for_log(self, path: Path, pattern: str, timeout: float = 300, poll: float = 0.2) -> re.Match:
        """Wait until a job's log shows a line matching ``pattern`` (e.g. a progress line at half of a
        stage, to interrupt the job there); return the match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.M)
        while time.monotonic() < deadline:
            if Path(path).exists():
                match = regex.search(Path(path).read_bytes().decode(errors="replace"))
                if match:
                    return match
            time.sleep(poll)
        raise TimeoutError(f"{path}: no line matching {pattern!r} after {timeout} s")

    @staticmethod
    def log(path: Path, timeout: float = 10) -> str:
        """A job's output file (it may appear a moment after the job ends)."""
        path = Path(path)
        deadline = time.monotonic() + timeout
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        return path.read_bytes().decode(errors="replace")  # not read_text: it would turn "\r" into "\n"
