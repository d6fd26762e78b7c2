"""The vendored standards test data is still the official data, whenever that is at hand."""

from __future__ import annotations

import pytest

from tests.standards import OFFICIAL_STANDARDS, VENDORED_STANDARDS

VENDORED_FILES = sorted(
    p.relative_to(VENDORED_STANDARDS)
    for p in VENDORED_STANDARDS.rglob("*")
    if p.is_file() and p.name != "README.md"
)


def test_the_vendored_data_is_there() -> None:
    assert any(p.name == "rfc9162-vectors.json" for p in VENDORED_FILES)
    assert any("valid_export" in str(p) for p in VENDORED_FILES)


@pytest.mark.parametrize("relative", VENDORED_FILES, ids=str)
def test_each_vendored_file_matches_the_official_copy(relative: object) -> None:
    official = OFFICIAL_STANDARDS / str(relative)
    if not OFFICIAL_STANDARDS.exists():
        pytest.skip("the team's shared/standards folder is not beside this clone")
    assert (VENDORED_STANDARDS / str(relative)).read_bytes() == official.read_bytes()
