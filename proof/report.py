"""The proof table: one row per figure, with its target and whether it was met."""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, bool]  # check, figure, target, met


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _failed(results: dict[str, Any], name: str) -> Row | None:
    error = _get(results, name, "error")
    return (name, f"did not finish: {error}", "runs", False) if error else None


def _adversarial(r: dict[str, Any]) -> list[Row]:
    a = r.get("adversarial", {})
    return [("adversarial tokens, JWE, webhooks (pytest)",
             f"{a.get('passed')}/{a.get('cases')} passed, {a.get('jwcrypto_interop_cases')} "
             "jwcrypto interop", ">= 33 cases, all pass",
             (a.get("cases") or 0) >= 33 and a.get("failed") == 0)]  # fmt: skip


def _promises(r: dict[str, Any]) -> list[Row]:
    items = _get(r, "promises", "items") or {}
    return [
        (f"promise {number}: {entry['title']} (regression tests)",
         f"{entry['passed']} passed, {entry['failed']} failed, {entry['skipped']} skipped",
         ">= 1 test, all pass",
         entry["passed"] >= 1 and entry["failed"] == 0 and entry["skipped"] == 0)
        for number, entry in sorted(items.items(), key=lambda kv: int(kv[0]))
    ]  # fmt: skip


def _canary(r: dict[str, Any], name: str) -> list[Row]:
    c = r.get(name, {})
    scanned = c.get("scanned", {})
    figure = (f"{c.get('plaintext_hits')} hits in {scanned.get('log_lines')} log lines, "
              f"{scanned.get('database_cells')} DB cells, {scanned.get('response_bodies')} "
              f"responses ({c.get('error_bodies')} errors), {c.get('webhook_bodies')} webhooks, "
              f"{scanned.get('metrics_pages')} /metrics; {c.get('canaries_seen_after_decryption')}"
              f"/{c.get('canaries')} canaries read after decryption")  # fmt: skip
    return [(f"PII canary ({name})", figure, "0 hits", c.get("plaintext_hits") == 0)]


def _sealed_canary(r: dict[str, Any]) -> list[Row]:
    c = r.get("canary_sealed", {})
    memory, control = c.get("memory", {}), c.get("server_mode_memory", {})
    memory_hits = len(memory.get("canaries_found") or [])
    figure = (f"{_canary(r, 'canary_sealed')[0][1]}; {memory_hits} in {memory.get('dumps')} "
              f"process memory dumps ({memory.get('megabytes_read')} MB, referral during "
              "creation and all four after)")  # fmt: skip
    passes = ", ".join(control.get("found_in") or []) or "no process"
    return [
        ("PII canary, sealed mode (SDK seals; logs, DBs, bodies, process memory)", figure,
         "0 hits, 0 in memory", c.get("plaintext_hits") == 0 and memory_hits == 0
         and bool(memory.get("dumps"))),
        ("server mode, for contrast: where plaintext passes (memory dumps)",
         f"{len(control.get('canaries_found') or [])} canaries found in {passes}",
         "documented, not a target", True),
    ]  # fmt: skip


def _matrix(r: dict[str, Any]) -> list[Row]:
    m = r.get("authorisation", {})
    return [
        ("authorisation matrix",
         f"{m.get('operations')} operations, {m.get('cells')} cells, "
         f"{len(m.get('mismatches') or [])} mismatches, "
         f"{len(m.get('operations_without_entry') or [])} without entry",
         "0 mismatches, every operation listed",
         not m.get("mismatches") and not m.get("operations_without_entry")
         and bool(m.get("cells"))),
        ("cross-organisation access", f"{m.get('cross_organisation')}", "0",
         m.get("cross_organisation") == 0),
    ]  # fmt: skip


def _fuzz(r: dict[str, Any]) -> list[Row]:
    f = r.get("fuzz", {})
    return [("contract fuzzing (schemathesis)",
             f"{f.get('roles')} roles, {f.get('operations_tested')} operation runs, "
             f"{f.get('failures')} failures", "0 server errors, schema violations, undocumented "
             "statuses, accepted invalid requests or Allow mismatches for every role",
             f.get("failures") == 0 and bool(f.get("operations_tested")))]  # fmt: skip


def _tamper(r: dict[str, Any], name: str) -> list[Row]:
    t = r.get(name, {})
    return [(f"tampering ({name.split('_', 1)[1]})",
             f"{t.get('caught')}/{t.get('cases')} caught and named",
             "100%, untouched copy verifies",
             t.get("caught") == t.get("cases") and bool(t.get("cases"))
             and bool(t.get("untouched_copies_verify")))]  # fmt: skip


def _faults(r: dict[str, Any]) -> list[Row]:
    f = r.get("faults", {})
    truthful = all(x.get("readyz_truthful_ok", True) for x in f.get("faults", []))
    return [
        ("faults: 201s present afterwards",
         f"{f.get('created_201')} created, {f.get('missing_after')} missing, "
         f"{f.get('failed_attempts_retried')} failed attempts retried", "0 missing",
         f.get("missing_after") == 0 and bool(f.get("created_201"))),
        ("faults: duplicates after key replay",
         f"{f.get('duplicates')} duplicates, {f.get('replays_with_other_id')} other ids",
         "0", f.get("duplicates") == 0 and f.get("replays_with_other_id") == 0),
        ("faults: ready again after kill -9 / pg_terminate_backend",
         f"max {f.get('max_ready_s')} s; /readyz truthful: {truthful}", "<= 5 s, truthful",
         (f.get("max_ready_s") or 99) <= 5 and truthful),
        ("faults: webhook receiver down during load",
         f"{f.get('webhook_events_for_referrals')} referrals notified after it returned",
         "all", bool(f.get("webhooks_complete"))),
    ]  # fmt: skip


def _soak(r: dict[str, Any]) -> list[Row]:
    s = r.get("soak", {})
    rows: list[Row] = []
    for name, g in (s.get("services") or {}).items():
        rows.append((f"soak RSS {name} ({s.get('minutes')} min, {s.get('requests')} requests)",
                     f"{g['after_warm_up_mb']} -> {g['last_mb']} MB ({g['growth']:+.1%}), "
                     f"peak {g['peak_mb']} MB", "<= +10%, <= 150 MB",
                     g["flat_within_10pct"] and g["under_150_mb"]))  # fmt: skip
    return rows or [("soak", "no samples", "samples", False)]


def rows(results: dict[str, Any]) -> list[Row]:
    """Every figure of the run."""
    table: list[Row] = []
    main_tamper = f"tamper_{results.get('backend')}"
    sections: list[tuple[str, Any]] = [
        ("adversarial", lambda: _adversarial(results)),
        ("promises", lambda: _promises(results)),
        ("canary", lambda: _canary(results, "canary")),
        ("canary_sqlite", lambda: _canary(results, "canary_sqlite")),
        ("canary_sealed", lambda: _sealed_canary(results)),
        ("authorisation", lambda: _matrix(results)),
        ("fuzz", lambda: _fuzz(results)),
        (main_tamper, lambda: _tamper(results, main_tamper)),
        ("tamper_sqlite", lambda: _tamper(results, "tamper_sqlite")),
        ("faults", lambda: _faults(results)),
        ("soak", lambda: _soak(results)),
    ]  # fmt: skip
    for name, build in sections:
        if name not in results:
            continue
        failed = _failed(results, name)
        table.extend([failed] if failed else build())
    return table


def markdown(results: dict[str, Any]) -> str:
    """The report as Markdown."""
    lines = [
        f"# refex proof ({results.get('mode')}, {results.get('backend')}, "
        f"{results.get('total_seconds')} s)",
        "",
        "| check | figure | target | met |",
        "|---|---|---|---|",
    ]
    for check, figure, target, met in rows(results):
        lines.append(f"| {check} | {figure} | {target} | {'yes' if met else '**NO**'} |")
    lines += ["", "Seconds per check: " + ", ".join(
        f"{k} {v}" for k, v in (results.get("seconds") or {}).items())]  # fmt: skip
    fuzz_failures = _get(results, "fuzz", "by_role")
    if fuzz_failures:
        lines.append(f"Fuzzing failures by role: {fuzz_failures} (logs in reports/fuzz/)")
    return "\n".join(lines) + "\n"
