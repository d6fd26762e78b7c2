"""The audit trail names the person who acted through the workspace, and still verifies."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from services.referral.audit import verify_stored_chain
from services.referral.models import AuditEvent
from shared.demo import DEMO_HEALTH_SERVICE, HOST_OFFICE_ORG
from tests.referral.conftest import CASEFILE, SUBJECT, Exchange, record_consent

REQUESTED = ["identity.basic", "contact"]


OTHER_SUBJECT = "hof-2026-0c4d1b9e7a3f5e21"


async def _send(exchange: Exchange, headers: dict[str, str], subject: str = SUBJECT) -> str:
    response = await exchange.referral.post(
        "/referrals",
        json={"service_id": str(DEMO_HEALTH_SERVICE), "subject_ref": subject,
              "requested_categories": REQUESTED, "casefile": CASEFILE},
        headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


class TestAuditNamesThePerson:
    async def test_a_persons_referral_is_audited_with_them_and_a_clients_without(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        await record_consent(exchange, REQUESTED, subject=OTHER_SUBJECT)
        person = uuid.uuid4()
        by_person = await _send(
            exchange,
            exchange.minter.headers(
                roles=["host_office"], org=str(HOST_OFFICE_ORG), client=f"user:{person}",
                person=str(person),
            ),
        )  # fmt: skip
        by_client = await _send(
            exchange, exchange.as_role("host_office", HOST_OFFICE_ORG), OTHER_SUBJECT
        )
        async with exchange.referral_app.state.db.sessionmaker() as session:
            rows = {
                str(row.referral_id): row
                for row in await session.scalars(
                    select(AuditEvent).where(AuditEvent.action == "referral.created")
                )
            }
            assert rows[by_person].actor_person_id == person
            assert rows[by_person].actor_client_id == f"user:{person}"
            assert rows[by_client].actor_person_id is None
        async with exchange.referral_app.state.db.sessionmaker() as session:
            assert await verify_stored_chain(session) is None
