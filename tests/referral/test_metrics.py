"""The referral service's business gauges on /metrics: counts only, nothing personal."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from services.referral.models import Referral
from shared.clock import utcnow
from tests.referral.conftest import SUBJECT, Exchange, record_consent
from tests.referral.test_referrals_api import REQUESTED, send


async def test_referrals_by_status_and_overdue_are_counted(exchange: Exchange) -> None:
    await record_consent(exchange, REQUESTED)
    created = await send(exchange)
    assert created.status_code == 201, created.text
    async with exchange.referral_app.state.db.sessionmaker() as session, session.begin():
        await session.execute(
            update(Referral).values(acknowledge_by=utcnow() - timedelta(minutes=1))
        )
    await exchange.referral_app.state.referral_gauges.refresh(exchange.referral_app.state.db)
    metrics = (await exchange.referral.get("/metrics")).text
    assert 'refex_referrals{status="requested"} 1.0' in metrics
    assert 'refex_referrals{status="completed"} 0.0' in metrics
    assert "refex_referrals_overdue 1.0" in metrics
    assert SUBJECT not in metrics
