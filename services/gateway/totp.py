"""Time-based one-time passwords (RFC 6238) as a second factor, each code accepted once."""

from __future__ import annotations

import hmac
import time

import pyotp

ISSUER = "refex"
STEP_S = 30
DRIFT_STEPS = 1  # accept the previous and the next code too (clocks drift)


def new_secret() -> str:
    """Return a fresh base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, *, account: str) -> str:
    """Return the otpauth:// URI an authenticator app enrols from."""
    return pyotp.TOTP(secret, interval=STEP_S).provisioning_uri(name=account, issuer_name=ISSUER)


def matching_step(
    secret: str, code: str, *, last_step: int | None, now: float | None = None
) -> int | None:
    """Return the time step `code` belongs to when valid and newer than `last_step`, else None."""
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret, interval=STEP_S)
    current = int((time.time() if now is None else now) // STEP_S)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue  # a code already used (or older) is refused: no replay
        if hmac.compare_digest(totp.at(step * STEP_S), code):
            return step
    return None
