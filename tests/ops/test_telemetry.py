"""Telemetry from brokers: message mapping, dead letters, the simulator, and kill-and-restart
against the real Mosquitto and NATS JetStream servers (skipped where none is reachable)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aiguilleur.errors import ValidationError
from aiguilleur.ops.centre import OpsCentre
from aiguilleur.ops.store import MemoryStore, open_store
from aiguilleur.ops.telemetry import (
    Intake,
    SubscriberOptions,
    SubscriberStats,
    broker_address,
    broker_unreachable,
    message_to_event,
)
from aiguilleur.ops.telemetry_sim import SimulatorOptions, TelemetrySimulator, publish_messages
from tests.ops.conftest import T0, case14_genesis

REPO = Path(__file__).resolve().parents[2]


def reading(**kw: Any) -> dict[str, Any]:
    r = {"element": "bus:2", "quantity": "vm", "value": 1.01, "unit": "pu", "sigma": 0.004}
    r.update(kw)
    return r


def payload(mid: str = "m1", minutes: float = 1.0, **kw: Any) -> bytes:
    doc: dict[str, Any] = {
        "id": mid,
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "readings": [reading()],
    }
    doc.update(kw)
    return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def world() -> Any:
    """A case14 centre's state (the grid the simulator meters)."""
    c = OpsCentre(MemoryStore())
    assert c.ingest([case14_genesis()])[0].ok
    return c.state()


def centre14() -> OpsCentre:
    c = OpsCentre(MemoryStore())
    c.tracking = False
    assert c.ingest([case14_genesis()])[0].ok
    return c


# -- mapping ---------------------------------------------------------------------------------


def test_telemetry_message_becomes_an_event_with_an_id_from_the_message() -> None:
    e = message_to_event("aiguilleur/site-7/telemetry", payload("scan-1"))
    assert e.type == "telemetry" and e.id == "site-7/scan-1" and e.source == "mqtt:site-7"
    assert e.readings[0].element == "bus:2" and e.readings[0].value == 1.01
    n = message_to_event("ops.aiguilleur.north.telemetry", payload("scan-1"), "nats")
    assert n.id == "north/scan-1" and n.source == "nats:north"


def test_health_message_becomes_a_health_reading() -> None:
    body = json.dumps(
        {
            "id": "h1",
            "occurred_at": T0.isoformat(),
            "source": "cms:gt1",
            "asset": "GT-1",
            "cycle": 3,
            "settings": [0.0, 0.0, 100.0],
            "sensors": {"s2": 642.1},
        }
    )
    e = message_to_event("aiguilleur/s1/health", body)
    assert (e.type, e.id, e.asset, e.cycle, e.source) == (
        "health_reading",
        "s1/h1",
        "GT-1",
        3,
        "cms:gt1",
    )


@pytest.mark.parametrize(
    ("address", "body", "fragment"),
    [
        ("aiguilleur/s1/telemetry", b"{not json", "not valid JSON"),
        ("aiguilleur/s1/telemetry", b"\xff\xfe", "not UTF-8"),
        ("aiguilleur/s1/telemetry", b"[1, 2]", "expected a JSON object"),
        ("aiguilleur/s1/alarms", payload(), "unknown kind"),
        ("aiguilleur/s_1/telemetry", payload(), "site"),
        ("telemetry", payload(), "expected <prefix>/<site>/<kind>"),
        ("aiguilleur/s1/telemetry", payload(mid=""), "payload.id"),
        ("aiguilleur/s1/telemetry", payload(mid="a b"), "payload.id"),
        ("aiguilleur/s1/telemetry", payload(extra=1), "payload.extra: unknown field"),
        ("aiguilleur/s1/telemetry", payload(type="health_reading"), "payload.type"),
        ("aiguilleur/s1/telemetry", payload(readings=[reading(unit="kV")]), "unit"),
        ("aiguilleur/s1/telemetry", payload(readings=[]), "readings"),
        ("aiguilleur/s1/telemetry", b'{"id": "x", "value": NaN}', "NaN"),
        ("aiguilleur/s1/telemetry", payload(occurred_at="2026-01-15T05:00:00"), "occurred_at"),
    ],
)
def test_malformed_messages_are_refused_naming_the_field(
    address: str, body: bytes, fragment: str
) -> None:
    with pytest.raises(ValidationError, match=fragment):
        message_to_event(address, body)


def test_intake_stores_valid_messages_and_dead_letters_the_rest_with_reasons() -> None:
    c = centre14()
    stats = SubscriberStats()
    intake = Intake(c, "mqtt", stats)
    good = payload("ok1")
    batch = [
        ("aiguilleur/s1/telemetry", good, 0.0),
        ("aiguilleur/s1/telemetry", b"{oops", 0.0),
        ("aiguilleur/s1/telemetry", payload("u", readings=[reading(element="bus:999")]), 0.0),
        ("aiguilleur/s1/telemetry", good, 0.0),  # a redelivery in the same batch
    ]
    out = intake.process(batch)
    assert len(out) == 4 and all(o.ok for o in out)  # every message may be acknowledged
    assert out[0].seq == out[3].seq == 2 and out[0].reason is None
    assert stats.stored == 1 and stats.duplicates == 1 and stats.dead_letters == 2
    dead = c.store.dead_letters()
    assert [d["source"] for d in dead] == ["mqtt:aiguilleur/s1/telemetry"] * 2
    assert "not valid JSON" in dead[0]["reason"] and dead[0]["payload"] == "{oops"
    assert "bus:999" in dead[1]["reason"] and "no bus 999" in dead[1]["reason"]
    # redelivered later: acknowledged again, stored once
    again = intake.process([("aiguilleur/s1/telemetry", good, 0.0)])
    assert again[0].seq == 2 and stats.duplicates == 2 and c.store.count() == 2


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_reading_like = st.fixed_dictionaries(
    {
        "element": st.sampled_from(["bus:1", "bus:14", "bus:99", "branch:3", "branch:0", "gen:1"]),
        "quantity": st.sampled_from(["vm", "p_inj", "q_from", "p_to", "x"]),
        "value": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=3)),
        "unit": st.sampled_from(["pu", "MW", "Mvar", "kV"]),
    },
    optional={"sigma": st.floats(-1, 5, allow_nan=False), "meter": st.text(max_size=10)},
)
_payload_like = st.fixed_dictionaries(
    {
        "id": st.text(min_size=0, max_size=20),
        "occurred_at": st.sampled_from(
            [T0.isoformat(), "2026-01-15T05:00:00", "yesterday", "2026-01-15T05:00:00Z"]
        ),
        "readings": st.lists(_reading_like, max_size=3),
    },
    optional={"source": st.text(max_size=5), "type": st.text(max_size=12), "zzz": _json},
)
_payloads = st.one_of(
    st.binary(max_size=200),
    _json.map(lambda x: json.dumps(x).encode()),
    _payload_like.map(lambda x: json.dumps(x).encode()),
)
_topics = st.one_of(
    st.sampled_from(
        ["aiguilleur/s1/telemetry", "aiguilleur/s1/health", "a/b", "x", "aiguilleur/-/telemetry"]
    ),
    st.text(max_size=30),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(_topics, _payloads), min_size=1, max_size=6))
def test_any_message_becomes_an_event_or_a_dead_letter_never_an_exception(
    msgs: list[tuple[str, bytes]],
) -> None:
    c = centre14()
    stats = SubscriberStats()
    before = c.store.count()
    out = Intake(c, "mqtt", stats).process([(t, p, 0.0) for t, p in msgs])
    assert len(out) == len(msgs) and all(o.ok for o in out)
    stored = [o for o in out if o.reason is None]
    assert all(o.seq is not None for o in stored)
    assert len(c.store.dead_letters(1000)) == len(out) - len(stored) == stats.dead_letters
    assert c.store.count() - before == stats.stored
    for (t, p), o in zip(msgs, out, strict=True):
        if o.reason is None:  # what was stored is exactly what the mapping says
            e = message_to_event(t, p)
            rec = next(iter(c.store.read(o.seq - 1, 1)))
            assert rec.id == e.id


def test_a_late_redelivered_reading_does_not_replace_a_newer_one() -> None:
    c = centre14()
    new = payload("new", minutes=2, readings=[reading(value=1.02)])
    old = payload("old", minutes=1, readings=[reading(value=0.99)])
    Intake(c, "nats", SubscriberStats()).process(
        [("a.s1.telemetry", new, 0.0), ("a.s1.telemetry", old, 0.0)]
    )
    t = c.state().telemetry
    assert t is not None
    slot = t.slot("vm", 1)  # bus 2 is row 1
    assert t.value[slot] == 1.02 and t.readings == 2


def test_options_and_addresses_are_checked() -> None:
    assert broker_address(None, "mqtt") == ("127.0.0.1", 1883)
    assert broker_address("nats://10.0.0.1:4333", "nats") == ("10.0.0.1", 4333)
    assert broker_address("localhost", "nats") == ("localhost", 4222)
    for bad in (
        {"batch_max": 0},
        {"client_id": "has space"},
        {"lag_alarm_s": -1.0},
        {"max_messages": 0},
        {"stream": "a.b"},
    ):
        with pytest.raises(ValidationError):
            SubscriberOptions(**bad)  # type: ignore[arg-type]
    assert broker_unreachable("127.0.0.1:1", "mqtt", 0.2) is not None


# -- the simulator --------------------------------------------------------------------------


def test_simulator_meters_the_power_flow_with_stated_noise(world: Any) -> None:
    from aiguilleur.grid import PowerFlowOptions, ac_power_flow

    sim = TelemetrySimulator(
        world.grid.net,
        SimulatorOptions(count=40, seed=5, start=T0, readings_per_message=50),
    )
    net = world.grid.net
    pf = ac_power_flow(net, PowerFlowOptions(enforce_q_limits=True))
    # every bus: vm, p_inj, q_inj; every in-service branch: P and Q at both ends
    assert sim.metered == 3 * net.n_bus + 4 * int(np.sum(net.branch.in_service == 1))
    # the truth is the power flow's own solution (its branch flows, computed apart)
    pick = sim.kind == "p_from"
    rows = sim.element_num[pick] - 1
    assert np.allclose(sim.truth[pick], pf.p_from_mw[rows], atol=1e-6)
    z = []
    for k in range(40):
        msgs = sim.scan(k)
        assert [m.kind for m in msgs] == ["telemetry"] * math.ceil(sim.metered / 50)
        vals = {(r["quantity"], r["element"]): r for m in msgs for r in m.payload["readings"]}
        assert len(vals) == sim.metered
        for i in range(sim.metered):
            r = vals[(str(sim.kind[i]), sim.element[i])]
            z.append((r["value"] - sim.truth[i]) / r["sigma"])
            assert r["meter"] == sim.meter[i]
    z_arr = np.array(z)
    assert abs(z_arr.mean()) < 0.05 and abs(z_arr.std() - 1.0) < 0.05


def test_simulator_dropouts_gross_errors_and_asset_streams(world: Any) -> None:
    from aiguilleur.health.cmapss import read_cmapss

    sim = TelemetrySimulator(
        world.grid.net,
        SimulatorOptions(
            count=30,
            seed=2,
            start=T0,
            dropout=0.2,
            gross_error_rate=0.02,
            assets=(("GT-1", 3),),
        ),
    )
    n_read, errs = 0, []
    for k in range(30):
        msgs = sim.scan(k)
        tel = [m for m in msgs if m.kind == "telemetry"]
        n_read += sum(len(m.payload["readings"]) for m in tel)
        errs.extend(g for m in tel for g in m.gross_errors)
        health = [m for m in msgs if m.kind == "health"]
        assert len(health) == 1 and health[0].payload["cycle"] == k + 1
        assert message_to_event("aiguilleur/site1/health", health[0].body()).asset == "GT-1"
    total = 30 * sim.metered
    assert n_read + sim.dropped == total
    assert 0.15 < sim.dropped / total < 0.25
    assert 0.01 < len(errs) / n_read < 0.03
    assert all(
        abs(abs(g["error"]) / (0.004 if g["quantity"] == "vm" else 1.0) - 20) < 6 for g in errs
    )
    ref = REPO / "aiguilleur" / "data" / "cmapss" / "test_FD001_units1-10.txt"
    unit3 = read_cmapss(ref)
    first = np.flatnonzero(unit3.unit == 3)[0]
    h0 = sim.scan(0)[-1].payload
    assert h0["sensors"]["s2"] == pytest.approx(float(unit3.sensors[first, 1]))


# -- against the real brokers -------------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "aiguilleur.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


# The subscriber, dying right after its third commit and before acknowledging it (os._exit:
# no clean-up at all): the worst moment for exactly-once.
_CRASH_AFTER_COMMIT = """
import os, sys
from aiguilleur.ops import telemetry as t
process, calls = t.Intake.process, [0]
def crash(self, batch):
    out = process(self, batch)
    calls[0] += 1
    if calls[0] == 3:
        os._exit(9)
    return out
t.Intake.process = crash
from aiguilleur.cli import main
main(sys.argv[1:])
"""


def _start(args: list[str], log: Path, crash: bool = False) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", _CRASH_AFTER_COMMIT, *args] if crash else _cli(*args)
    with log.open("ab") as fh:  # the child keeps its own copy of the descriptor
        p = subprocess.Popen(cmd, stdout=fh, stderr=fh, env=_env(), cwd=REPO)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if "subscribed:" in log.read_text(errors="replace").split("--restart--")[-1]:
            return p
        if p.poll() is not None:
            raise AssertionError(f"the subscriber exited early: {log.read_text()}")
        time.sleep(0.05)
    p.kill()
    raise AssertionError(f"the subscriber did not subscribe within 60 s: {log.read_text()}")


def _stored(url: str) -> int:
    s = open_store(url)
    try:
        return s.count()
    finally:
        s.close()


def _kill_and_restart(
    tmp_path: Path, broker: str, extra: list[str], prefix: str, stream: str | None, how: str
) -> None:
    """Publish a stream, kill the subscriber mid-way, restart it: every reading once.

    ``how``: ``sigkill`` (at a random point of the stream) or ``crash_after_commit``
    (between a commit and its acknowledgement: the restart must see redeliveries).
    """
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    with OpsCentre(open_store(url, create=True)) as c:
        assert c.ingest([case14_genesis()])[0].ok
        net = c.state().grid.net  # type: ignore[union-attr]
    sim = TelemetrySimulator(
        net,
        SimulatorOptions(
            count=40,
            seed=11,
            start=T0 + timedelta(seconds=1),
            readings_per_message=12,
            gross_error_rate=0.01,
            dropout=0.05,
        ),
    )
    scans = [sim.scan(k) for k in range(40)]
    n_msgs = sum(len(s) for s in scans)
    args = ["ops", "subscribe", broker, "--store", url, "--no-respond", "--json", *extra]
    log = tmp_path / "subscriber.log"
    crash = how == "crash_after_commit"
    proc = _start(args, log, crash=crash)
    published: dict[str, Any] = {}

    def publish() -> None:
        kw: dict[str, Any] = {"prefix": prefix, "rate_hz": 15.0}
        if stream is not None:
            kw["stream"] = stream
        published["report"] = publish_messages(scans, broker, **kw)  # type: ignore[arg-type]

    pub = threading.Thread(target=publish)
    pub.start()
    try:
        if crash:
            assert proc.wait(60) == 9
        else:
            end = time.monotonic() + 60
            while _stored(url) < 1 + n_msgs // 3 and time.monotonic() < end:
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        at_kill = _stored(url) - 1
        assert 0 < at_kill < n_msgs, "the kill did not land mid-stream"
        pub.join(60)
        assert not pub.is_alive()
        with log.open("a") as fh:
            fh.write("--restart--\n")
        proc = _start(args, log)
        end = time.monotonic() + 90
        while _stored(url) < 1 + n_msgs and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.5)  # anything more (a reading applied twice) would show up now
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert published["report"].messages == n_msgs
    stats = json.loads(log.read_text().strip().splitlines()[-1])
    assert stats["stored"] == n_msgs - at_kill and not stats["errors"]
    if crash:  # what was committed and not acknowledged came back, and was stored once
        assert stats["duplicates"] >= 1 and stats["received"] > stats["stored"]
    with OpsCentre(open_store(url)) as c:
        ids = [json.loads(body)["id"] for _, body in c.events()]
        st_ = c.state()
    want = {f"site1/{m.id}" for s in scans for m in s}
    assert ids[0] == "world:grid"
    assert len(ids) - 1 == n_msgs == len(set(ids[1:])), f"killed at {at_kill}; {log.read_text()}"
    assert set(ids[1:]) == want
    # each reading applied exactly once, and the state holds what was published last
    tel = st_.telemetry
    assert tel is not None
    assert tel.readings == sum(len(m.payload["readings"]) for s in scans for m in s)
    last: dict[tuple[str, str], float] = {}
    for s in scans:
        for m in s:
            for r in m.payload["readings"]:
                last[(r["quantity"], r["element"])] = r["value"]
    rows = {int(b): i for i, b in enumerate(net.bus.bus_id.tolist())}
    for (q, el), v in last.items():
        kind, num = el.split(":")
        row = rows[int(num)] if kind == "bus" else int(num) - 1
        assert tel.value[tel.slot(q, row)] == v, (q, el)
    assert tel.measured == len(last)


@pytest.fixture
def mqtt_broker() -> str:
    why = broker_unreachable(None, "mqtt")
    if why is not None:
        pytest.skip(f"{why}: the MQTT tests need Mosquitto on 127.0.0.1:1883")
    pytest.importorskip("paho.mqtt", reason="paho-mqtt is not installed (aiguilleur[brokers])")
    return "127.0.0.1:1883"


@pytest.fixture
def nats_broker() -> str:
    why = broker_unreachable(None, "nats")
    if why is not None:
        pytest.skip(f"{why}: the NATS tests need nats-server -js on 127.0.0.1:4222")
    pytest.importorskip("nats", reason="nats-py is not installed (aiguilleur[brokers])")
    return "127.0.0.1:4222"


def _forget_mqtt_session(client_id: str) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    c.connect("127.0.0.1", 1883)
    c.loop_start()
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()


def _delete_stream(name: str) -> None:
    import asyncio

    import nats
    import nats.js.errors

    async def go() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        try:
            await nc.jetstream().delete_stream(name)
        except nats.js.errors.NotFoundError:
            pass
        finally:
            await nc.close()

    asyncio.run(go())


KILLS = ["sigkill", "crash_after_commit"]


@pytest.mark.slow
@pytest.mark.parametrize("how", KILLS)
def test_mqtt_kill_and_restart_applies_every_reading_once(
    mqtt_broker: str, tmp_path: Path, how: str
) -> None:
    tag = uuid.uuid4().hex[:10]
    client = f"test-{tag}"
    prefix = f"aiguilleur-test-{tag}"
    try:
        _kill_and_restart(
            tmp_path, "mqtt", ["--topic", f"{prefix}/+/+", "--client-id", client], prefix, None, how
        )
    finally:
        _forget_mqtt_session(client)


@pytest.mark.slow
@pytest.mark.parametrize("how", KILLS)
def test_nats_kill_and_restart_applies_every_reading_once(
    nats_broker: str, tmp_path: Path, how: str
) -> None:
    tag = uuid.uuid4().hex[:10]
    stream = f"AIGTEST{tag}"
    prefix = f"aiguilleur-test-{tag}"
    try:
        _kill_and_restart(
            tmp_path,
            "nats",
            [
                "--subject",
                f"{prefix}.>",
                "--durable",
                f"ops-{tag}",
                "--stream",
                stream,
                "--ack-wait",
                "2",
            ],
            prefix,
            stream,
            how,
        )
    finally:
        _delete_stream(stream)


def test_mqtt_subscriber_in_process_dead_letters_and_stops_when_idle(
    mqtt_broker: str,
) -> None:
    from aiguilleur.ops.telemetry import mqtt_subscribe

    tag = uuid.uuid4().hex[:10]
    client = f"test-{tag}"
    c = centre14()
    ready = threading.Event()
    out: dict[str, Any] = {}
    opts = SubscriberOptions(topic=f"t-{tag}/+/+", client_id=client, respond=False, idle_exit_s=1.5)
    th = threading.Thread(
        target=lambda: out.setdefault("stats", mqtt_subscribe(c, opts, on_ready=ready.set))
    )
    th.start()
    try:
        assert ready.wait(15)
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{tag}")
        pub.connect("127.0.0.1", 1883)
        pub.loop_start()
        for topic, body in (
            (f"t-{tag}/s1/telemetry", payload("a")),
            (f"t-{tag}/s1/telemetry", b"garbage"),
            (f"t-{tag}/s1/telemetry", payload("a")),
        ):
            pub.publish(topic, body, qos=1).wait_for_publish(10)
        pub.disconnect()
        pub.loop_stop()
        th.join(30)
    finally:
        _forget_mqtt_session(client)
    s = out["stats"]
    assert (s.received, s.stored, s.duplicates, s.dead_letters, s.acked) == (3, 1, 1, 1, 3)
    assert c.store.dead_letters()[0]["payload"] == "garbage"


# -- the command line ---------------------------------------------------------------------------


def test_cli_refuses_bad_brokers_and_options_in_one_line(tmp_path: Path) -> None:
    from aiguilleur.cli import app

    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'x.db'}"
    cases = [
        (["ops", "subscribe", "kafka", "--store", db], "broker: expected mqtt or nats"),
        (
            ["ops", "subscribe", "mqtt", "--store", db, "--url", "127.0.0.1:1", "--idle-exit", "1"],
            "MQTT broker 127.0.0.1:1",
        ),
        (["ops", "subscribe", "nats", "--store", db, "--client-id", "a b"], "client_id"),
        (
            ["ops", "simulate-telemetry", "case14", "--broker", "mqtt", "--dropout", "1.5"],
            "dropout",
        ),
        (["ops", "simulate-telemetry", "--broker", "mqtt"], "name a case or a store"),
        (["ops", "simulate-telemetry", "--store", db, "--broker", "nats"], "holds no grid"),
    ]
    for args, fragment in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], (
            args,
            res.stderr,
        )


# -- backpressure -------------------------------------------------------------------------------


def test_when_analyses_lag_the_newest_reading_wins_and_the_lag_is_alarmed(world: Any) -> None:
    from aiguilleur.ops import telemetry as tel
    from aiguilleur.ops.centre import CentreOptions
    from aiguilleur.ops.responder import ResponderOptions

    c = OpsCentre(MemoryStore(), CentreOptions(responder=ResponderOptions(n1=False)))
    assert c.ingest([case14_genesis()])[0].ok
    c.respond()
    opts = SubscriberOptions(lag_alarm_s=0.3)
    stats = SubscriberStats()
    intake = Intake(c, "mqtt", stats)
    sim = TelemetrySimulator(world.grid.net, SimulatorOptions(start=T0, seed=9))
    react = c.responder.react
    first = threading.Event()

    def slow(state: Any, batch: Any, *rest: Any) -> Any:  # the first analysis takes a while
        if not first.is_set():
            first.set()
            time.sleep(0.8)
        return react(state, batch, *rest)

    c.responder.react = slow  # type: ignore[method-assign]
    analyst = tel._Analyst(intake, opts).start()
    try:
        scans = [sim.scan(k) for k in range(4)]
        intake.process([("a/site1/telemetry", m.body(), time.perf_counter()) for m in scans[0]])
        assert first.wait(10)
        for s in scans[1:]:  # arrive while the first analysis runs
            intake.process([("a/site1/telemetry", m.body(), time.perf_counter()) for m in s])
    finally:
        analyst.stop()
    assert stats.analyses == 2 and stats.coalesced == 2  # scans 1 to 3 analysed as one batch
    assert stats.lag_max_s > 0.3 and stats.lag_alarms == 1
    lag = [a for a in c.alarms() if a["kind"] == "telemetry_lag"]
    assert len(lag) == 1 and "analysed together" in lag[0]["text"]
    est = [a for a in c.analyses() if a["kind"] == "estimate"]
    assert [a["body"]["batch"]["telemetry_events"] for a in est] == [1, 3]
    # what the second analysis saw: the newest reading of every element (scan 3), all stored
    t = c.state().telemetry
    assert t is not None and t.readings == 4 * sim.metered
    newest = {(r["quantity"], r["element"]): r["value"] for r in scans[3][0].payload["readings"]}
    rows = {int(b): i for i, b in enumerate(world.grid.net.bus.bus_id.tolist())}
    for (q, el), v in newest.items():
        kind, num = el.split(":")
        assert t.value[t.slot(q, rows[int(num)] if kind == "bus" else int(num) - 1)] == v
