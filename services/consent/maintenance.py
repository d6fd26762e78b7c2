"""Periodic ledger work: sign tree heads while entries arrive, record expiries, purge bodies."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from services.consent import service
from services.consent.ledger import purge_expired_bodies, sign_tree_head
from services.consent.settings import ConsentSettings
from services.consent.signing import TreeHeadSigner
from shared.clock import utcnow

logger = logging.getLogger("refex.consent.maintenance")


class LedgerMaintenance:
    """Runs the periodic ledger duties; safe on several replicas (each step locks the ledger)."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[Any],
        signer: TreeHeadSigner,
        settings: ConsentSettings,
    ) -> None:
        self._sessions = sessionmaker
        self._signer = signer
        self._settings = settings
        self._last_purge = 0.0

    async def tick(self) -> None:
        """Record due expiries, purge if due, then sign a tree head if the ledger grew."""
        async with self._sessions() as session, session.begin():
            await service.record_expiries(session=session, settings=self._settings)
        if time.monotonic() - self._last_purge >= self._settings.retention_interval_s:
            async with self._sessions() as session, session.begin():
                purged = await purge_expired_bodies(session, now=utcnow())
            self._last_purge = time.monotonic()
            if purged:
                logger.info("purged ledger bodies past retention", extra={"count": purged})
        async with self._sessions() as session, session.begin():
            await sign_tree_head(session, signer=self._signer, only_if_grown=True)
