"""Plumbing shared by the command groups: consoles, errors, JSON, progress bars."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from aiguilleur.errors import AiguilleurError, CaseFormatError

if TYPE_CHECKING:
    from aiguilleur.grid import Network


P = ParamSpec("P")
R = TypeVar("R")

OPERATING_POINT_SCALED = "stored set-points scaled to the load"
OPERATING_POINT_AS_IS = "stored set-points as in the case file"

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
#: An exception aiguilleur did not expect: a bug, reported in one line (never a traceback).
EXIT_INTERNAL = 3

CaseArg = Annotated[
    str,
    typer.Argument(
        metavar="CASE",
        help="A MATPOWER .m file, or the name of a bundled case (case14, case118, case1888).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


# -- plumbing ---------------------------------------------------------------------------


def _stdout() -> Console:
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    one_line = " ".join(message.split())
    typer.echo(f"error: {one_line}", err=True)
    return typer.Exit(code)


def _guard(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn aiguilleur's errors into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except AiguilleurError as e:
            raise _fail(str(e)) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def _load_case(case: str) -> Network:
    """Read ``case``: an existing file, else a bundled case of that name."""
    from aiguilleur.data import bundled_case_path, bundled_cases
    from aiguilleur.errors import ValidationError
    from aiguilleur.grid import read_matpower

    path = Path(case)
    if path.exists():
        return read_matpower(path)
    try:
        return read_matpower(bundled_case_path(case))
    except ValidationError:
        if path.suffix or len(path.parts) > 1:
            raise CaseFormatError("no such file", case) from None
        raise AiguilleurError(
            f"{case!r} is neither a file nor a bundled case (bundled: {', '.join(bundled_cases())})"
        ) from None


def _clean(x: Any) -> Any:
    """JSON-safe values: numpy scalars and arrays to Python, NaN and infinity to null."""
    import numpy as np

    if isinstance(x, np.ndarray):
        return [_clean(v) for v in x.tolist()]
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _print_json(obj: dict[str, Any]) -> None:
    typer.echo(json.dumps(_clean(obj), allow_nan=False))


def _fmt(x: float | None, digits: int = 1, unit: str = "") -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:,.{digits}f}{unit}"


@contextmanager
def _progress_bar(enabled: bool, description: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr, fed by ``callback(done, total)``."""
    if not enabled:
        yield lambda done, total: None
        return
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_stderr(),
        transient=True,
        disable=not _stderr().is_terminal,  # no bar residue in a log or a pipe
    )
    task = bar.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update
