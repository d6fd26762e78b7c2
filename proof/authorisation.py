"""Authorisation matrix: every gateway operation x role x own/foreign object, expected status.

`proof/authorisation.yaml` is the reviewed table. `python -m proof.authorisation --skeleton URL`
adds an entry (with empty expectations) for every operation of the gateway's merged OpenAPI that
has none, so a new operation fails the suite until someone decides who may call it;
`--record URL` fills empty cells from what a running stack answers, for review before commit.
"""

from __future__ import annotations

import argparse
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from proof.harness import ProofStack
from shared.client import RefexClient
from shared.demo import (
    DEMO_HEALTH_SERVICE,
    DEMO_MENTAL_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    MENTAL_HEALTH_ORG,
    SECOND_HOST_OFFICE_ORG,
)

MATRIX_FILE = Path(__file__).with_name("authorisation.yaml")
ROLES = ("host_office", "provider", "coordinator", "mental_health_professional", "auditor", "admin")
# Roles bound to one organisation: they must never read or change another organisation's objects.
ORG_SCOPED_ROLES = ("host_office", "provider", "coordinator", "mental_health_professional")
# Objects only their organisations may see (the directory and ledger proofs are public to partners).
PRIVATE_KINDS = ("referral", "consent", "override", "subject", "client")
# Cross-organisation access the design grants: a clinician attests any office's override.
BY_DESIGN = {("override", "mental_health_professional")}
METHODS = ("get", "post", "put", "patch", "delete")
KIND_OF_PARAM = {
    "referral_id": "referral", "consent_id": "consent", "override_id": "override",
    "org_id": "organisation", "kid": "key", "service_id": "service",
    "focal_point_id": "focal_point", "agreement_id": "agreement", "client_id": "client",
    "subject_ref": "subject", "open_id": "open_referral", "event_id": "event", "index": "index",
    "user_id": "user",
}  # fmt: skip
STALE_ETAG = '"999999"'  # writes never land: an allowed caller gets 412, not a changed object


def operations(spec: dict[str, Any]) -> list[str]:
    """Every operation of an OpenAPI document as 'METHOD /path'."""
    return [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    ]


def object_kind(operation: str) -> str:
    """The kind of object an operation's path names (its last path parameter), or 'none'."""
    params = [p.strip("{}") for p in operation.split(" ", 1)[1].split("/") if p.startswith("{")]
    return KIND_OF_PARAM.get(params[-1], "unknown") if params else "none"


def load_matrix(path: Path = MATRIX_FILE) -> dict[str, Any]:
    """The reviewed matrix (operation → entry)."""
    if not path.exists():
        return {}
    loaded: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    return loaded


def skeleton(spec: dict[str, Any], existing: dict[str, Any]) -> dict[str, Any]:
    """The matrix with an empty entry added for every operation that has none."""
    matrix = dict(existing)
    for operation in operations(spec):
        if operation not in matrix:
            columns = ("any",) if object_kind(operation) == "none" else ("own", "foreign")
            matrix[operation] = {
                "object": object_kind(operation),
                "expect": {role: dict.fromkeys(columns) for role in ROLES},
            }
    return matrix


def save_matrix(matrix: dict[str, Any], path: Path = MATRIX_FILE) -> None:
    """Write the matrix, one operation per block, in the OpenAPI's order."""
    header = (
        "# Authorisation matrix: operation -> object kind, optional request (body, query),\n"
        "# and per role the expected status on an object of the caller's own organisation\n"
        "# ('own') and of another organisation ('foreign'); 'any' where the path names no\n"
        "# object. Skeleton from `python -m proof.authorisation --skeleton`, reviewed by hand.\n"
    )
    path.write_text(header + yaml.safe_dump(matrix, sort_keys=False, width=100))


@dataclass
class Objects:
    """Ids of objects each role owns and does not own, created on the stack at set-up."""

    ids: dict[str, dict[str, dict[str, dict[str, str]]]] = field(default_factory=dict)

    def params(self, kind: str, role: str, column: str) -> dict[str, str]:
        """Path parameters naming the `column` object of `kind` for `role`."""
        if kind in ("open_referral", "event"):
            return {"open_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4())}
        if kind == "index":
            return {"index": "0"}
        if kind == "none":
            return {}
        return self.ids[kind][role][column]


def _consent(client: RefexClient, org: object) -> dict[str, Any]:
    until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    consent: dict[str, Any] = client.post("consents", {
        "subject_ref": f"authz-{secrets.token_hex(8)}", "grantor": "self",
        "grantee": {"kind": "organisation", "org_id": str(org)}, "purpose": "referral",
        "categories": ["identity.basic", "contact"], "valid_until": until, "language": "en",
        "evidence": {"method": "written", "form_sha256": secrets.token_hex(32)},
    })  # fmt: skip
    return consent


def _referral(client: RefexClient, subject: str, service: object) -> dict[str, Any]:
    referral: dict[str, Any] = client.post("referrals", {
        "service_id": str(service), "subject_ref": subject,
        "requested_categories": ["identity.basic", "contact"],
        "casefile": {"identity_basic": {"given_name": "Test"}}})  # fmt: skip
    return referral


def _override(
    client: RefexClient,
    subject: str,
    org: object = MENTAL_HEALTH_ORG,
    service: object = DEMO_MENTAL_HEALTH_SERVICE,
) -> dict[str, Any]:
    override: dict[str, Any] = client.post("overrides", {
        "subject_ref": subject, "recipient_org_id": str(org), "service_id": str(service),
        "categories": ["identity.basic"],
        "statement": "Acute risk reported by phone."})  # fmt: skip
    return override


def _second_office_agreement(admin: RefexClient) -> None:
    """Let the second host office refer to the psychosocial NGO (overrides too)."""
    now = datetime.now(UTC)
    admin.post("directory/agreements", {
        "sender_org_id": str(SECOND_HOST_OFFICE_ORG), "provider_org_id": str(MENTAL_HEALTH_ORG),
        "service_categories": ["mental_health_psychosocial"],
        "permitted_categories": ["identity.basic", "contact", "health.mental"],
        "purpose": "referral", "retention_days": 365, "emergency_override_allowed": True,
        "valid_from": (now - timedelta(days=1)).isoformat(),
        "valid_until": (now + timedelta(days=365)).isoformat(),
        "programme": "proof", "document_sha256": secrets.token_hex(32)})  # fmt: skip


def build_objects(stack: ProofStack) -> Objects:
    """Each host office records a consent, an override and a referral; directory ids found."""
    creds = stack.credentials()
    orgs = {role: creds[role]["org_id"] for role in ROLES}
    with (
        stack.client("host_office") as host,
        stack.client("host_office_2") as host2,
        stack.client("admin") as admin,
    ):
        _second_office_agreement(admin)
        mine, theirs = _consent(host, HEALTH_PROVIDER_ORG), _consent(host2, MENTAL_HEALTH_ORG)
        own_referral = _referral(host, mine["subject_ref"], DEMO_HEALTH_SERVICE)
        # The matrix withdraws its own consent: not the one its own referral rests on (that
        # would cancel the referral in the background while the matrix still works on it).
        mine = _consent(host, HEALTH_PROVIDER_ORG)
        foreign_referral = _referral(host2, theirs["subject_ref"], DEMO_MENTAL_HEALTH_SERVICE)
        own_override = _override(host, mine["subject_ref"])
        foreign_override = _override(host2, theirs["subject_ref"])
        # Overrides addressed to the psychosocial NGO are its clinicians' to attest: for them
        # the foreign one is addressed to the clinic.
        clinic_override = _override(host, mine["subject_ref"], HEALTH_PROVIDER_ORG,
                                    DEMO_HEALTH_SERVICE)  # fmt: skip
        throwaway = httpx.post(
            f"{stack.base_url}/admin/clients", trust_env=False,
            headers={"Authorization": f"Bearer {admin.token()}"},
            json={"name": "authorisation matrix", "org_id": orgs["admin"], "roles": ["auditor"]},
        ).json()["client"]  # fmt: skip
        people = {org: _throwaway_user(stack, admin.token(), org)
                  for org in {*orgs.values(), str(SECOND_HOST_OFFICE_ORG)}}  # fmt: skip
        focal = admin.get("directory/focal-points", limit=200)["items"]
        agreements = admin.get("directory/agreements", limit=200)["items"]
        keys = {org: admin.get(f"directory/organisations/{org}/keys")
                for org in {*orgs.values(), str(SECOND_HOST_OFFICE_ORG)}}  # fmt: skip
    objects = Objects()
    for role in ROLES:
        org = orgs[role]
        table = {
            "organisation": ({"org_id": org}, {"org_id": str(SECOND_HOST_OFFICE_ORG)}),
            "key": (
                {"org_id": org, "kid": _first(keys[org], "kid", "none")},
                {"org_id": str(SECOND_HOST_OFFICE_ORG),
                 "kid": _first(keys[str(SECOND_HOST_OFFICE_ORG)], "kid", "none")},
            ),
            "service": (
                {"service_id": str(DEMO_MENTAL_HEALTH_SERVICE if org == str(MENTAL_HEALTH_ORG)
                                    else DEMO_HEALTH_SERVICE)},
                {"service_id": str(DEMO_HEALTH_SERVICE if org == str(MENTAL_HEALTH_ORG)
                                   else DEMO_MENTAL_HEALTH_SERVICE)},
            ),
            "focal_point": _split(focal, org, "focal_point_id", ("organisation_id",)),
            "agreement": _split(agreements, org, "agreement_id",
                                ("sender_org_id", "provider_org_id")),
            # Only the sender and recipient organisations are party to a referral.
            "referral": ({"referral_id": own_referral["id"]},
                         {"referral_id": foreign_referral["id"]}),
            "consent": ({"consent_id": mine["id"]}, {"consent_id": theirs["id"]}),
            "override": ({"override_id": own_override["id"]},
                         {"override_id": foreign_override["id"]}),
            "subject": ({"subject_ref": mine["subject_ref"]},
                        {"subject_ref": theirs["subject_ref"]}),
            "client": (
                {"client_id": throwaway["client_id"] if role == "admin"
                 else creds[role]["client_id"]},
                {"client_id": creds["host_office_2"]["client_id"]},
            ),
            "user": ({"user_id": people[org]}, {"user_id": people[str(SECOND_HOST_OFFICE_ORG)]}),
        }  # fmt: skip
        if role == "mental_health_professional":
            table["override"] = (table["override"][0], {"override_id": clinic_override["id"]})
        for kind, (own, foreign) in table.items():
            objects.ids.setdefault(kind, {})[role] = {"own": own, "foreign": foreign}
    return objects


def _throwaway_user(stack: ProofStack, admin_token: str, org: str) -> str:
    """An account of `org` the matrix may disable, re-password and sign out."""
    body = {"org_id": org, "roles": ["auditor"], "display_name": "authorisation matrix",
            "email": f"matrix-{secrets.token_hex(6)}@proof.example"}  # fmt: skip
    answer = httpx.post(
        f"{stack.base_url}/admin/users", json=body, trust_env=False,
        headers={"Authorization": f"Bearer {admin_token}"},
    )  # fmt: skip
    answer.raise_for_status()
    return str(answer.json()["user"]["user_id"])


def _first(items: list[dict[str, Any]], key: str, default: str) -> str:
    return str(items[0][key]) if items else default


def _split(
    items: list[dict[str, Any]], org: str, param: str, owners: tuple[str, ...]
) -> tuple[dict[str, str], dict[str, str]]:
    def owned(item: dict[str, Any]) -> bool:
        return any(str(item.get(o)) == org for o in owners)

    own = next((i for i in items if owned(i)), items[0])
    foreign = next(i for i in items if not owned(i))
    return {param: str(own["id"])}, {param: str(foreign["id"])}


def _example(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """A minimal body from the schema's field examples (required fields only)."""
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    if "$ref" in schema:
        return _example(components[schema["$ref"].rsplit("/", 1)[1]], components)
    if "anyOf" in schema:
        return _example(schema["anyOf"][0], components)
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: _example(props[k], components) for k in schema.get("required", [])}
    defaults: dict[str, Any] = {"string": "x", "integer": 1, "boolean": True, "array": []}
    return defaults.get(str(schema.get("type")), "x")


def request_for(
    operation: str, entry: dict[str, Any], spec: dict[str, Any], params: dict[str, str]
) -> dict[str, Any]:
    """Method, URL path, query, body and headers for one cell."""
    method, template = operation.split(" ", 1)
    item = spec["paths"][template][method.lower()]
    path = template.format(**{p: params.get(p, str(uuid.uuid4())) for p in _names(template)})
    query = dict(entry.get("query") or {})
    for parameter in item.get("parameters", []):
        if (
            parameter["in"] == "query"
            and parameter.get("required")
            and parameter["name"] not in query
        ):
            query[parameter["name"]] = _example(parameter["schema"], spec["components"]["schemas"])
    body = entry.get("body")
    if body is None and "requestBody" in item:
        content = item["requestBody"]["content"]
        if "application/json" in content:
            body = _example(content["application/json"]["schema"], spec["components"]["schemas"])
    headers = {"If-Match": STALE_ETAG} if method in ("PATCH", "DELETE", "PUT") else {}
    return {"method": method, "url": path, "params": query, "json": body, "headers": headers}


def _names(template: str) -> list[str]:
    return [p.strip("{}") for p in template.split("/") if p.startswith("{")]


def execute(
    stack: ProofStack, spec: dict[str, Any], matrix: dict[str, Any], objects: Objects
) -> list[dict[str, Any]]:
    """Call every cell (foreign columns first, so own-object writes come last)."""
    tokens = {role: _token(stack, role) for role in ROLES}
    cells: list[dict[str, Any]] = []
    with httpx.Client(base_url=stack.base_url, trust_env=False, timeout=30) as http:
        for column in ("foreign", "any", "own"):
            for operation, entry in matrix.items():
                for role in ROLES:
                    if column not in entry["expect"][role]:
                        continue
                    params = objects.params(entry["object"], role, column)
                    request = request_for(operation, entry, spec, params)
                    request["headers"]["Authorization"] = f"Bearer {tokens[role]}"
                    response = http.request(**request)
                    cells.append({
                        "operation": operation, "role": role, "column": column,
                        "kind": entry["object"], "expected": entry["expect"][role][column],
                        "status": response.status_code, "items": _items(response),
                    })  # fmt: skip
    return cells


def _items(response: httpx.Response) -> int | None:
    """How many items a successful list answer holds (None for anything else)."""
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return None
    body = response.json()
    return len(body["items"]) if isinstance(body, dict) and "items" in body else None


def _token(stack: ProofStack, role: str) -> str:
    with stack.client(role) as client:
        return client.token()


def cross_organisation(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cells where an organisation-bound role read or changed another organisation's object."""
    return [
        c
        for c in cells
        if c["column"] == "foreign"
        and c["role"] in ORG_SCOPED_ROLES
        and c["kind"] in PRIVATE_KINDS
        and c["status"] < 400
        and c["items"] != 0  # an empty list of someone else's subject reveals nothing
        and (c["kind"], c["role"]) not in BY_DESIGN
    ]


def mismatches(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cells whose status differs from the matrix."""
    return [c for c in cells if c["status"] != c["expected"]]


def record(cells: list[dict[str, Any]], matrix: dict[str, Any]) -> dict[str, Any]:
    """Fill every empty cell with the status seen (for review)."""
    for cell in cells:
        slot = matrix[cell["operation"]]["expect"][cell["role"]]
        if slot.get(cell["column"]) is None:
            slot[cell["column"]] = cell["status"]
    return matrix


def main() -> None:
    """Add missing operations to the matrix (--skeleton) or fill empty cells (--record)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skeleton", action="store_true")
    parser.add_argument("--record", action="store_true")
    arguments = parser.parse_args()
    import tempfile

    from proof.harness import running_stack

    with running_stack("sqlite", Path(tempfile.mkdtemp(prefix="refex-authz-"))) as stack:
        spec = stack.openapi()
        matrix = skeleton(spec, load_matrix())
        if arguments.record:
            matrix = record(execute(stack, spec, matrix, build_objects(stack)), matrix)
        save_matrix(matrix)
    print(f"{MATRIX_FILE}: {len(matrix)} operations")


if __name__ == "__main__":
    main()
