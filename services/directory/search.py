"""Service search: one SQL statement per page on either backend, built from the same filters.

Free text: SQLite FTS5 (bm25, name weighted 10:1 over description) or PostgreSQL tsvector + GIN
(ts_rank, name weight A over B). Both see the same pre-normalised words (see `codes.search_text`),
so both match the same services on exact words (accents and case folded); PostgreSQL also matches
French and English word forms (its vector holds the `french` and `english` stems of the fr/en
texts, migration 0003; the query is stemmed in the caller's language), so it may find more. The
relevance ranking itself is each engine's own; ties go to services offering the caller's language,
then by id. On PostgreSQL only the first RANK_CAP matches (after filters) are ranked, which keeps
broad queries bounded. Names are shown in the caller's language (Accept-Language: en or fr),
else English, else the first one given.
Radius: PostgreSQL orders by the GiST index on `ll_to_earth` (nearest first, `<->`) inside an
`earth_box`, then filters by exact distance; SQLite filters a lat/lon bounding box and sorts the
exact distances in Python. Distances shown are computed the same way on both (great circle on the
earthdistance sphere). On PostgreSQL statements run on the asyncpg connection, prepared once and
cached by asyncpg; `open_now` is a filter applied in Python on each fetched batch.
"""

# ruff: noqa: S608 -- every value is a bound parameter; only fixed fragments and ints are formatted

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg  # type: ignore[import-untyped]
import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import repository
from services.directory.codes import (
    check_admin_area,
    check_country,
    check_language,
    list_key,
    search_terms,
)
from services.directory.models import Service
from services.directory.resolution import pick_focal_point
from services.directory.schemas import SearchHit
from shared.business_hours import Schedule
from shared.clock import utcnow
from shared.errors import BadRequest
from shared.i18n import N_, negotiate
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from shared.vocabulary import ServiceCategory

RANK_CAP = 1000
EARTH_RADIUS_KM = 6378.168  # the sphere of PostgreSQL's earthdistance extension
HIT_COLUMNS = (
    "s.id, s.organisation_id, s.category, s.name, s.country, s.admin_areas, s.languages, "
    "s.accepting_referrals, s.latitude, s.longitude, "
    "i.status AS intake_status, i.places_left, i.waiting_days"
)
# The provider's stated intake rides along on its primary key: one join, no query per hit.
SERVICES = "service s LEFT JOIN service_intake i ON i.service_id = s.id"
CLOSED = "temporarily_closed"
OPEN_NOW_BATCH_FACTOR = 4
Sort = Literal["relevance", "distance"]
CallerLanguage = Literal["en", "fr"]
TEXT_SEARCH_CONFIG: dict[CallerLanguage, str] = {"en": "english", "fr": "french"}


@dataclass
class SearchParams:
    """A parsed search request."""

    q: str | None = None
    categories: list[str] = field(default_factory=list)
    country: str | None = None
    admin_area: str | None = None
    language: str | None = None
    near: tuple[float, float] | None = None
    radius_km: float = 50.0
    accepting: bool | None = None
    open_now: bool = False
    available: bool = False
    sort: Sort = "relevance"
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    caller_language: CallerLanguage = "en"


def caller_language(accept_language: str | None) -> CallerLanguage:
    """The caller's language for texts and stemming: the negotiated one (shared.i18n)."""
    return "fr" if negotiate(accept_language) == "fr" else "en"


def _parse_near(near: str) -> tuple[float, float]:
    try:
        lat_text, lon_text = near.split(",")
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        raise ValueError(N_("write near as latitude,longitude, e.g. 6.52,3.38")) from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or math.isnan(lat + lon):
        raise ValueError(N_("latitude must be within -90..90 and longitude within -180..180"))
    return lat, lon


class SearchQuery(BaseModel):
    """The query string of GET /services/search, validated in one pass."""

    model_config = ConfigDict(extra="forbid")
    q: str | None = Field(None, max_length=200, examples=["clinic lagos"])
    category: list[ServiceCategory] = Field(
        default_factory=list, description="One or more categories (repeat the parameter)."
    )
    country: str | None = Field(None, examples=["NG"])
    admin_area: str | None = Field(None, examples=["NG-LA"])
    language: str | None = Field(None, examples=["en"])
    near: str | None = Field(None, description="latitude,longitude", examples=["6.52,3.38"])
    radius_km: float = Field(50.0, gt=0, le=20000)
    accepting: bool | None = Field(None, description="Only services taking referrals (or not).")
    open_now: bool = Field(False, description="Only services whose focal point is open now.")
    available: bool = Field(
        False, description="Leave out services their provider marked temporarily closed."
    )
    sort: Sort | None = Field(None, description="Default: distance with near=, else relevance.")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=512)

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return None if value is None else check_country(value)

    @field_validator("admin_area")
    @classmethod
    def _admin_area(cls, value: str | None) -> str | None:
        return None if value is None else check_admin_area(value)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return None if value is None else check_language(value)

    @field_validator("near")
    @classmethod
    def _near(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_near(value)
        return value

    @model_validator(mode="after")
    def _distance_needs_near(self) -> SearchQuery:
        if self.sort == "distance" and self.near is None:
            raise ValueError(N_("sort=distance needs near=latitude,longitude"))
        return self


LIST_PARAMETERS = frozenset({"category"})


def search_params(request: Request) -> SearchParams:
    """Validate the query string in one pydantic pass (FastAPI's per-field parsing cost ~1 ms)."""
    raw = request.query_params
    values = {k: raw.getlist(k) if k in LIST_PARAMETERS else raw[k] for k in raw}
    try:
        query = SearchQuery.model_validate(values)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        raise RequestValidationError(
            [{**p, "loc": ("query", *p["loc"])} for p in problems]
        ) from None
    point = _parse_near(query.near) if query.near is not None else None
    return SearchParams(
        q=query.q,
        categories=[c.value for c in query.category],
        country=query.country,
        admin_area=query.admin_area,
        language=query.language,
        near=point,
        radius_km=query.radius_km,
        accepting=query.accepting,
        open_now=query.open_now,
        available=query.available,
        sort=query.sort or ("distance" if point else "relevance"),
        limit=query.limit,
        cursor=query.cursor,
        caller_language=caller_language(request.headers.get("accept-language")),
    )


class Statement:
    """SQL text and its arguments, with placeholders for the backend ($n or :pn)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        """Add an argument and return its placeholder."""
        if self.backend == "sqlite" and isinstance(value, uuid.UUID):
            value = value.hex
        self.args.append(value)
        return f"${len(self.args)}" if self.backend == "postgresql" else f":p{len(self.args)}"

    def named(self) -> dict[str, Any]:
        """Return the arguments as SQLite named parameters."""
        return {f"p{i}": value for i, value in enumerate(self.args, start=1)}


def _filters(params: SearchParams, sql: Statement) -> list[str]:
    where = []
    if params.categories:
        where.append(f"s.category IN ({', '.join(sql.arg(c) for c in params.categories)})")
    if params.country:
        where.append(f"s.country = {sql.arg(params.country)}")
    if params.admin_area:
        where.append(f"s.areas_key LIKE {sql.arg('%' + list_key([params.admin_area]) + '%')}")
    if params.language:
        where.append(f"s.languages_key LIKE {sql.arg('%' + list_key([params.language]) + '%')}")
    if params.accepting is not None:
        where.append(f"s.accepting_referrals = {sql.arg(params.accepting)}")
    if params.available:
        where.append(f"(i.status IS NULL OR i.status <> '{CLOSED}')")
    return where


def _tsquery(params: SearchParams, terms: list[str], sql: Statement) -> str:
    """The exact words (as SQLite matches them) or their stems in the caller's language."""
    query = sql.arg(" ".join(terms))
    config = TEXT_SEARCH_CONFIG[params.caller_language]
    return f"(plainto_tsquery('simple', {query}) || plainto_tsquery('{config}', {query}))"


def _text_condition(params: SearchParams, terms: list[str], sql: Statement) -> str:
    if sql.backend == "postgresql":
        return f"s.search_vector @@ {_tsquery(params, terms, sql)}"
    match = " ".join(f'"{term}"' for term in terms)
    return f"s.id IN (SELECT service_id FROM service_fts WHERE service_fts MATCH {sql.arg(match)})"


def _where(clauses: list[str]) -> str:
    return " AND ".join(clauses) if clauses else "TRUE"


def _by_id(params: SearchParams, sql: Statement, after: str | None, batch: int) -> str:
    clauses = _filters(params, sql)
    terms = search_terms(params.q or "")
    if terms:
        clauses.append(_text_condition(params, terms, sql))
    if after is not None:
        clauses.append(f"s.id > {sql.arg(uuid.UUID(after))}")
    return (
        f"SELECT {HIT_COLUMNS} FROM {SERVICES} WHERE {_where(clauses)} ORDER BY s.id LIMIT {batch}"
    )


def _by_relevance(params: SearchParams, sql: Statement, offset: int, batch: int) -> str:
    terms = search_terms(params.q or "")
    clauses = _filters(params, sql)
    if params.near is not None:
        clauses.append(_radius_condition(params, sql))
    speaks = f"%,{params.caller_language},%"  # a fixed fragment: en or fr
    if sql.backend == "postgresql":
        tsquery = _tsquery(params, terms, sql)
        clauses.append(f"s.search_vector @@ {tsquery}")
        return (
            # MATERIALIZED without a LIMIT inside keeps the GIN bitmap scan (with the cap inside,
            # the planner picks a 5x slower sequential scan); rank ids first, then join columns.
            f"WITH m AS MATERIALIZED (SELECT s.id, s.search_vector, s.languages_key "
            f"FROM {SERVICES} WHERE {_where(clauses)}), "
            f"r AS (SELECT c.id, ts_rank(c.search_vector, {tsquery}) AS rank, "
            f"c.languages_key LIKE '{speaks}' AS speaks "
            f"FROM (SELECT * FROM m LIMIT {RANK_CAP}) c "
            f"ORDER BY rank DESC, speaks DESC, c.id LIMIT {batch} OFFSET {offset}) "
            f"SELECT {HIT_COLUMNS} FROM r JOIN service s ON s.id = r.id "
            f"LEFT JOIN service_intake i ON i.service_id = s.id "
            f"ORDER BY r.rank DESC, r.speaks DESC, r.id"
        )
    match = sql.arg(" ".join(f'"{term}"' for term in terms))
    return (
        f"SELECT {HIT_COLUMNS} FROM (SELECT service_id, bm25(service_fts, 10.0, 1.0) AS rank "
        f"FROM service_fts WHERE service_fts MATCH {match}) f "
        f"JOIN service s ON s.id = f.service_id "
        f"LEFT JOIN service_intake i ON i.service_id = s.id "
        f"WHERE {_where(clauses)} "
        f"ORDER BY f.rank, s.languages_key LIKE '{speaks}' DESC, s.id "
        f"LIMIT {batch} OFFSET {offset}"
    )


def _radius_condition(params: SearchParams, sql: Statement) -> str:
    assert params.near is not None
    lat, lon = params.near
    if sql.backend == "postgresql":
        point = f"ll_to_earth({sql.arg(lat)}::float8, {sql.arg(lon)}::float8)"
        metres = sql.arg(params.radius_km * 1000)
        return (
            f"s.latitude IS NOT NULL AND earth_box({point}, {metres}::float8) "
            f"@> ll_to_earth(s.latitude, s.longitude) "
            f"AND earth_distance({point}, ll_to_earth(s.latitude, s.longitude)) <= {metres}::float8"
        )
    d_lat = math.degrees(params.radius_km / EARTH_RADIUS_KM)
    bounds = f"s.latitude BETWEEN {sql.arg(lat - d_lat)} AND {sql.arg(lat + d_lat)}"
    cos_lat = math.cos(math.radians(lat))
    d_lon = d_lat / cos_lat if cos_lat > 1e-6 else 360.0
    if abs(lon) + d_lon < 180:
        bounds += f" AND s.longitude BETWEEN {sql.arg(lon - d_lon)} AND {sql.arg(lon + d_lon)}"
    return f"s.latitude IS NOT NULL AND {bounds}"


def _by_distance_postgresql(params: SearchParams, sql: Statement, offset: int, batch: int) -> str:
    assert params.near is not None
    clauses = _filters(params, sql)
    terms = search_terms(params.q or "")
    if terms:
        clauses.append(_text_condition(params, terms, sql))
    clauses.append(_radius_condition(params, sql))
    lat, lon = params.near
    point = f"ll_to_earth({sql.arg(lat)}::float8, {sql.arg(lon)}::float8)"
    return (
        f"SELECT {HIT_COLUMNS} FROM {SERVICES} WHERE {_where(clauses)} "
        f"ORDER BY ll_to_earth(s.latitude, s.longitude) <-> {point} LIMIT {batch} OFFSET {offset}"
    )


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km on the earthdistance sphere."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


async def _fetch(
    session: AsyncSession, sql: Statement, statement: str, pool: asyncpg.Pool | None = None
) -> list[dict[str, Any]]:
    if pool is not None:
        # Straight to a pooled asyncpg connection: no session, no pre-ping, statement prepared
        # once per connection and reused from asyncpg's cache.
        async with pool.acquire() as connection:
            return [dict(record) for record in await connection.fetch(statement, *sql.args)]
    if sql.backend == "postgresql":
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        records = await raw.driver_connection.fetch(statement, *sql.args)  # type: ignore[union-attr]
        return [dict(record) for record in records]
    result = await session.execute(text(statement), sql.named())
    return [dict(row) for row in result.mappings()]


HIT_FIELDS = tuple(SearchHit.model_fields)


def display_name(name: dict[str, str], language: str) -> tuple[str, str]:
    """Return (language, text) of a name map: the caller's, else English, else the first."""
    for wanted in (language, "en"):
        if name.get(wanted):
            return wanted, name[wanted]
    return next(iter(name.items()), ("", ""))


def _hit(row: dict[str, Any], params: SearchParams) -> dict[str, Any]:
    hit: dict[str, Any] = {key: row.get(key) for key in HIT_FIELDS}
    for key in ("name", "admin_areas", "languages"):
        if isinstance(hit[key], str | bytes):
            hit[key] = orjson.loads(hit[key])
    hit["display_language"], hit["display_name"] = display_name(hit["name"], params.caller_language)
    near = params.near
    for key in ("id", "organisation_id"):  # SQLite gives hex, asyncpg its own UUID type
        value = hit[key]
        hit[key] = str(uuid.UUID(value)) if isinstance(value, str) else str(value)
    hit["accepting_referrals"] = bool(hit["accepting_referrals"])
    hit["intake_status"] = hit["intake_status"] or "open"
    if near is not None and row["latitude"] is not None:
        hit["distance_km"] = round(distance_km(near, (row["latitude"], row["longitude"])), 3)
    return hit


class _Pager:
    """Fetch raw batches from a position and keep the hits that pass `open_now`."""

    def __init__(
        self, session: AsyncSession, params: SearchParams, pool: asyncpg.Pool | None
    ) -> None:
        self.session = session
        self.params = params
        self.pool = pool
        self.backend = session.get_bind().dialect.name

    async def fetch(self, sql: Statement, statement: str) -> list[dict[str, Any]]:
        return await _fetch(self.session, sql, statement, self.pool)

    def mode(self) -> str:
        if self.params.sort == "distance":
            return "d"
        return "r" if search_terms(self.params.q or "") else "i"

    async def batch(self, position: Any, size: int) -> list[dict[str, Any]]:
        sql = Statement(self.backend)
        mode = self.mode()
        if mode == "i":
            return await self.fetch(sql, _by_id(self.params, sql, position, size))
        if mode == "r":
            return await self.fetch(sql, _by_relevance(self.params, sql, position, size))
        if self.backend == "postgresql":
            statement = _by_distance_postgresql(self.params, sql, position, size)
            return await self.fetch(sql, statement)
        return await self._sqlite_by_distance(position, size)

    async def _sqlite_by_distance(self, offset: int, size: int) -> list[dict[str, Any]]:
        params = self.params
        assert params.near is not None
        sql = Statement("sqlite")
        clauses = _filters(params, sql)
        terms = search_terms(params.q or "")
        if terms:
            clauses.append(_text_condition(params, terms, sql))
        clauses.append(_radius_condition(params, sql))
        rows = await _fetch(
            self.session, sql, f"SELECT {HIT_COLUMNS} FROM {SERVICES} WHERE {_where(clauses)}"
        )
        near = params.near
        scored = [
            (distance_km(near, (row["latitude"], row["longitude"])), str(row["id"]), row)
            for row in rows
        ]
        inside = sorted(
            (item for item in scored if item[0] <= params.radius_km), key=lambda t: t[:2]
        )
        return [row for _d, _id, row in inside[offset : offset + size]]

    def start(self) -> Any:
        if self.params.cursor is None:
            return None if self.mode() == "i" else 0
        key = decode_cursor(self.params.cursor)
        if len(key) != 2 or key[0] != self.mode() or not _valid_position(key[0], key[1]):
            raise BadRequest(
                N_("The cursor belongs to another search; start again without 'cursor'.")
            )
        return key[1]


def _valid_position(mode: str, position: Any) -> bool:
    """A cursor is client input: an id for id order, a small non-negative offset otherwise."""
    if mode != "i":
        return type(position) is int and 0 <= position <= 1_000_000
    try:
        uuid.UUID(str(position))
    except ValueError:
        return False
    return True


async def _open_filter(session: AsyncSession, rows: list[dict[str, Any]]) -> list[bool]:
    if not rows:
        return []
    services = [
        Service(id=_uuid(row["id"]), organisation_id=_uuid(row["organisation_id"])) for row in rows
    ]
    focal_points = await repository.focal_points_for_services(
        session, [s.id for s in services], list({s.organisation_id for s in services})
    )
    now = utcnow()
    verdicts = []
    for service in services:
        chosen, _backup = pick_focal_point(focal_points, service)
        verdicts.append(
            chosen is not None and Schedule.model_validate(chosen.schedule).is_open(now)
        )
    return verdicts


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def search(
    *, session: AsyncSession, params: SearchParams, pool: asyncpg.Pool | None = None
) -> dict[str, Any]:
    """Return one page of services matching `params`, shaped like SearchPage (plain JSON)."""
    pager = _Pager(session, params, pool)
    mode, position = pager.mode(), pager.start()
    size = params.limit * OPEN_NOW_BATCH_FACTOR if params.open_now else params.limit + 1
    kept: list[dict[str, Any]] = []
    more = False
    while True:
        rows = await pager.batch(position, size)
        verdicts = await _open_filter(session, rows) if params.open_now else [True] * len(rows)
        for row, keep in zip(rows, verdicts, strict=True):
            if len(kept) == params.limit:
                more = True
                break
            position = str(_uuid(row["id"])) if mode == "i" else position + 1
            if keep:
                kept.append(row)
        if more or len(rows) < size:
            break
    items = [_hit(row, params) for row in kept]
    return {"items": items, "next_cursor": encode_cursor([mode, position]) if more else None}


def openapi_parameters() -> list[dict[str, Any]]:
    """Document the query parameters `search_params` reads (it bypasses FastAPI's parsing)."""
    schema = SearchQuery.model_json_schema()
    definitions = schema.get("$defs", {})
    parameters = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        if name == "category":
            prop["items"] = definitions["ServiceCategory"]
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": prop.pop("description", ""),
                "schema": prop,
                **({"explode": True} if name in LIST_PARAMETERS else {}),
            }
        )
    return parameters
