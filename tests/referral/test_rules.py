"""The pure rules of referral routing: minimisation, the lifecycle table, the audit chain."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.referral.audit import GENESIS_HASH, audit_hash, verify_chain
from services.referral.errors import IllegalTransition
from services.referral.lifecycle import (
    TRANSITIONS,
    Party,
    allowed_moves,
    move,
    party_of,
)
from services.referral.models import AuditEvent, Referral
from services.referral.schemas import ReasonCode, Status
from services.referral.sharing import decide_sharing
from shared.auth import Principal
from shared.casefile import SECTION_OF, CaseFile
from shared.vocabulary import DataCategory, WithheldReason

categories = st.sets(st.sampled_from(list(DataCategory)))


class TestMinimisation:
    @given(requested=categories, permitted=categories, consented=categories, present=categories)
    def test_shared_is_exactly_the_intersection(
        self,
        requested: set[DataCategory],
        permitted: set[DataCategory],
        consented: set[DataCategory],
        present: set[DataCategory],
    ) -> None:
        decision = decide_sharing(
            requested=requested, permitted_by_sop=permitted, consented=consented, present=present
        )
        assert decision.shared == requested & permitted & consented
        assert not decision.shared & set(decision.withheld)

    @given(requested=categories, permitted=categories, consented=categories, present=categories)
    def test_every_withheld_category_has_the_right_reason(
        self,
        requested: set[DataCategory],
        permitted: set[DataCategory],
        consented: set[DataCategory],
        present: set[DataCategory],
    ) -> None:
        decision = decide_sharing(
            requested=requested, permitted_by_sop=permitted, consented=consented, present=present
        )
        for category, reason in decision.withheld.items():
            if category not in requested:
                assert reason == WithheldReason.NOT_REQUESTED and category in present
            elif category not in permitted:
                assert reason == WithheldReason.NOT_IN_SOP
            else:
                assert reason == WithheldReason.NO_CONSENT and category not in consented
        assert set(decision.withheld) == (requested - decision.shared) | (present - requested)

    @given(keep=categories)
    def test_a_minimised_case_file_holds_no_withheld_section(self, keep: set[DataCategory]) -> None:
        canaries = {
            DataCategory.IDENTITY_BASIC: ("identity_basic", {"given_name": "CANARY-ID"}),
            DataCategory.CONTACT: ("contact", {"address_on_return": "CANARY-ADDRESS"}),
            DataCategory.HEALTH_MENTAL: ("health_mental", {"risk_assessment": "CANARY-RISK"}),
            DataCategory.PROTECTION: ("protection", {"concerns": ["CANARY-CONCERN"]}),
            DataCategory.SKILLS: ("skills", {"education_level": "CANARY-SCHOOL"}),
        }
        full = CaseFile.model_validate(dict(canaries.values()))
        text = full.minimised(keep).model_dump_json()
        for category, (_, body) in canaries.items():
            canary = str(next(iter(body.values()))).strip("[]'")
            assert (canary in text) == (category in keep)

    def test_unknown_fields_are_refused(self) -> None:
        with pytest.raises(ValueError, match="Extra inputs"):
            CaseFile.model_validate({"identity_basic": {"given_name": "A", "tribe": "x"}})
        with pytest.raises(ValueError, match="Extra inputs"):
            CaseFile.model_validate({"religion": "x"})

    def test_every_category_has_exactly_one_section(self) -> None:
        assert set(SECTION_OF) == set(DataCategory)
        assert len(set(SECTION_OF.values())) == len(DataCategory)


SENDER_ORG, RECIPIENT_ORG, OTHER_ORG = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
ROLES = [
    "host_office",
    "provider",
    "coordinator",
    "auditor",
    "admin",
    "service",
    "mental_health_professional",
]


def referral_in(status: Status) -> Referral:
    return Referral(
        id=uuid.uuid4(),
        sender_org_id=SENDER_ORG,
        recipient_org_id=RECIPIENT_ORG,
        status=str(status),
        version=1,
    )


def principal(role: str, org: uuid.UUID) -> Principal:
    return Principal(
        client_id="c",
        org_id=str(org),
        roles=frozenset({role}),
        scopes=frozenset(),
        token_id="t",
        expires_at=0,
    )


class TestLifecycle:
    @pytest.mark.parametrize("status", list(Status))
    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize("org", ["sender", "recipient", "other"])
    def test_every_status_role_and_side_gets_exactly_the_table_moves(
        self, status: Status, role: str, org: str
    ) -> None:
        org_id = {"sender": SENDER_ORG, "recipient": RECIPIENT_ORG, "other": OTHER_ORG}[org]
        referral = referral_in(status)
        party = party_of(referral, principal(role, org_id))
        expected_party = None
        # Providers and coordinators send local, national and onward referrals too.
        if org == "sender" and role in ("host_office", "provider", "coordinator"):
            expected_party = Party.SENDER
        if org == "recipient" and role in ("provider", "coordinator"):
            expected_party = Party.RECIPIENT
        assert party == expected_party
        expected = {
            to for (start, to), who in TRANSITIONS.items() if start == status and who == party
        }
        assert set(allowed_moves(referral, party)) == expected

    def test_closed_statuses_allow_no_move(self) -> None:
        for status in (
            Status.COMPLETED,
            Status.REJECTED,
            Status.CANCELLED,
            Status.FAILED,
            Status.ENTERED_IN_ERROR,
        ):
            assert not [k for k in TRANSITIONS if k[0] == status]

    def test_only_the_recipient_accepts_and_only_the_sender_cancels(self) -> None:
        assert {who for (_, to), who in TRANSITIONS.items() if to == Status.ACCEPTED} == {
            Party.RECIPIENT
        }
        assert {who for (_, to), who in TRANSITIONS.items() if to == Status.CANCELLED} == {
            Party.SENDER
        }


class TestOneBookkeeping:
    @pytest.mark.parametrize(
        "status", [Status.COMPLETED, Status.REJECTED, Status.CANCELLED, Status.FAILED]
    )
    async def test_refex_itself_cannot_move_a_referral_off_the_table(self, status: Status) -> None:
        referral = referral_in(status)
        with pytest.raises(IllegalTransition):
            await move(
                None,  # type: ignore[arg-type]  # refused before the session is touched
                referral,
                to=Status.CANCELLED,
                reason=ReasonCode.CONSENT_WITHDRAWN,
                by=None,
                now=datetime.now(UTC),
                action="referral.cancelled",
                request_id=None,
                details=None,
                notify=(),
            )
        assert (referral.status, referral.version, referral.closed_at) == (str(status), 1, None)


def chain(n: int) -> list[AuditEvent]:
    rows, previous = [], GENESIS_HASH
    start = datetime(2026, 11, 25, tzinfo=UTC)
    for i in range(1, n + 1):
        row = AuditEvent(
            seq=i,
            id=uuid.uuid4(),
            referral_id=None,
            action=f"a{i}",
            actor_client_id="c",
            actor_org_id="o",
            actor_roles=["host_office"],
            request_id=None,
            details={"i": i},
            at=start + timedelta(seconds=i),
            prev_hash=previous,
        )
        row.hash = audit_hash(row)
        previous = row.hash
        rows.append(row)
    return rows


class TestAuditChain:
    def test_an_untouched_chain_verifies(self) -> None:
        rows = chain(10)
        assert verify_chain(rows, head_hash=rows[-1].hash) is None

    def test_an_edited_row_is_named(self) -> None:
        rows = chain(10)
        rows[4].details = {"i": 999}
        found = verify_chain(rows)
        assert found is not None and found.seq == 5 and "edited" in found.reason

    def test_a_deleted_row_is_named_by_its_successor(self) -> None:
        rows = chain(10)
        del rows[3]
        found = verify_chain(rows)
        assert found is not None and found.seq == 5

    def test_reordered_rows_are_detected(self) -> None:
        rows = chain(10)
        rows[2], rows[3] = rows[3], rows[2]
        found = verify_chain(rows)
        assert found is not None and found.seq == 4

    def test_an_inserted_row_is_named(self) -> None:
        rows = chain(10)
        forged = chain(1)[0]
        forged.seq = 99
        rows.insert(6, forged)
        found = verify_chain(rows)
        assert found is not None and found.seq == 99

    def test_a_truncated_tail_is_detected_against_the_head(self) -> None:
        rows = chain(10)
        found = verify_chain(rows[:8], head_hash=rows[-1].hash)
        assert found is not None and found.seq == 9
