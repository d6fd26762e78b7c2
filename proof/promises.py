"""Run the regression tests of the issue 'Keep the promises' and count them per item.

Each such test carries `@pytest.mark.promise(N)`; this module is also the pytest plugin
(`-p proof.promises`) that records, per test, its item and outcome into a JSON file.

    .venv/bin/python -m proof.promises        # run them, print the table
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

ITEMS = {
    1: "withdrawal racing a creation",
    2: "one partner's webhook never stops the others",
    3: "partner-supplied URLs (SSRF)",
    4: "emergency override safeguards",
    5: "token endpoint under abuse",
    6: "withdrawn signing keys stop working everywhere",
    7: "nobody adds a reader silently",
    8: "notes respect the basis",
    9: "small leaks",
    10: "every status documented",
    11: "demo credentials always work",
    12: "operable errors",
}
OUTCOMES_ENV = "REFEX_PROMISE_OUTCOMES"


def _promise_item(item: pytest.Item) -> int | None:
    marker = item.get_closest_marker("promise")
    if marker is None or not marker.args:
        return None
    return int(marker.args[0])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Record the outcome of each promise test's call phase (and of a failed setup)."""
    outcome = yield
    report = outcome.get_result()
    number = _promise_item(item)
    path = os.environ.get(OUTCOMES_ENV)
    if number is None or path is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        record = {"item": number, "test": item.nodeid, "outcome": report.outcome}
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")


def run(timeout_s: int = 1500) -> dict[str, Any]:
    """Run every promise test once; return per-item counts of passed, failed and skipped."""
    outcomes = Path(tempfile.mkdtemp(prefix="refex-promises-")) / "outcomes.jsonl"
    outcomes.touch()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "proof.promises",
         "-m", "promise", "tests"],
        env={**os.environ, OUTCOMES_ENV: str(outcomes)},
        capture_output=True, text=True, check=False, timeout=timeout_s,
    )  # fmt: skip
    per_item: dict[str, dict[str, Any]] = {
        str(n): {"title": title, "passed": 0, "failed": 0, "skipped": 0, "tests": []}
        for n, title in ITEMS.items()
    }
    for line in outcomes.read_text().splitlines():
        record = json.loads(line)
        entry = per_item.setdefault(
            str(record["item"]),
            {"title": "?", "passed": 0, "failed": 0, "skipped": 0, "tests": []},
        )
        entry[record["outcome"]] = entry.get(record["outcome"], 0) + 1
        entry["tests"].append(record["test"])
    return {"items": per_item, "exit": done.returncode, "tail": done.stdout[-2000:]}


def main() -> None:
    """Run the promise tests and print one line per item."""
    results = run()
    for number, entry in results["items"].items():
        print(
            f"{number:>3} {entry['title']:<48} {entry['passed']} passed, "
            f"{entry['failed']} failed, {entry['skipped']} skipped"
        )
    raise SystemExit(results["exit"])


if __name__ == "__main__":
    main()
