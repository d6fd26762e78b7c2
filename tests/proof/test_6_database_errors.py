"""A database connection lost mid-request (pg_terminate_backend, a database restart) answers 503
with a retry hint, not 500: the faults proof saw one 500 before this was handled."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import sqlalchemy.exc
from fastapi import FastAPI

from services.directory.settings import DirectorySettings
from shared.app import build_service_app

InProcess = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


def _app(settings: DirectorySettings) -> FastAPI:
    app = build_service_app(title="probe", description="probe", settings=settings)

    @app.get("/lost")
    async def lost() -> None:
        raise sqlalchemy.exc.InterfaceError("SELECT 1", {}, ConnectionError("connection closed"))

    @app.get("/broken")
    async def broken() -> None:
        raise sqlalchemy.exc.OperationalError("SELECT x", {}, RuntimeError("no such column: x"))

    return app


async def test_a_lost_connection_is_a_503_problem_and_other_database_errors_stay_500(
    test_settings: Callable[..., Any], in_process: InProcess
) -> None:
    async with in_process(_app(test_settings(DirectorySettings))) as client:
        lost = await client.get("/lost")
        broken = await client.get("/broken")
    assert lost.status_code == 503
    assert lost.headers["content-type"].startswith("application/problem+json")
    assert lost.headers["retry-after"] == "1"
    assert "Try again" in lost.json()["detail"]
    assert "SELECT" not in lost.text
    assert broken.status_code == 500
    assert "no such column" not in broken.text
