"""The skills taxonomy opportunities and profiles speak: a vendored subset of ISCO-08."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson

from shared.i18n import Message

SCHEME = "ISCO-08"
DATA = Path(__file__).with_name("isco08.json")


@cache
def unit_groups() -> dict[str, dict[str, str]]:
    """Return code → {code, en, fr} for every vendored unit group, in code order."""
    data: dict[str, Any] = orjson.loads(DATA.read_bytes())
    return {group["code"]: group for group in sorted(data["unit_groups"], key=lambda g: g["code"])}


def check_skill(code: str) -> str:
    """Return `code` when it is a vendored ISCO-08 unit group, else raise saying where to look."""
    if code not in unit_groups():
        raise ValueError(
            Message(
                "'{code}' is not an ISCO-08 unit group of this directory; list them with "
                "GET /skills",
                code=code,
            )
        )
    return code


def skill(code: str) -> dict[str, str]:
    """Return the unit group `code` with its scheme and titles."""
    return {"scheme": SCHEME, **unit_groups()[code]}


def closeness(wanted: str, offered: str) -> float:
    """Credit one offered code gives a wanted one: same unit 1, minor 0.5, sub-major 0.25."""
    for digits, credit in ((4, 1.0), (3, 0.5), (2, 0.25)):
        if wanted[:digits] == offered[:digits]:
            return credit
    return 0.0
