"""The `refex` command in its user's language: help texts are translated as the command starts.

The English help (docstrings, `help=`) is the msgid, so the texts need no marking: `python -m
services.messages` collects them from the command tree and the French catalog must cover them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from typer import rich_utils

from shared.i18n import N_, cli_language, gettext, set_language

ENGLISH = "_refex_english_help"
# typer reads its help panels' titles from these module globals each time it draws them.
PANEL_TITLES = {
    "ARGUMENTS_PANEL_TITLE": N_("Arguments"),
    "OPTIONS_PANEL_TITLE": N_("Options"),
    "COMMANDS_PANEL_TITLE": N_("Commands"),
    "ERRORS_PANEL_TITLE": N_("Error"),
}


def commands(root: Any) -> Iterator[Any]:
    """`root` and every command and group below it."""
    yield root
    for command in getattr(root, "commands", {}).values():
        yield from commands(command)


def _documented(root: Any) -> Iterator[Any]:
    for command in commands(root):
        yield command
        yield from command.params


def help_texts(root: Any) -> set[str]:
    """Every English help text of the command tree under `root`."""
    return {text for item in _documented(root) if (text := _english(item))}


def _english(item: Any) -> str | None:
    if not hasattr(item, ENGLISH):
        setattr(item, ENGLISH, getattr(item, "help", None))
    english: str | None = getattr(item, ENGLISH)
    return english


def speak(root: Any, lang: str) -> None:
    """Show every help text under `root` in `lang` (the English one stays known)."""
    for item in _documented(root):
        english = _english(item)
        if english:
            item.help = gettext(english, lang)
    for name, title in PANEL_TITLES.items():
        setattr(rich_utils, name, gettext(title, lang))


def flag_value(args: Sequence[str]) -> str | None:
    """The value of the root's `--lang` option in `args`, read before click parses them."""
    for index, arg in enumerate(args):
        if not arg.startswith("-"):
            return None  # the subcommand starts here: its own options are not ours
        if arg.startswith("--lang="):
            return arg.partition("=")[2]
        if arg == "--lang" and index + 1 < len(args):
            return args[index + 1]
    return None


def start_in_language(root: Any, args: Sequence[str]) -> None:
    """Pick the language (`--lang`, LC_ALL, LC_MESSAGES, LANG) and translate the help."""
    lang = cli_language(flag_value(args), os.environ)
    set_language(lang)
    speak(root, lang)
