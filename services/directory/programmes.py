"""Rules of the programme registry, and whether an agreement fits its programme."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import repository
from services.directory.errors import (
    DuplicateProgramme,
    OutsideProgramme,
    ProgrammeInUse,
    ProgrammeNotFound,
    UnknownProgramme,
)
from services.directory.models import Agreement, Programme
from services.directory.rows import check_if_match, refuse_nulls, unused_id
from services.directory.schemas import ProgrammeCreate, ProgrammeUpdate
from shared.clock import utcnow
from shared.i18n import N_, Message
from shared.vocabulary import DOMESTIC_PATHWAYS, Pathway


async def list_programmes(
    *, session: AsyncSession, after: uuid.UUID | None, limit: int
) -> list[Programme]:
    """Return a page of the registered programmes."""
    return await repository.programme_page(session, after=after, limit=limit)


async def get_programme(*, session: AsyncSession, code: str) -> Programme:
    """Return the programme with this code or raise ProgrammeNotFound."""
    programme = await repository.programme_by_code(session, code)
    if programme is None:
        raise ProgrammeNotFound
    return programme


async def create_programme(*, session: AsyncSession, programme_in: ProgrammeCreate) -> Programme:
    """Register a programme under a code nobody uses yet."""
    if await repository.programme_by_code(session, programme_in.code) is not None:
        raise DuplicateProgramme
    programme_id = await unused_id(session, Programme, programme_in.id)
    values = programme_in.model_dump(exclude={"id"})
    programme = Programme(id=programme_id, row_version=1, **values)
    session.add(programme)
    await session.flush()
    return programme


async def update_programme(
    *, session: AsyncSession, code: str, programme_in: ProgrammeUpdate, if_match: str | None
) -> Programme:
    """Change a programme; every agreement already in it must still fit."""
    programme = await get_programme(session=session, code=code)
    check_if_match(programme, if_match)
    changes = programme_in.model_dump(exclude_unset=True)
    refuse_nulls(programme, changes)
    for key, value in changes.items():
        setattr(programme, key, value)
    if programme.ends_at is not None and programme.ends_at <= programme.starts_at:
        raise OutsideProgramme(
            N_(
                "ends_at must be after starts_at; send both, or a later ends_at. "
                "Nothing was changed."
            )
        )
    for agreement in await repository.agreements_in_programme(session, code):
        await _check_fit(session, programme, agreement)
    programme.row_version += 1
    programme.updated_at = utcnow()
    await session.flush()
    return programme


async def delete_programme(*, session: AsyncSession, code: str, if_match: str | None) -> None:
    """Remove a programme that no agreement belongs to any more."""
    programme = await get_programme(session=session, code=code)
    check_if_match(programme, if_match)
    agreements = await repository.agreements_in_programme(session, code)
    if agreements:
        raise ProgrammeInUse(
            Message(
                "{count} agreement version(s) still belong to this programme. Move them to "
                "another programme (PATCH the agreement) before removing it.",
                count=len(agreements),
            )
        )
    await session.delete(programme)
    await session.flush()


async def check_agreement(session: AsyncSession, agreement: Agreement | Any) -> None:
    """Refuse an agreement naming an unknown programme, or one outside its countries or period."""
    if agreement.programme is None:
        return
    programme = await repository.programme_by_code(session, agreement.programme)
    if programme is None:
        raise UnknownProgramme(
            Message(
                "No programme has the code '{code}'. List the registered programmes with GET "
                "/programmes, or ask the directory steward to register it. Nothing was stored.",
                code=agreement.programme,
            ),
            errors=[{"loc": ["body", "programme"], "msg": "not registered", "type": "unknown"}],
        )
    await _check_fit(session, programme, agreement)


async def _check_fit(session: AsyncSession, programme: Programme, agreement: Any) -> None:
    problem = _period_problem(programme, agreement.valid_from, agreement.valid_until)
    if problem is None:
        problem = await _country_problem(session, programme, agreement)
    if problem is not None:
        raise OutsideProgramme(problem, programme=programme.code)


def _period_problem(
    programme: Programme, valid_from: datetime, valid_until: datetime | None
) -> Message | None:
    ends = programme.ends_at
    if valid_from >= programme.starts_at and (
        ends is None or (valid_until is not None and valid_until <= ends)
    ):
        return None
    return Message(
        "The agreement runs from {start} to {end}, outside programme '{code}' ({p_start} to "
        "{p_end}). Let it start and end within the programme's period, or change the period. "
        "Nothing was stored.",
        start=valid_from.date().isoformat(),
        end=valid_until.date().isoformat() if valid_until else "-",
        code=programme.code,
        p_start=programme.starts_at.date().isoformat(),
        p_end=ends.date().isoformat() if ends else "-",
    )


async def _country_problem(
    session: AsyncSession, programme: Programme, agreement: Any
) -> Message | None:
    ids = [agreement.provider_org_id, agreement.sender_org_id]
    orgs = await repository.organisations(session, [i for i in ids if i is not None])
    # A domestic agreement's sender works in the country of origin, not in a host country.
    domestic = str(getattr(agreement, "pathway", Pathway.INTERNATIONAL)) in DOMESTIC_PATHWAYS
    sender_countries = programme.origin_countries if domestic else programme.host_countries
    checks = (
        (Message("provider"), orgs.get(agreement.provider_org_id), programme.origin_countries),
        (Message("sender"), orgs.get(agreement.sender_org_id), sender_countries),
    )
    for party, org, allowed in checks:
        if allowed and org is not None and org.country not in allowed:
            return _country_message(programme, party, org.country, allowed)
    return None


def _country_message(
    programme: Programme, party: Message, country: str, allowed: list[str]
) -> Message:
    return Message(
        "The {party} is in {country}, which programme '{code}' does not cover ({allowed}). "
        "Choose the programme that covers it, or add the country to the programme. Nothing was "
        "stored.",
        party=party,
        country=country,
        code=programme.code,
        allowed=", ".join(allowed),
    )
