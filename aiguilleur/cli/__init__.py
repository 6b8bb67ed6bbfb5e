"""The ``aiguilleur`` command line.

Each command is a few lines that call one library function and print its
result: rich tables for people, ``--json`` for other tools. Errors that
aiguilleur raises on purpose become one ``error: ...`` line on stderr and exit
code 2; an interrupt exits with 130.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from aiguilleur.cli import (
    _dispatch,  # noqa: F401  (adds grid dispatch, redispatch, commit)
    _powsybl,  # noqa: F401  (adds grid import, export)
)
from aiguilleur.cli._common import EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED
from aiguilleur.cli._demo import demo
from aiguilleur.cli._forecast import forecast_app
from aiguilleur.cli._grid import grid_app
from aiguilleur.cli._health import health_app
from aiguilleur.cli._ops import ops_app
from aiguilleur.cli._ops_dayahead import register as _register_day_ahead
from aiguilleur.cli._routes import routes_app
from aiguilleur.cli._serve import serve
from aiguilleur.cli._telemetry import register as _register_telemetry
from aiguilleur.errors import AiguilleurError

__all__ = ["app", "main"]

app = typer.Typer(
    name="aiguilleur",
    help="aiguilleur: an open-source operations centre for energy grids and logistics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(grid_app, name="grid")
app.add_typer(forecast_app, name="forecast")
app.add_typer(health_app, name="health")
app.add_typer(routes_app, name="routes")
_register_day_ahead(ops_app)  # ops day-ahead
_register_telemetry(ops_app)  # ops subscribe, ops simulate-telemetry
app.add_typer(ops_app, name="ops")
# (one line per command group; keep in this order)
app.command("demo")(demo)
app.command("serve")(serve)

# -- entry point --------------------------------------------------------------------------


_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _single_threaded_blas() -> None:
    """Run BLAS on one thread unless the user chose otherwise.

    The solvers' dense blocks are small enough that BLAS threads gain little, and
    on a machine whose cores are busy elsewhere they spin and wait: the demo
    took 131 s with OpenBLAS's default threads and 25 s with one, measured side
    by side on a loaded 2-core machine. The variables only take effect before
    numpy is first imported, which this module does lazily for that reason.
    """
    if "numpy" in sys.modules or any(v in os.environ for v in _BLAS_THREAD_VARS):
        return
    for v in _BLAS_THREAD_VARS:
        os.environ[v] = "1"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``aiguilleur`` command (the console-script entry point)."""
    _single_threaded_blas()
    # click's UsageError, found through typer's public BadParameter (typer vendors click
    # in recent releases and imports it in older ones)
    usage_error: type[Exception] = next(
        c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
    )
    try:
        rc = app(
            args=list(argv) if argv is not None else None,
            prog_name="aiguilleur",
            standalone_mode=False,
        )
    except usage_error as e:
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError":  # a group without its command: its help
            if ctx is not None:
                typer.echo(ctx.get_help())
            sys.exit(EXIT_ERROR)
        # a bad option or argument: one line, not a framed box
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        fmt = getattr(e, "format_message", None)
        msg = fmt() if callable(fmt) else str(e)
        typer.echo(f"error: {' '.join(str(msg).split())}{where}", err=True)
        sys.exit(EXIT_ERROR)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except AiguilleurError as e:
        typer.echo(f"error: {' '.join(str(e).split())}", err=True)
        sys.exit(EXIT_ERROR)
    except (MemoryError, RecursionError) as e:
        what = "out of memory" if isinstance(e, MemoryError) else "input nested too deeply"
        typer.echo(f"error: {what}", err=True)
        sys.exit(EXIT_ERROR)
    except Exception as e:  # the last resort: a bug, said in one line, never a traceback
        if os.environ.get("AIGUILLEUR_DEBUG"):
            raise
        msg = " ".join(str(e).split())[:200]
        typer.echo(
            f"error: internal error ({type(e).__name__}: {msg}); this is a bug in aiguilleur, "
            "please report it (AIGUILLEUR_DEBUG=1 shows the traceback)",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
    if isinstance(rc, int) and rc != 0:
        sys.exit(rc)
