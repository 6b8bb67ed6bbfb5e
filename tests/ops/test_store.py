"""The store contract, on every implementation: memory, SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from aiguilleur.errors import ValidationError
from aiguilleur.ops.store import SCHEMA_VERSION, NewEvent, SqlStore, StoreError, open_store


def new(i: int, body: str | None = None) -> NewEvent:
    return NewEvent(
        f"e{i}", "branch_trip", "2026-01-15T05:00:00+00:00", "test", body or f'{{"n":{i}}}'
    )


def test_append_is_gapless_and_idempotent(store_url: str) -> None:
    s = open_store(store_url)
    try:
        out = s.append([new(i) for i in range(5)])
        assert [a.seq for a in out] == [1, 2, 3, 4, 5]
        assert not any(a.duplicate for a in out)
        again = s.append([new(1), new(4), new(6), new(6)])
        assert [(a.seq, a.duplicate) for a in again] == [
            (2, True),
            (5, True),
            (6, False),
            (6, True),
        ]
        assert s.last_seq() == 6 == s.count()
        assert [e.seq for e in s.read()] == list(range(1, 7))
        assert [e.event_id for e in s.read(5, limit=1)] == ["e6"]
        with pytest.raises(ValidationError, match="different body"):
            s.append([new(2, '{"other":1}')])
        # a refused batch writes nothing and consumes no number
        assert s.last_seq() == 6
        assert s.append([new(8)])[0].seq == 7
    finally:
        s.close()


def test_batches_resent_mixed_or_conflicting(store_url: str) -> None:
    # Whole batches: a resent batch is acknowledged with the first numbers and writes
    # nothing; a batch of stored and new ids stores only the new ones, in input order;
    # a batch whose last id conflicts writes none of its events and consumes no number.
    s = open_store(store_url)
    try:
        first = s.append([new(i) for i in range(100)])
        assert [(a.event_id, a.seq, a.duplicate) for a in first] == [
            (f"e{i}", i + 1, False) for i in range(100)
        ]
        again = s.append([new(i) for i in range(100)])
        assert [(a.event_id, a.seq, a.duplicate) for a in again] == [
            (a.event_id, a.seq, True) for a in first
        ]
        mixed = s.append([new(150), new(5), new(151), new(150), new(99)])
        assert [(a.seq, a.duplicate) for a in mixed] == [
            (101, False),
            (6, True),
            (102, False),
            (101, True),
            (100, True),
        ]
        with pytest.raises(ValidationError, match="'e7'"):
            s.append([new(200 + i) for i in range(50)] + [new(7, '{"n":"changed"}')])
        assert s.last_seq() == 102 == s.count()
        assert s.append([new(300)])[0].seq == 103
        # new ids only, one of them twice in the batch: stored once, the second a duplicate
        inner = s.append([new(400), new(401), new(400)])
        assert [(a.seq, a.duplicate) for a in inner] == [(104, False), (105, False), (104, True)]
        log = list(s.read())
        assert [e.seq for e in log] == list(range(1, 106))
        assert [e.event_id for e in log[100:]] == ["e150", "e151", "e300", "e400", "e401"]
        assert log[7].body == '{"n":7}' and log[7].type == "branch_trip"
    finally:
        s.close()


def test_snapshots_records_and_dead_letters(store_url: str) -> None:
    s = open_store(store_url)
    try:
        assert s.latest_snapshot() is None
        for k in (10, 20, 30, 40):
            s.save_snapshot(k, f"{k:064d}", bytes([k]) * 3)
        seq, h, blob = s.latest_snapshot()  # type: ignore[misc]
        assert (seq, h, blob) == (40, f"{40:064d}", bytes([40]) * 3)
        s.put_record("proposals", "P1", 3, {"id": "P1", "x": 1})
        s.put_record("proposals", "P2", 5, {"id": "P2"})
        s.put_record("proposals", "P1", 3, {"id": "P1", "x": 2})
        assert [r["id"] for r in s.records("proposals")] == ["P2", "P1"] or [
            r["id"] for r in s.records("proposals")
        ] == ["P1", "P2"]
        assert s.record("proposals", "P1") == {"id": "P1", "x": 2}
        assert s.records("proposals", since_seq=4) == [{"id": "P2"}]
        assert s.record("alarms", "none") is None
        with pytest.raises(ValidationError, match="unknown record table"):
            s.put_record("users", "x", 1, {})
        s.dead_letter("mqtt:grid/x", "not JSON", "\x00" * 10)
        d = s.dead_letters()
        assert d[-1]["reason"] == "not JSON" and d[-1]["source"] == "mqtt:grid/x"
    finally:
        s.close()


def test_concurrent_writers_stay_gapless(store_url: str) -> None:
    s = open_store(store_url)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for k in range(25):
                s.append([new(1000 * w + k), new(1000 * w + k)])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    try:
        ts = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors
        seqs = [e.seq for e in s.read()]
        assert seqs == list(range(1, 101))
        assert len({e.event_id for e in s.read()}) == 100
    finally:
        s.close()


def test_two_sqlite_connections_stay_gapless(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Two stores on one file (two connections, as two processes would have): the write
    # lock taken at BEGIN IMMEDIATE serialises them, numbers stay gapless, and a
    # repeated id sent through both is stored once.
    url = f"sqlite:///{tmp_path / 'two.db'}"
    stores = [open_store(url), open_store(url)]
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for k in range(40):
                stores[w].append([new(1000 * w + k), new(7000 + k)])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    try:
        ts = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors
        log = list(stores[0].read())
        assert [e.seq for e in log] == list(range(1, 121))
        assert len({e.event_id for e in log}) == 120
        assert stores[0].last_seq() == stores[1].last_seq() == 120
    finally:
        for st in stores:
            st.close()


def test_sqlite_schema_is_versioned(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'a.db'}"
    s = SqlStore(url)
    assert s.schema_version() == SCHEMA_VERSION
    s.close()
    import sqlite3

    c = sqlite3.connect(tmp_path / "a.db")
    c.execute("update ops_meta set value = '999' where key = 'schema_version'")
    c.commit()
    c.close()
    with pytest.raises(StoreError, match="newer than this aiguilleur"):
        SqlStore(url)


def test_store_errors_are_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StoreError, match="is a folder"):
        SqlStore(str(tmp_path))
    with pytest.raises(StoreError, match="does not exist"):
        SqlStore(str(tmp_path / "no" / "x.db"))
    with pytest.raises(StoreError, match="no such store"):
        open_store(str(tmp_path / "absent.db"), create=False)
    with pytest.raises(StoreError, match="in-memory SQLite"):
        SqlStore("sqlite://")
    with pytest.raises(StoreError, match="cannot open the store"):
        SqlStore("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1")
