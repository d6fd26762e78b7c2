"""Every `refex` command answers a French user in French, on both backends.

The check is the catalog itself: each English msgid is cut at its placeholders and markup into
phrases; a phrase of several words that the French translation does not contain must never show
up in what a command prints under LANG=fr_FR.UTF-8 (or `--lang fr`). Machine-readable parts
(codes, URNs, file and field names, enum values) stay as they are and are not phrases of a msgid.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
from collections.abc import Callable
from functools import cache
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from services import demo as demo_module
from services.cli import app as cli_app
from services.consent.models import LedgerEntry
from services.messages import read_catalog
from services.referral.audit import append_audit
from services.registry import SERVICE_NAMES, WITH_MIGRATIONS
from shared.clock import utcnow
from shared.db import Database
from shared.i18n import use_language

FRENCH = {"LANG": "fr_FR.UTF-8", "LC_ALL": None, "LC_MESSAGES": None}
ENGLISH = {"LANG": "en_GB.UTF-8", "LC_ALL": None, "LC_MESSAGES": None}
MARKUP = re.compile(r"\[/?[a-z ]*\]")
PLACEHOLDER = re.compile(r"\{[^}]*\}")
ORG = "0192f000-0000-7000-8000-000000000001"
UNREACHABLE = "http://127.0.0.1:9"


def _words(value: str) -> str:
    return " ".join(value.split())


@cache
def english_phrases() -> dict[str, str]:
    """Phrase (lower case) → the msgid it comes from, for every text French translates."""
    found: dict[str, str] = {}
    for message in read_catalog("fr"):
        english, french = str(message.id or ""), str(message.string or "")
        if not english or not french or english == french:
            continue
        translated = _words(MARKUP.sub("", french)).lower()
        for piece in PLACEHOLDER.split(MARKUP.sub("", english)):
            phrase = _words(piece).strip(" :;,.()—-").lower()
            if len(phrase) >= 12 and " " in phrase and phrase not in translated:
                found.setdefault(phrase, english)
    return found


def english_in(output: str) -> list[str]:
    """The msgids whose English phrases appear in `output`."""
    printed = _words(output).lower()
    return sorted({msgid for phrase, msgid in english_phrases().items() if phrase in printed})


class Refex:
    """`refex` run in this process, in an empty folder, with this test's databases."""

    def __init__(self, env: dict[str, str | None], flag: list[str]) -> None:
        self.env, self.flag = env, flag
        self.runner = CliRunner()

    def __call__(self, *args: str, **env: str | None) -> Result:
        with use_language("en"):  # the command sets the process language; keep it to the call
            args_with_flag = [*self.flag, *args]
            return self.runner.invoke(
                cli_app, args_with_flag, env={**self.env, **env}, prog_name="refex"
            )


def french_only(result: Result, *expected: str) -> str:
    """The output, after checking it holds no English phrase and every `expected` text."""
    assert "Traceback" not in result.output, result.output
    assert english_in(result.output) == [], result.output
    for part in expected:
        assert part in _words(result.output), result.output
    return result.output


@pytest.fixture
def urls(fresh_database: Callable[[str], str]) -> dict[str, str]:
    """A fresh migrated database per service on this test's backend."""
    return {entry.name: fresh_database(entry.name) for entry in WITH_MIGRATIONS}


@pytest.fixture(params=["LANG", "--lang"])
def refex(
    request: pytest.FixtureRequest,
    urls: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Refex:
    """French through LANG=fr_FR.UTF-8, or through `--lang fr` under an English locale."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("REFEX_")]:
        monkeypatch.delenv(name)
    env: dict[str, str | None] = {
        f"REFEX_{name.upper()}_DATABASE_URL": url for name, url in urls.items()
    }
    env |= {f"REFEX_{name.upper()}_LOG_LEVEL": "ERROR" for name in SERVICE_NAMES}
    if request.param == "LANG":
        return Refex({**env, **FRENCH}, [])
    return Refex({**env, **ENGLISH}, ["--lang", "fr"])


def run_sql(url: str, statement: str, **params: object) -> None:
    async def run() -> None:
        database = Database(url, pool_size=1)
        try:
            async with database.engine.begin() as connection:
                await connection.execute(text(statement), params)
        finally:
            await database.dispose()

    asyncio.run(run())


class TestTheCatalogCheck:
    def test_english_output_is_caught(self, urls: dict[str, str], tmp_path: Path) -> None:
        english = Refex({"REFEX_CONSENT_DATABASE_URL": urls["consent"], **ENGLISH}, [])
        result = english("ledger", "verify")
        assert result.exit_code == 0, result.output
        assert (
            "ledger OK: {size} entries ({purged} bodies purged), {heads} tree heads verified"
            in english_in(result.output)
        )

    def test_phrases_come_from_translated_texts_only(self) -> None:
        phrases = english_phrases()
        assert phrases["tree heads verified"].startswith("ledger OK:")
        assert not any("{" in phrase for phrase in phrases)  # placeholders are cut out
        assert "chaîne d'audit" not in " ".join(phrases)  # French is never taken for English


class TestSetUp:
    def test_migrate_and_seed(self, refex: Refex, backend: str) -> None:
        migrated = refex("migrate", "--service", "consent")
        assert migrated.exit_code == 0, migrated.output
        french_only(migrated, f"migré consent ({backend})")
        seeded = refex("seed", "--service", "gateway")
        assert seeded.exit_code == 0, seeded.output
        french_only(seeded, "données chargées gateway")

    def test_a_bad_setting_and_an_unmigrated_database(self, refex: Refex, tmp_path: Path) -> None:
        bad = refex("ledger", "verify", REFEX_CONSENT_DATABASE_URL="mysql://db/refex")
        assert bad.exit_code == 2
        french_only(bad, "base de données non prise en charge 'mysql'")
        empty = f"sqlite+aiosqlite:///{tmp_path}/empty.db"
        unmigrated = refex("serve", "directory", REFEX_DIRECTORY_DATABASE_URL=empty)
        assert unmigrated.exit_code == 2
        french_only(unmigrated, "REFEX_DIRECTORY_DATABASE_URL", "pas encore de schéma")

    def test_up_names_the_taken_port(self, refex: Refex) -> None:
        previous = signal.getsignal(signal.SIGTERM)  # `up` installs its own handler
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = str(taken.getsockname()[1])
            try:
                result = refex("up", "--no-fork", REFEX_GATEWAY_PORT=port)
            finally:
                signal.signal(signal.SIGTERM, previous)
        assert result.exit_code == 1
        french_only(result, f"port déjà utilisé : gateway ({port})", "REFEX_<SERVICE>_PORT")

    def test_config_docs(self, refex: Refex, tmp_path: Path) -> None:
        docs = tmp_path / "docs"
        stale = refex("config-docs", "--check", "--docs-dir", str(docs))
        assert stale.exit_code == 1
        french_only(stale, "n'est pas à jour : lancez `refex config-docs`")
        wrote = refex("config-docs", "--docs-dir", str(docs))
        assert wrote.exit_code == 0, wrote.output
        french_only(wrote, f"{docs / 'problems.md'} écrit")


class TestLedger:
    def test_verify_sign_purge_and_a_tampered_ledger(
        self, refex: Refex, urls: dict[str, str], tmp_path: Path
    ) -> None:
        signed = refex("ledger", "sign")
        assert signed.exit_code == 0, signed.output
        head = tmp_path / "head.json"
        head.write_text(signed.stdout)
        good = refex("ledger", "verify", "--tree-head", str(head))
        assert good.exit_code == 0, good.output
        french_only(good, "registre OK : 0 entrées (0 contenus purgés), 2 têtes d'arbre vérifiées")
        purged = refex("ledger", "purge")
        french_only(purged, "0 contenus d'événements purgés")
        (tmp_path / "bad.json").write_text("{}")
        not_a_head = refex("ledger", "verify", "--tree-head", str(tmp_path / "bad.json"))
        assert not_a_head.exit_code == 2
        french_only(not_a_head, "le fichier n'est pas une tête d'arbre enregistrée")
        missing = refex("ledger", "verify", "--tree-head", str(tmp_path / "none.json"))
        assert missing.exit_code == 2
        french_only(missing, "impossible de lire")

        run_sql(urls["consent"], "UPDATE tree_head SET root_hash = :root", root=b"\x01" * 32)
        self._insert_entry_beyond_the_size(urls["consent"])
        bad = refex("ledger", "verify")
        assert bad.exit_code == 1
        output = french_only(bad, "registre INVALIDE : premier indice fautif 0")
        assert "la tête d'arbre n° 1 a une signature invalide" in output
        assert "problème(s) trouvé(s)" in output

    def test_an_unusable_signing_key(self, refex: Refex) -> None:
        result = refex("ledger", "sign", REFEX_CONSENT_LEDGER_SIGNING_KEY="not base64!")
        assert result.exit_code == 2
        french_only(result, "n'est pas une clé Ed25519", "`refex ledger keygen`")
        key = orjson.loads(refex("ledger", "keygen").stdout)
        assert set(key) == {"REFEX_CONSENT_LEDGER_SIGNING_KEY"}

    @staticmethod
    def _insert_entry_beyond_the_size(url: str) -> None:
        async def run() -> None:
            database = Database(url, pool_size=1)
            try:
                async with database.sessionmaker() as session, session.begin():
                    now = utcnow()
                    session.add(
                        LedgerEntry(
                            index=0,
                            event_type="consent.granted",
                            appended_at=now,
                            retain_until=now,
                            body=b"{}",
                        )
                    )
            finally:
                await database.dispose()

        asyncio.run(run())


class TestAudit:
    def test_a_verified_then_a_broken_chain(self, refex: Refex, urls: dict[str, str]) -> None:
        async def fill() -> None:
            database = Database(urls["referral"], pool_size=1)
            try:
                for number in range(3):
                    async with database.sessionmaker() as session, session.begin():
                        await append_audit(
                            session,
                            action="referral.created",
                            actor=None,
                            referral_id=None,
                            request_id=f"req-{number}",
                        )
            finally:
                await database.dispose()

        asyncio.run(fill())
        good = refex("audit", "verify")
        assert good.exit_code == 0, good.output
        french_only(good, "la chaîne d'audit se vérifie")
        run_sql(urls["referral"], "UPDATE audit_event SET action = 'forged' WHERE seq = 2")
        bad = refex("audit", "verify")
        assert bad.exit_code == 1
        french_only(bad, "à la ligne 2", "le contenu ne correspond pas à son empreinte")


class TestDirectory:
    def test_export_import_and_refused_records(self, refex: Refex, tmp_path: Path) -> None:
        assert refex("seed", "--service", "directory").exit_code == 0
        package = tmp_path / "package"
        exported = refex("directory", "export", str(package))
        assert exported.exit_code == 0, exported.output
        french_only(exported, "exporté", f"vers {package} (HSDS 3.0 valide)")
        imported = refex("directory", "import", str(package))
        assert imported.exit_code == 0, imported.output
        french_only(imported, "acceptés", "enregistrement(s), rejetés 0")

        services = orjson.loads((package / "services.json").read_bytes())
        services[0]["status"] = "open"
        del services[1]["name"]
        (package / "services.json").write_bytes(orjson.dumps(services))
        refused = refex("directory", "import", str(package))
        assert refused.exit_code == 1
        french_only(
            refused,
            "rejetés 2",
            "status: 'open' ne fait pas partie de",
            "'name' est une propriété obligatoire",
            "rien n'a été enregistré ; corrigez les enregistrements rejetés",
        )
        nowhere = refex("directory", "import", str(tmp_path / "nowhere"))
        assert nowhere.exit_code == 2
        french_only(nowhere, "n'est pas un dossier")
        (package / "services.json").write_text("[{")
        broken = refex("directory", "import", str(package))
        assert broken.exit_code == 2
        french_only(broken, "services.json n'est pas du JSON valide")


class TestAdmin:
    def test_create_client_and_its_refusals(self, refex: Refex) -> None:
        made = refex("admin", "create-client", "--org", ORG, "--roles", "host_office")
        assert made.exit_code == 0, made.output
        french_only(made, "client_id:", "Le secret n'est affiché que maintenant")
        bad_org = refex("admin", "create-client", "--org", "ngo-1", "--roles", "host_office")
        assert bad_org.exit_code == 2
        french_only(bad_org, "--org doit être l'UUID d'une organisation")
        bad_role = refex("admin", "create-client", "--org", ORG, "--roles", "astrologer")
        assert bad_role.exit_code == 2
        french_only(bad_role, "roles.0: Valeurs acceptées", "'auditor', 'admin' ou 'service'")
        short = refex(
            "admin", "create-client", "--org", ORG, "--roles", "service", "--secret-env", "S"
        )
        assert short.exit_code == 2
        french_only(short, "S doit contenir un secret d'au moins 32 caractères aléatoires")


class TestPartnerCommands:
    def test_keys_provider_and_demo(
        self, refex: Refex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        key = tmp_path / "key.json"
        made = refex("keys", "generate", "--out", str(key))
        assert made.exit_code == 0, made.output
        french_only(made, "clé privée écrite dans")
        again = refex("keys", "generate", "--out", str(key))
        assert again.exit_code == 2
        french_only(again, "choisissez un autre chemin")
        gateway = ["--url", UNREACHABLE, "--client-id", "x", "--client-secret", "y"]
        inbox = refex("provider", "inbox", *gateway)
        assert inbox.exit_code == 1
        french_only(inbox, "impossible de joindre la passerelle à http://127.0.0.1:9")
        opened = refex(
            "provider", "open", "0192f000-0000-7000-8000-0000000000aa", "--key", str(key), *gateway
        )
        assert opened.exit_code == 1
        french_only(opened, "impossible de joindre la passerelle")
        monkeypatch.setattr(demo_module, "DEMO_CLIENTS_FILE", tmp_path / "clients.json")
        demo = refex("demo")
        assert demo.exit_code == 2
        french_only(demo, "aucun identifiant de démonstration")


class TestUsageErrorsAndHelp:
    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (["admin", "create-client"], "Option '--org' manquante."),
            (["ledger", "verfy"], "La commande 'verfy' n'existe pas. Vouliez-vous dire 'verify' ?"),
            (["ledger", "verify", "--nope"], "Option inconnue : --nope"),
            (["keys", "generate", "--out"], "L'option '--out' demande un argument."),
            (["up", "--ready-timeout", "soon"], "Valeur invalide pour '--ready-timeout' :"),
            (["version", "extra"], "Argument(s) supplémentaire(s) inattendu(s) (extra)"),
        ],
    )
    def test_a_usage_error_is_explained_in_french(
        self, refex: Refex, args: list[str], expected: str
    ) -> None:
        result = refex(*args)
        assert result.exit_code == 2
        output = french_only(result, expected, "Erreur")
        if "Usage:" in output:  # with the command's usage comes the way to its help
            assert f"Essayez 'refex {args[0]}" in output and "pour obtenir de l'aide" in output

    def test_the_same_error_stays_english_in_english(self, urls: dict[str, str]) -> None:
        english = Refex(ENGLISH, [])
        result = english("admin", "create-client")
        assert result.exit_code == 2
        assert "Missing option '--org'." in _words(result.output)
        assert "Try 'refex admin create-client --help' for help." in _words(result.output)

    def test_help_labels_are_french(self, refex: Refex) -> None:
        result = refex("admin", "create-client", "--help")
        assert result.exit_code == 0, result.output
        french_only(result, "Afficher ce message et quitter.", "[obligatoire]", "[par défaut :")
        english = Refex(ENGLISH, [])("admin", "create-client", "--help")
        assert "Show this message and exit." in _words(english.output)
