"""The live feed: cursors, exactly-once resumption (property-based), and the WebSocket."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiguilleur.errors import ValidationError
from aiguilleur.ops.feed import Cursor, FeedHub, read_feed
from aiguilleur.ops.store import MemoryStore, NewEvent
from tests.api.conftest import OP, OPERATOR, VIEWER, make_app
from tests.ops.conftest import at


def test_cursor_text_round_trips_and_bad_ones_name_since() -> None:
    assert str(Cursor.parse("12.3.4")) == "12.3.4"
    assert Cursor.parse("7") == Cursor(7, 0, 0)
    for bad in ("", "a", "1.2", "1.2.3.4", "-1", "01", "1.2.x", "9" * 30):
        with pytest.raises(ValidationError, match="since"):
            Cursor.parse(bad)


# -- exactly once, in order, whatever the interleaving --------------------------------------


class _Log:
    """A store written the way the centre writes it: events, then the records answering them."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.centre = SimpleNamespace(store=self.store)
        self.k = 0
        self.puts = {"alarms": 0, "proposals": 0}
        self.answered: set[int] = set()

    def events(self, n: int) -> None:
        batch = []
        for _ in range(n):
            self.k += 1
            body = json.dumps({"id": f"e{self.k}", "pad": "x" * (5000 if self.k % 7 == 0 else 1)})
            batch.append(
                NewEvent(f"e{self.k}", "telemetry", "2026-01-15T05:00:00+00:00", "t", body)
            )
        self.store.append(batch)

    def answer(self, alarms: int, proposal: bool) -> None:
        seq = self.store.last_seq()
        if seq in self.answered:  # the responder answers each state once (unique keys)
            return
        self.answered.add(seq)
        for j in range(alarms):
            self.store.put_record("alarms", f"A{seq}-{j}", seq, {"id": f"A{seq}-{j}", "seq": seq})
            self.puts["alarms"] += 1
        if proposal:
            self.store.put_record("proposals", f"P{seq}", seq, {"id": f"P{seq}", "seq": seq})
            self.puts["proposals"] += 1


ops = st.lists(
    st.one_of(
        st.tuples(st.just("events"), st.integers(1, 5)),
        st.tuples(st.just("answer"), st.integers(0, 3), st.booleans()),
        st.tuples(st.just("read"), st.integers(1, 6)),
        st.tuples(st.just("reconnect"), st.booleans()),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_feed_delivers_everything_once_in_order_across_reconnects(plan: list[Any]) -> None:
    log = _Log()
    cur = Cursor()
    got: list[dict[str, Any]] = []
    for step in plan:
        if step[0] == "events":
            log.events(step[1])
        elif step[0] == "answer":
            if log.store.last_seq():
                log.answer(step[1], step[2])
        elif step[0] == "read":
            b = read_feed(log.centre, cur, limit=step[1])  # type: ignore[arg-type]
            if b is not None:
                got.extend(b.items)
                cur = b.end
        else:  # a new client from the cursor in text, as a browser would send it back
            cur = Cursor.parse(str(cur))
    while (b := read_feed(log.centre, cur, limit=3)) is not None:  # type: ignore[arg-type]
        got.extend(b.items)
        cur = b.end
    ev = [x["seq"] for x in got if x["kind"] == "event"]
    assert ev == list(range(1, log.store.last_seq() + 1))
    al = [x["n"] for x in got if x["kind"] == "alarm"]
    pr = [x["n"] for x in got if x["kind"] == "proposal"]
    assert al == sorted(al) and len(al) == len(set(al)) == log.puts["alarms"]
    assert pr == sorted(pr) and len(pr) == len(set(pr)) == log.puts["proposals"]
    # no answer before the event it answers
    seen = 0
    for x in got:
        if x["kind"] == "event":
            seen = x["seq"]
        else:
            assert x[x["kind"]]["seq"] <= seen
    big = [x for x in got if x["kind"] == "event" and x["seq"] % 7 == 0]
    assert all("body" not in x for x in big)


def test_a_replaced_record_is_sent_again_as_a_new_version() -> None:
    log = _Log()
    log.events(1)
    log.store.put_record("alarms", "A1", 1, {"id": "A1", "seq": 1, "v": 1})
    b = read_feed(log.centre, Cursor())  # type: ignore[arg-type]
    assert b is not None
    log.store.put_record("alarms", "A1", 1, {"id": "A1", "seq": 1, "v": 2})
    b2 = read_feed(log.centre, b.end)  # type: ignore[arg-type]
    assert b2 is not None
    assert [(x["n"], x["alarm"]["v"]) for x in b2.items] == [(2, 2)]
    assert read_feed(log.centre, b2.end) is None  # type: ignore[arg-type]


def test_a_bare_sequence_number_starts_after_its_answers() -> None:
    log = _Log()
    log.events(2)
    log.answer(2, True)
    log.events(1)
    log.answer(1, False)
    c = Cursor.parse("2", log.centre)  # type: ignore[arg-type]
    assert c == Cursor(2, 2, 3)  # the memory store counts stores across its tables
    b = read_feed(log.centre, c)  # type: ignore[arg-type]
    assert b is not None
    got = [(x["kind"], x["seq"] if x["kind"] == "event" else x["alarm"]["seq"]) for x in b.items]
    assert got == [("event", 3), ("alarm", 3)]


def test_hub_subscribers_miss_nothing_while_writes_go_on() -> None:
    log = _Log()
    log.events(5)
    hub = FeedHub(log.centre, poll_s=0.001, head_poll_s=0.001)  # type: ignore[arg-type]
    hub.centre = SimpleNamespace(store=log.store, last_seq=0, reactions=[], reaction_count=0)  # type: ignore[assignment]
    hub.start()
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            log.events(3)
            log.answer(1, True)
            hub.notify()
            time.sleep(0.002)

    w = threading.Thread(target=writer)
    w.start()
    subs = []
    try:
        for start in (Cursor(), Cursor(3, 0, 0), None):
            got: list[dict[str, Any]] = []
            sub = hub.subscribe(
                hub.head if start is None else start, lambda b, g=got: g.extend(b.items)
            )
            subs.append((start, got, sub))
            time.sleep(0.05)
        time.sleep(0.1)
    finally:
        stop.set()
        w.join()
    deadline = time.monotonic() + 5
    while hub.head.events < log.store.last_seq() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    hub.stop()
    assert hub.error is None
    last = log.store.last_seq()
    for start, got, _ in subs:
        ev = [x["seq"] for x in got if x["kind"] == "event"]
        first = 0 if start is None else start.events
        if start is None:
            first = ev[0] - 1 if ev else last
        assert ev == list(range(first + 1, last + 1))
        ns = [x["n"] for x in got if x["kind"] == "alarm"]
        assert len(ns) == len(set(ns)) and ns == sorted(ns)


# -- the WebSocket ------------------------------------------------------------------------------


@pytest.fixture
def live(centre: Any) -> Iterator[tuple[Any, Any]]:
    from fastapi.testclient import TestClient

    from aiguilleur.api.app import Console

    hub = FeedHub(centre).start()
    app = make_app(centre, heartbeat_s=0.3)
    app.state.console.hub = hub
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            yield c, centre
    finally:
        hub.stop()
    assert isinstance(app.state.console, Console)


def _until(ws: Any, pred: Any, tries: int = 60) -> list[dict[str, Any]]:
    msgs = []
    for _ in range(tries):
        m = ws.receive_json()
        msgs.append(m)
        if pred(m):
            return msgs
    raise AssertionError(f"not received: {msgs[-3:]}")


def _items(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [it for m in msgs if m["type"] == "batch" for it in m["items"]]


def _trip(b: int, minutes: float) -> dict[str, Any]:
    return {
        "id": f"trip{b}",
        "type": "branch_trip",
        "occurred_at": at(minutes),
        "source": "t",
        "branch": f"branch:{b}",
    }


def test_stream_needs_a_token_first(live: Any) -> None:
    c, _ = live
    with c.websocket_connect("/stream") as ws:
        ws.send_json({"token": "wrong-token-wrong-token"})
        m = ws.receive_json()
        assert m["type"] == "error" and m["status"] == 401
    with c.websocket_connect("/stream") as ws:
        ws.send_json({})
        assert ws.receive_json()["status"] == 401
    with c.websocket_connect("/stream?since=x.y") as ws:
        ws.send_json({"token": VIEWER})
        m = ws.receive_json()
        assert m["status"] == 422 and "since" in m["error"]


def test_stream_sends_events_alarms_proposals_and_resumes_exactly_once(live: Any) -> None:
    c, centre = live
    with c.websocket_connect("/stream?since=2") as ws:
        ws.send_json({"token": VIEWER})
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["role"] == "viewer"
        assert hello["cursor"].startswith("2.")
        assert c.post("/events", json=_trip(1, 5), headers=OP).status_code == 202
        msgs = _until(ws, lambda m: any(i.get("id") == "trip1" for i in m.get("items", [])))
        centre.respond()
        msgs += _until(ws, lambda m: any(i["kind"] == "proposal" for i in m.get("items", [])))
        items = _items(msgs)
        assert [i["type"] for i in items if i["kind"] == "event"] == ["branch_trip"]
        assert any(i["kind"] == "alarm" and i["alarm"]["seq"] == 3 for i in items)
        prop = next(i for i in items if i["kind"] == "proposal")["proposal"]
        assert prop["id"] == "P3-grid"
        cursor = [m for m in msgs if m["type"] == "batch"][-1]["cursor"]
    # while away: an approval and another trip
    assert c.post("/proposals/P3-grid/approve", headers=OP).status_code == 202
    assert c.post("/events", json=_trip(2, 6), headers=OP).status_code == 202
    with c.websocket_connect(f"/stream?since={cursor}") as ws:
        ws.send_json({"token": OPERATOR})
        assert ws.receive_json()["cursor"] == cursor
        msgs = _until(ws, lambda m: any(i.get("id") == "trip2" for i in m.get("items", [])))
        again = [i for i in _items(msgs) if i["kind"] == "event"]
        assert [(i["seq"], i["type"]) for i in again] == [
            (4, "proposal_approved"),
            (5, "branch_trip"),
        ]
        assert not [i for i in _items(msgs) if i["kind"] != "event"]  # nothing seen twice
        hb = _until(ws, lambda m: m["type"] == "heartbeat")
        assert hb[-1]["cursor"] == msgs[-1]["cursor"]


def test_a_restarted_server_resumes_from_the_cursor(tmp_path: Any) -> None:
    """The cursor is read from the store: a new centre and hub continue exactly after it."""
    from aiguilleur.ops.centre import OpsCentre
    from aiguilleur.ops.store import open_store
    from tests.ops.conftest import case14_genesis

    url = f"sqlite:///{tmp_path / 'ops.db'}"
    with OpsCentre(open_store(url, create=True)) as c:
        c.ingest([case14_genesis()])
        c.respond()
        b = read_feed(c, Cursor())
        assert b is not None
        cursor = str(b.end)
        c.ingest([_trip(1, 5)])
        c.respond()
    with OpsCentre(open_store(url)) as c2:
        hub = FeedHub(c2).start()
        got: list[dict[str, Any]] = []
        try:
            hub.subscribe(Cursor.parse(cursor), lambda batch: got.extend(batch.items))
        finally:
            hub.stop()
    kinds = [(x["kind"], x["seq"] if x["kind"] == "event" else x[x["kind"]]["seq"]) for x in got]
    assert kinds[0] == ("event", 2)
    assert all(s == 2 for _, s in kinds)
    assert {k for k, _ in kinds} == {"event", "alarm", "proposal"}
