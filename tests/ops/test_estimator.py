"""The state estimator in the operations centre's loop: telemetry -> estimate -> alarms."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from aiguilleur.errors import ValidationError
from aiguilleur.grid.corrective import ac_check
from aiguilleur.grid.estimation import EstimationOptions, estimate_state
from aiguilleur.grid.measurements import Measurements
from aiguilleur.ops.centre import CentreOptions, OpsCentre
from aiguilleur.ops.estimator import EstimatorOptions, StateEstimator, telemetry_measurements
from aiguilleur.ops.responder import ResponderOptions
from aiguilleur.ops.store import MemoryStore
from aiguilleur.ops.telemetry import Intake, SubscriberStats
from aiguilleur.ops.telemetry_sim import SimulatedMessage, SimulatorOptions, TelemetrySimulator
from tests.ops.conftest import T0, case14_genesis


def centre(**responder: Any) -> OpsCentre:
    c = OpsCentre(MemoryStore(), CentreOptions(responder=ResponderOptions(**responder)))
    assert c.ingest([case14_genesis()])[0].ok
    c.respond()  # the world's own analyses, out of the way
    return c


def simulator(net: Any, **kw: Any) -> TelemetrySimulator:
    opts = {"start": T0 + timedelta(seconds=1), "seed": 4, "readings_per_message": 1000, **kw}
    return TelemetrySimulator(net, SimulatorOptions(**opts))


def send(c: OpsCentre, msgs: list[SimulatedMessage]) -> None:
    out = Intake(c, "mqtt", SubscriberStats()).process(
        [(f"aiguilleur/site1/{m.kind}", m.body(), 0.0) for m in msgs]
    )
    assert all(o.reason is None for o in out), [o.reason for o in out]


def with_error(msg: SimulatedMessage, quantity: str, element: str, sigmas: float) -> Any:
    doc = json.loads(msg.body())
    hit = [r for r in doc["readings"] if (r["quantity"], r["element"]) == (quantity, element)]
    assert len(hit) == 1
    hit[0]["value"] += sigmas * hit[0]["sigma"]
    return dataclasses.replace(msg, payload=doc), hit[0]["meter"]


def estimate_alarms(reactions: Any) -> list[dict[str, Any]]:
    return [a for r in reactions for a in r.alarms]


def estimate_analysis(reactions: Any) -> dict[str, Any]:
    got = [a for r in reactions for a in r.analyses if a["kind"] == "estimate"]
    assert len(got) == 1
    return got[0]


def test_estimate_equals_estimate_state_run_directly_on_the_published_readings() -> None:
    c = centre(n1=False)
    net = c.state().grid.net  # type: ignore[union-attr]
    sim = simulator(net, gross_error_rate=0.01, seed=8)
    msgs = sim.scan(0)
    send(c, msgs)
    st = c.state()
    out = StateEstimator().estimate(st)
    # the reference: the readings as published, in their own order, straight to the leaf
    rs = [r for m in msgs for r in m.payload["readings"]]
    direct = estimate_state(
        net,
        Measurements(
            np.array([f"{r['quantity']}:{r['element']}" for r in rs]),
            np.array([r["quantity"] for r in rs]),
            np.array([int(r["element"].split(":")[1]) for r in rs]),
            np.array([r["value"] for r in rs]),
            np.array([r["sigma"] for r in rs]),
        ),
        EstimationOptions(),
    )
    res = out.result
    assert res is not None and res.status == direct.status
    assert np.allclose(res.vm_pu, direct.vm_pu, atol=1e-9, rtol=0)
    assert np.allclose(res.va_deg, direct.va_deg, atol=1e-7, rtol=0)
    assert res.objective == pytest.approx(direct.objective, rel=1e-8)
    assert {i for i, _ in res.bad_data} == {i for i, _ in direct.bad_data}
    assert len(out.measurements) == len(rs) == sim.metered
    # the meters beside the measurements are those of the readings
    meter = {f"{r['quantity']}:{r['element']}": r["meter"] for r in rs}
    assert all(meter[i] == m for i, m in zip(out.measurements.id.tolist(), out.meters, strict=True))
    # and the estimate agrees with the model's power flow (the simulator metered it)
    assert out.body["max_dv_model_pu"] < 0.01


def test_a_gross_error_raises_an_alarm_naming_its_meter_once() -> None:
    c = centre(n1=False)
    net = c.state().grid.net  # type: ignore[union-attr]
    sim = simulator(net)
    bad, meter = with_error(sim.scan(0)[0], "p_from", "branch:5", 25.0)
    send(c, [bad])
    reactions = c.respond()
    alarms = estimate_alarms(reactions)
    assert [a["kind"] for a in alarms] == ["bad_measurement"], alarms
    assert meter == "site1.PF.l5" and f"meter {meter}:" in alarms[0]["text"]
    assert alarms[0]["element"] == "branch:5"
    body = estimate_analysis(reactions)["body"]
    assert [(b["meter"], b["element"], b["quantity"]) for b in body["bad_data"]] == [
        (meter, "branch:5", "p_from")
    ]
    # the same meter still bad at the next scan: no new alarm; a clean scan clears it;
    # bad again: a new alarm
    for k, err, want in ((1, True, 0), (2, False, 0), (3, True, 1)):
        msg = sim.scan(k)[0]
        if err:
            msg, _ = with_error(msg, "p_from", "branch:5", 25.0)
        send(c, [msg])
        got = estimate_alarms(c.respond())
        assert len(got) == want, (k, got)
    assert c.alarms()[-1]["text"].startswith(f"meter {meter}:")


def test_stale_readings_are_left_out_and_too_few_fresh_raise_an_alarm() -> None:
    c = centre(n1=False)
    net = c.state().grid.net  # type: ignore[union-attr]
    sim = simulator(net)
    send(c, sim.scan(0))
    assert estimate_analysis(c.respond())["status"] == "converged"
    # two minutes later only the voltages come: the rest is older than max_age_s (60 s)
    later = json.loads(sim.scan(120).pop(0).body())
    later["readings"] = [r for r in later["readings"] if r["quantity"] == "vm"]
    send(c, [SimulatedMessage("telemetry", later["id"], 120, later)])
    st = c.state()
    meas, meters, stale = telemetry_measurements(st)
    assert len(meas) == net.n_bus and set(meas.kind.tolist()) == {"vm"}
    assert stale == sim.metered - net.n_bus and all(m and ".V." in m for m in meters)
    reactions = c.respond()
    assert estimate_analysis(reactions)["status"] == "stale"
    (alarm,) = estimate_alarms(reactions)
    assert alarm["kind"] == "stale_input" and f"{stale} reading(s) older than 60 s" in alarm["text"]


def test_readings_without_sigma_or_meter_take_the_stated_defaults() -> None:
    c = centre(n1=False)
    send(
        c,
        [
            SimulatedMessage(
                "telemetry",
                "x1",
                0,
                {
                    "id": "x1",
                    "occurred_at": (T0 + timedelta(seconds=1)).isoformat(),
                    "readings": [
                        {"element": "bus:3", "quantity": "vm", "value": 1.0, "unit": "pu"},
                        {"element": "branch:4", "quantity": "q_to", "value": 2.0, "unit": "Mvar"},
                    ],
                },
            )
        ],
    )
    meas, meters, stale = telemetry_measurements(c.state(), EstimatorOptions(sigma_vm_pu=0.01))
    assert meas.id.tolist() == ["vm:bus:3", "q_to:branch:4"]
    assert meas.sigma.tolist() == [0.01, 1.0] and meters == (None, None) and stale == 0


def test_an_overload_the_model_misses_is_alarmed_and_the_grid_analysis_runs() -> None:
    c = centre()
    model = c.state().grid.net  # type: ignore[union-attr]
    # the field: 65 % more active load than the model knows of, units following
    field = model.replace(
        bus=dataclasses.replace(model.bus, pd_mw=model.bus.pd_mw * 1.65),
        gen=dataclasses.replace(model.gen, pg_mw=model.gen.pg_mw * 1.65),
    )
    truth = ac_check(field, "a")  # the reference: the field's own AC power flow
    assert truth.converged and [k for k, _ in truth.overloads] == [1]
    assert ac_check(model, "a").ok
    send(c, simulator(field, seed=3).scan(0))
    reactions = c.respond()
    body = estimate_analysis(reactions)["body"]
    over = body["estimated_overloads"]
    assert [o["branch"] for o in over] == ["branch:2"]
    assert over[0]["loading_pct"] == pytest.approx(truth.overloads[0][1], abs=2.0)
    kinds = [a["kind"] for a in estimate_alarms(reactions)]
    assert "estimated_overload" in kinds
    alarm = next(a for a in estimate_alarms(reactions) if a["kind"] == "estimated_overload")
    assert alarm["element"] == "branch:2" and "in the estimate" in alarm["text"]
    # the estimate fed the responder: the corrective plan and the N-1 screen of the grid ran
    ran = {a["kind"] for r in reactions for a in r.analyses}
    assert {"estimate", "corrective", "n1"} <= ran
    # the same overload at the next scan: no new alarm, no new grid analysis
    send(c, simulator(field, seed=3).scan(1))
    again = c.respond()
    assert {a["kind"] for r in again for a in r.analyses} == {"estimate"}
    assert not [a for a in estimate_alarms(again) if a["kind"] == "estimated_overload"]


def test_estimation_can_be_switched_off_and_options_are_checked() -> None:
    c = centre(n1=False, estimate=False)
    net = c.state().grid.net  # type: ignore[union-attr]
    send(c, simulator(net).scan(0))
    assert not [a for r in c.respond() for a in r.analyses if a["kind"] == "estimate"]
    for bad in ({"max_age_s": 0}, {"min_redundancy": -1.0}, {"estimation": "wls"}):
        with pytest.raises(ValidationError):
            EstimatorOptions(**bad)
    with pytest.raises(ValidationError, match="estimator"):
        ResponderOptions(estimator="fast")
    with pytest.raises(ValidationError, match="estimate_deadline_s"):
        ResponderOptions(estimate_deadline_s=0.0)
