"""The ``aiguilleur`` command line.

Each command is a few lines that call one library function and print its
result: rich tables for people, ``--json`` for other tools. Errors that
aiguilleur raises on purpose become one ``error: ...`` line on stderr and exit
code 2; an interrupt exits with 130.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
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
from rich.table import Table

from aiguilleur.errors import AiguilleurError, CaseFormatError

if TYPE_CHECKING:
    from aiguilleur.grid import ContingencyResult, Network
    from aiguilleur.ops import DemoResult

__all__ = ["app", "main"]

P = ParamSpec("P")
R = TypeVar("R")

OPERATING_POINT_SCALED = "stored set-points scaled to the load"
OPERATING_POINT_AS_IS = "stored set-points as in the case file"

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="aiguilleur",
    help="aiguilleur: an open-source operations centre for energy grids and logistics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
grid_app = typer.Typer(
    help="Energy networks: case files, power flow, N-1 screening.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(grid_app, name="grid")

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


# -- grid ---------------------------------------------------------------------------------


@grid_app.command("info")
@_guard
def grid_info(case: CaseArg, as_json: JsonOpt = False) -> None:
    """Sizes and totals of a case."""
    net = _load_case(case)
    summary = net.summary()
    if as_json:
        _print_json(dict(summary))
        return
    table = Table(title=f"{summary['name']}", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if key == "name":
            continue
        text = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
        table.add_row(key.replace("_", " "), text)
    _stdout().print(table)


@grid_app.command("powerflow")
@_guard
def grid_powerflow(
    case: CaseArg,
    dc: Annotated[bool, typer.Option("--dc", help="DC power flow instead of AC.")] = False,
    enforce_q_limits: Annotated[
        bool, typer.Option("--enforce-q-limits", help="Hold generators within Q limits.")
    ] = False,
    distributed_slack: Annotated[
        bool,
        typer.Option("--distributed-slack", help="Share the imbalance among all generators."),
    ] = False,
    scaled: Annotated[
        bool,
        typer.Option(
            "--scaled/--as-is",
            help="Scale the stored generator set-points to the load first, or use them as is.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """AC (Newton-Raphson) or DC power flow of a case.

    Exit code 0 when the power flow converges, 1 when it does not (the result
    is still printed, with converged = false), 2 on bad input.
    """
    from aiguilleur.grid import (
        PowerFlowOptions,
        PowerFlowResult,
        ac_power_flow,
        dc_power_flow,
        scaled_dispatch,
    )

    net = _load_case(case)
    if scaled:
        net = scaled_dispatch(net)
    opts = PowerFlowOptions(enforce_q_limits=enforce_q_limits, distributed_slack=distributed_slack)
    res = dc_power_flow(net, opts) if dc else ac_power_flow(net, opts)
    is_ac = isinstance(res, PowerFlowResult)
    vm = res.vm_pu if isinstance(res, PowerFlowResult) else [1.0] * net.n_bus
    out: dict[str, Any] = {
        "case": net.name,
        "method": "ac" if is_ac else "dc",
        "operating_point": OPERATING_POINT_SCALED if scaled else OPERATING_POINT_AS_IS,
        "converged": res.converged,
        "iterations": res.iterations,
        "max_mismatch_pu": res.max_mismatch_pu,
        "time_s": res.time_s,
        "bus_id": res.bus_id,
        "vm_pu": vm,
        "va_deg": res.va_deg,
        "pg_mw": res.pg_mw,
    }
    if isinstance(res, PowerFlowResult):
        out["qg_mvar"] = res.qg_mvar
        out["losses_mw"] = res.losses_mw
    out["islands"] = [vars(i) for i in res.islands]
    if as_json:
        _print_json(out)
    else:
        _print_powerflow(net, res, out)
    if not res.converged:
        raise typer.Exit(1)


def _print_powerflow(net: Network, res: Any, out: dict[str, Any]) -> None:
    import numpy as np

    con = _stdout()
    t = Table(
        title=f"{net.name}: {out['method'].upper()} power flow ({out['operating_point']})",
        show_header=False,
        title_justify="left",
    )
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("converged", "yes" if res.converged else "[bold red]NO[/]")
    t.add_row("iterations", str(res.iterations))
    t.add_row("largest mismatch", f"{res.max_mismatch_pu:.2e} pu")
    t.add_row("time", f"{res.time_s * 1000:.1f} ms")
    t.add_row("generation", f"{float(np.sum(res.pg_mw)):,.1f} MW")
    if out["method"] == "ac":
        on = res.vm_pu > 0
        vm = np.where(on, res.vm_pu, np.nan)
        if np.any(on):
            lo, hi = int(np.nanargmin(vm)), int(np.nanargmax(vm))
            t.add_row("lowest voltage", f"{vm[lo]:.4f} pu (bus {int(res.bus_id[lo])})")
            t.add_row("highest voltage", f"{vm[hi]:.4f} pu (bus {int(res.bus_id[hi])})")
        t.add_row("losses", f"{res.losses_mw:,.1f} MW")
    load = np.where(np.isfinite(res.loading_pct), res.loading_pct, -np.inf)
    if load.size and np.isfinite(load.max()):
        k = int(np.argmax(load))
        b = net.branch
        t.add_row(
            "most loaded branch",
            f"{load[k]:.1f} % (branch {k + 1}, {int(b.from_bus_id[k])}-{int(b.to_bus_id[k])})",
        )
        t.add_row("branches above rating A", str(int(np.sum(load > 100.0))))
    t.add_row("islands", str(len(res.islands)))
    con.print(t)
    if not res.converged:
        con.print("[bold red]The power flow did not converge[/]: figures above are not a solution.")


@grid_app.command("opf")
@_guard
def grid_opf(
    case: CaseArg,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="pglib: PowerModels' DC model (PGLib's references); matpower: 1/(x tap).",
        ),
    ] = "pglib",
    rating: Annotated[str, typer.Option("--rating", help="Branch rating: a, b or c.")] = "a",
    voll: Annotated[
        float | None,
        typer.Option("--voll", help="Value of lost load (per MWh): shed load instead of failing."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """DC optimal power flow: cheapest dispatch and locational marginal prices.

    Exit code 0 when optimal, 1 for an infeasible or failed problem (the status is
    still printed), 2 on bad input.
    """
    import numpy as np

    from aiguilleur.grid import DCOPFOptions, dc_opf

    net = _load_case(case)
    opts = DCOPFOptions(model=model, rating=rating, voll_eur_per_mwh=voll)  # type: ignore[arg-type]
    res = dc_opf(net, opts)
    out: dict[str, Any] = {
        "case": net.name,
        "status": res.status,
        "objective": res.objective,
        "time_s": res.time_s,
        "model": res.model,
        "pg_mw": res.pg_mw,
        "lmp": res.lmp,
        "shed_mw": float(np.sum(res.shed_mw)),
        "binding_branches": [int(k) + 1 for k in res.binding_branches],
    }
    if as_json:
        _print_json(out)
    else:
        t = Table(title=f"{net.name}: DC-OPF ({res.model})", show_header=False)
        t.add_column("what")
        t.add_column("value", justify="right")
        t.add_row("status", res.status)
        t.add_row("objective", f"{res.objective:,.2f} per h")
        t.add_row("time", f"{res.time_s * 1000:.1f} ms")
        if res.status == "optimal" and res.lmp.size:
            t.add_row("LMP range", f"{np.min(res.lmp):,.2f} to {np.max(res.lmp):,.2f} per MWh")
        t.add_row("binding branches", str(len(res.binding_branches)))
        t.add_row("load shed", f"{float(np.sum(res.shed_mw)):,.1f} MW")
        _stdout().print(t)
    if res.status != "optimal":
        raise typer.Exit(1)


@grid_app.command("contingencies")
@_guard
def grid_contingencies(
    case: CaseArg,
    rating: Annotated[
        str,
        typer.Option(help="Rating to hold flows against: a (long-term), b, c (emergency)."),
    ] = "a",
    ac_verify: Annotated[
        bool,
        typer.Option(
            "--ac-verify/--dc-only",
            help="Verify flagged outages by AC power flow, or stop at the DC screen.",
        ),
    ] = True,
    generators: Annotated[
        bool, typer.Option("--generators", help="Also screen single-generator outages.")
    ] = False,
    margin: Annotated[
        float,
        typer.Option(
            "--margin",
            metavar="PCT",
            help="AC-verify outages whose DC estimate reaches 100 - PCT % of a rating.",
        ),
    ] = 10.0,
    top: Annotated[
        int,
        typer.Option("--top", metavar="N", min=0, help="How many worst contingencies (0: all)."),
    ] = 10,
    as_json: JsonOpt = False,
) -> None:
    """N-1 screening of every branch (and generator) outage.

    Runs on the stored set-points scaled to the load (PGLib set-points do not
    balance it). Rows are 1-based, as in the case file.
    """
    from aiguilleur.grid import ContingencyOptions, scaled_dispatch, screen_n1

    net = scaled_dispatch(_load_case(case))
    opts = ContingencyOptions(
        rating=rating,  # type: ignore[arg-type]  # checked by ContingencyOptions
        ac_verify=ac_verify,
        generators=generators,
        margin_pct=margin,
    )
    with _progress_bar(not as_json, "N-1 screening") as progress:
        res = screen_n1(net, opts, progress=progress)
    order = res.ranked()
    worst = [int(p) for p in (order if top == 0 else order[:top])]
    isl = [int(p) for p in order if res.status[p] == "islanding"]
    isl.sort(key=lambda p: -float(res.lost_load_mw[p]))
    if top:
        isl = isl[:top]
    out: dict[str, Any] = {
        "case": net.name,
        "operating_point": OPERATING_POINT_SCALED,
        "rating": rating,
        "method": res.method,
        "contingencies": len(res),
        "secure": res.count("secure"),
        "overload": res.count("overload"),
        "islanding": res.count("islanding"),
        "diverged": res.count("diverged"),
        "time_s": res.time_s,
        "base_overloaded": [int(j) + 1 for j in res.base_overloaded],
        "worst": [_contingency(res, p) for p in worst],
        "worst_islanding": [_contingency(res, p) for p in isl],
    }
    if as_json:
        _print_json(out)
        return
    _print_contingencies(net, res, out, worst, isl)


def _contingency(res: ContingencyResult, p: int) -> dict[str, Any]:
    kind = str(res.kind[p])
    k = int(res.element[p]) + 1
    w = int(res.worst_branch[p])
    return {
        "kind": kind,
        "branch": k if kind == "branch" else None,
        "generator": k if kind == "generator" else None,
        "status": str(res.status[p]),
        "max_loading_pct": float(res.max_loading_pct[p]),
        "worst_branch": w + 1 if w >= 0 else None,
        "overloaded": [int(j) + 1 for j in res.overloaded[p]],
        "lost_load_mw": float(res.lost_load_mw[p]),
        "lost_generation_mw": float(res.lost_generation_mw[p]),
        "cut_buses": int(res.cut_buses[p]),
    }


def _element(net: Network, kind: str, row: int) -> str:
    if kind == "branch":
        b = net.branch
        return f"branch {row + 1} ({int(b.from_bus_id[row])}-{int(b.to_bus_id[row])})"
    return f"generator {row + 1} (bus {int(net.gen.bus_id[row])})"


def _print_contingencies(
    net: Network,
    res: ContingencyResult,
    out: dict[str, Any],
    worst: Sequence[int],
    isl: Sequence[int],
) -> None:
    con = _stdout()
    con.print(
        f"[bold]{net.name}[/]: N-1 screening, {out['contingencies']:,} contingencies, "
        f"rating {out['rating'].upper()}, {res.method}, {res.time_s:.2f} s"
    )
    con.print(f"operating point: {out['operating_point']}")
    con.print(
        f"secure {out['secure']:,}  overload {out['overload']:,}  "
        f"islanding {out['islanding']:,}  diverged {out['diverged']:,}"
    )
    if out["base_overloaded"]:
        con.print(
            f"[yellow]{len(out['base_overloaded'])} branches are above their rating before any "
            "outage[/]"
        )
    t = Table(title="Most severe contingencies", title_justify="left")
    for col, just in (
        ("contingency", "left"),
        ("status", "left"),
        ("max loading %", "right"),
        ("most loaded branch", "left"),
        ("overloaded", "right"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for p in worst:
        w = int(res.worst_branch[p])
        status = str(res.status[p])
        style = {"overload": "red", "diverged": "bold red", "islanding": "yellow"}.get(status, "")
        t.add_row(
            _element(net, str(res.kind[p]), int(res.element[p])),
            f"[{style}]{status}[/]" if style else status,
            _fmt(float(res.max_loading_pct[p])),
            _element(net, "branch", w) if w >= 0 else "-",
            str(len(res.overloaded[p])),
        )
    con.print(t)
    if isl:
        ti = Table(title="Islanding outages, by load cut off", title_justify="left")
        ti.add_column("contingency")
        ti.add_column("buses cut off", justify="right")
        ti.add_column("load MW", justify="right")
        ti.add_column("generation MW", justify="right")
        for p in isl:
            ti.add_row(
                _element(net, str(res.kind[p]), int(res.element[p])),
                str(int(res.cut_buses[p])),
                _fmt(float(res.lost_load_mw[p])),
                _fmt(float(res.lost_generation_mw[p])),
            )
        con.print(ti)


# -- demo ---------------------------------------------------------------------------------


@app.command("demo")
@_guard
def demo(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder for the report [default: ./aiguilleur-report].",
            file_okay=False,
            dir_okay=True,
        ),
    ] = None,
) -> None:
    """The main job: N-1 security assessment of the French transmission grid (1,888 buses).

    Power flow, N-1 screening of every branch and generator outage, then the
    worst credible outage applied and its consequences reported here and in an
    HTML report.
    """
    from aiguilleur.ops import run_demo

    err = _stderr()
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # no bar residue in a log or a pipe
    )
    task = bar.add_task("starting", total=None)

    def progress(stage: str, done: int, total: int) -> None:
        bar.update(task, description=stage, completed=done, total=total)

    with bar:
        result = run_demo(out, progress=progress)
    _print_demo(result)


def _print_demo(r: DemoResult) -> None:
    con = _stdout()
    con.rule(f"[bold]N-1 security assessment: {r.case}")
    con.print(
        f"{r.buses:,} buses, {r.branches:,} branches, {r.generators:,} generators in service, "
        f"{r.load_mw:,.0f} MW of load"
    )
    con.print(f"operating point: {r.operating_point}")
    con.print(
        f"base case: AC power flow {'converged' if r.base_converged else '[bold red]FAILED[/]'}, "
        f"losses {r.base_losses_mw:,.1f} MW, {len(r.base_overloads)} branches already above "
        f"rating {r.rating.upper()} (highest {_fmt(r.base_max_loading_pct, unit=' %')})"
    )
    con.print(
        f"N-1: {r.contingencies:,} contingencies ({r.branch_contingencies:,} branches, "
        f"{r.generator_contingencies:,} generators) in {r.screen_time_s:.1f} s: "
        f"[green]{r.secure:,} secure[/], [red]{r.overload:,} overload[/], "
        f"[yellow]{r.islanding:,} islanding[/], {r.diverged:,} diverged "
        f"({r.ac_verified:,} verified by AC power flow)"
    )
    w = r.worst
    if w is None:
        con.print("No credible (non-islanding) contingency to apply.")
    else:
        con.print()
        con.print(
            f"[bold]Worst credible outage:[/] {w.label}: highest post-outage loading "
            f"[bold red]{_fmt(w.max_loading_pct, unit=' %')}[/] on {w.worst_branch or '-'}"
        )
        con.print(
            f"after it: AC power flow {'converged' if r.post_converged else '[bold red]FAILED[/]'}"
            f" in {r.post_iterations} iterations; {len(r.post_overloads)} branches overloaded "
            f"({r.new_overloads} new); voltages {r.post_vm_min_pu:.3f} pu (bus "
            f"{r.post_vm_min_bus_id}) to {r.post_vm_max_pu:.3f} pu (bus {r.post_vm_max_bus_id}); "
            f"losses {r.post_losses_mw:,.1f} MW ({r.post_losses_mw - r.base_losses_mw:+,.1f}); "
            f"{len(r.post_islands)} island(s), {r.post_deenergised_buses} buses de-energised"
        )
        t = Table(title="Overloaded branches after the outage", title_justify="left")
        for col in ("branch", "from bus", "to bus", "after %", "before %", "MVA", "rating MVA"):
            t.add_column(col, justify="left" if col == "branch" else "right")
        t.add_column("")
        shown = r.post_overloads[:10]
        for b in shown:
            t.add_row(
                str(b.row + 1),
                str(b.from_bus_id),
                str(b.to_bus_id),
                _fmt(b.loading_pct),
                _fmt(b.base_loading_pct),
                _fmt(b.flow_mva, 0),
                _fmt(b.rating_mva, 0),
                "[red]new[/]" if b.new else "",
            )
        if shown:
            con.print(t)
        if len(r.post_overloads) > len(shown):
            con.print(f"... and {len(r.post_overloads) - len(shown)} more (see the report)")
    if r.worst_islanding is not None:
        wi = r.worst_islanding
        con.print(
            f"[bold]Worst islanding outage:[/] {wi.label} cuts off {wi.cut_buses:,} buses, "
            f"{wi.lost_load_mw:,.1f} MW of load, {wi.lost_generation_mw:,.1f} MW of generation"
        )
    con.print()
    con.print(f"report: [bold]{r.report_path}[/]  (contingency table: {r.csv_path})")
    con.print(f"done in {r.time_s:.1f} s. {r.attribution}")


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
    try:
        app(args=list(argv) if argv is not None else None, prog_name="aiguilleur")
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except AiguilleurError as e:
        typer.echo(f"error: {' '.join(str(e).split())}", err=True)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
