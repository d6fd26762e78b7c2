"""A progress bar for long `refex` checks: drawn on a terminal only, silent with --quiet."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

Advance = Callable[[int, int], None]
QUIET_HELP = "Print only the result, without a progress bar."


@contextmanager
def progress_bar(description: str, *, console: Console, quiet: bool) -> Iterator[Advance | None]:
    """Yield `advance(done, total)` drawing a bar, or None when quiet or not on a terminal."""
    if quiet or not console.is_terminal:
        yield None
        return
    columns = (TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance
