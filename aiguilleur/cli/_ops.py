"""``aiguilleur ops ...``: the operations centre (log, state, responder, scenarios)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from aiguilleur.cli._common import JsonOpt, _fmt, _guard, _print_json, _stdout

__all__ = ["ops_app"]

ops_app = typer.Typer(
    help="The operations centre: ingest events, fold the state, respond, replay scenarios.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

StoreOpt = Annotated[
    str,
    typer.Option(
        "--store",
        metavar="URL",
        help="sqlite:///path.db (or a path), postgresql+psycopg://user@host/db.",
    ),
]
DEFAULT_STORE = "aiguilleur-ops.db"
PROPOSAL_STATUSES = ("pending", "approved", "amended", "rejected", "superseded")


def _centre(store: str, *, create: bool = False, **kw: Any) -> Any:
    from aiguilleur.ops.centre import CentreOptions, OpsCentre
    from aiguilleur.ops.store import open_store

    return OpsCentre(open_store(store, create=create), CentreOptions(**kw))


@ops_app.command("init")
@_guard
def ops_init(
    store: StoreOpt = DEFAULT_STORE,
    case: Annotated[str, typer.Option("--case", help="Bundled case name or .m file.")] = "case1888",
    fleet: Annotated[bool, typer.Option("--fleet/--no-fleet", help="Add the fleets.")] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fleet world.", min=0)] = 1,
    at: Annotated[
        str | None, typer.Option("--at", help="Start time (ISO, with time zone); default now.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a log: the grid at a secure operating point (AC-OPF, N-1) and the fleets."""
    from datetime import UTC, datetime

    from aiguilleur.errors import ValidationError
    from aiguilleur.ops.fleet import fleet_world
    from aiguilleur.ops.world import grid_world

    try:
        when = datetime.fromisoformat(at) if at else datetime.now(UTC).replace(microsecond=0)
    except ValueError:
        raise ValidationError(f"--at: expected an ISO date and time, got {at!r}") from None
    if when.tzinfo is None:
        raise ValidationError("--at: needs a time zone (e.g. 2026-01-15T05:00:00+01:00)")
    from aiguilleur.ops.world import check_world_time, load_case_source

    # the cheap checks before a store file is made
    check_world_time(when, "--at")
    load_case_source(case)
    with _centre(store, create=True) as c:
        if c.last_seq:
            raise ValidationError(f"{store}: the store already holds {c.last_seq} events")
        world: list[Any] = [grid_world(case, at=when)]
        if fleet:
            world.append(fleet_world(seed=seed, shift_start=when))
        res = c.ingest(world)
        bad = [r for r in res if not r.ok]
        if bad:
            raise ValidationError(bad[0].error or "refused")
        st = c.state()
    if as_json:
        _print_json({"events": [r.to_dict() for r in res], "state_hash": st.state_hash})
        return
    con = _stdout()
    op = st.grid.operating_point if st.grid is not None else {}
    con.print(f"store {store}: {len(res)} world events, state {st.state_hash[:16]}")
    con.print(f"grid {st.grid.case if st.grid else '-'}: {op.get('method', '-')}")
    base = op.get("base_case") or {}
    if base and not base.get("ok"):  # the log starts from it: say so, the alarms will follow
        con.print(
            f"[yellow]base case does not hold in AC: {base.get('overloads', 0)} overloads, "
            f"{base.get('voltage_violations', 0)} voltage violations"
        )


@ops_app.command("ingest")
@_guard
def ops_ingest(
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="JSON lines, or - for stdin.")],
    store: StoreOpt = DEFAULT_STORE,
    respond: Annotated[
        bool, typer.Option("--respond/--no-respond", help="Run the responder on what arrives.")
    ] = True,
    snapshot_every: Annotated[
        int, typer.Option("--snapshot-every", help="Snapshot the state every N events.", min=0)
    ] = 5000,
) -> None:
    """Ingest events (JSON lines); print {"id", "seq"} after each commit.

    A malformed line gets one error line on stderr naming it and is not
    stored; ingestion goes on. Exit code 0 when every line was stored, 2 when
    some were refused.
    """
    from aiguilleur.ops.stream import ingest_lines

    def ack(d: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(d, separators=(",", ":")) + "\n")

    def flush() -> None:  # after each commit: its acknowledgements, then the next batch
        sys.stdout.flush()

    def bad(line: int, why: str) -> None:  # one line each, never wrapped to a terminal width
        sys.stderr.write(f"error: line {line}: {' '.join(why.split())}\n")
        sys.stderr.flush()

    if source == "-":
        stream = sys.stdin.buffer
        with _centre(store, create=True, snapshot_every=snapshot_every) as c:
            stats = ingest_lines(
                c, stream, on_ack=ack, on_error=bad, respond=respond, on_batch=flush
            )
    else:
        from aiguilleur._files import check_input_file

        p = Path(source)
        # a folder or a device (/dev/zero) would never end; the file is read as a stream
        check_input_file(p, max_bytes=None)
        with p.open("rb") as f, _centre(store, create=True, snapshot_every=snapshot_every) as c:
            stats = ingest_lines(c, f, on_ack=ack, on_error=bad, respond=respond, on_batch=flush)
    if stats.refused:
        raise typer.Exit(2)


@ops_app.command("events")
@_guard
def ops_events(
    store: StoreOpt = DEFAULT_STORE,
    since: Annotated[
        int, typer.Option("--since", help="Only events after this seq.", min=0, max=2**62)
    ] = 0,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", metavar="FILE", help="Write to FILE (default: stdout)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """The log as JSON lines, in the format `ops ingest` reads."""
    if out is None:
        with _centre(store) as c:
            for _seq, body in c.events(since):
                sys.stdout.write(body + "\n")
            sys.stdout.flush()
        return
    import os
    import tempfile

    from aiguilleur._files import check_output_file

    target = check_output_file(out, force=force)  # before reading the log
    with _centre(store) as c:
        # streamed to a temporary file beside FILE, renamed into place at the end:
        # never half a log under FILE's name
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                for _seq, body in c.events(since):
                    fh.write(body + "\n")
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            from aiguilleur.errors import ValidationError

            raise ValidationError(f"{target}: cannot write ({e.strerror or e})") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@ops_app.command("state")
@_guard
def ops_state(store: StoreOpt = DEFAULT_STORE, as_json: JsonOpt = False) -> None:
    """The state folded from the log: last seq, hash, grid, fleets, alarms."""
    with _centre(store) as c:
        st = c.state()
        s = st.summary()
        alarms = c.alarms()
        s["alarms"] = {
            "total": len(alarms),
            "unacknowledged": sum(1 for a in alarms if not a["acknowledged"]),
            "by_severity": {
                k: sum(1 for a in alarms if a["severity"] == k)
                for k in ("alarm", "action", "compliant", "information")
            },
        }
        s["restart_s"] = c.restart_s
    if as_json:
        _print_json(s)
        return
    con = _stdout()
    con.print(f"last seq {s['last_seq']:,} ({s['events']:,} events), state {s['state_hash'][:16]}")
    g = s["grid"]
    if g:
        con.print(
            f"grid {g['case']} v{g['version']}: demand {g['demand_mw']:,.0f} MW, shed "
            f"{g['shed_mw']:,.1f} MW, out: {', '.join(g['branches_out'] + g['gens_out']) or 'none'}"
        )
    f = s["fleets"]
    if f:
        for name, x in f["fleets"].items():
            con.print(f"fleet {name}: {x['routes']} routes, {x['orders']} open orders")
        if f["undelivered_orders"]:
            con.print(f"undelivered: {', '.join(f['undelivered_orders'])}")
    a = s["alarms"]
    con.print(f"alarms: {a['total']} ({a['unacknowledged']} unacknowledged)")


@ops_app.command("plans")
@_guard
def ops_plans(
    store: StoreOpt = DEFAULT_STORE,
    status: Annotated[
        str | None,
        typer.Option("--status", help="pending, approved, amended, rejected, superseded."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Proposals with their status, cost, MW shed and AC check."""
    if status is not None and status not in PROPOSAL_STATUSES:
        from aiguilleur.errors import ValidationError

        raise ValidationError(
            f"--status: expected one of {', '.join(PROPOSAL_STATUSES)}, got {status[:40]!r}"
        )
    with _centre(store) as c:
        props = c.proposals(status)
    if as_json:
        _print_json({"proposals": props})
        return
    t = Table(title="Proposals", title_justify="left")
    for col in ("id", "kind", "status", "holds", "cost /h", "shed MW", "summary"):
        t.add_column(col)
    for p in props:
        s = p["summary"]
        t.add_row(
            p["id"],
            p["kind"],
            p["status"],
            "yes" if p["ok"] else "[red]NO[/]",
            _fmt(s.get("cost_eur_per_h"), 0),
            _fmt(s.get("shed_mw"), 1),
            (p["explanation"][0] if p["explanation"] else "")[:60],
        )
    _stdout().print(t)


@ops_app.command("alarms")
@_guard
def ops_alarms(
    store: StoreOpt = DEFAULT_STORE,
    unacknowledged: Annotated[
        bool, typer.Option("--unacknowledged", help="Only open ones.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Alarms: severity, time to act, text, acknowledgement."""
    with _centre(store) as c:
        alarms = c.alarms(unacknowledged=unacknowledged)
    if as_json:
        _print_json({"alarms": alarms})
        return
    t = Table(title="Alarms", title_justify="left")
    for col in ("id", "raised at", "severity", "act within", "ack", "text"):
        t.add_column(col)
    for a in alarms:
        t.add_row(
            a["id"],
            a["raised_at"][:19],
            a["severity"],
            f"{a['time_to_act_s'] / 60:,.0f} min",
            "yes" if a["acknowledged"] else "",
            a["text"][:90],
        )
    _stdout().print(t)


def _decide(verb: str, store: str, ident: str, operator: str, reason: str) -> None:
    with _centre(store) as c:
        if verb == "approve":
            r = c.approve(ident, operator)
        elif verb == "reject":
            r = c.reject(ident, operator, reason)
        else:
            r = c.acknowledge(ident, operator)
    _print_json(r.to_dict())


OperatorOpt = Annotated[str, typer.Option("--operator", help="Who decides (recorded in the log).")]


@ops_app.command("approve")
@_guard
def ops_approve(
    proposal: Annotated[str, typer.Argument(help="Proposal id (see `ops plans`).")],
    operator: OperatorOpt,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Approve a pending proposal: an event carrying its actions is appended."""
    _decide("approve", store, proposal, operator, "")


@ops_app.command("reject")
@_guard
def ops_reject(
    proposal: Annotated[str, typer.Argument(help="Proposal id.")],
    operator: OperatorOpt,
    store: StoreOpt = DEFAULT_STORE,
    reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
) -> None:
    """Reject a pending proposal."""
    _decide("reject", store, proposal, operator, reason)


@ops_app.command("ack")
@_guard
def ops_ack(
    alarm: Annotated[str, typer.Argument(help="Alarm id (see `ops alarms`).")],
    operator: OperatorOpt,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Acknowledge an alarm."""
    _decide("ack", store, alarm, operator, "")


@ops_app.command("schema")
@_guard
def ops_schema() -> None:
    """The JSON Schema of the event vocabulary."""
    from aiguilleur.ops.events import event_json_schema

    _print_json(event_json_schema())


@ops_app.command("replay")
@_guard
def ops_replay(
    scenario: Annotated[
        str, typer.Argument(metavar="SCENARIO.yaml|crisis", help="A scenario file or bundled name.")
    ],
    store: Annotated[
        str | None,
        typer.Option("--store", metavar="URL", help="A fresh store (default: in memory)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", metavar="DIR", help="Write the HTML report here.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the report files in --out.")
    ] = False,
    speed: Annotated[
        float | None,
        typer.Option("--speed", help="Wall-clock speed (1: real time); default simulated time."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay a scenario against a fresh store and report each event's reaction.

    Exit code 0 when the end state holds in AC and no required order is left
    undelivered, 1 when not, 2 on bad input.
    """
    from aiguilleur.ops.replay_report import check_report_dir, write_replay_report
    from aiguilleur.ops.scenario import load_scenario, replay

    sc = load_scenario(scenario)
    if out is not None:
        check_report_dir(out, force=force)
    from aiguilleur.cli._common import _progress_bar

    with _progress_bar(not as_json, f"replaying {sc.name}") as bar:

        def progress(stage: str, done: int, total: int) -> None:
            bar(done, total)

        res = replay(sc, store=store, speed=speed, progress=progress)
    if out is not None:
        res.report_path = str(write_replay_report(res, out))
    if as_json:
        _print_json(res.to_dict())
    else:
        _print_replay(res)
    if not res.ok:
        raise typer.Exit(1)


def _print_replay(r: Any) -> None:
    con = _stdout()
    d = r.to_dict()
    rs = d["reaction_s"]
    con.rule(f"[bold]Replay of {r.scenario}")
    con.print(
        f"{d['events']} events, {d['proposals']} proposals ({d['approved']} applied), "
        f"{d['alarms']} alarms; reaction p50 {rs['p50']:.2f} s, p95 {rs['p95']:.2f} s, "
        f"max {rs['max']:.2f} s"
    )
    v = d["ac_violations_after"]
    con.print(
        f"at the end: AC power flow {'converged' if v['converged'] else '[red]FAILED[/]'}, "
        f"{len(v['branches'])} branches above rating, {len(v['buses'])} buses outside limits; "
        f"{d['shed_mw']:,.1f} MW shed; undelivered: {', '.join(d['undelivered_orders']) or 'none'}"
    )
    con.print(
        f"{r.simulated_s / 3600:.1f} h of events in {r.wall_s:.1f} s ({r.speedup:,.0f}x real "
        f"time; world set-up {r.world_s:.1f} s); state {r.state_hash[:16]}"
    )
    if r.report_path:
        con.print(f"report: [bold]{r.report_path}[/]")
