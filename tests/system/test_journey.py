"""Full journeys through the gateway against real service processes: what each party can read."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from services import demo
from shared.client import RefexClient, RefexError, open_payload
from shared.crypto import CryptoError
from shared.demo import (
    COORDINATOR_ORG,
    DEMO_CLIENTS_FILE,
    DEMO_HEALTH_SERVICE,
    DEMO_KEYS_DIR,
    EU_PROGRAMME,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    MENTAL_HEALTH_ORG,
    SAHEL_PROGRAMME,
    SECOND_HOST_OFFICE_ORG,
)
from tests.system.conftest import RunningStack

pytestmark = pytest.mark.system


@pytest.fixture
def journey(running_stack: RunningStack) -> Iterator[demo.Journey]:
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

    def test_the_demo_cost_split_reaches_the_payers_through_the_gateway(
        self, journey: demo.Journey
    ) -> None:
        referral = demo.step_referral(journey)
        demo.step_costs(journey, referral)
        cost = journey.clients["coordinator"].get(f"referrals/{referral['id']}/costs")
        shares = {s["payer_org_id"]: (s["amount"], s["status"]) for s in cost["shares"]}
        assert shares == {
            str(HEALTH_PROVIDER_ORG): ("20.00", "pledged"),
            str(HOST_OFFICE_ORG): ("400.00", "paid"),
            str(COORDINATOR_ORG): ("204.00", "pledged"),
        }
        assert (cost["actual_amount"], cost["uncovered_amount"]) == ("700.00", "76.00")
        with pytest.raises(RefexError) as caught:
            journey.clients["host_office_2"].get(f"referrals/{referral['id']}/costs")
        assert caught.value.status == 404
        report = journey.clients["auditor"].get("referrals/reports/costs")
        assert [t["currency"] for t in report["totals"]] == ["EUR"]

    def test_the_returnees_path_reaches_each_party_through_the_gateway(
        self, journey: demo.Journey
    ) -> None:
        plan = demo.step_return_path(journey)
        [linked] = [i for i in plan["items"] if i["referral_id"]]
        assert linked["status"] == "referred" and linked["start_after"]
        seen = journey.clients["provider"].get(f"referrals/plans/{plan['id']}")
        assert [i["id"] for i in seen["items"]] == [linked["id"]]
        with pytest.raises(RefexError) as hidden:
            journey.clients["auditor"].get("referrals/open/followed")
        assert hidden.value.status == 403

    def test_origin_partners_refer_locally_and_pass_cases_on(self, journey: demo.Journey) -> None:
        local = demo.step_local(journey)
        assert local["pathway"] == "local"
        assert local["sender_org_id"] == str(HEALTH_PROVIDER_ORG)
        assert local["recipient_org_id"] == str(MENTAL_HEALTH_ORG)
        first, onward = demo.step_onward(journey)
        assert first["status"] == "completed" and first["outcome"] == "referred-elsewhere"
        assert first["passed_on"]["referral_id"] == onward["id"]
        assert onward["based_on"] == first["id"]
        assert set(onward["shared_categories"]) <= set(first["shared_categories"])
        with pytest.raises(RefexError) as caught:
            journey.clients["host_office"].get(f"referrals/{onward['id']}")
        assert caught.value.status == 404
        bundle = journey.clients["provider"].get(f"referrals/{onward['id']}/fhir")
        request = bundle["entry"][0]["resource"]
        assert request["basedOn"] == [{"reference": f"ServiceRequest/{first['id']}"}]

    def test_reports_by_programme_reach_partners_through_the_gateway(
        self, journey: demo.Journey
    ) -> None:
        referral = demo.step_referral(journey)
        assert referral["programme"] == EU_PROGRAMME
        programmes = journey.clients["provider"].get("directory/programmes")["items"]
        assert {EU_PROGRAMME, SAHEL_PROGRAMME} <= {p["code"] for p in programmes}
        report = journey.clients["auditor"].get(
            "referrals/reports", period="year", group_by="programme"
        )
        assert EU_PROGRAMME in {r["group"]["programme"] for r in report["rows"]}
        sahel = journey.clients["provider"].get(
            "referrals", box="received", programme=SAHEL_PROGRAMME, limit=200
        )
        assert sahel["items"] == []
        inbox = journey.clients["provider"].get(
            "referrals", box="received", programme=EU_PROGRAMME, limit=200
        )
        assert referral["id"] in {r["id"] for r in inbox["items"]}

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
            journey.clients["host_office"].post(
                "referrals",
                {
                    "service_id": str(DEMO_HEALTH_SERVICE),
                    "subject_ref": "too short",
                    "requested_categories": ["identity.basic"],
                    "casefile": {},
                },
            )
        assert caught.value.status == 422
        assert caught.value.problem["errors"]
        after = journey.clients["host_office"].get("referrals", box="sent", limit=200)
        assert len(after["items"]) == len(before["items"])

    def test_credentials_file_has_a_client_per_role(self, running_stack: RunningStack) -> None:
        clients = orjson.loads(DEMO_CLIENTS_FILE.read_bytes())
        assert {
            "host_office",
            "provider",
            "coordinator",
            "mental_health_professional",
            "auditor",
            "admin",
        } <= set(clients)
        with RefexClient(
            running_stack.base_url,
            clients["auditor"]["client_id"],
            clients["auditor"]["client_secret"],
        ) as auditor:
            assert auditor.token()


README = Path(__file__).resolve().parents[2] / "README.md"


def guide_blocks() -> list[tuple[str, str]]:
    """The (language, code) blocks of the README's user guide, in order."""
    text = README.read_text()
    section = text[text.index("## Using refex") : text.index("## The `refex` command")]
    return [
        (m.group(1), m.group(2))
        for m in re.finditer(r"```(bash|python)\n(.*?)```", section, flags=re.S)
    ]


class TestReadmeExamples:
    def test_the_guide_has_shell_and_python_examples(self) -> None:
        languages = [language for language, _ in guide_blocks()]
        assert languages.count("bash") >= 5 and languages.count("python") >= 3

    def test_every_guide_example_runs_against_the_stack(self, running_stack: RunningStack) -> None:
        refex = str(Path(sys.executable).parent / "refex")
        local = {"http://127.0.0.1:8000": running_stack.base_url, ".venv/bin/refex": refex}
        sdk = README.parent / "clients" / "python" / "src"  # the README's Python uses the SDK
        env = {
            **os.environ,
            "REFEX_URL": running_stack.base_url,
            "PYTHONPATH": f"{README.parent}{os.pathsep}{sdk}",
        }
        script = "\n".join(code for language, code in guide_blocks() if language == "bash")
        for old, new in local.items():
            script = script.replace(old, new)
        shell = subprocess.run(
            ["bash", "-c", f"set -euo pipefail\n{script}"],
            cwd=running_stack.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shell.returncode == 0, shell.stdout[-1500:] + shell.stderr[-3000:]
        clients = orjson.loads(DEMO_CLIENTS_FILE.read_bytes())["host_office"]
        env.update(
            REFEX_CLIENT_ID=clients["client_id"], REFEX_CLIENT_SECRET=clients["client_secret"]
        )
        for language, code in guide_blocks():
            if language == "python":
                run = subprocess.run(
                    [sys.executable, "-c", code],
                    cwd=running_stack.workdir,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert run.returncode == 0, f"{code[:200]}\n{run.stderr[-2000:]}"
