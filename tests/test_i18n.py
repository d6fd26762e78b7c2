"""Languages: negotiation, the French catalog against the code, and translated answers."""

from __future__ import annotations

import pytest

from services.messages import extract, placeholders, read_catalog
from shared.i18n import Message, current_language, gettext, negotiate, use_language


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
    @pytest.mark.promise(2)
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
    @pytest.mark.promise(1)
    def test_every_text_in_the_code_has_a_french_translation(self) -> None:
        catalog = read_catalog("fr")
        missing = [m.id for m in extract() if m.id and catalog.get(m.id) is None]
        assert missing == [], "run `python -m services.messages` and translate the new entries"

    @pytest.mark.promise(1)
    def test_no_french_entry_is_empty_or_fuzzy(self) -> None:
        unfinished = [m.id for m in read_catalog("fr") if m.id and (not m.string or m.fuzzy)]
        assert unfinished == []

    @pytest.mark.promise(1)
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
