"""HTTP routes of the directory service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
