"""Reading Accept-Encoding: when a client admits gzip."""

from __future__ import annotations

import pytest

from shared.compression import accepts_gzip


@pytest.mark.parametrize(
    ("header", "admitted"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, GZIP;q=0.5", True),
        ("x-gzip", True),
        ("*", True),
        ("br, *;q=0.1", True),
        (None, False),
        ("", False),
        ("identity", False),
        ("br, deflate", False),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),
        ("*;q=0", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_gzip_is_admitted_only_with_a_positive_weight(header: str | None, admitted: bool) -> None:
    assert accepts_gzip(header) is admitted
