"""``Store.record_log``: every store (memory, SQLite, PostgreSQL) numbers the records it
stores in order, so that the live feed can resume from the last number it saw."""

from __future__ import annotations

from typing import Any

from aiguilleur.ops.store import open_store


def test_record_log_numbers_stores_in_order(store_url: Any) -> None:
    s = open_store(store_url, create=True)
    try:
        assert s.record_log("alarms") == []
        s.put_record("alarms", "A1-1", 1, {"id": "A1-1", "seq": 1})
        s.put_record("proposals", "P1", 1, {"id": "P1", "seq": 1})
        s.put_record("alarms", "A2-1", 2, {"id": "A2-1", "seq": 2})
        log = s.record_log("alarms")
        assert [b["id"] for _, _, b in log] == ["A1-1", "A2-1"]
        ns = [n for n, _, _ in log]
        assert ns == sorted(ns) and len(set(ns)) == 2
        assert all(isinstance(t, float) and t > 1.6e9 for _, t, _ in log)
        assert [b["id"] for _, _, b in s.record_log("alarms", ns[0])] == ["A2-1"]
        assert [b["id"] for _, _, b in s.record_log("alarms", 0, 1)] == ["A1-1"]
        # a record stored again is a new version with a new number, the old one gone
        s.put_record("alarms", "A1-1", 1, {"id": "A1-1", "seq": 1, "v": 2})
        log2 = s.record_log("alarms", ns[-1])
        assert [(b["id"], b.get("v")) for _, _, b in log2] == [("A1-1", 2)]
        assert log2[0][0] > ns[-1]
        assert len(s.record_log("alarms")) == 2
    finally:
        s.close()
