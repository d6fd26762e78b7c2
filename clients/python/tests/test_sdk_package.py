"""The SDK stands alone: httpx and a JOSE library, nothing of the server's stack."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
SOURCE = PACKAGE / "src" / "refex_client"
SERVER_STACK = ("fastapi", "sqlalchemy", "starlette", "pydantic", "shared", "services")


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


class TestStandalone:
    def test_it_declares_only_httpx_and_jwcrypto(self) -> None:
        project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
        names = {dep.split(">")[0].split("=")[0].split("[")[0] for dep in project["dependencies"]}
        assert names == {"httpx", "jwcrypto"}
        assert project["name"] == "refex-client"

    def test_no_module_imports_the_server_stack(self) -> None:
        for path in SOURCE.glob("*.py"):
            assert not imported_roots(path) & set(SERVER_STACK), path.name

    def test_importing_it_loads_no_server_module(self) -> None:
        probe = (
            "import sys, refex_client; "
            f"loaded = [m for m in {SERVER_STACK!r} if m in sys.modules]; "
            "print(','.join(loaded))"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": str(PACKAGE / "src")},
            cwd=PACKAGE,
        )
        assert result.stdout.strip() == ""
