"""The operations centre: ingest, restart, event-to-proposal and replay, measured.

Parts (choose with ``--parts``; all by default):

* ``store``: the store level alone (the first half of ``ingest``), in
  ``--store-rounds`` interleaved rounds.
* ``ingest``: appending to the log, side by side with the ``eventsourcing``
  library's application recorders (SQLite and PostgreSQL) on the same events,
  one event per transaction and in batches of 100; then aiguilleur's whole
  ingest path (parse, validate against the grid, append, acknowledge, fold)
  on a stream offered at a fixed rate, with the time from sending each event
  to its acknowledgement (p50, p99).
* ``restart``: a log of ``--restart-events`` telemetry events (default one
  million) on SQLite; the time to open the centre (latest snapshot plus the
  fold of the tail) and the state hash checked against a second opening.
* ``react``: on case1888_rte and the bundled fleet, branch trips (each then
  restored) and road closures (each then reopened): time from the event's
  commit to its proposal, and to the end of its analyses.
* ``replay``: the bundled 24-hour crisis in simulated time, its speed-up over
  real time.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ops.py``
(``--pg URL`` for PostgreSQL; ``--parts ingest react`` for some parts).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

T0 = datetime(2026, 1, 15, 5, 0, tzinfo=UTC)
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def header() -> None:
    import subprocess

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = "?"
    print(f"# bench_ops  commit {commit}  load average {os.getloadavg()}  cores {os.cpu_count()}")


def genesis1888() -> dict[str, Any]:
    """case1888_rte at its stored set-points scaled to the load (no solver: ingest only)."""
    from aiguilleur.data import bundled_case_path
    from aiguilleur.grid import read_matpower, scaled_dispatch

    p = bundled_case_path("case1888")
    net = scaled_dispatch(read_matpower(p))
    return {
        "id": "world:grid",
        "type": "grid_initialised",
        "occurred_at": T0.isoformat(),
        "source": "bench",
        "case": "case1888",
        "case_sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
        "pg_mw": [float(x) for x in net.gen.pg_mw],
        "vg_pu": [float(x) for x in net.gen.vg_pu],
    }


_BUS_IDS: list[int] = []


def bus_ids() -> list[int]:
    """case1888_rte's bus ids (they are not 1..n: a reading of an absent bus is refused)."""
    if not _BUS_IDS:
        from aiguilleur.data import bundled_case_path
        from aiguilleur.grid import read_matpower

        _BUS_IDS.extend(int(b) for b in read_matpower(bundled_case_path("case1888")).bus.bus_id)
    return _BUS_IDS


def telemetry(k: int, readings: int = 1, prefix: str = "t") -> dict[str, Any]:
    ids = bus_ids()
    return {
        "id": f"{prefix}{k}",
        "type": "telemetry",
        "occurred_at": (T0 + timedelta(milliseconds=k)).isoformat(),
        "source": "scada",
        "readings": [
            {
                "element": f"bus:{ids[(k * readings + j) % len(ids)]}",
                "quantity": "vm",
                "value": 1.0 + 1e-6 * k,
                "unit": "pu",
                "sigma": 0.004,
            }
            for j in range(readings)
        ],
    }


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def fresh_pg(url: str) -> tuple[str, str]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f"create schema {schema}")
    return f"{url}?options=-csearch_path%3D{schema}", schema


def drop_pg(url: str, schema: str) -> None:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f"drop schema {schema} cascade")


# -- ingest ---------------------------------------------------------------------------------


def bench_recorders(
    n: int, pg: str | None, tmp: Path, rounds: int = 1, batches: tuple[int, ...] = (1, 100)
) -> None:
    """Store level: aiguilleur's append against eventsourcing's recorders, same bodies.

    Each of ``rounds`` rounds appends ``n`` events with each tool into a fresh
    database, the two tools one after the other (the first alternates between
    rounds); the table gives the median rates and the median of the rounds'
    ratios (their range in brackets).
    """
    from aiguilleur.ops import events as ev
    from aiguilleur.ops.store import NewEvent, SqlStore

    bodies = [ev.event_to_json(ev.parse_event(telemetry(k))) for k in range(n)]
    rows = [
        NewEvent(f"t{k}", "telemetry", (T0 + timedelta(milliseconds=k)).isoformat(), "scada", b)
        for k, b in enumerate(bodies)
    ]
    print(
        f"\n## store level: {n} events per run, {rounds} interleaved round(s), "
        f"batches of {' and '.join(map(str, batches))}"
    )
    print("| store | tool | per transaction | events/s (median) | ratio (ours / anchor) |")
    print("|---|---|---:|---:|---:|")

    def ours(url: str, batch: int) -> float:
        s = SqlStore(url)
        t = time.perf_counter()
        for i in range(0, n, batch):
            s.append(rows[i : i + batch])
        dt = time.perf_counter() - t
        assert s.last_seq() == n
        s.close()
        return n / dt

    def anchor(kind: str, batch: int, where: Any) -> float:
        from eventsourcing.persistence import StoredEvent

        if kind == "sqlite":
            from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

            ds = SQLiteDatastore(str(where), originator_id_type="text")
            rec: Any = SQLiteApplicationRecorder(ds)
        else:
            from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

            ds = PostgresDatastore(
                "test", "127.0.0.1", 5432, "postgres", "", schema=where, originator_id_type="text"
            )
            rec = PostgresApplicationRecorder(ds)
        rec.create_table()
        ses = [StoredEvent(f"t{k}", 1, "telemetry", b.encode()) for k, b in enumerate(bodies)]
        t = time.perf_counter()
        for i in range(0, n, batch):
            rec.insert_events(ses[i : i + batch])
        dt = time.perf_counter() - t
        if hasattr(ds, "close"):
            ds.close()
        return n / dt

    def pair(kind: str, batch: int, r: int) -> tuple[float, float]:
        """One round, ours and the anchor each in a fresh database; who goes first alternates."""
        d = tmp / f"o{batch}_{kind}_{r}"
        d.mkdir()
        if kind == "sqlite":
            runs = [
                lambda: ours(f"sqlite:///{d / 'ops.db'}", batch),
                lambda: anchor("sqlite", batch, d / "es.db"),
            ]
            order = (0, 1) if r % 2 == 0 else (1, 0)
            out = {k: runs[k]() for k in order}
            return out[0], out[1]
        assert pg is not None
        url, sch = fresh_pg(pg)
        _url2, sch2 = fresh_pg(pg)
        try:
            if r % 2 == 0:
                a = ours(url, batch)
                b = anchor("postgres", batch, sch2)
            else:
                b = anchor("postgres", batch, sch2)
                a = ours(url, batch)
        finally:
            drop_pg(pg, sch)
            drop_pg(pg, sch2)
        return a, b

    label = {"sqlite": "SQLite (WAL, synchronous=FULL)", "postgres": "PostgreSQL"}
    for batch in batches:
        for kind in ("sqlite", "postgres") if pg else ("sqlite",):
            got = [pair(kind, batch, r) for r in range(rounds)]
            a = statistics.median(x for x, _ in got)
            b = statistics.median(y for _, y in got)
            ratios = sorted(x / y for x, y in got)
            spread = f" ({ratios[0]:.2f}-{ratios[-1]:.2f})" if rounds > 1 else ""
            print(
                f"| {label[kind]} | aiguilleur / eventsourcing | {batch} | {a:,.0f} / {b:,.0f} "
                f"| {statistics.median(ratios):.2f}x{spread} |"
            )


_PRODUCER = r"""
import json, os, sys, time
rate, path_lines, path_out, fd = float(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
lines = open(path_lines, "rb").read().splitlines(keepends=True)
sent = []
with os.fdopen(fd, "wb", buffering=0) as f:
    t0 = time.monotonic()
    for k, line in enumerate(lines):
        due = t0 + k / rate
        while True:
            now = time.monotonic()
            if now >= due:
                break
            if due - now > 0.001:
                time.sleep(due - now - 0.0005)
        sent.append(time.monotonic())
        f.write(line)
json.dump(sent, open(path_out, "w"))
"""


def bench_stream(
    rate: float, readings: int, seconds: float, url: str, label: str, tmp: Path
) -> None:
    """The whole ingest path, offered ``rate`` events/s by another process (a pipe)."""
    import subprocess
    import sys

    from aiguilleur.ops import CentreOptions, OpsCentre
    from aiguilleur.ops.store import open_store
    from aiguilleur.ops.stream import ingest_lines

    c = OpsCentre(open_store(url), CentreOptions())
    assert c.ingest([genesis1888()])[0].ok
    n = int(rate * seconds)
    src = tmp / f"lines_{rate}_{readings}.jsonl"
    src.write_bytes(
        b"".join((json.dumps(telemetry(k, readings)) + "\n").encode() for k in range(n))
    )
    out = tmp / f"sent_{rate}_{readings}.json"
    r, w = os.pipe()
    prod = subprocess.Popen(
        [sys.executable, "-c", _PRODUCER, str(rate), str(src), str(out), str(w)], pass_fds=(w,)
    )
    os.close(w)
    acked: dict[str, float] = {}
    refused: list[str] = []
    with os.fdopen(r, "rb") as stream:
        stats = ingest_lines(
            c,
            stream,
            on_ack=lambda d: acked.__setitem__(d["id"], time.monotonic()),
            on_error=lambda line, why: refused.append(f"line {line}: {why}"),
            respond=False,
        )
    # every offered event is valid: a refusal is a fault of the benchmark, not a figure
    assert not refused, refused[:3]
    prod.wait()
    sent_t = json.loads(out.read_text())
    sent = {f"t{k}": t for k, t in enumerate(sent_t)}
    lat = [1e3 * (acked[k] - sent[k]) for k in acked if k in sent]
    offered = (len(sent_t) - 1) / (sent_t[-1] - sent_t[0]) if len(sent_t) > 1 else float("nan")
    span = max(acked.values()) - min(sent_t) if acked else float("nan")
    c.close()
    print(
        f"| {label} | {offered:,.0f} x {readings} | {stats.stored / span:,.0f} ev/s, "
        f"{stats.stored * readings / span:,.0f} readings/s | {pct(lat, 50):.1f} ms | "
        f"{pct(lat, 99):.1f} ms | {stats.batches:,} |"
    )


def bench_ingest(args: argparse.Namespace, tmp: Path) -> None:
    bench_recorders(args.events, args.pg, tmp, args.store_rounds, tuple(args.store_batches))
    print("\n## whole ingest path (parse, validate on case1888_rte, append, acknowledge, fold)")
    print(
        "| store | offered (events/s x readings), by another process | sustained | ack p50 | ack p99 | commits |"
    )
    print("|---|---|---|---:|---:|---:|")
    for rate, readings in ((5000, 1), (500, 10), (10000, 1)):
        d = tmp / f"s{rate}_{readings}"
        d.mkdir()
        bench_stream(rate, readings, args.seconds, f"sqlite:///{d / 'ops.db'}", "SQLite", tmp)
    if args.pg:
        for rate, readings in ((5000, 1), (500, 10)):
            url, sch = fresh_pg(args.pg)
            try:
                bench_stream(rate, readings, args.seconds, url, "PostgreSQL", tmp)
            finally:
                drop_pg(args.pg, sch)


# -- restart -----------------------------------------------------------------------------------


def bench_restart(args: argparse.Namespace, tmp: Path) -> None:
    from aiguilleur.ops import CentreOptions, OpsCentre
    from aiguilleur.ops.store import open_store

    url = f"sqlite:///{tmp / 'big.db'}"
    n = args.restart_events
    c = OpsCentre(open_store(url), CentreOptions(snapshot_every=args.snapshot_every))
    c.ingest([genesis1888()])
    t = time.perf_counter()
    batch = 5000
    for i in range(0, n, batch):
        res = c.ingest([json.dumps(telemetry(k, 1, "r")) for k in range(i, min(i + batch, n))])
        assert res[-1].ok
    build = time.perf_counter() - t
    h = c.state().state_hash
    last = c.last_seq
    c.close()
    size = (tmp / "big.db").stat().st_size
    times = []
    for _ in range(3):
        t = time.perf_counter()
        again = OpsCentre(open_store(url, create=False))
        times.append(time.perf_counter() - t)
        assert again.last_seq == last and again.state().state_hash == h
        again.close()
    print(f"\n## restart with {last:,} events in the log (SQLite, {size / 1e6:,.0f} MB)")
    print(
        f"built in {build:.0f} s ({n / build:,.0f} events/s through the whole ingest path, "
        f"snapshot every {args.snapshot_every:,}); restart (latest snapshot + tail fold): "
        f"{', '.join(f'{x:.2f}' for x in times)} s; state hash equal"
    )


# -- reaction ----------------------------------------------------------------------------------


def bench_react(args: argparse.Namespace) -> None:
    from aiguilleur.grid import bridges
    from aiguilleur.ops import CentreOptions, MemoryStore, OpsCentre, ResponderOptions
    from aiguilleur.ops.fleet import fleet_world
    from aiguilleur.ops.world import grid_world

    t = time.perf_counter()
    world = [grid_world("case1888", at=T0), fleet_world(seed=1, shift_start=T0)]
    print(
        f"\n## event to proposal on case1888_rte and the bundled fleet (world {time.perf_counter() - t:.1f} s)"
    )
    c = OpsCentre(
        MemoryStore(),
        CentreOptions(responder=ResponderOptions(auto_apply=("grid_corrective", "fleet_replan"))),
    )
    assert all(r.ok for r in c.ingest(world))
    c.respond()
    net = c.state().grid.net  # type: ignore[union-attr]
    rng = np.random.default_rng(7)
    br = np.asarray(bridges(net))
    bridge = set(np.flatnonzero(br).tolist()) if br.dtype == bool else set(br.tolist())
    cand = [k for k in range(net.n_branch) if k not in bridge and net.branch.in_service[k] == 1]
    picks = rng.choice(cand, size=args.trips, replace=False)
    trip_prop: list[float] = []
    trip_all: list[float] = []
    trip_n1: list[float] = []
    clock = [0]
    last_n1: list[float] = []

    def send(doc: dict[str, Any]) -> tuple[float, float | None]:
        clock[0] += 1
        doc = {
            **doc,
            "id": f"b{clock[0]}",
            "source": "bench",
            "occurred_at": (T0 + timedelta(minutes=clock[0])).isoformat(),
        }
        t0 = time.perf_counter()
        assert c.ingest([doc])[0].ok
        t_resp = time.perf_counter()
        reacts = c.respond()
        total = time.perf_counter() - t0
        props = [p["reaction_s"] for x in reacts[:1] for p in x.proposals]
        # the end of the N-1 screen (it follows the corrective plan, when there is one)
        n1 = [a["done_after_s"] for x in reacts[:1] for a in x.analyses if a["kind"] == "n1"]
        last_n1[:] = [t_resp - t0 + max(n1)] if n1 else []
        return total, (min(props) if props else None)

    for k in picks.tolist():
        total, first = send({"type": "branch_trip", "branch": f"branch:{k + 1}"})
        trip_all.append(total)
        trip_n1.extend(last_n1)
        if first is not None:
            trip_prop.append(first)
        send({"type": "branch_restore", "branch": f"branch:{k + 1}"})
    print(
        "| event | count | with a proposal | to proposal p50 / p95 | "
        "to the end of the plan and the N-1 screen p50 / p95 | to end of analyses p50 / p95 |"
    )
    print("|---|---:|---:|---|---|---|")
    print(
        f"| branch trip | {len(trip_all)} | {len(trip_prop)} | {pct(trip_prop, 50):.2f} / {pct(trip_prop, 95):.2f} s | "
        f"{pct(trip_n1, 50):.2f} / {pct(trip_n1, 95):.2f} s ({len(trip_n1)} screens) | "
        f"{pct(trip_all, 50):.2f} / {pct(trip_all, 95):.2f} s |"
    )
    fs = c.state().fleet
    assert fs is not None
    pts = [s for s in fs.sites.values() if s["kind"] in ("hospital", "substation", "shop")]
    close_prop: list[float] = []
    close_all: list[float] = []
    for j in range(args.closures):
        s = pts[int(rng.integers(len(pts)))]
        lat = s["lat"] + float(rng.normal(0, 0.002))
        lon = s["lon"] + float(rng.normal(0, 0.002))
        total, first = send(
            {
                "type": "road_closure",
                "closure": f"c{j}",
                "area": {"center_lat": lat, "center_lon": lon, "radius_m": 150.0},
                "reason": "bench",
            }
        )
        close_all.append(total)
        if first is not None:
            close_prop.append(first)
        send({"type": "road_reopening", "closure": f"c{j}"})
    print(
        f"| road closure | {len(close_all)} | {len(close_prop)} | {pct(close_prop, 50):.2f} / {pct(close_prop, 95):.2f} s | "
        f"| {pct(close_all, 50):.2f} / {pct(close_all, 95):.2f} s |"
    )


def bench_replay() -> None:
    from aiguilleur.ops.scenario import load_scenario, replay

    sc = load_scenario("crisis")
    t = time.perf_counter()
    r = replay(sc)
    total = time.perf_counter() - t
    d = r.to_dict()
    print("\n## the bundled 24-hour crisis (case1888_rte and the fleet), simulated time")
    print(
        f"{d['events']} events over {r.simulated_s / 3600:.1f} h replayed in {r.wall_s:.1f} s "
        f"({r.speedup:,.0f}x real time); world set-up {r.world_s:.1f} s; whole run {total:.1f} s; "
        f"reaction p50 {d['reaction_s']['p50']:.2f} s, p95 {d['reaction_s']['p95']:.2f} s; "
        f"end state ok: {d['ok']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--parts",
        nargs="+",
        default=["ingest", "restart", "react", "replay"],
        choices=["store", "ingest", "restart", "react", "replay"],
        help="store: the store level alone (ingest runs it too, then the whole ingest path)",
    )
    ap.add_argument("--pg", nargs="?", const=PG_DEFAULT, default=None, help="PostgreSQL URL")
    ap.add_argument("--events", type=int, default=20_000, help="events of the store-level run")
    ap.add_argument(
        "--store-rounds", type=int, default=3, help="interleaved rounds of the store level"
    )
    ap.add_argument(
        "--store-batches", type=int, nargs="+", default=[1, 100], help="events per transaction"
    )
    ap.add_argument(
        "--tmp",
        default=None,
        help="folder for the SQLite files (default: the system's temporary folder); "
        "a tmpfs such as /dev/shm takes the disk out and leaves the CPU's share",
    )
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each offered stream")
    ap.add_argument("--restart-events", type=int, default=1_000_000)
    ap.add_argument("--snapshot-every", type=int, default=5000)
    ap.add_argument("--trips", type=int, default=20)
    ap.add_argument("--closures", type=int, default=10)
    args = ap.parse_args()
    header()
    if args.tmp is not None and not Path(args.tmp).is_dir():
        ap.error(f"--tmp {args.tmp}: not a folder")
    tmp = Path(tempfile.mkdtemp(prefix="bench_ops_", dir=args.tmp))
    try:
        if "ingest" in args.parts:
            bench_ingest(args, tmp)
        elif "store" in args.parts:
            bench_recorders(args.events, args.pg, tmp, args.store_rounds, tuple(args.store_batches))
        if "restart" in args.parts:
            bench_restart(args, tmp)
        if "react" in args.parts:
            bench_react(args)
        if "replay" in args.parts:
            bench_replay()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n# load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    _ = (io, statistics)
    main()
