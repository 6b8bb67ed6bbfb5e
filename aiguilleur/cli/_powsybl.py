"""``aiguilleur grid import`` and ``grid export``: European grid files through pypowsybl."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from aiguilleur.cli._common import (
    CaseArg,
    JsonOpt,
    _guard,
    _load_case,
    _print_json,
)
from aiguilleur.cli._grid import grid_app

EXIT_NOT_REPRESENTED = 1


def _quiet_pypowsybl() -> None:
    """Keep pypowsybl's start-up notice (about its optional OPF extra) off the terminal.

    pypowsybl logs it on the ``powsybl`` logger when it is first imported; without a
    handler Python would print it on stderr before our own output. The command line
    owns the terminal, so it gives that logger a handler that drops records.
    """
    log = logging.getLogger("powsybl")
    if not log.handlers:
        log.addHandler(logging.NullHandler())


@grid_app.command("import")
@_guard
def grid_import(
    source: Annotated[
        Path,
        typer.Argument(help="A CGMES zip or folder, a UCTE-DEF .uct or an IIDM .xiidm file."),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the grid as a MATPOWER .m file.")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail when anything is not represented.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Read a European grid file (pypowsybl) and report what was made of every element.

    Exits 1 when some element is not represented (listed in the report; the
    --out file is still written), 2 on bad input or an --out file that exists
    (--force replaces it).
    """
    from aiguilleur._files import check_output_file
    from aiguilleur.grid.matpower import write_matpower
    from aiguilleur.grid.powsybl_io import ImportOptions, read_grid

    if out is not None:
        check_output_file(out, force=force)
    _quiet_pypowsybl()
    net, report = read_grid(source, ImportOptions(strict=strict))
    if out is not None:
        write_matpower(net, out)
    if as_json:
        _print_json({**report.to_dict(), "summary": net.summary(), "out": str(out or "")})
    else:
        typer.echo(report.summary())
        if out is not None:
            typer.echo(f"written: {out}")
    if not report.ok:
        typer.echo(
            f"{len(report.not_represented)} element(s) not represented (listed above)", err=True
        )
        raise typer.Exit(EXIT_NOT_REPRESENTED)


@grid_app.command("export")
@_guard
def grid_export(
    case: CaseArg,
    out: Annotated[Path, typer.Argument(help="File to write (a folder for CGMES).")],
    fmt: Annotated[
        str, typer.Option("--format", help="XIIDM, CGMES or UCTE (pypowsybl's exporters).")
    ] = "XIIDM",
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing file (or write into a folder).")
    ] = False,
) -> None:
    """Write a MATPOWER case as IIDM, CGMES or UCTE-DEF through pypowsybl.

    The file is OUT, with the format's extension added when it has none (a
    folder for CGMES). An existing file or non-empty folder is refused unless
    --force is given; exit 2 on bad input.
    """
    from aiguilleur._files import check_output_dir, check_output_file
    from aiguilleur.grid.powsybl_io import _export_path, _format, write_grid

    target = _export_path(out, fmt)
    if _format(fmt) == "CGMES":
        check_output_dir(target, force=force)
    else:
        check_output_file(target, force=force)
    _quiet_pypowsybl()
    net = _load_case(case)
    path = write_grid(net, out, fmt, force=force)
    typer.echo(f"written: {path}")
