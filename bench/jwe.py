"""JWE cost: shared.crypto against joserfc alone, same machine, same run, same 2 KB case file.

One round = encrypt a 2 KB case file to two P-256 recipients + one recipient decrypts it.
joserfc gets its best case: keys imported once, and decryption of a one-recipient JWE (joserfc
1.8.0 tries every entry, so it cannot decrypt a two-recipient JWE holding one key; the
'all keys' row shows what it costs when given every recipient's key instead).
Issue 7 asks for ours within 10% of joserfc.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from _common import Target, parse_args, report
from joserfc import jwe
from joserfc.jwk import ECKey, KeySet

from shared.crypto import decrypt_with, encrypt_for, generate_encryption_key, public_part

Op = Callable[[], Any]


def case_file(size: int = 2048) -> bytes:
    """A JSON case file of about `size` bytes with the shape of a real one."""
    base = {
        "schema_version": "1",
        "identity": {"given_name": "Test", "family_name": "Person", "date_of_birth": "1990-01-01"},
        "contact": {"phone": "+234 800 000 0000", "channel": "phone"},
        "needs_assessment": {"summary": ""},
    }
    filler = size - len(json.dumps(base).encode())
    base["needs_assessment"]["summary"] = "x" * max(0, filler)
    return json.dumps(base).encode()


def per_op_us(op: Op, iterations: int) -> float:
    """Mean microseconds per call over `iterations` calls."""
    started = time.perf_counter()
    for _ in range(iterations):
        op()
    return (time.perf_counter() - started) / iterations * 1e6


def interleaved(ops: dict[str, Op], *, iterations: int, repeats: int) -> dict[str, float]:
    """Median µs per op, alternating the contenders so drift hits both alike."""
    samples: dict[str, list[float]] = {name: [] for name in ops}
    for op in ops.values():
        per_op_us(op, max(10, iterations // 10))  # warm caches and allocators
    for _ in range(repeats):
        for name, op in ops.items():
            samples[name].append(per_op_us(op, iterations))
    return {name: statistics.median(values) for name, values in samples.items()}


def contenders(plaintext: bytes) -> dict[str, Op]:
    """The operations measured, as zero-argument callables."""
    alice, bob = generate_encryption_key("alice"), generate_encryption_key("bob")
    recipients = [public_part(alice), public_part(bob)]
    ours_jwe = encrypt_for(plaintext, recipients)
    alice_key = ECKey.import_key(alice)
    public_keys = [ECKey.import_key(r) for r in recipients]
    both = KeySet([alice_key, ECKey.import_key(bob)])

    def joserfc_encrypt(keys: list[ECKey] = public_keys) -> dict[str, Any]:
        message = jwe.GeneralJSONEncryption(
            {"enc": "A256GCM", "cty": "application/json"}, plaintext
        )
        for key in keys:
            message.add_recipient({"alg": "ECDH-ES+A256KW", "kid": key.kid}, key)
        return jwe.encrypt_json(message, None)

    theirs_single = joserfc_encrypt([ECKey.import_key(recipients[0])])
    theirs_both = joserfc_encrypt()
    return {
        "ours encrypt (2 recipients)": lambda: encrypt_for(plaintext, recipients),
        "joserfc encrypt (2 recipients)": joserfc_encrypt,
        "ours decrypt (2-recipient JWE, 1 key)": lambda: decrypt_with(ours_jwe, alice),
        "joserfc decrypt (1-recipient JWE)": lambda: jwe.decrypt_json(theirs_single, alice_key),
        "joserfc decrypt (2-recipient JWE, all keys)": lambda: jwe.decrypt_json(theirs_both, both),
    }


def large_payload_row(iterations: int) -> dict[str, Any]:
    """Ours on a 1 MiB document, which joserfc's default decrypt limit refuses."""
    key = generate_encryption_key("doc")
    document = case_file(1024 * 1024)
    sealed = encrypt_for(document, [public_part(key)])
    return {
        "operation": "ours encrypt+decrypt 1 MiB (1 recipient)",
        "us_per_op": round(
            per_op_us(
                lambda: decrypt_with(encrypt_for(document, [public_part(key)]), key), iterations
            ),
            1,
        ),
        "joserfc_decrypts_it": _joserfc_accepts(sealed, key),
    }


def _joserfc_accepts(sealed: dict[str, Any], key: dict[str, Any]) -> bool:
    try:
        jwe.decrypt_json(sealed, ECKey.import_key(key))
    except Exception:
        return False
    return True


def main() -> None:
    args = parse_args(__doc__ or "JWE benchmark")
    iterations, repeats = (300, 5) if args.quick else (2000, 9)
    timings = interleaved(contenders(case_file()), iterations=iterations, repeats=repeats)
    ours = timings["ours encrypt (2 recipients)"] + timings["ours decrypt (2-recipient JWE, 1 key)"]
    theirs = (
        timings["joserfc encrypt (2 recipients)"] + timings["joserfc decrypt (1-recipient JWE)"]
    )
    rows: list[dict[str, Any]] = [
        {"operation": name, "us_per_op": round(us, 1), "joserfc_decrypts_it": ""}
        for name, us in timings.items()
    ]
    rows.append(large_payload_row(5 if args.quick else 20))
    report(
        "jwe",
        [Target("ours ÷ joserfc, encrypt + decrypt round", ours / theirs, 1.10, "<=", "x")],
        rows,
        notes=[
            f"round: ours {ours:.1f} µs, joserfc {theirs:.1f} µs (2 KB case file, P-256)",
            f"{iterations} calls, {repeats} interleaved repeats, median reported",
        ],
    )


if __name__ == "__main__":
    main()
