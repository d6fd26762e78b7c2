"""Full journeys through the gateway against real service processes: what each party can read."""

from __future__ import annotations

import orjson
import pytest

from services import demo
from shared.client import RefexClient, RefexError, open_payload
from shared.crypto import CryptoError
from shared.demo import (
    DEMO_CLIENTS_FILE,
    DEMO_HEALTH_SERVICE,
    DEMO_KEYS_DIR,
    HEALTH_PROVIDER_ORG,
    SECOND_HOST_OFFICE_ORG,
)
from tests.system.conftest import RunningStack

pytestmark = pytest.mark.system


@pytest.fixture
def journey(running_stack: RunningStack) -> demo.Journey:
    journey = demo.Journey(running_stack.base_url)
    yield journey
    journey.close()


def private_key(org: object) -> dict[str, object]:
    return orjson.loads((DEMO_KEYS_DIR / f"{org}.jwk").read_bytes())


class TestJourney:
    def test_the_demo_journey_runs_end_to_end(self, journey: demo.Journey) -> None:
        demo.step_directory(journey)
        referral = demo.step_referral(journey)
        demo.step_emergency(journey)
        demo.step_withdrawal(journey)
        demo.step_audit(journey)
        final = journey.clients["host_office"].get(f"referrals/{referral['id']}")
        assert final["status"] == "completed"
        assert final["outcome"] == "got-help"

    def test_only_sender_and_recipient_can_read_and_auditors_see_no_payload(
        self, journey: demo.Journey
    ) -> None:
        referral = demo.step_referral(journey)
        path = f"referrals/{referral['id']}"
        provider_view = journey.clients["provider"].get(path)
        casefile = open_payload(provider_view, private_key(HEALTH_PROVIDER_ORG))
        assert "health_mental" not in casefile and "identity_documents" not in casefile
        assert journey.clients["auditor"].get(path)["payload"] is None
        with pytest.raises(RefexError) as caught:
            journey.clients["host_office_2"].get(path)
        assert caught.value.status == 404
        with pytest.raises(CryptoError):
            open_payload(provider_view, private_key(SECOND_HOST_OFFICE_ORG))

    def test_bad_input_through_the_gateway_is_a_problem_and_stores_nothing(
        self, journey: demo.Journey
    ) -> None:
        before = journey.clients["host_office"].get("referrals", box="sent", limit=200)
        with pytest.raises(RefexError) as caught:
            journey.clients["host_office"].post("referrals", {
                "service_id": str(DEMO_HEALTH_SERVICE), "subject_ref": "too short",
                "requested_categories": ["identity.basic"], "casefile": {}})
        assert caught.value.status == 422
        assert caught.value.problem["errors"]
        after = journey.clients["host_office"].get("referrals", box="sent", limit=200)
        assert len(after["items"]) == len(before["items"])

    def test_credentials_file_has_a_client_per_role(self, running_stack: RunningStack) -> None:
        clients = orjson.loads(DEMO_CLIENTS_FILE.read_bytes())
        assert {"host_office", "provider", "coordinator", "mental_health_professional",
                "auditor", "admin"} <= set(clients)
        with RefexClient(running_stack.base_url, clients["auditor"]["client_id"],
                         clients["auditor"]["client_secret"]) as auditor:
            assert auditor.token()
