"""Container health check: exit 0 when the service in this container answers /readyz.

Usage: `python deploy/healthcheck.py [PORT]`. Without PORT it reads the command of PID 1
(`refex serve <name> [--port N]`) and the service's REFEX_<NAME>_PORT, so one image-level
HEALTHCHECK fits every service. Standard library only: it runs every few seconds.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from services.registry import DEFAULT_PORTS
from services.stack import is_ready


def port_of(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Return the port `refex serve <name> [--port N]` listens on under `env`."""
    if "--port" in command:
        return int(command[command.index("--port") + 1])
    name = next((word for word in command if word in DEFAULT_PORTS), "gateway")
    return int(env.get(f"REFEX_{name.upper()}_PORT") or DEFAULT_PORTS[name])


def main_command() -> list[str]:
    """Return the arguments of PID 1 (the container's main process)."""
    raw = Path("/proc/1/cmdline").read_bytes()
    return [part.decode() for part in raw.split(b"\0") if part]


def main(argv: Sequence[str]) -> int:
    """Check readiness; 0 when ready, 1 otherwise."""
    port = int(argv[0]) if argv else port_of(main_command(), os.environ)
    return 0 if is_ready(port) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
