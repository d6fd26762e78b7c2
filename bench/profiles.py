"""Profilers attached to the service processes a bench starts, and their CPU from /proc.

With py-spy installed each service gets `py-spy record` (speedscope output); without it the
services are started with a cProfile hook (bench/_cprofile/sitecustomize.py). Either way the
files land in bench/results/profiles/<bench>/<service>.<pid>.*.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PROFILES_DIR = Path(__file__).resolve().parent / "results" / "profiles"
CPROFILE_HOOK = Path(__file__).resolve().parent / "_cprofile"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU a process has used so far, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name in parentheses may hold spaces; the fields after it are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class CpuWindow:
    """CPU used by each named process between `start` and `stop`, summed over windows."""

    pids: dict[str, int]
    used_s: dict[str, float] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._started = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> None:
        for name, pid in self.pids.items():
            used = cpu_seconds(pid) - self._started[name]
            self.used_s[name] = self.used_s.get(name, 0.0) + used

    def per_operation_ms(self, operations: int) -> dict[str, float]:
        """Milliseconds of CPU per operation for each process, and their total."""
        per = {name: round(1000 * s / operations, 3) for name, s in self.used_s.items()}
        return {**per, "total": round(sum(per.values()), 3)}


class Profiler:
    """Profiles every service process of one bench run when enabled; a no-op otherwise."""

    def __init__(self, bench: str, *, enabled: bool) -> None:
        self.enabled = enabled
        self.directory = PROFILES_DIR / bench
        self.use_py_spy = enabled and shutil.which("py-spy") is not None
        self._recorders: list[subprocess.Popen[bytes]] = []
        self._services: dict[int, str] = {}
        if enabled:
            self.directory.mkdir(parents=True, exist_ok=True)
            os.environ.update(self.env())  # children spawned by multiprocessing inherit it

    def env(self) -> dict[str, str]:
        """Variables a service process needs for the cProfile fallback (none with py-spy)."""
        if not self.enabled or self.use_py_spy:
            return {}
        path = os.pathsep.join(filter(None, [str(CPROFILE_HOOK), os.environ.get("PYTHONPATH")]))
        return {"REFEX_BENCH_CPROFILE_DIR": str(self.directory), "PYTHONPATH": path}

    def attach(self, service: str, pid: int) -> None:
        """Start recording `service` (process `pid`)."""
        if not self.enabled:
            return
        self._services[pid] = service
        if not self.use_py_spy:
            return
        output = self.directory / f"{service}.{pid}.speedscope.json"
        self._recorders.append(
            subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "200",
                    "--format",
                    "speedscope",
                    "--output",
                    str(output),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def finish(self) -> list[Path]:
        """Stop the recorders (after the services stopped, for cProfile); list the files."""
        if not self.enabled:
            return []
        for recorder in self._recorders:
            if recorder.poll() is None:
                recorder.send_signal(signal.SIGINT)
        for recorder in self._recorders:
            try:
                recorder.wait(30)
            except subprocess.TimeoutExpired:
                recorder.kill()
        self._name_cprofile_dumps()
        return sorted(self.directory.glob("*.*.*"))

    def _name_cprofile_dumps(self) -> None:
        for dump in self.directory.glob("*.prof"):
            service = self._services.get(int(dump.stem)) if dump.stem.isdigit() else None
            if service is None:
                if dump.stem.isdigit():
                    dump.unlink()  # a helper interpreter (resource tracker, ping), not a service
                continue
            dump.rename(self.directory / f"{service}.{dump.stem}.prof")
