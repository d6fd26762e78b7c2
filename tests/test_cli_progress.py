"""The progress bar of long checks: drawn on a terminal, absent with --quiet or in a pipe."""

from __future__ import annotations

import io

from rich.console import Console

from services.cli_progress import progress_bar


def console(*, terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=80), out


class TestProgressBar:
    def test_a_terminal_gets_a_bar_that_counts_up_to_the_total(self) -> None:
        terminal, out = console(terminal=True)
        with progress_bar("checking rows", console=terminal, quiet=False) as advance:
            assert advance is not None
            advance(3, 7)
            advance(7, 7)
        assert "checking rows" in out.getvalue() and "7/7" in out.getvalue()

    def test_quiet_draws_nothing(self) -> None:
        terminal, out = console(terminal=True)
        with progress_bar("checking rows", console=terminal, quiet=True) as advance:
            assert advance is None
        assert out.getvalue() == ""

    def test_a_pipe_draws_nothing(self) -> None:
        pipe, out = console(terminal=False)
        with progress_bar("checking rows", console=pipe, quiet=False) as advance:
            assert advance is None
        assert out.getvalue() == ""
