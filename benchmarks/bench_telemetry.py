"""Telemetry into the operations centre: throughput and latency through real brokers, and the
state estimator run from the state.

1. **Brokers, end to end.** A publisher process sends scans of a grid's
   telemetry (``TelemetrySimulator``: every meter of the case, 100 readings a
   message, QoS 1 on MQTT, JetStream with ``Nats-Msg-Id`` on NATS) as fast as
   the broker confirms; the subscriber (``mqtt_subscribe`` / ``nats_subscribe``,
   no responder) commits each message's event to a SQLite store and then
   acknowledges it. Printed: readings/s from the first publication to the last
   commit, and the latency of each message from just before its publication
   to the commit of its event (p50, p99). The anchor is the same broker path
   with a bare subscriber that acknowledges on receipt and stores nothing (the
   transport's own ceiling on this machine); the ratio is ours over it.
2. **Estimation from the state.** case1888 (bundled) at ``scaled_dispatch``,
   its meters at redundancy 2 (as ``bench_estimation.py``), one scan ingested;
   ``StateEstimator.estimate(state)`` (fresh readings -> measurements,
   ``estimate_state``, the model's power flow (cached), the estimated flows
   against ratings) against ``estimate_state`` run directly on the same
   measurements (the leaf alone), best of N, interleaved.

Run from the repository root (Mosquitto on 127.0.0.1:1883 and NATS with
JetStream on 127.0.0.1:4222; a missing broker is skipped with a note)::

    .venv/bin/python benchmarks/bench_telemetry.py
    .venv/bin/python benchmarks/bench_telemetry.py --case case118 --scans 50 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def genesis(case: str) -> dict[str, Any]:
    """A grid_initialised event at the case's stored set-points scaled to the load (no solver)."""
    from aiguilleur.data import bundled_case_path
    from aiguilleur.grid import read_matpower, scaled_dispatch

    p = bundled_case_path(case)
    net = scaled_dispatch(read_matpower(p))
    return {
        "id": "world:grid",
        "type": "grid_initialised",
        "occurred_at": datetime(2026, 1, 15, 5, tzinfo=UTC).isoformat(),
        "source": "bench",
        "case": case,
        "case_sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
        "pg_mw": [float(x) for x in net.gen.pg_mw],
        "vg_pu": [float(x) for x in net.gen.vg_pu],
    }


def new_store(case: str, directory: str) -> tuple[str, Any]:
    from aiguilleur.ops.centre import OpsCentre
    from aiguilleur.ops.store import open_store

    url = f"sqlite:///{directory}/ops-{uuid.uuid4().hex[:8]}.db"
    with OpsCentre(open_store(url, create=True)) as c:
        res = c.ingest([genesis(case)])
        assert res[0].ok, res[0].error
        net = c.state().grid.net  # type: ignore[union-attr]
    return url, net


def _publisher(
    broker: str,
    case_net: Any,
    scans: int,
    prefix: str,
    stream: str,
    out: Any,
    go: Any,
    drawn_ev: Any,
    rate_hz: float = 0.0,
) -> None:
    from aiguilleur.ops import telemetry_sim as ts

    sim = ts.TelemetrySimulator(
        case_net,
        ts.SimulatorOptions(
            count=scans,
            rate_hz=0.0,
            readings_per_message=100,
            start=datetime(2026, 1, 15, 5, 0, 1, tzinfo=UTC),
            prefix=prefix,
        ),
    )
    drawn = [sim.scan(k) for k in range(scans)]
    sent: dict[str, float] = {}

    def stamped() -> Any:
        start = time.perf_counter()
        for k, msgs in enumerate(drawn):
            if rate_hz > 0:  # paced here, so that the stamp is the moment of publication
                time.sleep(max(0.0, start + k / rate_hz - time.perf_counter()))
            now = time.time()
            for m in msgs:
                sent[m.id] = now
            yield msgs

    drawn_ev.set()
    go.wait()
    t0 = time.time()
    ts.publish_messages(
        stamped(),
        broker,  # type: ignore[arg-type]
        prefix=prefix,
        stream=stream,
    )
    out.put((t0, time.time(), sent, sum(len(m.payload["readings"]) for s in drawn for m in s)))


def _ours(broker: str, url: str, net: Any, scans: int, rate_hz: float = 0.0) -> dict[str, Any]:
    from aiguilleur.ops import telemetry as tel
    from aiguilleur.ops.centre import OpsCentre
    from aiguilleur.ops.store import open_store

    tag = uuid.uuid4().hex[:8]
    prefix = f"bench-{tag}"
    stream = f"BENCH{tag}"
    committed: dict[str, float] = {}
    process = tel.Intake.process

    def timed(self: Any, batch: Any) -> Any:
        out = process(self, batch)
        now = time.time()
        for (_a, payload, _t), _o in zip(batch, out, strict=True):
            mid = payload[7 : payload.index(b'"', 7)].decode()  # {"id":"<id>",...
            committed[mid] = now
        return out

    tel.Intake.process = timed  # type: ignore[method-assign]
    ctx = mp.get_context("spawn")
    q, go, drawn = ctx.Queue(), ctx.Event(), ctx.Event()
    pub = ctx.Process(
        target=_publisher, args=(broker, net, scans, prefix, stream, q, go, drawn, rate_hz)
    )
    pub.start()
    drawn.wait(600)
    ready = threading.Event()
    opts = tel.SubscriberOptions(
        topic=f"{prefix}/+/+" if broker == "mqtt" else f"{prefix}.>",
        client_id=f"bench-{tag}",
        stream=stream,
        respond=False,
        idle_exit_s=3.0,
    )
    run = tel.mqtt_subscribe if broker == "mqtt" else tel.nats_subscribe
    result: dict[str, Any] = {}
    try:
        with OpsCentre(open_store(url)) as c:
            th = threading.Thread(
                target=lambda: result.setdefault("stats", run(c, opts, on_ready=ready.set))
            )
            th.start()
            ready.wait(30)
            go.set()
            t0, t_pub, sent, readings = q.get(timeout=600)
            th.join()
            n = c.store.count() - 1
    finally:
        tel.Intake.process = process  # type: ignore[method-assign]
        pub.join()
        _cleanup(broker, opts.client_id, stream)
    lat = sorted(committed[m] - sent[m] for m in sent if m in committed)
    end = max(committed.values())
    stats = result["stats"]
    return {
        "commit_p50_ms": 1e3 * stats.percentile(50),
        "commit_p99_ms": 1e3 * stats.percentile(99),
        "messages": len(sent),
        "stored": n,
        "readings": readings,
        "readings_per_s": readings / (end - t0),
        "publish_s": t_pub - t0,
        "p50_ms": 1e3 * lat[len(lat) // 2],
        "p99_ms": 1e3 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
    }


def _bare(broker: str, net: Any, scans: int) -> dict[str, Any]:
    """The anchor: the same publications, a subscriber that acknowledges on receipt."""
    tag = uuid.uuid4().hex[:8]
    prefix = f"bare-{tag}"
    stream = f"BARE{tag}"
    got: dict[str, float] = {}
    ctx = mp.get_context("spawn")
    q, go, drawn = ctx.Queue(), ctx.Event(), ctx.Event()
    pub = ctx.Process(target=_publisher, args=(broker, net, scans, prefix, stream, q, go, drawn))
    pub.start()
    drawn.wait(600)

    def record(payload: bytes) -> None:
        got[payload[7 : payload.index(b'"', 7)].decode()] = time.time()

    try:
        if broker == "mqtt":
            import paho.mqtt.client as mqtt
            from paho.mqtt.enums import CallbackAPIVersion

            cl = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bare-{tag}")
            cl.on_message = lambda _c, _u, m: record(m.payload)
            cl.connect("127.0.0.1", 1883)
            cl.subscribe(f"{prefix}/+/+", qos=1)
            cl.loop_start()
            time.sleep(0.5)
            go.set()
            t0, _t1, sent, readings = q.get(timeout=600)
            while len(got) < len(sent):
                time.sleep(0.001)
            cl.disconnect()
            cl.loop_stop()
        else:

            async def consume() -> tuple[Any, ...]:
                import nats
                import nats.errors
                from nats.js.api import AckPolicy, ConsumerConfig

                from aiguilleur.ops.telemetry import ensure_stream

                nc = await nats.connect("nats://127.0.0.1:4222")
                js = nc.jetstream()
                await ensure_stream(js, stream, f"{prefix}.>")
                sub = await js.pull_subscribe(
                    f"{prefix}.>",
                    durable=f"bare-{tag}",
                    stream=stream,
                    config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=2000),
                )
                go.set()
                info: tuple[Any, ...] | None = None
                while info is None or len(got) < len(info[2]):
                    try:
                        msgs = await sub.fetch(500, timeout=0.25)
                    except (nats.errors.TimeoutError, TimeoutError):
                        msgs = []
                    for m in msgs:
                        record(m.data)
                        await m.ack()
                    if info is None and not q.empty():
                        info = q.get()
                await nc.close()
                return info

            t0, _t1, sent, readings = asyncio.run(consume())
    finally:
        pub.join()
        _cleanup(broker, f"bare-{tag}", stream)
    lat = sorted(got[m] - sent[m] for m in sent)
    return {
        "readings_per_s": readings / (max(got.values()) - t0),
        "p50_ms": 1e3 * lat[len(lat) // 2],
        "p99_ms": 1e3 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
    }


def _cleanup(broker: str, client_id: str, stream: str) -> None:
    if broker == "mqtt":
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        c.connect("127.0.0.1", 1883)
        c.loop_start()
        time.sleep(0.2)
        c.disconnect()
        c.loop_stop()
        return

    async def go() -> None:
        import nats
        import nats.js.errors

        nc = await nats.connect("nats://127.0.0.1:4222")
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(stream)
        await nc.close()

    asyncio.run(go())


def brokers(args: argparse.Namespace) -> None:
    from aiguilleur.ops.telemetry import broker_unreachable

    with tempfile.TemporaryDirectory() as d:
        _, net = new_store(args.case, d)
        for broker in ("mqtt", "nats"):
            why = broker_unreachable(None, broker)  # type: ignore[arg-type]
            if why is not None:
                print(f"{broker}: skipped ({why})")
                continue
            best_ours: dict[str, Any] | None = None
            best_bare: dict[str, Any] | None = None
            paced: dict[str, Any] | None = None
            loads = [os.getloadavg()[0]]
            for _ in range(args.repeat):
                url, _ = new_store(args.case, d)
                o = _ours(broker, url, net, args.scans)
                assert o["stored"] == o["messages"], o
                b = _bare(broker, net, args.scans)
                url, _ = new_store(args.case, d)
                p = _ours(broker, url, net, args.scans, rate_hz=args.rate)
                loads.append(os.getloadavg()[0])
                if best_ours is None or o["readings_per_s"] > best_ours["readings_per_s"]:
                    best_ours = o
                if best_bare is None or b["readings_per_s"] > best_bare["readings_per_s"]:
                    best_bare = b
                if paced is None or p["p50_ms"] < paced["p50_ms"]:
                    paced = p
            assert best_ours is not None and best_bare is not None
            print(
                f"{broker}: {best_ours['messages']} messages, {best_ours['readings']} readings "
                f"({args.case}, {args.scans} scans), best of {args.repeat}, load "
                f"{min(loads):.1f}-{max(loads):.1f}"
            )
            print(
                f"  aiguilleur (commit, then ack) {best_ours['readings_per_s']:>10,.0f} readings/s"
                f"   latency p50 {best_ours['p50_ms']:7.1f} ms  p99 {best_ours['p99_ms']:7.1f} ms"
            )
            print(
                f"  bare subscriber (ack only)    {best_bare['readings_per_s']:>10,.0f} readings/s"
                f"   latency p50 {best_bare['p50_ms']:7.1f} ms  p99 {best_bare['p99_ms']:7.1f} ms"
            )
            ratio = best_ours["readings_per_s"] / best_bare["readings_per_s"]
            print(f"  ratio ours/bare: {ratio:.2f}")
            print(
                f"  flat out, arrival -> commit (ack follows): p50 {best_ours['commit_p50_ms']:.1f}"
                f" ms  p99 {best_ours['commit_p99_ms']:.1f} ms"
            )
            assert paced is not None
            per_s = args.rate * best_ours["readings"] / args.scans
            print(
                f"  paced at {args.rate:g} scans/s ({per_s:,.0f} readings/s): publish -> commit "
                f"p50 {paced['p50_ms']:.1f} ms  p99 {paced['p99_ms']:.1f} ms; arrival -> commit "
                f"p50 {paced['commit_p50_ms']:.1f} ms  p99 {paced['commit_p99_ms']:.1f} ms"
            )


def estimation(args: argparse.Namespace) -> None:
    from aiguilleur.grid.estimation import estimate_state
    from aiguilleur.ops.centre import OpsCentre
    from aiguilleur.ops.estimator import StateEstimator, telemetry_measurements
    from aiguilleur.ops.store import MemoryStore
    from aiguilleur.ops.telemetry import Intake, SubscriberStats
    from aiguilleur.ops.telemetry_sim import SimulatorOptions, TelemetrySimulator

    c = OpsCentre(MemoryStore())
    c.tracking = False
    assert c.ingest([genesis("case1888")])[0].ok
    net = c.state().grid.net  # type: ignore[union-attr]
    sim = TelemetrySimulator(
        net,
        SimulatorOptions(
            redundancy=2.0,
            seed=1,
            readings_per_message=2000,
            start=datetime(2026, 1, 15, 5, tzinfo=UTC) + timedelta(seconds=1),
        ),
    )
    msgs = sim.scan(0)
    Intake(c, "mqtt", SubscriberStats()).process(
        [(f"aiguilleur/site1/{m.kind}", m.body(), 0.0) for m in msgs]
    )
    st = c.state()
    est = StateEstimator()
    est.estimate(st)  # the model's power flow is computed once per grid version: not timed
    meas, _, _ = telemetry_measurements(st)
    t_ops, t_leaf, t_meas = [], [], []
    load0 = os.getloadavg()
    for _ in range(args.repeat):
        t = time.perf_counter()
        out = est.estimate(st)
        t_ops.append(time.perf_counter() - t)
        t = time.perf_counter()
        res = estimate_state(net, meas)
        t_leaf.append(time.perf_counter() - t)
        t = time.perf_counter()
        telemetry_measurements(st)
        t_meas.append(time.perf_counter() - t)
    load1 = os.getloadavg()
    assert out.result is not None
    same = np.nanmax(np.abs(out.result.vm_pu - res.vm_pu))
    print(
        f"estimation from the state: case1888, {len(meas)} fresh readings, status "
        f"{out.status}, best of {args.repeat}, load {load0[0]:.1f}->{load1[0]:.1f}"
    )
    print(f"  StateEstimator.estimate(state)          {1e3 * min(t_ops):8.1f} ms")
    print(f"  estimate_state(net, same measurements)  {1e3 * min(t_leaf):8.1f} ms")
    print(f"  of which state -> measurements           {1e3 * min(t_meas):8.1f} ms")
    print(f"  ratio ops/leaf: {min(t_ops) / min(t_leaf):.2f}; largest |dVm| {same:.1e} pu")
    print(f"  median ops {1e3 * statistics.median(t_ops):.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="case118", help="grid metered by the simulator")
    ap.add_argument("--scans", type=int, default=30, help="scans published per run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rate", type=float, default=5.0, help="scans/s of the paced latency run")
    ap.add_argument("--skip-brokers", action="store_true")
    ap.add_argument("--skip-estimation", action="store_true")
    args = ap.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    print(
        f"bench_telemetry: commit {commit}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    if not args.skip_brokers:
        brokers(args)
    if not args.skip_estimation:
        estimation(args)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
