"""The limit watch: a new overload is an alarm while the responder is still busy."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from aiguilleur.grid.corrective import ac_check
from aiguilleur.ops import MemoryStore, OpsCentre
from aiguilleur.ops.stream import ResponderThread
from tests.ops.conftest import at, case14_genesis


def _wait(cond: Any, timeout_s: float = 60.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def _rating_event(c: OpsCentre, k: int, factor: float) -> dict[str, Any]:
    net = c.state().grid.net  # type: ignore[union-attr]
    flows = ac_check(net, "a").pf
    s = np.maximum(flows.s_from_mva, flows.s_to_mva)
    row = int(np.argsort(-s)[k])
    return {
        "id": f"rating-{k}",
        "type": "rating_change",
        "occurred_at": at(1 + k),
        "source": "test",
        "branch": f"branch:{row + 1}",
        "rate_a_mva": round(factor * float(s[row]), 3),
    }


def test_limit_alarm_is_stored_while_the_responder_is_busy() -> None:
    c = OpsCentre(MemoryStore())
    c.ingest([case14_genesis()])
    gate = threading.Event()
    busy = threading.Event()
    react = c.responder.react

    def slow_react(*a: Any, **kw: Any) -> Any:
        busy.set()
        assert gate.wait(60), "the test never released the responder"
        return react(*a, **kw)

    c.responder.react = slow_react  # type: ignore[method-assign]
    worker = ResponderThread(c).start()
    try:
        # the responder is held on the first batch (the world): the rating change waits
        assert _wait(busy.is_set)
        res = c.ingest([_rating_event(c, 0, 0.5)])
        seq = res[0].seq
        assert seq is not None

        def limit_alarms() -> list[dict[str, Any]]:
            return [a for a in c.alarms() if a["seq"] == seq and a["kind"] == "limit"]

        assert _wait(lambda: bool(limit_alarms())), "no limit alarm while the responder was busy"
        first = limit_alarms()
        assert not gate.is_set() and all(a["id"].startswith(f"A{seq}-L") for a in first)
        assert any("above" in a["text"] or "%" in a["text"] for a in first), first
        gate.set()
        assert worker.drain(120)
    finally:
        gate.set()
        worker.stop()
    # the responder reused the watch's check: the same limits are not raised twice
    texts = [a["text"] for a in c.alarms() if a["kind"] == "limit"]
    assert len(texts) == len(set(texts)), texts
    assert len([a for a in c.alarms() if a["seq"] == seq and a["kind"] == "limit"]) == len(first)
    # and it went on to plan for the overload
    assert any(p["seq"] >= seq and p["kind"] == "grid_corrective" for p in c.proposals())


def test_without_the_watch_the_responder_raises_the_limits_itself() -> None:
    c = OpsCentre(MemoryStore())
    c.ingest([case14_genesis()])
    worker = ResponderThread(c, watch_limits=False).start()
    try:
        assert worker.drain(120)
        seq = c.ingest([_rating_event(c, 0, 0.5)])[0].seq
        assert worker.drain(120)
    finally:
        worker.stop()
    mine = [a for a in c.alarms() if a["seq"] == seq and a["kind"] == "limit"]
    assert mine and all(not a["id"].startswith(f"A{seq}-L") for a in mine)
