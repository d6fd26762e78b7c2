"""The French README runs the same commands as the English one; only prose and comments differ."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
COMMAND_LANGUAGES = {"bash", "python"}
# A comment starts a line or follows a space, and is followed by a space: `#` in URLs, quoted
# JSON or `$#` stays code.
COMMENT = re.compile(r"(^|\s)#\s.*$")


def fenced_blocks(path: Path) -> list[tuple[str, str]]:
    return FENCE.findall(path.read_text(encoding="utf-8"))


def without_comments(code: str) -> list[str]:
    lines = (COMMENT.sub("", line).rstrip() for line in code.splitlines())
    return [line for line in lines if line]


def test_the_french_readme_has_the_same_blocks_in_the_same_order() -> None:
    english = [language for language, _ in fenced_blocks(ROOT / "README.md")]
    french = [language for language, _ in fenced_blocks(ROOT / "README.fr.md")]
    assert french == english


def test_every_command_block_is_identical_but_for_comments() -> None:
    pairs = zip(
        fenced_blocks(ROOT / "README.md"), fenced_blocks(ROOT / "README.fr.md"), strict=True
    )
    compared = 0
    for (language, english), (_, french) in pairs:
        if language in COMMAND_LANGUAGES:
            assert without_comments(french) == without_comments(english), english[:80]
            compared += 1
    assert compared >= 10  # the two commands, the user guide's examples, PostgreSQL, compose


def test_the_program_output_shown_is_the_same() -> None:
    english = [code for language, code in fenced_blocks(ROOT / "README.md") if not language]
    french = [code for language, code in fenced_blocks(ROOT / "README.fr.md") if not language]
    assert french[0] == english[0]  # what `make run` prints is not translated


def test_each_readme_links_to_the_other_at_the_top() -> None:
    english_top = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:5]
    french_top = (ROOT / "README.fr.md").read_text(encoding="utf-8").splitlines()[:5]
    assert any("(README.fr.md)" in line for line in english_top)
    assert any("(README.md)" in line for line in french_top)


def test_the_french_readme_links_the_french_sop_guide() -> None:
    text = (ROOT / "README.fr.md").read_text(encoding="utf-8")
    assert "(docs/sop-guide.fr.md)" in text
    assert (ROOT / "docs" / "sop-guide.fr.md").is_file()
