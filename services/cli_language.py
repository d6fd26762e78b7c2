"""The `refex` command in its user's language: help texts are translated as the command starts.

The English help (docstrings, `help=`) is the msgid, so the texts need no marking: `python -m
services.messages` collects them from the command tree and the French catalog must cover them.
typer's own texts (panel titles, `[required]`, the --help option, usage errors) go through the
same catalog; only "Usage:", hard-coded in the click typer vendors, stays as it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import typer
import typer.core
from typer import TyperException, rich_utils

from shared.errors import PYDANTIC_MESSAGES
from shared.i18n import DEFAULT, N_, Message, cli_language, current_language, gettext, set_language

ENGLISH = "_refex_english_help"
# typer reads its help panels' titles and labels from these module globals each time it draws.
PANEL_TITLES = {
    "ARGUMENTS_PANEL_TITLE": N_("Arguments"),
    "OPTIONS_PANEL_TITLE": N_("Options"),
    "COMMANDS_PANEL_TITLE": N_("Commands"),
    "ERRORS_PANEL_TITLE": N_("Error"),
    "DEFAULT_STRING": N_("[default: {}]"),
    "ENVVAR_STRING": N_("[env var: {}]"),
    "REQUIRED_LONG_STRING": N_("[required]"),
    "DEPRECATED_STRING": N_("(deprecated) "),
    "ABORTED_TEXT": N_("Aborted."),
    "RICH_HELP": N_("Try [blue]'{command_path} {help_option}'[/] for help."),
}
HELP_OPTION = N_("Show this message and exit.")
# typer looks these texts up with gettext (`typer.core._`) when it shows them.
TYPER_TEXTS = (
    N_("No such command {name!r}."),
    N_("Missing command."),
    N_("Aborted!"),
    N_("required"),
    N_("default: {default}"),
    N_("env var: {var}"),
)
# typer's usage errors are English f-strings: recognised by their shape, they are shown
# through the catalog with the same values; any other text stays as typer wrote it.
USAGE_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), msgid)
    for pattern, msgid in (
        (r"^Missing option (?P<name>.+)\.$", N_("Missing option {name}.")),
        (r"^Missing argument (?P<name>.+)\.$", N_("Missing argument {name}.")),
        (r"^Missing parameter: (?P<name>.+)$", N_("Missing parameter: {name}")),
        (
            r"^Invalid value for (?P<name>.+?): (?P<reason>.*)$",
            N_("Invalid value for {name}: {reason}"),
        ),
        (r"^Invalid value: (?P<reason>.*)$", N_("Invalid value: {reason}")),
        (
            r"^No such option: (?P<name>\S+) \(Possible options: (?P<options>.+)\)$",
            N_("No such option: {name} (possible options: {options})"),
        ),
        (r"^No such option: (?P<name>.+)$", N_("No such option: {name}")),
        (
            r"^Option (?P<name>.+) requires an argument\.$",
            N_("Option {name} requires an argument."),
        ),
        (
            r"^Option (?P<name>.+) requires (?P<count>\d+) arguments\.$",
            N_("Option {name} requires {count} arguments."),
        ),
        (
            r"^Option (?P<name>.+) does not take a value\.$",
            N_("Option {name} does not take a value."),
        ),
        (
            r"^Argument (?P<name>.+) takes (?P<count>\d+) values\.$",
            N_("Argument {name} takes {count} values."),
        ),
        (
            r"^Got unexpected extra argument\(s\) \((?P<arguments>.*)\)$",
            N_("Got unexpected extra argument(s) ({arguments})"),
        ),
        (
            r"^(?P<message>.+)\. Did you mean (?P<suggestions>.+)\?$",
            N_("{message}. Did you mean {suggestions}?"),
        ),
    )
)


def _typer_gettext(message: str) -> str:
    return gettext(message)


def usage_text(english: str) -> str:
    """A usage error typer wrote in English, in the current language when its shape is known."""
    if current_language() == DEFAULT:
        return english
    for pattern, msgid in USAGE_SHAPES:
        found = pattern.match(english)
        if found:
            values = found.groupdict()
            if "reason" in values:
                values["reason"] = _reason(values["reason"])
            return Message(msgid, **values).render()
    return english


def _reason(english: str) -> str:
    """pydantic's reason for a bad option value ("Input should be a valid number, ...")."""
    for template in PYDANTIC_MESSAGES.values():
        if "{" not in template and (english == template or english.startswith(template + ",")):
            return gettext(template)
    return gettext(english)


def localize_usage_error(error: TyperException) -> None:
    """Show `error` (a usage error on its way to typer's error panel) in the current language."""
    english = error.format_message()
    setattr(error, "format_message", lambda: usage_text(english))  # noqa: B010 - on this error only


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
    for command in commands(root):
        option = command.get_help_option(typer.Context(command))
        if option is not None:  # made once per command, then kept: its help follows `lang`
            option.help = gettext(HELP_OPTION, lang)


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
    typer.core._ = _typer_gettext  # type: ignore[attr-defined]
    speak(root, lang)
