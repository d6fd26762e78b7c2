"""Extract refex's texts (babel.cfg) and merge them into the committed `.po` catalogs."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from shared.i18n import DOMAIN, KEYWORDS, SUPPORTED, catalog_path

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)[^}]*\}")


def extract() -> Catalog:
    """Every text marked in shared/ and services/, as a template catalog."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)  # type: ignore[no-untyped-call]
    template = Catalog(domain=DOMAIN, project="refex")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        if isinstance(message, str):
            template.add(message, locations=[(filename, lineno)], auto_comments=comments)
        del context
    for text in sorted(_command_help()):
        template.add(text, auto_comments=["help of the refex command"])
    return template


def _command_help() -> set[str]:
    """The help texts of the `refex` command tree (docstrings and `help=`), unmarked msgids."""
    import typer.main

    from services.cli import app
    from services.cli_language import help_texts

    return help_texts(typer.main.get_command(app))


def placeholders(text: str) -> set[str]:
    """The `{name}` placeholders of a text."""
    return set(PLACEHOLDER.findall(text))


def read_catalog(lang: str) -> Catalog:
    """The committed catalog of `lang`."""
    with catalog_path(lang).open("rb") as source:
        return read_po(source, locale=lang, domain=DOMAIN)


def update_catalogs() -> None:
    """Add new texts (untranslated) to each catalog and drop the ones no longer in the code."""
    template = extract()
    for lang in SUPPORTED[1:]:
        path = catalog_path(lang)
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = read_catalog(lang) if path.exists() else Catalog(locale=lang, domain=DOMAIN)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as target:
            write_po(target, catalog, width=100, no_location=True, sort_output=True)


if __name__ == "__main__":
    update_catalogs()
