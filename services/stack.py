"""Run every service as a child process: `refex up`, system tests and benchmarks."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol

from services.registry import DEFAULT_PORTS, SERVICE_NAMES

PR_SET_PDEATHSIG = 1
_IMPORTED_AT = time.monotonic()

PREFIX_WIDTH = max(len(name) for name in SERVICE_NAMES)
_ECHO_LOCK = threading.Lock()


def relay_lines(name: str, source: IO[bytes], sink: IO[bytes]) -> None:
    """Copy a child's output to `sink` line by line, each line prefixed with the service name."""
    prefix = f"{name:<{PREFIX_WIDTH}} | ".encode()
    with source:
        for line in source:
            with _ECHO_LOCK:  # whole lines only, whichever service writes at the same time
                sink.write(prefix + (line if line.endswith(b"\n") else line + b"\n"))
                sink.flush()


# Runs one service in the current process and returns its exit code: `refex up` passes one so
# children are forked from a parent that already imported everything (see docs/adr/0002).
ServiceRunner = Callable[[str, int], int]


class StackError(RuntimeError):
    """The stack could not start; the message says what to do."""


class ChildProcess(Protocol):
    """What the stack needs of a child: the part of `subprocess.Popen` it uses."""

    pid: int

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


class ForkedProcess:
    """A child made by `os.fork`, with the `Popen` methods the stack uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """Return the exit code once the child ended (reaping it), else None."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to end; raise `subprocess.TimeoutExpired` after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            time.sleep(0.02)
        return code

    def send_signal(self, sig: int) -> None:
        """Signal the child unless it already ended."""
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """Kill the child (SIGKILL)."""
        self.send_signal(signal.SIGKILL)


def _die_with(parent: int) -> None:
    """Have the kernel stop this child if its parent dies, even by SIGKILL (Linux)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        raise SystemExit(1)


def fork_call(
    function: Callable[[], int],
    env: Mapping[str, str] | None = None,
    output: IO[bytes] | None = None,
) -> ForkedProcess:
    """Run `function` in a forked child; its return value becomes the exit code."""
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return ForkedProcess(pid)
    code = 1
    try:
        _die_with(parent)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if output is not None:
            os.dup2(output.fileno(), sys.stdout.fileno())
            os.dup2(output.fileno(), sys.stderr.fileno())
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        code = function()
    except SystemExit as stop:
        code = 0 if stop.code is None else stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def port_is_taken(port: int, host: str = "127.0.0.1") -> bool:
    """Return True when something already listens on `port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def seconds_since_start() -> float:
    """Seconds since this process started, interpreter start-up included (Linux /proc)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED_AT


def free_port() -> int:
    """Return a port that is free right now (for tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wiring_env(ports: Mapping[str, int], host: str = "127.0.0.1") -> dict[str, str]:
    """Return the variables that point the services at each other on these ports."""
    url = {name: f"http://{host}:{port}" for name, port in ports.items()}
    env = {
        "REFEX_TOKEN_ISSUER": url["gateway"],
        "REFEX_TOKEN_URL": f"{url['gateway']}/oauth/token",
        "REFEX_JWKS_URL": f"{url['gateway']}/.well-known/jwks.json",
        "REFEX_GATEWAY_DIRECTORY_URL": url["directory"],
        "REFEX_GATEWAY_CONSENT_URL": url["consent"],
        "REFEX_GATEWAY_REFERRAL_URL": url["referral"],
        "REFEX_REFERRAL_DIRECTORY_URL": url["directory"],
        "REFEX_REFERRAL_CONSENT_URL": url["consent"],
        "REFEX_CONSENT_REFERRAL_URL": url["referral"],
        "REFEX_CONSENT_DIRECTORY_URL": url["directory"],
    }
    if "web" in url:  # the workspace signs people in at the gateway and comes back to itself
        env["REFEX_WEB_GATEWAY_URL"] = url["gateway"]
        env["REFEX_WEB_PUBLIC_URL"] = url["web"]
        env["REFEX_GATEWAY_WEB_REDIRECT_URIS"] = (
            f"{url['web']}/auth/callback,http://localhost:{ports['web']}/auth/callback"
        )
    env.update({f"REFEX_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    return env


# Loopback only: never route a readiness probe through a configured proxy.
_LOCAL_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def is_ready(port: int, host: str = "127.0.0.1") -> bool:
    """Return True when the service on `port` answers /readyz with 200."""
    try:
        with _LOCAL_OPENER.open(f"http://{host}:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class Stack:
    """Every service as a child uvicorn process, started and stopped together.

    Without `runner` each child is a fresh interpreter (`refex serve <name>`); with one, each
    child is forked from this process and calls `runner(name, port)`. With `echo` (and no
    `log_dir`) the children's output is copied there, each line prefixed with its service.
    """

    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    log_dir: Path | None = None
    runner: ServiceRunner | None = None
    echo: IO[bytes] | None = None
    processes: dict[str, ChildProcess] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)
    _relays: list[threading.Thread] = field(default_factory=list)

    def check_ports(self) -> None:
        """Raise StackError naming every port something else already listens on."""
        taken = [f"{name} ({port})" for name, port in self.ports.items() if port_is_taken(port)]
        if taken:
            # Imported here: `refex up` imports the stack before forking, kept bare (ADR 0002).
            from shared.i18n import Message

            raise StackError(
                Message(
                    "port already in use: {ports}; stop whatever uses it or set "
                    "REFEX_<SERVICE>_PORT",
                    ports=", ".join(taken),
                )
            )

    def start(self) -> None:
        """Start every service; refuse to start any when a port is taken."""
        self.check_ports()
        env = {**self.env, **wiring_env(self.ports)}
        for name in SERVICE_NAMES:
            self.start_one(name, env)

    def start_one(self, name: str, env: Mapping[str, str] | None = None) -> None:
        """Start (or restart) one service process."""
        env = env or {**self.env, **wiring_env(self.ports)}
        output = self._output_of(name)
        try:
            self._spawn(name, env, output)
        finally:
            if output is not None and self.log_dir is None:
                output.close()  # the child holds its own copy of the pipe's writing end

    def _output_of(self, name: str) -> IO[bytes] | None:
        """Where the child writes: its log file, a pipe relayed to `echo`, or this terminal."""
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = (self.log_dir / f"{name}.log").open("ab")
            self._logs.append(log)
            return log
        if self.echo is None:
            return None
        reading, writing = os.pipe()
        relay = threading.Thread(
            target=relay_lines,
            args=(name, os.fdopen(reading, "rb"), self.echo),
            name=f"relay-{name}",
            daemon=True,
        )
        relay.start()
        self._relays.append(relay)
        return os.fdopen(writing, "wb")

    def _spawn(self, name: str, env: Mapping[str, str], output: IO[bytes] | None) -> None:
        if self.runner is not None:
            port = self.ports[name]
            runner = self.runner
            self.processes[name] = fork_call(lambda: runner(name, port), env, output)
            return
        command = [
            sys.executable,
            "-m",
            "services.cli",
            "serve",
            name,
            "--port",
            str(self.ports[name]),
        ]
        self.processes[name] = subprocess.Popen(  # noqa: S603
            command, env=dict(env), stdout=output, stderr=output
        )

    def wait_ready(self, timeout_s: float = 30.0) -> float:
        """Wait until every service answers /readyz; return the seconds it took."""
        from shared.i18n import Message  # imported here, as in check_ports

        started = time.monotonic()
        pending = set(self.processes)
        while pending:
            for name in list(pending):
                code = self.processes[name].poll()
                if code is not None:
                    raise StackError(
                        Message(
                            "the {service} service stopped at start (exit {code})",
                            service=name,
                            code=code,
                        )
                    )
                if is_ready(self.ports[name]):
                    pending.discard(name)
            if pending and time.monotonic() - started > timeout_s:
                raise StackError(
                    Message(
                        "not ready after {seconds:.0f} s: {services}",
                        seconds=timeout_s,
                        services=", ".join(sorted(pending)),
                    )
                )
            if pending:
                time.sleep(0.05)
        return time.monotonic() - started

    def first_exited(self) -> str | None:
        """Return the name of a service whose process has ended, if any."""
        return next((n for n, p in self.processes.items() if p.poll() is not None), None)

    def kill(self, name: str) -> None:
        """Kill one service abruptly (SIGKILL), as a crash would."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self, grace_s: float = 10.0) -> None:
        """Ask every child to stop, then kill those that do not within `grace_s`."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self._logs:
            log.close()
        self._logs.clear()
        for relay in self._relays:
            relay.join(timeout=grace_s)  # ends at the children's end of output
        self._relays.clear()

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
