"""``aiguilleur demo``: the main job on bundled data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aiguilleur.cli._common import JsonOpt, _guard, _print_json, _stderr

__all__ = ["demo"]


@_guard
def demo(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder for the report [default: ./aiguilleur-report, or the next free "
            "./aiguilleur-report-N].",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a report in --out.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The main job: a 24-hour crisis on the French grid (1,888 buses) and on a road network.

    A cold snap, a line trip, a large unit that degrades then fails, a flooded
    fuel depot and urgent fuel orders, replayed through the operations centre:
    each event stored, folded into the state, answered by a plan that holds in
    AC (or a fleet re-plan), approved by policy or by the scripted operator.
    Reported here and in an HTML report with the log, the routes and a summary.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from aiguilleur.cli._ops import _print_replay
    from aiguilleur.ops.demo import run_demo

    err = _stderr()
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<36}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json or not err.is_terminal,
    )
    task = bar.add_task("starting", total=None)

    def progress(stage: str, done: int, total: int) -> None:
        bar.update(task, description=stage, completed=done, total=total)

    with bar:
        res = run_demo(out, progress=progress, force=force)
    if as_json:
        _print_json(res.to_dict())
    else:
        _print_replay(res)
    if not res.ok:
        raise typer.Exit(1)
