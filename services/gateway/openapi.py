"""One API document: every service's OpenAPI, rewritten to its public paths and merged."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from typing import Any

import orjson

from services.gateway.proxy import API_PREFIX, INTERNAL_FIRST_SEGMENTS, ROUTES
from services.gateway.upstream import ProxyClient, UpstreamFailure
from shared.openapi import problem_response_doc

logger = logging.getLogger("refex.gateway.openapi")
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
OAUTH_SCHEME = "oauth2"
# What the gateway itself may answer for any operation it publishes, before or instead of the
# service: it checks every token, limits every client, and may not reach the service.
GATEWAY_ERRORS = {
    401: "No valid access token was sent; get one at /oauth/token.",
    429: "Too many requests from this client; wait Retry-After seconds.",
    503: "The service behind the gateway is unreachable.",
    504: "The service behind the gateway did not answer in time.",
}
Document = dict[str, Any]


def external_path(service: str, path: str) -> str | None:
    """Return the public path of an upstream path, or None when it is not published."""
    segments = path.strip("/").split("/")
    if not segments[0] or segments[0] in INTERNAL_FIRST_SEGMENTS:
        return None
    if service == "directory":
        return f"{API_PREFIX}/directory{path}"
    if ROUTES.get(segments[0]) == (service, False):
        return f"{API_PREFIX}{path}"
    return None


def oauth_scheme(roles: list[str]) -> dict[str, Any]:
    """The OAuth 2.0 security scheme: client credentials for partner systems, the
    authorization code flow (with PKCE) for people signing in through the workspace; scopes
    are role names."""
    scopes = {role: f"act as {role}" for role in roles}
    return {
        "type": "oauth2",
        "description": "Client credentials: your client id and secret get a 5-minute token. "
        "People sign in through the workspace (authorization code with PKCE S256, public "
        "client refex-web); their tokens carry the person and their roles.",
        "flows": {
            "clientCredentials": {"tokenUrl": "/oauth/token", "scopes": scopes},
            "authorizationCode": {
                "authorizationUrl": "/oauth/authorize",
                "tokenUrl": "/oauth/token",
                "refreshUrl": "/oauth/token",
                "scopes": scopes,
            },
        },
    }


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in renames:
            return {**node, "$ref": renames[ref]}
        return {key: _rewrite_refs(value, renames) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def _unique_name(taken: dict[str, Any], service: str, name: str) -> str:
    candidate = f"{service.capitalize()}{name}"
    suffix = 2
    while candidate in taken:
        candidate = f"{service.capitalize()}{name}{suffix}"
        suffix += 1
    return candidate


def _component_renames(merged: Document, doc: Document, service: str) -> dict[str, str]:
    """Rename an upstream's components that clash with different ones already merged."""
    renames: dict[str, str] = {}
    entries = [
        (kind, name, value)
        for kind, section in doc.get("components", {}).items()
        if kind != "securitySchemes"
        for name, value in section.items()
    ]
    changed = True
    while changed:  # a rename can make a referring component differ too
        changed = False
        for kind, name, value in entries:
            ref = f"#/components/{kind}/{name}"
            existing = merged.get("components", {}).get(kind, {}).get(name)
            if ref in renames or existing is None:
                continue
            if existing != _rewrite_refs(value, renames):
                new = _unique_name(merged["components"][kind], service, name)
                renames[ref] = f"#/components/{kind}/{new}"
                changed = True
    return renames


def _merge_components(merged: Document, doc: Document, renames: dict[str, str]) -> None:
    components = merged.setdefault("components", {})
    for kind, section in doc.get("components", {}).items():
        if kind == "securitySchemes":
            for name, value in section.items():
                components.setdefault(kind, {}).setdefault(name, value)
            continue
        for name, value in section.items():
            target = renames.get(f"#/components/{kind}/{name}", "").rsplit("/", 1)[-1] or name
            components.setdefault(kind, {})[target] = _rewrite_refs(value, renames)


def _operation_ids(document: Document) -> set[str]:
    return {
        operation["operationId"]
        for item in document.get("paths", {}).values()
        for method, operation in item.items()
        if method in HTTP_METHODS and "operationId" in operation
    }


def _unique_operation_id(taken: set[str], service: str, operation_id: str) -> str:
    """Keep a service's operationId unless another published operation already has it.

    Services name their operations so that they never clash (tests/test_operation_ids.py); a
    clash still must not make the document invalid, so the later one is qualified.
    """
    candidate, suffix = operation_id, 2
    if candidate in taken:
        logger.warning(
            "operationId published twice", extra={"upstream": service, "route": operation_id}
        )
        candidate = f"{service}.{operation_id}"
    while candidate in taken:
        candidate, suffix = f"{service}.{operation_id}{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def _publish_operation(operation: dict[str, Any], service: str, taken: set[str]) -> dict[str, Any]:
    operation = dict(operation)
    if "operationId" in operation:
        operation["operationId"] = _unique_operation_id(taken, service, operation["operationId"])
    operation.setdefault("tags", [service])
    if operation.get("security"):
        operation["security"] = [{OAUTH_SCHEME: []}, *operation["security"]]
    responses = dict(operation.get("responses", {}))
    for status, description in GATEWAY_ERRORS.items():
        responses.setdefault(str(status), problem_response_doc(status, description))
    if "requestBody" in operation:
        responses.setdefault("413", problem_response_doc(413))
    operation["responses"] = responses
    return operation


def merge_documents(own: Document, upstreams: dict[str, Document], roles: list[str]) -> Document:
    """Merge the gateway's own document with each service's, under their public paths."""
    merged = copy.deepcopy(own)
    merged.setdefault("components", {}).setdefault("securitySchemes", {})
    merged["components"]["securitySchemes"][OAUTH_SCHEME] = oauth_scheme(roles)
    for path_item in merged.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in HTTP_METHODS and operation.get("security"):
                operation["security"] = [{OAUTH_SCHEME: []}, *operation["security"]]
    taken = _operation_ids(merged)
    for service, doc in upstreams.items():
        renames = _component_renames(merged, doc, service)
        _merge_components(merged, doc, renames)
        for path, item in doc.get("paths", {}).items():
            public = external_path(service, path)
            if public is None:
                continue
            item = _rewrite_refs(item, renames)
            merged.setdefault("paths", {})[public] = {
                method: _publish_operation(op, service, taken) if method in HTTP_METHODS else op
                for method, op in item.items()
            }
    return merged


def mark_incomplete(document: Document, missing: list[str]) -> Document:
    """Say at the top of the document which services' operations it lacks, and why."""
    names = ", ".join(missing)
    info = document.setdefault("info", {})
    notice = (
        f"**Incomplete: the {names} API could not be loaded yet, so its operations are "
        "missing below.** The gateway asks again on every load of this page; reload in a few "
        "seconds. `GET /readyz/upstreams` shows which services answer."
    )
    info["description"] = f"{notice}\n\n{info.get('description', '')}".strip()
    info["x-refex-missing-services"] = list(missing)
    return document


class OpenApiCatalog:
    """Loads the services' documents (retrying until all are in) and serves the merged one.

    A merge that lacks a service is never taken for complete: it says so in the document, and
    every request for it first asks the missing services again.
    """

    def __init__(
        self,
        *,
        own: Callable[[], Document],
        upstreams: dict[str, str],
        client: ProxyClient,
        roles: list[str],
    ) -> None:
        self._own = own
        self._upstreams = upstreams
        self._client = client
        self._roles = roles
        self.documents: dict[str, Document] = {}
        self._merged: bytes | None = None
        self._failing: set[str] = set()
        self._lock = asyncio.Lock()
        self._refreshes_started = 0

    @property
    def missing(self) -> list[str]:
        """Return the services whose document is not loaded yet."""
        return [name for name in self._upstreams if name not in self.documents]

    async def current(self) -> tuple[bytes, bool]:
        """Return the merged document as JSON and whether it is complete, asking the missing
        services first."""
        if self.missing:
            await self.refresh_missing()
        if self._merged is None:
            self._merged = orjson.dumps(self.merged_document())
        return self._merged, not self.missing

    def merged_document(self) -> Document:
        """Return the merged document, marked incomplete while a service's is missing."""
        loaded = {name: self.documents[name] for name in self._upstreams if name in self.documents}
        merged = merge_documents(self._own(), loaded, self._roles)
        return mark_incomplete(merged, self.missing) if self.missing else merged

    async def refresh_missing(self) -> None:
        """Fetch the documents still missing, unless a fetch started since this call did."""
        seen = self._refreshes_started
        async with self._lock:
            if self._refreshes_started == seen:  # else that fetch began after we asked
                await self._refresh_locked(self.missing)

    async def refresh(self) -> None:
        """Fetch every service's document now; keep the previous one where a fetch fails."""
        async with self._lock:
            await self._refresh_locked(list(self._upstreams))

    async def _refresh_locked(self, names: list[str]) -> None:
        self._refreshes_started += 1
        if not names:
            return
        results = await asyncio.gather(
            *(self._fetch(self._upstreams[name]) for name in names), return_exceptions=True
        )
        for name, result in zip(names, results, strict=True):
            if isinstance(result, dict):
                self.documents[name] = result
                self._failing.discard(name)
            elif name not in self._failing:  # once per outage, not once per retry
                self._failing.add(name)
                logger.warning("service API description not loaded", extra={"upstream": name})
        self._merged = None

    async def _fetch(self, base_url: str) -> Document:
        try:
            reply = await self._client.send(
                method="GET",
                url=f"{base_url.rstrip('/')}/openapi.json",
                headers=[("accept", "application/json"), ("accept-encoding", "identity")],
                body=b"",
            )
            try:
                body = await reply.read()
            finally:
                await reply.release()
        except UpstreamFailure:
            raise ConnectionError("service unreachable") from None
        if reply.status != 200:
            raise ConnectionError(f"status {reply.status}")
        document = orjson.loads(body)
        if not isinstance(document, dict) or "paths" not in document:
            raise ConnectionError("not an OpenAPI document")
        return document
