"""`refex demo`: one referral journey end to end through the public API, as each party sees it.

It talks only to the gateway with the demo clients `make run` seeded (var/demo/clients.json) and
decrypts with the demo organisations' private keys (var/demo/keys/, demo only).
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from shared.client import RefexClient, RefexError, open_note, open_payload
from shared.demo import (
    DEMO_CLIENTS_FILE,
    DEMO_HEALTH_SERVICE,
    DEMO_KEYS_DIR,
    DEMO_MENTAL_HEALTH_SERVICE,
    DEMO_USERS,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    MENTAL_HEALTH_ORG,
)
from shared.i18n import N_, _l, current_language, gettext

console = Console()
WITHDRAWAL_WAIT_S = 20.0
CASEFILE = {
    "identity_basic": {
        "given_name": "Amina",
        "family_name": "Bello",
        "date_of_birth": "1994-03-12",
        "preferred_language": "ha",
    },
    "identity_documents": {"documents": [{"document_type": "passport", "number": "A01234567"}]},
    "contact": {"phone": "+234 803 555 0101", "preferred_channel": "whatsapp"},
    "return_travel": {"return_date": "2026-12-02", "point_of_entry": "Lagos airport"},
    "health_physical": {"conditions": ["type 2 diabetes"], "medication": ["metformin"]},
    "health_mental": {"psychosocial_needs": ["sleep problems"]},
    "protection": {"concerns": ["debt to smugglers"]},
}


class Journey:
    """The demo's clients, one per party, and how it narrates each call."""

    def __init__(self, base_url: str) -> None:
        creds = orjson.loads(DEMO_CLIENTS_FILE.read_bytes())
        self.clients = {
            role: RefexClient(base_url, c["client_id"], c["client_secret"])
            for role, c in creds.items()
        }

    def call(self, role: str, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """Make one call as `role`, printing it the way a caseworker would read it."""
        console.print(f"[dim]{role:>28}[/]  [bold]{method}[/] /api/v1/{path}")
        response = self.clients[role].request(
            method,
            path,
            json=body,
            params=params or None,
            headers={"Accept-Language": current_language()},  # answers in the demo's language
        )
        return response.json() if response.content else None

    def close(self) -> None:
        """Close every client."""
        for client in self.clients.values():
            client.close()


def _key(org: object) -> dict[str, Any]:
    key: dict[str, Any] = orjson.loads((DEMO_KEYS_DIR / f"{org}.jwk").read_bytes())
    return key


def _pseudonym() -> str:
    return f"demo-{secrets.token_hex(10)}"


def _consent(
    journey: Journey,
    subject: str,
    org: object,
    categories: list[str],
    *,
    role: str = "host_office",
) -> Any:
    until = (datetime.now(UTC) + timedelta(days=180)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return journey.call(
        role,
        "POST",
        "consents",
        {
            "subject_ref": subject,
            "grantor": "self",
            "grantee": {"kind": "organisation", "org_id": str(org)},
            "purpose": "referral",
            "categories": categories,
            "valid_until": until,
            "language": "ha",
            "evidence": {"method": "written", "form_sha256": secrets.token_hex(32)},
        },
    )


def _show_sharing(referral: dict[str, Any]) -> None:
    table = Table(gettext("category"), gettext("shared?"), gettext("why not"))
    for category in referral["shared_categories"]:
        table.add_row(category, "[green]" + gettext("shared") + "[/]", "")
    for withheld in referral["withheld"]:
        table.add_row(
            withheld["category"], "[red]" + gettext("withheld") + "[/]", withheld["reason"]
        )
    console.print(table)
    for warning in referral["warnings"]:
        console.print("[yellow]" + gettext("warning:") + f"[/] {warning}")


def step_directory(journey: Journey) -> None:
    """An admin checks the directory."""
    console.rule(gettext("1. The directory (admin)"))
    hits = journey.call(
        "admin", "GET", "directory/services/search", category="health", country="NG", limit=5
    )
    for hit in hits["items"]:
        names = hit.get("name") or {}
        name = names.get(current_language()) or names.get("en") or next(iter(names.values()), "")
        console.print(f"  {hit['id']}  {name}")
    _show_programmes(journey)
    agreement = journey.call(
        "admin",
        "GET",
        "directory/agreements/resolve",
        sender_org=str(HOST_OFFICE_ORG),
        service_id=str(DEMO_HEALTH_SERVICE),
        purpose="referral",
    )["agreement"]
    console.print(
        "  "
        + _l(
            "SOP v{version} permits: {categories}",
            version=agreement["version"],
            categories=", ".join(agreement["permitted_categories"]),
        ).render()
    )


def _show_programmes(journey: Journey) -> None:
    """The programmes agreements and referrals belong to."""
    programmes = journey.call("admin", "GET", "directory/programmes")["items"]
    table = Table(gettext("programme"), gettext("donor"), gettext("host → origin countries"))
    for programme in programmes:
        countries = f"{', '.join(programme['host_countries'])} → "
        table.add_row(
            programme["code"],
            programme["donor"] or "-",
            countries + ", ".join(programme["origin_countries"]),
        )
    console.print(table)


def _show_report(journey: Journey) -> None:
    """This year's referrals by programme, small counts suppressed as partners would publish."""
    report = journey.call(
        "auditor", "GET", "referrals/reports", period="year", group_by="programme"
    )
    table = Table(
        gettext("year"),
        gettext("programme"),
        gettext("sent"),
        gettext("acknowledged on time"),
        gettext("median hours to acknowledge"),
    )
    for row in [*report["rows"], report["total"]]:
        table.add_row(
            str(row["period"]),
            str(row["group"].get("programme") or "-"),
            str(row["sent"]),
            str(row["acknowledged_on_time"]),
            str(row["median_hours_to_acknowledge"] or "-"),
        )
    console.print(table)
    console.print(
        "  "
        + _l(
            'counts under {threshold} show as "<5"; the same report as CSV: '
            "referrals/reports?format=csv, printable: ?format=html",
            threshold=report["threshold"],
        ).render()
    )


def step_referral(journey: Journey) -> dict[str, Any]:
    """A host office records consent and refers; the provider works the referral."""
    console.rule(
        gettext("2. Consent, then a referral asking for more than the SOP allows (host office)")
    )
    subject = _pseudonym()
    _consent(
        journey,
        subject,
        HEALTH_PROVIDER_ORG,
        ["identity.basic", "contact", "health.physical", "health.mental"],
    )
    referral = journey.call(
        "host_office",
        "POST",
        "referrals",
        {
            "service_id": str(DEMO_HEALTH_SERVICE),
            "subject_ref": subject,
            "requested_categories": [
                "identity.basic",
                "identity.documents",
                "contact",
                "health.physical",
                "health.mental",
            ],
            "casefile": CASEFILE,
        },
    )
    _show_sharing(referral)
    console.rule(gettext("3. The provider's side"))
    inbox = journey.call("provider", "GET", "referrals", box="received", status="requested")
    console.print("  " + _l("inbox: {count} new referral(s)", count=len(inbox["items"])).render())
    full = journey.call("provider", "GET", f"referrals/{referral['id']}")
    console.print(
        Panel(
            orjson.dumps(
                open_payload(full, _key(HEALTH_PROVIDER_ORG)), option=orjson.OPT_INDENT_2
            ).decode(),
            title=gettext("decrypted locally with the provider's own key"),
        )
    )
    for status in ("received", "accepted", "in-progress"):
        journey.call("provider", "POST", f"referrals/{referral['id']}/status", {"status": status})
    journey.call(
        "provider",
        "POST",
        f"referrals/{referral['id']}/notes",
        {"text": "First appointment on Monday 09:00 at the diabetes clinic."},
    )
    done = journey.call(
        "provider",
        "POST",
        f"referrals/{referral['id']}/status",
        {
            "status": "completed",
            "outcome": "got-help",
            "feedback": {"score": 5, "comment": "Quick appointment, kind staff."},
        },
    )
    notes = journey.call(
        "host_office", "GET", f"referrals/{referral['id']}/notes", include="payload"
    )
    console.print(
        "  "
        + _l(
            "status: [bold]{status}[/], outcome {outcome}; "
            'the host office reads the note: "{note}"',
            status=done["status"],
            outcome=done["outcome"],
            note=open_note(notes[0], _key(HOST_OFFICE_ORG)),
        ).render()
    )
    created: dict[str, Any] = referral
    return created


def step_emergency(journey: Journey) -> None:
    """A life at risk: an override attested by a mental-health professional."""
    console.rule(gettext("4. Life at risk: emergency override (no consent yet)"))
    subject = _pseudonym()
    override = journey.call(
        "host_office",
        "POST",
        "overrides",
        {
            "subject_ref": subject,
            "recipient_org_id": str(MENTAL_HEALTH_ORG),
            "service_id": str(DEMO_MENTAL_HEALTH_SERVICE),
            "categories": ["identity.basic", "contact", "health.mental"],
            "statement": "Returnee expressed intent to self-harm on arrival.",
        },
    )
    journey.call(
        "mental_health_professional",
        "POST",
        f"overrides/{override['id']}/attest",
        {
            "registration_number": "MDCN/2019/44812",
            "duration_hours": 72,
            "statement": "Assessed by phone: acute risk, needs same-day psychosocial support.",
        },
    )
    referral = journey.call(
        "host_office",
        "POST",
        "referrals",
        {
            "service_id": str(DEMO_MENTAL_HEALTH_SERVICE),
            "subject_ref": subject,
            "urgency": "urgent",
            "requested_categories": ["identity.basic", "contact", "health.mental", "protection"],
            "casefile": CASEFILE,
        },
    )
    console.print(
        "  "
        + _l(
            "basis: [bold red]{basis}[/] (flagged: {emergency})",
            basis=referral["basis"],
            emergency=referral["emergency"],
        ).render()
    )
    _show_sharing(referral)


def step_withdrawal(journey: Journey) -> None:
    """The returnee withdraws consent: the active referral is cancelled, both sides told."""
    console.rule(gettext("5. Consent withdrawn: active referral cancelled"))
    subject = _pseudonym()
    consent = _consent(journey, subject, HEALTH_PROVIDER_ORG, ["identity.basic", "contact"])
    referral = journey.call(
        "host_office",
        "POST",
        "referrals",
        {
            "service_id": str(DEMO_HEALTH_SERVICE),
            "subject_ref": subject,
            "requested_categories": ["identity.basic", "contact"],
            "casefile": CASEFILE,
        },
    )
    journey.call(
        "host_office", "POST", f"consents/{consent['id']}/withdraw", {"reason": "returnee_request"}
    )
    deadline = time.monotonic() + WITHDRAWAL_WAIT_S
    while time.monotonic() < deadline:
        seen = journey.clients["provider"].get(f"referrals/{referral['id']}")
        if seen["status"] == "cancelled":
            console.print(
                "  "
                + _l(
                    "provider sees: [bold]cancelled[/] ({reason})", reason=seen["status_reason"]
                ).render()
            )
            return
        time.sleep(0.5)
    raise RuntimeError(gettext("the referral was not cancelled after the withdrawal"))


def step_local(journey: Journey) -> dict[str, Any]:
    """A provider in the country of origin refers to another provider of its area."""
    console.rule(gettext("6. A local referral: the Lagos clinic refers to MindBridge (provider)"))
    subject = _pseudonym()
    _consent(
        journey,
        subject,
        MENTAL_HEALTH_ORG,
        ["identity.basic", "contact", "health.mental"],
        role="provider",
    )
    referral: dict[str, Any] = journey.call(
        "provider",
        "POST",
        "referrals",
        {
            "service_id": str(DEMO_MENTAL_HEALTH_SERVICE),
            "subject_ref": subject,
            "requested_categories": ["identity.basic", "contact", "health.mental"],
            "casefile": CASEFILE,
        },
    )
    console.print(
        "  "
        + _l(
            "pathway: [bold]{pathway}[/], under the clinic's own agreement with MindBridge",
            pathway=referral["pathway"],
        ).render()
    )
    _show_sharing(referral)
    return referral


def step_onward(journey: Journey) -> tuple[dict[str, Any], dict[str, Any]]:
    """The clinic cannot serve the returnee and passes the case on; Berlin sees where it went."""
    console.rule(gettext("7. An onward referral: the clinic passes a case on to MindBridge"))
    subject = _pseudonym()
    _consent(journey, subject, HEALTH_PROVIDER_ORG, ["identity.basic", "contact"])
    first = journey.call(
        "host_office",
        "POST",
        "referrals",
        {
            "service_id": str(DEMO_HEALTH_SERVICE),
            "subject_ref": subject,
            "requested_categories": ["identity.basic", "contact", "health.physical"],
            "casefile": CASEFILE,
        },
    )
    journey.call("provider", "POST", f"referrals/{first['id']}/status", {"status": "received"})
    received = journey.call("provider", "GET", f"referrals/{first['id']}")
    casefile = open_payload(received, _key(HEALTH_PROVIDER_ORG))
    own_subject = _pseudonym()
    _consent(
        journey, own_subject, MENTAL_HEALTH_ORG, ["identity.basic", "contact"], role="provider"
    )
    onward: dict[str, Any] = journey.call(
        "provider",
        "POST",
        f"referrals/{first['id']}/onward",
        {
            "service_id": str(DEMO_MENTAL_HEALTH_SERVICE),
            "subject_ref": own_subject,
            "requested_categories": ["identity.basic", "contact"],
            "casefile": casefile,
        },
    )
    readable = sorted(
        k for k in open_payload(onward, _key(MENTAL_HEALTH_ORG)) if k != "schema_version"
    )
    console.print(
        "  "
        + _l(
            "MindBridge reads only: {sections} (based on {based_on})",
            sections=", ".join(readable),
            based_on=onward["based_on"],
        ).render()
    )
    seen = journey.call("host_office", "GET", f"referrals/{first['id']}")
    console.print(
        "  "
        + _l(
            "Berlin sees: [bold]{status}[/], outcome {outcome}, passed on to organisation "
            "{org} ({category}); the onward referral itself is not Berlin's to read",
            status=seen["status"],
            outcome=seen["outcome"],
            org=seen["passed_on"]["organisation_id"],
            category=seen["passed_on"]["service_category"],
        ).render()
    )
    return seen, onward


def step_audit(journey: Journey) -> None:
    """An auditor checks the consent ledger's proofs and the statistics."""
    from services.consent.merkle import verify_consistency, verify_inclusion

    console.rule(gettext("8. The auditor: ledger proofs and statistics (no personal data)"))
    head = journey.call("auditor", "POST", "ledger/tree-head")
    size = head["tree_size"]
    proof = journey.call("auditor", "GET", f"ledger/entries/{size - 1}/proof", tree_size=size)
    verify_inclusion(
        index=proof["index"],
        size=size,
        leaf=bytes.fromhex(proof["leaf_hash"]),
        proof=[bytes.fromhex(h) for h in proof["audit_path"]],
        root=bytes.fromhex(head["root_hash"]),
    )
    console.print(
        "  "
        + _l(
            "inclusion of entry {index} in the signed tree of {size}: [green]ok[/]",
            index=size - 1,
            size=size,
        ).render()
    )
    if size > 1:
        consistency = journey.call(
            "auditor", "GET", "ledger/consistency", first=size // 2, second=size
        )
        verify_consistency(
            first=size // 2,
            second=size,
            proof=[bytes.fromhex(h) for h in consistency["proof"]],
            first_root=bytes.fromhex(consistency["first_root"]),
            second_root=bytes.fromhex(head["root_hash"]),
        )
        console.print(
            "  "
            + _l(
                "tree of {first} is a prefix of the tree of {size}: [green]ok[/]",
                first=size // 2,
                size=size,
            ).render()
        )
    stats = journey.call("auditor", "GET", "referrals/stats")
    console.print(
        "  "
        + _l(
            "referrals: {total}, by status {by_status}, overdue {overdue}",
            total=stats["total"],
            by_status=stats["by_status"],
            overdue=stats["overdue"],
        ).render()
    )
    _show_report(journey)


def step_partnership(journey: Journey) -> None:
    """The host office follows the country of origin, matches skills; the steward sees a partner."""
    console.rule(gettext("9. Partnership: situation, opportunities, engagement"))
    feed = journey.call("host_office", "GET", "directory/changes/feed", limit=5)
    for item in feed["items"]:
        console.print(f"  [bold]{item['_refex']['event']}[/]  {item['title']}")
    profile = {
        "skills": ["7231"],
        "country": "NG",
        "near": {"latitude": 6.335, "longitude": 5.6037},
        "limit": 3,
    }
    matches = journey.call("host_office", "POST", "directory/opportunities/match", profile)
    for hit in matches["items"]:
        console.print(
            "  "
            + _l(
                "fit {fit} at {distance} km: {title} (refer to service {service})",
                fit=hit["fit"],
                distance=hit["distance_km"],
                title=hit["opportunity"]["title"].get("en", ""),
                service=hit["refer_to_service_id"],
            ).render()
        )
    page = journey.call(
        "admin", "GET", f"directory/organisations/{HEALTH_PROVIDER_ORG}/partner-page"
    )
    for change in reversed(page["engagement"]):
        console.print(
            "  "
            + _l(
                "engagement {old} → {new}: {reason}",
                old=change["from_level"] or "-",
                new=change["to_level"],
                reason=change["reason"] or "",
            ).render()
        )


# The split's codes as the demo shows them.
SHOWN = {
    "fixed": N_("fixed amount"),
    "percentage": N_("percentage"),
    "pledged": N_("pledged"),
    "invoiced": N_("invoiced"),
    "paid": N_("paid"),
}


def _payer_name(journey: Journey, org_id: str, names: dict[str, str]) -> str:
    if org_id not in names:
        org = journey.call("admin", "GET", f"directory/organisations/{org_id}")
        names[org_id] = org["name"].get(current_language()) or org["name"].get("en", org_id)
    return names[org_id]


def _show_split(journey: Journey, cost: dict[str, Any], names: dict[str, str]) -> None:
    table = Table(gettext("payer"), gettext("share"), gettext("amount"), gettext("status"))
    for share in cost["shares"]:
        table.add_row(
            _payer_name(journey, share["payer_org_id"], names),
            gettext(SHOWN[share["basis"]]),
            f"{share['amount']} {share['currency']}",
            gettext(SHOWN[share["status"]]),
        )
    table.add_row(
        gettext("not covered"), "-", f"{cost['uncovered_amount']} {cost['currency']}", "-"
    )
    console.print(table)


def step_costs(journey: Journey, referral: dict[str, Any]) -> None:
    """The office estimates, the clinic records the actual cost, the agreement splits it."""
    console.rule(gettext("10. Cost sharing under the agreement"))
    rules = journey.call(
        "host_office", "GET", f"directory/agreements/{referral['agreement']['id']}"
    )
    for rule in rules["cost_shares"]:
        terms = f"{rule['percentage']} %" if rule["basis"] == "percentage" else rule["fixed_amount"]
        cap = _l(", at most {cap}", cap=rule["cap"]).render() if rule["cap"] else ""
        covers = rule["covers"].get(current_language()) or rule["covers"].get("en", "")
        console.print(f"  {terms} {rule['currency']}{cap}: {covers}")
    path = f"referrals/{referral['id']}/costs"
    journey.call("host_office", "PUT", f"{path}/estimate", {"amount": "250.00", "currency": "EUR"})
    cost = journey.call(
        "provider", "PUT", f"{path}/actual", {"amount": "700.00", "currency": "EUR"}
    )
    names: dict[str, str] = {}
    _show_split(journey, cost, names)
    console.print("  " + cost["rounding"], markup=False)
    office = str(HOST_OFFICE_ORG)
    journey.call(
        "provider", "POST", f"{path}/settlements", {"payer_org_id": office, "status": "invoiced"}
    )
    cost = journey.call(
        "host_office", "POST", f"{path}/settlements", {"payer_org_id": office, "status": "paid"}
    )
    _show_split(journey, cost, names)
    report = journey.call("auditor", "GET", "referrals/reports/costs")
    for total in report["totals"]:
        console.print(
            "  "
            + _l(
                "this year's cost shares in {currency}: {shares} shares, {amount} "
                "(CSV: referrals/reports/costs?format=csv)",
                currency=total["currency"],
                shares=total["shares"],
                amount=total["amount"],
            ).render()
        )


def step_return_path(journey: Journey) -> dict[str, Any]:
    """Sent before departure, due after arrival; the plan shows each party its own part."""
    console.rule(gettext("11. The returnee's path: a pre-departure referral and a plan"))
    subject = _pseudonym()
    _consent(
        journey, subject, HEALTH_PROVIDER_ORG, ["identity.basic", "contact", "health.physical"]
    )
    arrival = datetime.now(UTC) + timedelta(days=14)
    referral = journey.call(
        "host_office",
        "POST",
        "referrals",
        {
            "service_id": str(DEMO_HEALTH_SERVICE),
            "subject_ref": subject,
            "requested_categories": ["identity.basic", "contact", "health.physical"],
            "start_after": arrival.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "casefile": CASEFILE,
        },
    )
    console.print(
        "  "
        + _l(
            "due from {start_after}: acknowledge by {acknowledge_by}, respond by {respond_by}",
            start_after=referral["start_after"],
            acknowledge_by=referral["acknowledge_by"],
            respond_by=referral["respond_by"],
        ).render()
    )
    prepared = journey.call(
        "provider", "POST", f"referrals/{referral['id']}/status", {"status": "received"}
    )
    console.print(
        "  "
        + _l(
            "the clinic prepares before arrival: [bold]{status}[/], nothing overdue",
            status=prepared["status"],
        ).render()
    )
    plan = journey.call(
        "host_office",
        "POST",
        "referrals/plans",
        {
            "subject_ref": subject,
            "expected_return_date": arrival.date().isoformat(),
            "items": [
                {"phase": "pre_departure", "service_category": "legal", "status": "done"},
                {"phase": "arrival", "service_category": "reception"},
                {
                    "phase": "post_return",
                    "service_category": "health",
                    "referral_id": referral["id"],
                },
                {"phase": "community", "service_category": "business_development"},
            ],
        },
    )
    _show_plan(plan)
    seen = journey.call("provider", "GET", f"referrals/plans/{plan['id']}")
    console.print(
        "  "
        + _l(
            "the clinic sees {shown} of the plan's {total} items: its own referral's",
            shown=len(seen["items"]),
            total=len(plan["items"]),
        ).render()
    )
    created: dict[str, Any] = plan
    return created


def _show_plan(plan: dict[str, Any]) -> None:
    table = Table(gettext("phase"), gettext("service"), gettext("status"), gettext("referral"))
    for item in plan["items"]:
        table.add_row(
            item["phase"], item["service_category"], item["status"], item["referral_id"] or "-"
        )
    console.print(table)


def step_open_referral(journey: Journey) -> dict[str, Any]:
    """An open referral (no personal data) waits for Nigeria's coordinator in the workspace."""
    console.rule(gettext("12. An open referral waits for the coordinator (workspace)"))
    routed: dict[str, Any] = journey.call(
        "host_office",
        "POST",
        "referrals/open",
        {
            "service_category": "health",
            "country": "NG",
            "requested_categories": ["identity.basic", "contact"],
        },
    )
    console.print(
        "  "
        + _l(
            "status [bold]{status}[/]: sign in to the workspace as {email} and assign it to a "
            "member provider under Coordinate",
            status=routed["status"],
            email=DEMO_USERS["coordinator"][0],
        ).render()
    )
    return routed


def demo(
    url: Annotated[
        str, typer.Option(envvar="REFEX_URL", help="Gateway base URL.")
    ] = "http://127.0.0.1:8000",
) -> None:
    """Walk one referral journey through the running stack (start it with `make run`)."""
    if not DEMO_CLIENTS_FILE.exists():
        Console(stderr=True, soft_wrap=True).print(
            _l(
                "refex demo: no demo credentials in {file} — start the stack with `make run` first",
                file=DEMO_CLIENTS_FILE,
            ).render(),
            markup=False,
            highlight=False,
        )
        raise typer.Exit(2)
    journey = Journey(url)
    try:
        step_directory(journey)
        referral = step_referral(journey)
        step_emergency(journey)
        step_withdrawal(journey)
        step_local(journey)
        step_onward(journey)
        step_audit(journey)
        step_partnership(journey)
        step_costs(journey, referral)
        step_return_path(journey)
        step_open_referral(journey)
    except RefexError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from None
    finally:
        journey.close()
    console.rule("[green]" + gettext("demo complete") + "[/]")
