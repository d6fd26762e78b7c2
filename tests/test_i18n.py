"""Languages: negotiation, the French catalog against the code, and translated answers."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from services import demo as demo_module
from services.cli import app as cli_app
from services.consent.app import create_app as create_consent
from services.consent.settings import ConsentSettings
from services.gateway.app import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.messages import extract, placeholders, read_catalog
from shared.i18n import Message, cli_language, current_language, gettext, negotiate, use_language
from shared.testing import TokenMinter


class TestNegotiation:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            (None, "en"),
            ("", "en"),
            ("fr", "fr"),
            ("fr-SN", "fr"),
            ("fr-SN;q=0.9,en;q=0.5", "fr"),
            ("en;q=0.4, fr-GN;q=0.8", "fr"),
            ("fr;q=0.1, en", "en"),
            ("de", "en"),
            ("de, fr;q=0.3", "fr"),
            ("*", "en"),
            ("fr;q=0", "en"),
            ("fr;q=banana", "en"),
            ("FR-sn", "fr"),
        ],
    )
    def test_accept_language_picks_a_supported_language(
        self, header: str | None, expected: str
    ) -> None:
        assert negotiate(header) == expected

    def test_the_language_is_scoped_to_the_block(self) -> None:
        with use_language("fr"):
            assert current_language() == "fr"
            assert gettext("Field required") == "Champ obligatoire"
        assert current_language() == "en"
        assert gettext("Field required") == "Field required"

    def test_a_message_renders_its_placeholders_in_the_current_language(self) -> None:
        text = Message("List should have at least {min_length} items", min_length=2)
        assert text.render("en") == "List should have at least 2 items"
        with use_language("fr"):
            assert str(text) == "La liste doit contenir au moins 2 élément(s)"


class TestFrenchCatalog:
    def test_every_text_in_the_code_has_a_french_translation(self) -> None:
        catalog = read_catalog("fr")
        missing = [m.id for m in extract() if m.id and catalog.get(m.id) is None]
        assert missing == [], "run `python -m services.messages` and translate the new entries"

    def test_no_french_entry_is_empty_or_fuzzy(self) -> None:
        unfinished = [m.id for m in read_catalog("fr") if m.id and (not m.string or m.fuzzy)]
        assert unfinished == []

    def test_placeholders_are_the_same_in_both_languages(self) -> None:
        differing = [
            m.id
            for m in read_catalog("fr")
            if m.id and placeholders(str(m.id)) != placeholders(str(m.string))
        ]
        assert differing == []

    def test_the_catalog_holds_no_text_the_code_no_longer_uses(self) -> None:
        in_code = {m.id for m in extract() if m.id}
        stale = [m.id for m in read_catalog("fr") if m.id and m.id not in in_code]
        assert stale == []


SUBJECT = "rtn_7Qk2vX9mB4sLp0Wz"
HOST_ORG = "0192f000-0000-7000-8000-000000000001"
UNKNOWN = "0192f000-0000-7000-8000-00000000dead"
FRENCH = ("fr", "fr-SN;q=0.9,en;q=0.5")
ENGLISH = ("de", None)


@pytest.fixture
async def consent_http(
    test_settings: Callable[..., Any], in_process: Callable[..., Any], token_minter: TokenMinter
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    app = create_consent(test_settings(ConsentSettings, workers_enabled=False))
    headers = token_minter.headers(roles=["host_office"], org=HOST_ORG, client="host-client")
    async with in_process(app) as http:
        yield http, headers


def _with_language(headers: dict[str, str], accept: str | None) -> dict[str, str]:
    return {**headers, **({"Accept-Language": accept} if accept else {})}


class TestProblemsInTheCallersLanguage:
    @pytest.mark.parametrize("accept", FRENCH + ENGLISH)
    async def test_a_bad_consent_is_refused_in_the_negotiated_language(
        self, consent_http: tuple[httpx.AsyncClient, dict[str, str]], accept: str | None
    ) -> None:
        http, headers = consent_http
        body = {"grantor": "self", "purpose": "referral", "language": "fr"}
        response = await http.post("/consents", json=body, headers=_with_language(headers, accept))
        french = accept in FRENCH
        assert response.status_code == 422
        assert response.headers["content-language"] == ("fr" if french else "en")
        assert "accept-language" in response.headers["vary"].lower()
        problem = response.json()
        assert problem["type"] == "urn:refex:problem:validation-failed"
        assert problem["title"] == ("Saisie invalide" if french else "Invalid input")
        missing = next(e for e in problem["errors"] if e["loc"] == ["body", "subject_ref"])
        assert missing["type"] == "missing"
        assert missing["msg"] == ("Champ obligatoire" if french else "Field required")
        listed = await http.get(f"/consents?subject_ref={SUBJECT}", headers=headers)
        assert listed.status_code in (200, 404, 405) and SUBJECT not in listed.text

    async def test_our_own_validators_speak_french(
        self, consent_http: tuple[httpx.AsyncClient, dict[str, str]]
    ) -> None:
        http, headers = consent_http
        body = {
            "subject_ref": SUBJECT,
            "grantor": "self",
            "grantee": {"kind": "organisation", "org_id": HOST_ORG},
            "purpose": "referral",
            "categories": ["contact"],
            "valid_from": "2030-03-02T09:00:00Z",
            "valid_until": "2030-03-01T09:00:00Z",
            "evidence": {"method": "written", "form_sha256": "ab" * 32},
            "language": "fr",
        }
        response = await http.post("/consents", json=body, headers=_with_language(headers, "fr-GN"))
        assert response.status_code == 422, response.text
        messages = [e["msg"] for e in response.json()["errors"]]
        assert "Valeur invalide : doit être postérieure à valid_from" in messages

    @pytest.mark.parametrize("accept", FRENCH + ENGLISH)
    async def test_not_found_is_translated_and_its_type_is_not(
        self, consent_http: tuple[httpx.AsyncClient, dict[str, str]], accept: str | None
    ) -> None:
        http, headers = consent_http
        response = await http.get(f"/consents/{UNKNOWN}", headers=_with_language(headers, accept))
        assert response.status_code == 404
        problem = response.json()
        assert problem["type"] == "urn:refex:problem:consent-not-found"
        if accept in FRENCH:
            assert problem["title"] == "Consentement introuvable"
            assert problem["detail"].startswith("Aucun consentement n'existe")
        else:
            assert problem["title"] == "Consent not found"
        assert response.headers["content-language"] == ("fr" if accept in FRENCH else "en")


class TestGatewayProblems:
    @pytest.mark.parametrize("accept", FRENCH + ENGLISH)
    async def test_the_gateways_own_problems_are_translated(
        self, gateway_http: httpx.AsyncClient, accept: str | None
    ) -> None:
        french = accept in FRENCH
        headers = _with_language({}, accept)
        unrouted = await gateway_http.get("/api/v1/nowhere/at/all", headers=headers)
        no_token = await gateway_http.get("/api/v1/consents", headers=headers)
        bad_login = await gateway_http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, headers=headers
        )
        for response in (unrouted, no_token, bad_login):
            assert response.status_code in (400, 401, 404), response.text
            assert response.headers["content-language"] == ("fr" if french else "en")
            assert "accept-language" in response.headers["vary"].lower()
        assert no_token.json()["type"] == "urn:refex:problem:unauthenticated"
        assert no_token.json()["title"] == (
            "Authentification requise" if french else "Authentication required"
        )
        assert unrouted.json()["title"] == ("Introuvable" if french else "Not found")

    @pytest.mark.parametrize("accept", FRENCH + ENGLISH)
    async def test_oauth_errors_keep_their_code_and_explain_in_the_callers_language(
        self, gateway_http: httpx.AsyncClient, accept: str | None
    ) -> None:
        french = accept in FRENCH
        response = await gateway_http.post(
            "/oauth/token",
            content=b"grant_type=client_credentials&grant_type=client_credentials",
            headers=_with_language({"Content-Type": "application/x-www-form-urlencoded"}, accept),
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_request",
            "error_description": "Le paramètre 'grant_type' est répété ; envoyez-le une seule fois."
            if french
            else "The parameter 'grant_type' is repeated; send it once.",
        }
        assert response.headers["content-language"] == ("fr" if french else "en")


@pytest.fixture
async def gateway_http(
    test_settings: Callable[..., Any], in_process: Callable[..., Any]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_gateway(test_settings(GatewaySettings))
    async with in_process(app) as http:
        yield http


class TestCommandLine:
    @pytest.mark.parametrize(
        ("flag", "environ", "expected"),
        [
            (None, {"LANG": "fr_FR.UTF-8"}, "fr"),
            (None, {"LANG": "fr_SN.UTF-8", "LC_MESSAGES": "en_GB.UTF-8"}, "en"),
            (None, {"LANG": "en_US.UTF-8", "LC_MESSAGES": "fr_FR"}, "fr"),
            (None, {"LC_ALL": "C", "LANG": "fr_FR.UTF-8"}, "en"),
            (None, {"LC_ALL": "POSIX"}, "en"),
            (None, {"LANG": "de_DE.UTF-8"}, "en"),
            (None, {}, "en"),
            ("fr", {"LANG": "en_US.UTF-8"}, "fr"),
            ("en", {"LC_ALL": "fr_FR.UTF-8"}, "en"),
        ],
    )
    def test_the_language_follows_lang_lc_messages_and_the_flag(
        self, flag: str | None, environ: dict[str, str], expected: str
    ) -> None:
        assert cli_language(flag, environ) == expected

    @pytest.mark.parametrize(
        ("args", "env"),
        [
            (["demo"], {"LANG": "fr_FR.UTF-8", "LC_ALL": None, "LC_MESSAGES": None}),
            (["--lang", "fr", "demo"], {"LANG": "C", "LC_ALL": None, "LC_MESSAGES": None}),
        ],
    )
    def test_refex_demo_speaks_french(
        self,
        args: list[str],
        env: dict[str, str | None],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(demo_module, "DEMO_CLIENTS_FILE", tmp_path / "clients.json")
        with use_language("en"):  # the command sets the process language; keep it to this test
            result = CliRunner().invoke(cli_app, args, env=env)
        assert result.exit_code == 2
        assert "aucun identifiant de démonstration" in result.output
        assert "démarrez d'abord la plateforme avec `make run`" in result.output

    @pytest.mark.parametrize(
        ("args", "env"),
        [
            (["--lang", "fr", "migrate", "--help"], {"LANG": "C", "LC_ALL": None}),
            (["migrate", "--help"], {"LANG": "fr_FR.UTF-8", "LC_ALL": None, "LC_MESSAGES": None}),
        ],
    )
    def test_help_is_french(self, args: list[str], env: dict[str, str | None]) -> None:
        with use_language("en"):
            result = CliRunner().invoke(cli_app, args, env=env)
        assert result.exit_code == 0, result.output
        assert "Appliquer les migrations de base de données" in result.output
        assert "Seulement ce service." in result.output
        assert "Apply every service's database migrations" not in result.output

    def test_help_stays_english_without_a_french_locale(self) -> None:
        env = {"LANG": "en_GB.UTF-8", "LC_ALL": None, "LC_MESSAGES": None}
        with use_language("en"):
            french = CliRunner().invoke(cli_app, ["--lang", "fr", "--help"], env=env)
            english = CliRunner().invoke(cli_app, ["--help"], env=env)
        assert "exécuter et administrer" in french.output
        assert "run and administer the refex services" in english.output
        assert "Commandes" not in english.output

    def test_errors_follow_lang(self) -> None:
        env = {"LANG": "fr_FR.UTF-8", "LC_ALL": None, "LC_MESSAGES": None}
        args = ["provider", "inbox", "--url", "http://127.0.0.1:9", "--client-id", "x"]
        with use_language("en"):
            result = CliRunner().invoke(cli_app, [*args, "--client-secret", "y"], env=env)
        assert result.exit_code == 1
        assert "impossible de joindre la passerelle à http://127.0.0.1:9" in result.output
        assert "démarrez-la avec `make run`" in result.output

    def test_every_help_text_is_in_the_catalog(self) -> None:
        import typer.main

        from services.cli_language import help_texts

        catalog = read_catalog("fr")
        texts = help_texts(typer.main.get_command(cli_app))
        assert "Print the refex version." in texts
        assert [t for t in texts if catalog.get(t) is None] == []

    def test_refex_demo_speaks_english_by_default(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(demo_module, "DEMO_CLIENTS_FILE", tmp_path / "clients.json")
        env = {"LANG": "C.UTF-8", "LC_ALL": None, "LC_MESSAGES": None}
        with use_language("en"):
            result = CliRunner().invoke(cli_app, ["demo"], env=env)
        assert "no demo credentials" in result.output


ROOT = Path(__file__).resolve().parent.parent
HUMAN_TEXT_ARGUMENTS = ("detail", "description", "reason", "advice", "title")


def _sources() -> dict[Path, ast.Module]:
    files = [p for d in ("services", "shared") for p in (ROOT / d).rglob("*.py")]
    return {p: ast.parse(p.read_text()) for p in files if "migrations" not in p.parts}


def _error_classes(trees: Iterable[ast.Module]) -> set[str]:
    """Every class that derives, by name, from ServiceError or the gateway's OAuthError."""
    bases: dict[str, set[str]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                named = {
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                }
                bases.setdefault(node.name, set()).update(named)
    errors = {"ServiceError", "OAuthError"}
    while grown := {name for name, parents in bases.items() if parents & errors} - errors:
        errors |= grown
    return errors


def _plain_text(node: ast.expr) -> bool:
    """A text that never reaches the catalog: a literal, an f-string, or one built by hand."""
    if isinstance(node, ast.IfExp):
        return _plain_text(node.body) or _plain_text(node.orelse)
    built = isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("format", "join")
    literal = isinstance(node, ast.Constant) and isinstance(node.value, str)
    return literal or built or isinstance(node, ast.JoinedStr | ast.BinOp)


def _untranslated(tree: ast.Module, errors: set[str]) -> Iterator[int]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            texts = [k.value for k in node.keywords if k.arg in HUMAN_TEXT_ARGUMENTS]
            if name in errors:
                texts += node.args[:2]
            elif name != "problem_response":
                continue
            if any(_plain_text(text) for text in texts):
                yield node.lineno
        elif isinstance(node, ast.ClassDef) and node.name in errors:
            for statement in node.body:
                target = getattr(statement, "target", None) or next(
                    iter(getattr(statement, "targets", [])), None
                )
                value = getattr(statement, "value", None)
                named = isinstance(target, ast.Name) and target.id in ("title", "detail")
                if named and isinstance(value, ast.expr) and _plain_text(value):
                    yield statement.lineno


class TestNoUntranslatedDetail:
    def test_every_problem_text_goes_through_the_catalog(self) -> None:
        trees = _sources()
        errors = _error_classes(trees.values())
        found = [
            f"{path.relative_to(ROOT)}:{line}"
            for path, tree in trees.items()
            for line in _untranslated(tree, errors)
        ]
        assert found == [], "wrap the text in N_(...) or Message('... {name} ...', name=...)"

    def test_the_check_sees_a_plain_detail(self) -> None:
        tree = ast.parse(
            "class Gone(NotFound): title = 'Gone'\n"
            "raise Gone(f'No {thing} here.')\n"
            "raise Gone(N_('Nothing here.'))\n"
            "raise Gone(Message('No {thing} here.', thing=thing))\n"
            "problem_response(status=400, detail='Bad.' + hint)\n"
        )
        assert list(_untranslated(tree, {"ServiceError", "NotFound", "Gone"})) == [1, 2, 5]
