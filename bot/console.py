"""What the terminal front ends share (`newsbot` commands and `newsbot serve`): progress bars on stderr,
and building the first index when there is none."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsbot.bot.engine import Engine


def progress_bar(enabled: bool | None = None) -> Callable[[str, int, int], None]:
    """A progress callback drawing one tqdm bar per stage on a terminal (stderr), silent otherwise."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return lambda stage, done, total: None
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=f"{stage:>9}", unit=" items", leave=True, file=sys.stderr)
        if total != bar.total:
            bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def build_first_index(engine: Engine) -> None:
    """Build the index from the corpus when there is none yet (first use), saying so on stderr."""
    if engine.has_index():
        return
    print("No index yet: building one from the corpus first ...", file=sys.stderr)
    report = engine.ensure_index(progress=progress_bar())
    if report:
        print(f"Built {report.summary()}.", file=sys.stderr)
