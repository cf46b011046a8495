"""Progress bars for the command line: a Rich bar on stderr that the chain's progress callback drives."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def progress_bar(enabled: bool = True):
    """A Rich progress bar on stderr as a ``progress(stage, done, total)`` callback (a no-op when disabled).

    One bar per stage, created the first time the stage reports; ``--json`` output turns it off.
    """
    if not enabled:
        yield _silent
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=False)
    tasks: dict[str, int] = {}

    def report(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total or None)
        bars.update(tasks[stage], completed=done, total=total or None)

    with bars:
        yield report


def _silent(stage: str, done: int, total: int | None) -> None:
    return None
