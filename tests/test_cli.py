"""The `refex` command as a person runs it: real processes, real ports, real databases."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import asyncpg
import orjson
import pytest
from typer.testing import CliRunner, Result

from services.cli import app as refex_app
from services.registry import SERVICE_NAMES, WITH_DEMO_DATA, WITH_MIGRATIONS
from services.stack import Stack, free_port, is_ready, port_is_taken
from shared.demo import DEMO_CLIENTS_FILE, HOST_OFFICE_ORG
from tests.postgres import (
    asyncpg_url,
    create_database,
    drop_database,
    run_sync,
    with_database,
)

MIGRATED = tuple(entry.name for entry in WITH_MIGRATIONS)  # the services with a database


def clean_env(**extra: str) -> dict[str, str]:
    """This shell's environment without REFEX_ variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFEX_")}
    return {**env, **extra}


def refex(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    """Free ports, SQLite files in a temporary directory, quiet logs."""
    env = clean_env()
    for name in SERVICE_NAMES:
        env[f"REFEX_{name.upper()}_PORT"] = str(free_port())
        env[f"REFEX_{name.upper()}_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/{name}.db"
        env[f"REFEX_{name.upper()}_LOG_LEVEL"] = "WARNING"
    return env


def ports_of(env: dict[str, str]) -> dict[str, int]:
    return {name: int(env[f"REFEX_{name.upper()}_PORT"]) for name in SERVICE_NAMES}


def children_of(pid: int) -> set[int]:
    """Direct children of `pid`, from /proc."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """Read `process`'s stdout until a line holds `marker`; fail with what it printed."""
    assert process.stdout is not None
    lines_read: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines_read.put(line) for line in process.stdout or ()], daemon=True
    ).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(lines_read.get(timeout=0.2))
        except queue.Empty:
            continue
        if marker in seen[-1]:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} within {timeout} s; printed: {''.join(seen)}")


class TestVersion:
    def test_it_prints_the_installed_version(self, tmp_path: Path) -> None:
        result = refex("version", cwd=tmp_path, env=clean_env())
        assert result.returncode == 0
        assert result.stdout.strip() == f"refex {version('refex')}"


class TestServeRefusesBadSettings:
    def test_an_unsupported_database_stops_it_with_one_line_naming_the_variable(
        self, tmp_path: Path
    ) -> None:
        port = free_port()
        env = clean_env(
            REFEX_DIRECTORY_DATABASE_URL="mysql://root:hunter2@db/x",
            REFEX_DIRECTORY_PORT=str(port),
        )
        result = refex("serve", "directory", cwd=tmp_path, env=env)
        assert result.returncode == 2
        (line,) = lines(result.stderr)
        assert line == f"refex serve: REFEX_DIRECTORY_DATABASE_URL: {UNSUPPORTED_DATABASE}"
        assert not port_is_taken(port)

    def test_a_database_without_schema_says_to_migrate(self, tmp_path: Path) -> None:
        env = clean_env(
            REFEX_CONSENT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/empty.db",
            REFEX_CONSENT_PORT=str(free_port()),
        )
        result = refex("serve", "consent", cwd=tmp_path, env=env)
        assert result.returncode != 0
        (line,) = lines(result.stderr)
        assert "REFEX_CONSENT_DATABASE_URL" in line
        assert "refex migrate" in line


class TestUp:
    def test_it_brings_all_four_to_readyz_and_sigterm_stops_every_child(
        self, tmp_path: Path, sqlite_env: dict[str, str]
    ) -> None:
        migrated = refex("migrate", cwd=tmp_path, env=sqlite_env)
        assert migrated.returncode == 0, migrated.stderr
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up"],
            cwd=tmp_path,
            env=sqlite_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            printed = read_until(process, "Stop: Ctrl-C", timeout=60)
            ports = ports_of(sqlite_env)
            assert all(is_ready(port) for port in ports.values())
            assert f"http://127.0.0.1:{ports['gateway']}/docs" in printed
            children = children_of(process.pid)
            assert len(children) == len(SERVICE_NAMES)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        survivors = [pid for pid in children if is_running(pid)]
        assert survivors == []
        assert not any(port_is_taken(port) for port in ports.values())

    def test_a_taken_port_gives_one_line_and_starts_nothing(
        self, tmp_path: Path, sqlite_env: dict[str, str]
    ) -> None:
        ports = ports_of(sqlite_env)
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", ports["consent"]))
            squatter.listen()
            result = refex("up", cwd=tmp_path, env=sqlite_env)
        assert result.returncode != 0
        (line,) = lines(result.stderr)
        assert f"consent ({ports['consent']})" in line
        assert "in use" in line
        assert not any(port_is_taken(port) for port in ports.values())

    @pytest.mark.parametrize(
        "options", [[], ["--migrate"], ["--migrate", "--no-fork"]], ids=["up", "fork", "no-fork"]
    )
    def test_a_bad_setting_stops_it_before_any_service_starts(
        self, tmp_path: Path, sqlite_env: dict[str, str], options: list[str]
    ) -> None:
        env = {**sqlite_env, "REFEX_REFERRAL_DATABASE_URL": "mysql://root:hunter2@db/x"}
        result = refex("up", *options, cwd=tmp_path, env=env)
        assert result.returncode == 2
        (line,) = lines(result.stderr)
        assert line == f"refex up: REFEX_REFERRAL_DATABASE_URL: {UNSUPPORTED_DATABASE}"
        assert not any(port_is_taken(port) for port in ports_of(env).values())
        assert list(tmp_path.glob("*.db")) == []  # no service was migrated either


class TestForkedChildren:
    def test_a_forked_child_stops_when_its_parent_is_killed(self, tmp_path: Path) -> None:
        script = (
            "import os, time\n"
            "from services.stack import fork_call\n"
            "child = fork_call(lambda: time.sleep(60) or 0)\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(60)\n"
        )
        parent = subprocess.Popen(
            [sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE, text=True
        )
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert is_running(child)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while is_running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_running(child)


@pytest.fixture
def postgres_databases(postgres_admin_url: str | None) -> Iterator[dict[str, str]]:
    """One fresh, empty PostgreSQL database per service; dropped afterwards."""
    if postgres_admin_url is None:
        pytest.skip("PostgreSQL not available (see the session header for why)")
    run = uuid.uuid4().hex[:8]
    names = {service: f"refex_cli_{run}_{service}" for service in MIGRATED}
    for name in names.values():
        create_database(postgres_admin_url, name)
    try:
        yield {s: with_database(postgres_admin_url, n) for s, n in names.items()}
    finally:
        for name in names.values():
            drop_database(postgres_admin_url, name)


async def migration_head(url: str) -> str | None:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await connection.close()


class TestMigrateOnPostgres:
    def test_it_migrates_every_service_and_reports_each(
        self, tmp_path: Path, postgres_databases: dict[str, str]
    ) -> None:
        env = clean_env(
            **{
                f"REFEX_{service.upper()}_DATABASE_URL": asyncpg_url(url)
                for service, url in postgres_databases.items()
            }
        )
        result = refex("migrate", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert lines(result.stdout) == [f"migrated {service} (postgresql)" for service in MIGRATED]
        for url in postgres_databases.values():
            assert run_sync(lambda url=url: migration_head(url)) is not None

    def test_it_needs_only_the_database_urls_in_production(
        self, tmp_path: Path, postgres_databases: dict[str, str]
    ) -> None:
        env = clean_env(
            REFEX_ENVIRONMENT="production",
            REFEX_CONSENT_DATABASE_URL=asyncpg_url(postgres_databases["consent"]),
        )
        result = refex("migrate", "--service", "consent", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert lines(result.stdout) == ["migrated consent (postgresql)"]


UNREACHABLE_GATEWAY = "cannot reach the gateway at {url} — start it with `make run`, or point --url"
UNSUPPORTED_DATABASE = (
    "unsupported database 'mysql': use sqlite+aiosqlite:///path.db "
    "or postgresql+asyncpg://user@host:port/database"
)
SEEDED_FIRST = WITH_DEMO_DATA[0].name
NOT_MIGRATED = "the database has no schema yet — run `refex migrate` first"
TIMESTAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Run `refex` in process, in an empty folder, with no REFEX_ variables of this shell."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("REFEX_")]:
        monkeypatch.delenv(name)
    return CliRunner()


@pytest.fixture
def empty_databases(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> dict[str, str]:
    """Each service's database URL, pointing at a database that exists but was never migrated."""
    if backend == "sqlite":
        return {name: f"sqlite+aiosqlite:///{tmp_path}/{name}.db" for name in SERVICE_NAMES}
    created: dict[str, str] = request.getfixturevalue("postgres_databases")
    return {name: asyncpg_url(url) for name, url in created.items()}


def one_line_failure(result: Result) -> str:
    """The single line a failed command printed on stderr (and no traceback anywhere)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = lines(result.stderr)
    return line


@pytest.mark.promise(12)
class TestCommandsSayWhatIsWrong:
    def test_demo_names_the_gateway_it_cannot_reach(self, cli: CliRunner) -> None:
        DEMO_CLIENTS_FILE.parent.mkdir(parents=True)
        creds = {"client_id": "demo-admin", "client_secret": "s" * 32}
        DEMO_CLIENTS_FILE.write_bytes(orjson.dumps({"admin": creds}))
        url = f"http://127.0.0.1:{free_port()}"
        line = one_line_failure(cli.invoke(refex_app, ["demo", "--url", url]))
        assert line.startswith(f"refex demo: {UNREACHABLE_GATEWAY.format(url=url)}")

    def test_demo_without_credentials_says_to_run_make_run(self, cli: CliRunner) -> None:
        result = cli.invoke(refex_app, ["demo"])
        assert result.exit_code == 2
        (line,) = lines(result.stderr)
        assert line.startswith("refex demo: no demo credentials") and "`make run`" in line

    def test_a_provider_command_names_the_gateway_it_cannot_reach(self, cli: CliRunner) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        args = ["provider", "inbox", "--url", url, "--client-id", "x", "--client-secret", "y"]
        line = one_line_failure(cli.invoke(refex_app, args))
        assert line.startswith(f"refex provider inbox: {UNREACHABLE_GATEWAY.format(url=url)}")

    @pytest.mark.parametrize(
        ("args", "service"),
        [
            (["ledger", "verify"], "consent"),
            (["ledger", "purge"], "consent"),
            (["audit", "verify"], "referral"),
            (
                ["admin", "create-client", "--org", str(HOST_OFFICE_ORG), "--roles", "host_office"],
                "gateway",
            ),
            (["directory", "export", "exported"], "directory"),
            (["seed"], SEEDED_FIRST),
        ],
    )
    def test_a_database_command_on_an_unmigrated_database_says_to_migrate(
        self, cli: CliRunner, empty_databases: dict[str, str], args: list[str], service: str
    ) -> None:
        env = {f"REFEX_{name.upper()}_DATABASE_URL": url for name, url in empty_databases.items()}
        line = one_line_failure(cli.invoke(refex_app, args, env=env))
        command = " ".join(args[:2]) if len(args) > 1 else args[0]
        variable = f"REFEX_{service.upper()}_DATABASE_URL"
        assert line == f"refex {command}: {variable}: {NOT_MIGRATED}"
        assert not Path("exported").exists()

    def test_migrate_names_the_database_it_cannot_reach(self, cli: CliRunner) -> None:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/refex"
        env = {"REFEX_DIRECTORY_DATABASE_URL": url}
        result = cli.invoke(refex_app, ["migrate", "--service", "directory"], env=env)
        line = one_line_failure(result)
        assert line.startswith(
            "refex migrate: REFEX_DIRECTORY_DATABASE_URL: cannot reach the database"
        )


ONE_PER_SERVICE = [
    (["migrate"], "consent"),
    (["ledger", "verify"], "consent"),
    (["audit", "verify"], "referral"),
    (
        ["admin", "create-client", "--org", str(HOST_OFFICE_ORG), "--roles", "host_office"],
        "gateway",
    ),
    (["directory", "export", "exported"], "directory"),
    (["seed"], "directory"),
]


class TestEveryCommandReadsSettingsOneWay:
    @pytest.mark.parametrize(("args", "service"), ONE_PER_SERVICE)
    def test_a_bad_variable_is_one_line_naming_the_command_and_the_variable(
        self, cli: CliRunner, args: list[str], service: str
    ) -> None:
        variable = f"REFEX_{service.upper()}_DATABASE_URL"
        result = cli.invoke(refex_app, args, env={variable: "mysql://root:hunter2@db/x"})
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        (line,) = lines(result.stderr)
        command = " ".join(args[:2]) if len(args) > 1 else args[0]
        assert line == f"refex {command}: {variable}: {UNSUPPORTED_DATABASE}"
        assert not Path("var").exists()  # no service's database was created or migrated
        assert not Path("exported").exists()


def _print_and_fail(name: str, _port: int) -> int:
    print(f"{name} says hello", flush=True)
    print(f"{name} complains", file=sys.stderr, flush=True)
    return 3


class _Sink:
    """A byte sink several relay threads write to."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        return len(chunk)

    def flush(self) -> None:
        """Nothing is buffered."""

    def lines(self) -> list[str]:
        return self.data.decode().splitlines()


@pytest.mark.promise(12)
class TestEachServicesLinesArePrefixed:
    def test_a_forked_childs_stdout_and_stderr_carry_its_name(self) -> None:
        sink = _Sink()
        stack = Stack(ports={"consent": free_port()}, runner=_print_and_fail, echo=sink)  # type: ignore[arg-type]
        stack.start_one("consent", env=dict(os.environ))
        assert stack.processes["consent"].wait() == 3
        stack.stop()
        assert sorted(sink.lines()) == [
            "consent   | consent complains",
            "consent   | consent says hello",
        ]

    def test_a_separate_interpreters_lines_carry_its_name(
        self, tmp_path: Path, sqlite_env: dict[str, str]
    ) -> None:
        sink = _Sink()
        stack = Stack(ports=ports_of(sqlite_env), env=sqlite_env, echo=sink)  # type: ignore[arg-type]
        stack.start_one("referral")
        assert stack.processes["referral"].wait() != 0  # its database has no schema yet
        stack.stop()
        (line,) = sink.lines()
        assert line.startswith("referral  | refex referral: REFEX_REFERRAL_DATABASE_URL")

    @pytest.mark.parametrize("fork", ["--fork", "--no-fork"])
    def test_refex_up_prefixes_every_services_log_lines(
        self, tmp_path: Path, sqlite_env: dict[str, str], fork: str
    ) -> None:
        migrated = refex("migrate", cwd=tmp_path, env=sqlite_env)
        assert migrated.returncode == 0, migrated.stderr
        env = {**sqlite_env, **{f"REFEX_{n.upper()}_LOG_LEVEL": "INFO" for n in SERVICE_NAMES}}
        with (tmp_path / "up.out").open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "up", fork],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                read_until_file(tmp_path / "up.out", "Stop: Ctrl-C", process)
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=60) == 0
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        printed = (tmp_path / "up.out").read_text().splitlines()
        for name in SERVICE_NAMES:
            prefix = f"{name:<9} | "
            entries = [
                orjson.loads(line[len(prefix) :])
                for line in printed
                if line.startswith(prefix + "{")
            ]
            assert entries, printed
            for entry in entries:
                assert entry["service"] == name
                datetime.strptime(entry["ts"], TIMESTAMP)


def read_until_file(path: Path, marker: str, process: subprocess.Popen[bytes]) -> None:
    """Wait until `process` wrote `marker` into `path`; fail if it ends first."""
    while marker not in path.read_text(errors="replace"):
        assert process.poll() is None, path.read_text(errors="replace")
        time.sleep(0.1)
