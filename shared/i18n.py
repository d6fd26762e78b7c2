"""Languages: negotiation, the caller's language for this task, and Babel-compiled catalogs.

English msgids are the English text. French lives in `shared/locale/fr/LC_MESSAGES/refex.po`,
compiled in memory with Babel the first time it is needed. Machine-readable parts (`type` URNs,
codes, enum values, field names) are never passed through here.
"""

from __future__ import annotations

import gettext as _gettext
import io
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

SUPPORTED = ("en", "fr")
DEFAULT = "en"
DOMAIN = "refex"
LOCALE_DIR = Path(__file__).with_name("locale")

_language: ContextVar[str] = ContextVar("refex_language", default=DEFAULT)


def catalog_path(lang: str) -> Path:
    """Where the `.po` source of `lang` lives."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def _primary(tag: str) -> str | None:
    """`fr-SN` / `fr_FR.UTF-8` → `fr` when supported; `*` → the default."""
    primary = tag.strip().split(".")[0].replace("_", "-").split("-")[0].lower()
    if primary == "*":
        return DEFAULT
    return primary if primary in SUPPORTED else None


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


@lru_cache(maxsize=256)
def negotiate(accept_language: str | None) -> str:
    """Pick the supported language an `Accept-Language` value (RFC 9110 §12.5.4) prefers."""
    if not accept_language:
        return DEFAULT
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, *params = item.split(";")
        lang = _primary(tag)
        quality = _quality(params)
        if lang is not None and quality > 0:
            ranked.append((-quality, position, lang))
    return min(ranked)[2] if ranked else DEFAULT


def from_locale(value: str | None) -> str | None:
    """Map a POSIX locale name (`fr_FR.UTF-8`, `C`, `POSIX`) to a supported language."""
    if not value or value.split(".")[0] in ("C", "POSIX"):
        return None
    return _primary(value)


def cli_language(flag: str | None, environ: Mapping[str, str]) -> str:
    """`--lang`, else the first set of LC_ALL, LC_MESSAGES, LANG (POSIX order; C/POSIX: en)."""
    if flag:
        return negotiate(flag)
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return from_locale(value) or DEFAULT
    return DEFAULT


def current_language() -> str:
    """The language of the caller this task serves."""
    return _language.get()


@contextmanager
def use_language(lang: str) -> Iterator[None]:
    """Speak `lang` (a supported code) inside the block."""
    token = _language.set(lang if lang in SUPPORTED else DEFAULT)
    try:
        yield
    finally:
        _language.reset(token)


def set_language(lang: str) -> None:
    """Speak `lang` from now on in this context (a CLI process, one ASGI request)."""
    _language.set(lang if lang in SUPPORTED else DEFAULT)


@cache
def translations(lang: str) -> _gettext.NullTranslations:
    """The compiled catalog of `lang` (English is the msgids themselves)."""
    path = catalog_path(lang)
    if lang == DEFAULT or not path.exists():
        return _gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=lang, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return _gettext.GNUTranslations(compiled)


def gettext(msgid: str, lang: str | None = None) -> str:
    """`msgid` in `lang` (default: the current language); unknown texts stay as they are."""
    if not msgid:
        return msgid
    return translations(lang or current_language()).gettext(msgid)


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Mark a constant text for extraction; it is translated where it is shown."""
    return msgid


class Message:
    """A text with placeholders, rendered in the reader's language when it is shown."""

    __slots__ = ("msgid", "params")

    def __init__(self, msgid: str, /, **params: Any) -> None:
        self.msgid = msgid
        self.params: Mapping[str, Any] = params

    def render(self, lang: str | None = None) -> str:
        """The text in `lang` (default: the current language), placeholders filled."""
        values = {
            name: value.render(lang) if isinstance(value, Message) else value
            for name, value in self.params.items()
        }
        return gettext(self.msgid, lang).format(**values)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Message({self.msgid!r}, **{dict(self.params)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Message):
            return (self.msgid, dict(self.params)) == (other.msgid, dict(other.params))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.msgid)


class Joined(Message):
    """Texts shown one after the other, each rendered in the reader's language."""

    __slots__ = ("parts", "separator")

    def __init__(self, parts: Iterable[str | Message], separator: str = " ") -> None:
        super().__init__("")
        self.parts, self.separator = tuple(parts), separator

    def render(self, lang: str | None = None) -> str:
        """Every part in `lang`, joined by the separator."""
        return self.separator.join(str(localize(part, lang)) for part in self.parts)

    def __repr__(self) -> str:
        return f"Joined({list(self.parts)!r}, {self.separator!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Joined):
            return (self.parts, self.separator) == (other.parts, other.separator)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.parts)


_l = Message


def localize(value: Any, lang: str | None = None) -> Any:
    """Render a `Message`, translate a plain text, leave anything else untouched."""
    if isinstance(value, Message):
        return value.render(lang)
    if isinstance(value, str):
        return gettext(value, lang)
    return value


# The markers `pybabel extract -F babel.cfg` needs (`-k N_ -k _l -k Message -k gettext`).
KEYWORDS: dict[str, None] = {"N_": None, "_l": None, "Message": None, "gettext": None}
