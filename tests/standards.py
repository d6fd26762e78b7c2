"""Where the standards' test data lives: vendored in the repo, official copy beside it."""

from __future__ import annotations

from pathlib import Path

VENDORED_STANDARDS = Path(__file__).resolve().parent / "data" / "standards"
OFFICIAL_STANDARDS = Path(__file__).resolve().parents[2] / "shared" / "standards"
