"""Open Referral HSDS 3.0 data packages: export the directory, import (validate first, then upsert).

A package is a folder: `organizations.json`, `services.json`, `locations.json`,
`service_at_locations.json` (HSDS 3.0 records, each valid against the official compiled schema)
`refex_programmes.json` and `refex_agreements.json` (programmes and agreements have no HSDS
equivalent), plus CSV copies of the core
HSDS columns (`organizations.csv`, `services.csv`, `locations.csv`, `service_at_location.csv`)
and a `datapackage.json` listing them. What HSDS has no field for travels in an extra field named
`refex` on each record (multilingual names, stakeholder type, country, category, keys, focal
points...; in CSV files a `refex` column holding that JSON). Import reads each JSON file, else its
CSV counterpart; HSDS records without a `refex` block are accepted when they carry what refex
needs (`refex.country`, and `refex.category` for services).
"""

from __future__ import annotations

import csv
import gzip
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import costs, programmes, repository
from services.directory import service as directory
from services.directory.cost_schemas import CostShareCreate
from services.directory.models import (
    Agreement,
    Base,
    CostShare,
    FocalPoint,
    Organisation,
    OrganisationKey,
    Programme,
    Service,
)
from services.directory.schemas import (
    AgreementCreate,
    AgreementRead,
    FocalPointCreate,
    FocalPointRead,
    KeyCreate,
    OrganisationCreate,
    OrganisationRead,
    ProgrammeCreate,
    ProgrammeRead,
    ServiceCreate,
    ServiceRead,
)
from services.directory.shaping import cost_share_read
from shared.auth import Principal
from shared.errors import ServiceError, validation_message
from shared.i18n import DEFAULT, N_, Message, current_language, gettext, localize
from shared.partner_urls import UrlPolicy

SCHEMA_DIR = Path(__file__).resolve().parent / "hsds_schema"
LOCATION_NAMESPACE = uuid.UUID("0192f000-0000-7000-8000-00000000a5d5")
IMPORTER = Principal(
    client_id="hsds-import",
    org_id="hsds-import",
    roles=frozenset({"admin"}),
    scopes=frozenset(),
    token_id="hsds-import",  # noqa: S106 (an id, not a secret)
    expires_at=0,
)
ORGANISATION_FIELDS = (
    "name",
    "description",
    "stakeholder_type",
    "engagement_level",
    "host_office",
    "country",
    "admin_areas",
    "languages",
    "website",
    "email",
    "webhook_url",
    "coordination",
    "coordinator_org_id",
)
SERVICE_FIELDS = (
    "category",
    "name",
    "description",
    "eligibility",
    "fees",
    "languages",
    "capacity",
    "accepting_referrals",
    "country",
    "admin_areas",
    "location",
)


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    # HSDS compiles no standalone location schema; the one inside service_at_location is it.
    source = "service_at_location" if name == "location" else name
    schema = orjson.loads(gzip.decompress((SCHEMA_DIR / f"{source}.json.gz").read_bytes()))
    if name == "location":
        schema = schema["properties"]["location"]
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


WHOLE_RECORD = N_("(record)")  # where a problem is about the record as a whole


def hsds_problems(kind: str, record: Any) -> list[str]:
    """Return what makes `record` invalid against the HSDS 3.0 schema of `kind` (empty: valid)."""
    problems = []
    for error in sorted(_validator(kind).iter_errors(record), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in error.path) or gettext(WHOLE_RECORD)
        problems.append(f"{where}: {_short(schema_message(error))}")
    return problems


# jsonschema's messages for the checks HSDS records fail most, as msgids: English keeps the
# library's own text, other languages get these with the same values.
SCHEMA_MESSAGES: dict[str, str] = {
    "required": N_("{name} is a required property"),
    "additionalProperties": N_("Additional properties are not allowed ({names} unexpected)"),
    "type": N_("{value} is not of type {expected}"),
    "enum": N_("{value} is not one of {allowed}"),
    "format": N_("{value} is not a {format}"),
    "pattern": N_("{value} does not match {pattern}"),
    "minLength": N_("{value} is too short"),
    "maxLength": N_("{value} is too long"),
    "minItems": N_("{value} has too few items"),
    "maxItems": N_("{value} has too many items"),
    "minimum": N_("{value} is less than the minimum of {limit}"),
    "maximum": N_("{value} is greater than the maximum of {limit}"),
    "const": N_("{expected} was expected"),
}
_REQUIRED = re.compile(r"^(.+) is a required property$")
_UNEXPECTED = re.compile(r"\((.+) (?:was|were) unexpected\)$")


def schema_message(error: jsonschema.ValidationError) -> str:
    """What a record breaks, in the reader's language (jsonschema's text when English)."""
    template = SCHEMA_MESSAGES.get(str(error.validator))
    if current_language() == DEFAULT or template is None:
        return error.message
    rule: Any = error.validator_value
    values: dict[str, Any] = {"value": repr(error.instance), "limit": rule}
    if error.validator == "required":
        found = _REQUIRED.match(error.message)
        values["name"] = found.group(1) if found else repr(rule)
    elif error.validator == "additionalProperties":
        found = _UNEXPECTED.search(error.message)
        if found is None:
            return error.message
        values["names"] = found.group(1)
    elif error.validator == "type":
        types = [rule] if isinstance(rule, str) else list(rule)
        values["expected"] = ", ".join(repr(t) for t in types)
    else:
        values.update(
            allowed=repr(rule), format=repr(rule), pattern=repr(rule), expected=repr(rule)
        )
    return Message(template, **values).render()


def _short(message: str) -> str:
    return message if len(message) <= 160 else message[:157] + "..."


def _first(texts: dict[str, str]) -> str:
    return texts.get("en") or next(iter(texts.values()), "")


def _dump(model: type[BaseModel], row: Any, *, skip: Iterable[str] = ()) -> dict[str, Any]:
    values = model.model_validate(row, from_attributes=True).model_dump(mode="json")
    for key in ("row_version", "created_at", "updated_at", *skip):
        values.pop(key, None)
    return values


# Export


@dataclass
class Package:
    """The records of one HSDS data package, by file."""

    organizations: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    locations: list[dict[str, Any]] = field(default_factory=list)
    service_at_locations: list[dict[str, Any]] = field(default_factory=list)
    agreements: list[dict[str, Any]] = field(default_factory=list)
    programmes: list[dict[str, Any]] = field(default_factory=list)


def _organization_record(
    org: Organisation, keys: list[OrganisationKey], focal: list[FocalPoint]
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": str(org.id),
        "name": _first(org.name),
        "description": _first(org.description) or _first(org.name),
        "refex": {
            **_dump(OrganisationRead, org, skip=("id",)),
            "keys": [_key_record(k) for k in keys],
            "focal_points": [_dump(FocalPointRead, fp) for fp in focal],
        },
    }
    if org.email:
        record["email"] = org.email
    if org.website:
        record["website"] = org.website
    return record


def _key_record(key: OrganisationKey) -> dict[str, Any]:
    """A key with its status and provenance (who registered it, whether an admin, confirmed)."""
    author = None
    if key.added_by_client_id is not None:
        author = {
            "client_id": key.added_by_client_id,
            "org_id": key.added_by_org_id,
            "role": key.added_by_role,
        }
    return {
        "jwk": key.jwk,
        "status": key.status,
        "valid_from": key.valid_from.isoformat(),
        "valid_until": key.valid_until.isoformat() if key.valid_until else None,
        "added_by": author,
        "added_by_admin": key.added_by_admin,
        "confirmed_at": key.confirmed_at.isoformat() if key.confirmed_at else None,
    }


def _service_records(
    service: Service,
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    record: dict[str, Any] = {
        "id": str(service.id),
        "organization_id": str(service.organisation_id),
        "name": _first(service.name),
        "description": _first(service.description),
        "status": "active",
        "languages": [
            {
                "id": str(uuid.uuid5(service.id, f"language:{code}")),
                "service_id": str(service.id),
                "code": code,
            }
            for code in service.languages
        ],
        "last_modified": service.updated_at.isoformat(),
        "refex": _dump(ServiceRead, service, skip=("id", "organisation_id")),
    }
    if service.eligibility:
        record["eligibility_description"] = service.eligibility
    if service.fees:
        record["fees_description"] = service.fees
    if not service.location:
        return record, None, None
    location_id = str(uuid.uuid5(LOCATION_NAMESPACE, f"location:{service.id}"))
    location = {
        "id": location_id,
        "location_type": "physical",
        "name": service.location.get("name") or _first(service.name),
        "latitude": service.location["latitude"],
        "longitude": service.location["longitude"],
        "refex": {"address": service.location.get("address", {})},
    }
    link = {
        "id": str(uuid.uuid5(LOCATION_NAMESPACE, f"service_at_location:{service.id}")),
        "service_id": str(service.id),
        "location_id": location_id,
    }
    return record, location, link


async def build_package(session: AsyncSession) -> Package:
    """Read the whole directory as HSDS records."""
    package = Package()
    keys = _grouped(await session.scalars(select(OrganisationKey).order_by(OrganisationKey.kid)))
    focal = _grouped(await session.scalars(select(FocalPoint).order_by(FocalPoint.id)))
    for org in await session.scalars(select(Organisation).order_by(Organisation.id)):
        package.organizations.append(
            _organization_record(org, keys.get(org.id, []), focal.get(org.id, []))
        )
    for service in await session.scalars(select(Service).order_by(Service.id)):
        record, location, link = _service_records(service)
        package.services.append(record)
        if location and link:
            package.locations.append(location)
            package.service_at_locations.append(link)
    agreements = list(await session.scalars(select(Agreement).order_by(Agreement.id)))
    shares = await repository.cost_shares_of(session, [a.id for a in agreements])
    for agreement in agreements:
        record = _dump(AgreementRead, agreement)
        record["cost_shares"] = [_cost_share_record(share) for share in shares[agreement.id]]
        package.agreements.append(record)
    for programme in await session.scalars(select(Programme).order_by(Programme.code)):
        package.programmes.append(_dump(ProgrammeRead, programme))
    return package


def _cost_share_record(share: CostShare) -> dict[str, Any]:
    values = cost_share_read(share).model_dump(mode="json")
    for key in ("agreement_id", "row_version", "created_at", "updated_at"):
        values.pop(key)
    return values


def _grouped(rows: Iterable[Any]) -> dict[uuid.UUID, list[Any]]:
    grouped: dict[uuid.UUID, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.organisation_id, []).append(row)
    return grouped


CSV_COLUMNS = {
    "organizations": ("id", "name", "description", "email", "website"),
    "services": (
        "id",
        "organization_id",
        "name",
        "description",
        "status",
        "eligibility_description",
        "fees_description",
        "last_modified",
    ),
    "locations": ("id", "location_type", "name", "latitude", "longitude"),
    "service_at_locations": ("id", "service_id", "location_id"),
}
CSV_NAMES = {
    "organizations": "organizations.csv",
    "services": "services.csv",
    "locations": "locations.csv",
    "service_at_locations": "service_at_location.csv",
}


def write_package(package: Package, folder: Path) -> dict[str, int]:
    """Write the package's JSON, CSV and datapackage.json into `folder`; return record counts."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name in ("organizations", "services", "locations", "service_at_locations"):
        records = getattr(package, name)
        (folder / f"{name}.json").write_bytes(orjson.dumps(records, option=orjson.OPT_INDENT_2))
        _write_csv(folder / CSV_NAMES[name], CSV_COLUMNS[name], records)
        counts[name] = len(records)
    (folder / "refex_agreements.json").write_bytes(
        orjson.dumps(package.agreements, option=orjson.OPT_INDENT_2)
    )
    counts["refex_agreements"] = len(package.agreements)
    (folder / "refex_programmes.json").write_bytes(
        orjson.dumps(package.programmes, option=orjson.OPT_INDENT_2)
    )
    counts["refex_programmes"] = len(package.programmes)
    resources = [
        {"name": n, "path": p, "format": p.rsplit(".", 1)[1]}
        for n in CSV_NAMES
        for p in (f"{n}.json", CSV_NAMES[n])
    ]
    manifest = {"name": "refex-directory", "profile": "hsds-3.0", "resources": resources}
    (folder / "datapackage.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return counts


def _write_csv(path: Path, columns: tuple[str, ...], records: list[dict[str, Any]]) -> None:
    """Write the core HSDS columns, plus our extensions as JSON in a `refex` column."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*columns, "refex"], extrasaction="ignore")
        writer.writeheader()
        for record in records:
            extension = record.get("refex")
            refex = orjson.dumps(extension).decode() if extension is not None else ""
            writer.writerow({**record, "refex": refex})


CSV_NUMBERS = frozenset({"latitude", "longitude"})


def _read_csv(path: Path) -> list[dict[str, Any]]:
    """Read HSDS CSV rows back into records: empty cells absent, numbers and `refex` parsed."""
    records = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            record: dict[str, Any] = {}
            for key, value in row.items():
                if value in ("", None):
                    continue
                if key == "refex":
                    record[key] = orjson.loads(value)
                elif key in CSV_NUMBERS:
                    record[key] = float(value)
                else:
                    record[key] = value
            records.append(record)
    return records


def package_problems(package: Package) -> list[str]:
    """Validate every record of a package against HSDS 3.0; return the problems found."""
    problems = []
    for kind, records in (
        ("organization", package.organizations),
        ("service", package.services),
        ("location", package.locations),
        ("service_at_location", package.service_at_locations),
    ):
        for index, record in enumerate(records):
            problems += [f"{kind} #{index + 1}: {p}" for p in hsds_problems(kind, record)]
    return problems


# Import


@dataclass
class Rejection:
    """One record that cannot be imported, and why."""

    file: str
    index: int
    record_id: str
    reasons: list[str]


@dataclass
class Plan:
    """Validated records ready to store, and the rejected ones."""

    organisations: list[OrganisationCreate] = field(default_factory=list)
    # (organisation, key, its record in the package: status and provenance)
    keys: list[tuple[uuid.UUID, KeyCreate, dict[str, Any]]] = field(default_factory=list)
    focal_points: list[FocalPointCreate] = field(default_factory=list)
    services: list[ServiceCreate] = field(default_factory=list)
    agreements: list[AgreementCreate] = field(default_factory=list)
    programmes: list[ProgrammeCreate] = field(default_factory=list)
    agreement_versions: list[tuple[uuid.UUID | None, int]] = field(default_factory=list)
    # (agreement, rule): the cost-share rules each agreement record carries
    cost_shares: list[tuple[uuid.UUID, CostShareCreate]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    accepted: int = 0
    progress: Callable[[], None] = lambda: None


def read_package(folder: Path) -> Package:
    """Read a package folder: each JSON file, else its CSV counterpart (missing: empty)."""
    if not folder.is_dir():
        raise FileNotFoundError(
            Message(
                "{folder} is not a folder; give the folder of an HSDS data package", folder=folder
            )
        )

    def load(name: str) -> list[dict[str, Any]]:
        path = folder / name
        csv_name = CSV_NAMES.get(name.removesuffix(".json"))
        if not path.exists() and csv_name and (folder / csv_name).exists():
            return _read_csv(folder / csv_name)  # a CSV-only data package
        if not path.exists():
            return []
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as error:
            raise ValueError(
                Message("{name} is not valid JSON ({reason})", name=name, reason=error.msg)
            ) from None
        if not isinstance(data, list):
            raise ValueError(Message("{name} must hold a JSON array of records", name=name))
        return data

    package = Package(
        organizations=load("organizations.json"),
        services=load("services.json"),
        locations=load("locations.json"),
        service_at_locations=load("service_at_locations.json"),
        agreements=load("refex_agreements.json"),
        programmes=load("refex_programmes.json"),
    )
    for org in package.organizations:  # HSDS allows services nested in their organisation
        for nested in org.get("services") or []:
            package.services.append(
                {**nested, "organization_id": nested.get("organization_id", org.get("id"))}
            )
    return package


def _pydantic_reasons(error: ValidationError) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e['loc']) or gettext(WHOLE_RECORD)}: {validation_message(e)}"
        for e in error.errors(include_url=False, include_input=False)
    ]


def _convert(
    plan: Plan,
    file: str,
    index: int,
    record: Any,
    kind: str,
    convert: Callable[[dict[str, Any]], None],
) -> None:
    record_id = str(record.get("id", "")) if isinstance(record, dict) else ""
    reasons = hsds_problems(kind, record) if kind else []
    if not reasons:
        try:
            convert(record)
        except ValidationError as error:
            reasons = _pydantic_reasons(error)
        except (KeyError, ValueError, TypeError) as error:
            reasons = [str(error)]
    if reasons:
        plan.rejected.append(Rejection(file, index + 1, record_id, reasons))
    else:
        plan.accepted += 1
    plan.progress()


def _organisation(plan: Plan, record: dict[str, Any]) -> None:
    ext = dict(record.get("refex") or {})
    values = {k: ext[k] for k in ORGANISATION_FIELDS if k in ext}
    values.setdefault("name", {"en": record["name"]})
    values.setdefault(
        "description", {"en": record["description"]} if record.get("description") else {}
    )
    values.setdefault(
        "stakeholder_type", ext.get("stakeholder_type") or record.get("stakeholder_type")
    )
    for key in ("email", "website"):
        if record.get(key) and key not in values:
            values[key] = record[key]
    if "country" not in values:
        raise ValueError(
            N_("refex.country: missing; say which ISO 3166-1 country the organisation is in")
        )
    org_in = OrganisationCreate.model_validate({**values, "id": record["id"]})
    keys = [
        (
            org_in.id,
            KeyCreate.model_validate({k: v for k, v in key.items() if k in KeyCreate.model_fields}),
            key,
        )
        for key in ext.get("keys", [])
    ]
    focal = [FocalPointCreate.model_validate(fp) for fp in ext.get("focal_points", [])]
    plan.organisations.append(org_in)
    plan.keys += keys  # type: ignore[arg-type]
    plan.focal_points += focal


def _service(plan: Plan, record: dict[str, Any], locations: dict[str, dict[str, Any]]) -> None:
    ext = dict(record.get("refex") or {})
    values = {k: ext[k] for k in SERVICE_FIELDS if k in ext}
    values.setdefault("name", {"en": record["name"]})
    if record.get("description"):
        values.setdefault("description", {"en": record["description"]})
    values.setdefault("eligibility", record.get("eligibility_description"))
    values.setdefault("fees", record.get("fees_description"))
    values.setdefault(
        "languages", [lang["code"] for lang in record.get("languages", []) if lang.get("code")]
    )
    if "location" not in values and record["id"] in locations:
        location = locations[record["id"]]
        values["location"] = {
            "name": location.get("name"),
            "latitude": location.get("latitude"),
            "longitude": location.get("longitude"),
            "address": (location.get("refex") or {}).get("address", {}),
        }
    for needed in ("category", "country"):
        if needed not in values:
            raise ValueError(
                Message(
                    "refex.{needed}: missing; refex needs the service's {needed}", needed=needed
                )
            )
    plan.services.append(
        ServiceCreate.model_validate(
            {**values, "id": record["id"], "organisation_id": record.get("organization_id")}
        )
    )


def _locations_by_service(package: Package, plan: Plan) -> dict[str, dict[str, Any]]:
    locations: dict[str, dict[str, Any]] = {}
    by_service: dict[str, dict[str, Any]] = {}

    def keep(record: dict[str, Any]) -> None:
        locations[record["id"]] = record

    def attach(link: dict[str, Any]) -> None:
        if link.get("location_id") not in locations:
            raise ValueError(N_("location_id: names no location of this package"))
        by_service[str(link.get("service_id"))] = locations[link["location_id"]]

    for index, record in enumerate(package.locations):
        _convert(plan, "locations.json", index, record, "location", keep)
    for index, link in enumerate(package.service_at_locations):
        _convert(plan, "service_at_locations.json", index, link, "service_at_location", attach)
    return by_service


def record_count(package: Package) -> int:
    """Return how many records a package holds."""
    return sum(
        len(records)
        for records in (
            package.organizations,
            package.services,
            package.locations,
            package.service_at_locations,
            package.agreements,
            package.programmes,
        )
    )


def plan_import(package: Package, progress: Callable[[], None] = lambda: None) -> Plan:
    """Validate every record (HSDS schema, then refex rules) without touching the database."""
    plan = Plan(progress=progress)
    for index, record in enumerate(package.organizations):
        _convert(
            plan,
            "organizations.json",
            index,
            record,
            "organization",
            lambda r: _organisation(plan, r),
        )
    locations = _locations_by_service(package, plan)
    for index, record in enumerate(package.services):
        _convert(
            plan, "services.json", index, record, "service", lambda r: _service(plan, r, locations)
        )
    for index, record in enumerate(package.programmes):
        _convert(plan, "refex_programmes.json", index, record, "", lambda r: _programme(plan, r))
    for index, record in enumerate(package.agreements):
        _convert(plan, "refex_agreements.json", index, record, "", lambda r: _agreement(plan, r))
    return plan


def _programme(plan: Plan, record: dict[str, Any]) -> None:
    allowed = ProgrammeCreate.model_fields
    plan.programmes.append(
        ProgrammeCreate.model_validate({k: v for k, v in record.items() if k in allowed})
    )


def _agreement(plan: Plan, record: dict[str, Any]) -> None:
    agreement_in = _agreement_in(record)
    plan.agreements.append(agreement_in)
    plan.agreement_versions.append((agreement_in.id, int(record.get("version", 1))))
    allowed = CostShareCreate.model_fields
    for share in record.get("cost_shares") or []:
        share_in = CostShareCreate.model_validate({k: v for k, v in share.items() if k in allowed})
        if agreement_in.id is not None:
            plan.cost_shares.append((agreement_in.id, share_in))


def _agreement_in(record: dict[str, Any]) -> AgreementCreate:
    allowed = AgreementCreate.model_fields
    values = {k: v for k, v in record.items() if k in allowed}
    if values.get("series_id") == values.get("id"):
        values.pop("series_id")  # the first version starts its own series
    return AgreementCreate.model_validate(values)


async def _upsert(
    session: AsyncSession, model: type[Base], row_id: uuid.UUID | None, values: dict[str, Any]
) -> Any:
    row = None if row_id is None else await repository.get(session, model, row_id)
    if row is None:
        return None
    for key, value in values.items():
        setattr(row, key, value)
    return row


async def store(
    session: AsyncSession,
    plan: Plan,
    progress: Callable[[], None],
    url_policy: UrlPolicy = directory.STRICT_URLS,
) -> list[Rejection]:
    """Upsert the plan by id; return records refused by refex rules (duplicates, overlaps...)."""
    refused: list[Rejection] = []

    async def attempt(file: str, record_id: Any, action: Awaitable[None]) -> None:
        # The rules raise before anything is written, so a refused record leaves the session clean.
        try:
            await action
        except ServiceError as error:
            refused.append(Rejection(file, 0, str(record_id), [localize(error.detail)]))
        progress()

    for org_in in plan.organisations:
        stored = _store_organisation(session, org_in, url_policy)
        await attempt("organizations.json", org_in.id, stored)
    for org_in in plan.organisations:
        if org_in.coordinator_org_id:
            link = {"coordinator_org_id": org_in.coordinator_org_id}
            await _upsert(session, Organisation, org_in.id, link)
    for org_id, key_in, recorded in plan.keys:
        kid = key_in.jwk.get("kid")
        await attempt("organizations.json", kid, _store_key(session, org_id, key_in, recorded))
    for service_in in plan.services:
        await attempt("services.json", service_in.id, _store_service(session, service_in))
    for focal_in in sorted(plan.focal_points, key=lambda f: f.backup_focal_point_id is not None):
        await attempt("organizations.json", focal_in.id, _store_focal_point(session, focal_in))
    for programme_in in plan.programmes:
        stored = _store_programme(session, programme_in)
        await attempt("refex_programmes.json", programme_in.code, stored)
    versions = dict(plan.agreement_versions)
    for agreement_in in sorted(plan.agreements, key=lambda a: versions.get(a.id, 1)):
        stored = _store_agreement(session, agreement_in)
        await attempt("refex_agreements.json", agreement_in.id, stored)
    for agreement_id, share_in in plan.cost_shares:
        stored = _store_cost_share(session, agreement_id, share_in)
        await attempt("refex_agreements.json", share_in.id, stored)
    await session.flush()
    return refused


async def _store_organisation(
    session: AsyncSession, org_in: OrganisationCreate, url_policy: UrlPolicy
) -> None:
    values = org_in.model_dump(mode="json", exclude={"id", "coordinator_org_id"})
    values["webhook_url"] = await directory.checked_webhook_url(
        org_in.webhook_url, url_policy, loc="organizations.json"
    )
    if await _upsert(session, Organisation, org_in.id, values) is None:
        await directory.create_organisation(
            session=session,
            org_in=org_in.model_copy(update={"coordinator_org_id": None}),
            url_policy=url_policy,
        )


async def _store_key(
    session: AsyncSession, org_id: uuid.UUID, key_in: KeyCreate, recorded: dict[str, Any]
) -> None:
    existing = await repository.key_by_kid(session, str(key_in.jwk.get("kid")))
    if existing is None:
        existing = await directory.add_key(
            session=session, principal=IMPORTER, org_id=org_id, key_in=key_in
        )
    _restore_provenance(existing, recorded)


def _restore_provenance(key: OrganisationKey, recorded: dict[str, Any]) -> None:
    """Keep the status and provenance a refex export recorded; without them, the import is the
    admin who added the key, so a key it adds stays pending until the organisation confirms."""
    status = str(recorded.get("status", "active"))
    if "added_by_admin" not in recorded:
        if not (key.status == "pending" and status == "active"):
            key.status = status
        return
    author = recorded.get("added_by") or {}
    key.status = status
    key.added_by_client_id = author.get("client_id")
    key.added_by_org_id = author.get("org_id")
    key.added_by_role = author.get("role")
    key.added_by_admin = bool(recorded["added_by_admin"])
    confirmed = recorded.get("confirmed_at")
    key.confirmed_at = datetime.fromisoformat(confirmed) if confirmed else None


async def _store_service(session: AsyncSession, service_in: ServiceCreate) -> None:
    service = await _upsert(
        session,
        Service,
        service_in.id,
        service_in.model_dump(mode="json", exclude={"id", "organisation_id"}),
    )
    if service is None:
        await directory.create_service(session=session, service_in=service_in)
    else:
        service.organisation_id = service_in.organisation_id
        directory._derived_service_columns(service)


async def _store_focal_point(session: AsyncSession, focal_in: FocalPointCreate) -> None:
    values = focal_in.model_dump(
        mode="json", exclude={"id", "organisation_id", "service_id", "backup_focal_point_id"}
    )
    values["backup_focal_point_id"] = focal_in.backup_focal_point_id
    if await _upsert(session, FocalPoint, focal_in.id, values) is None:
        await directory.create_focal_point(session=session, principal=IMPORTER, focal_in=focal_in)


async def _store_programme(session: AsyncSession, programme_in: ProgrammeCreate) -> None:
    if await repository.programme_by_code(session, programme_in.code) is None:
        await programmes.create_programme(session=session, programme_in=programme_in)


async def _store_agreement(session: AsyncSession, agreement_in: AgreementCreate) -> None:
    if await repository.get(session, Agreement, agreement_in.id) is None:  # type: ignore[arg-type]
        await directory.create_agreement(session=session, agreement_in=agreement_in)


async def _store_cost_share(
    session: AsyncSession, agreement_id: uuid.UUID, share_in: CostShareCreate
) -> None:
    if await repository.get(session, CostShare, share_in.id) is None:  # type: ignore[arg-type]
        await costs.create_cost_share(
            session=session,
            principal=IMPORTER,
            request_id=None,
            agreement_id=agreement_id,
            share_in=share_in,
        )
