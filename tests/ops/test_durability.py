"""Durability: an ingesting process killed at random moments loses nothing it acknowledged.

A subprocess runs ``aiguilleur ops ingest -`` on a stream of events and is
killed with SIGKILL (as a supervisor or the out-of-memory killer would) at a
random moment, 20 times over, on SQLite and on PostgreSQL. After each kill:
every acknowledged event is in the log exactly once, sequence numbers have
no gaps, every stored event is whole, and the state loaded from the latest
snapshot plus the tail equals the fold of the whole log. Each trial re-sends
the stream from its start, so re-sent events are acknowledged again and
stored once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from aiguilleur.ops import MemoryStore, OpsCentre
from aiguilleur.ops.store import open_store
from tests.ops.conftest import at, case14_genesis

N_EVENTS = 600
TRIALS = 20


def stream() -> list[bytes]:
    lines = [json.dumps(case14_genesis()).encode()]
    for k in range(N_EVENTS):
        if k % 3 == 0:
            e = {"type": "load_change", "bus": f"bus:{k % 14 + 1}", "p_mw": 10.0 + k % 50}
        else:
            e = {
                "type": "telemetry",
                "readings": [
                    {
                        "element": f"bus:{k % 14 + 1}",
                        "quantity": "vm",
                        "value": 1.0 + k * 1e-5,
                        "unit": "pu",
                    },
                    {
                        "element": f"branch:{k % 20 + 1}",
                        "quantity": "p_from",
                        "value": float(k),
                        "unit": "MW",
                    },
                ],
            }
        lines.append(
            json.dumps(
                {"id": f"d{k}", "occurred_at": at(k / 10), "source": "kill-test", **e}
            ).encode()
        )
    return lines


def run_trial(url: str, lines: list[bytes], kill_after_s: float) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiguilleur.cli",
            "ops",
            "ingest",
            "-",
            "--store",
            url,
            "--no-respond",
            "--snapshot-every",
            "50",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    acks: list[dict[str, Any]] = []

    def feed() -> None:
        assert proc.stdin is not None
        try:
            for i in range(0, len(lines), 3):
                proc.stdin.write(b"\n".join(lines[i : i + 3]) + b"\n")
                proc.stdin.flush()
                time.sleep(0.004)
            proc.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                acks.append(json.loads(raw))
            except ValueError:
                break  # a line cut by the kill is not an acknowledgement

    tw, tr = threading.Thread(target=feed), threading.Thread(target=read)
    tw.start()
    tr.start()
    # the kill comes at a random moment once the process is ingesting
    start = time.monotonic()
    while not acks and time.monotonic() - start < 60 and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(kill_after_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    tw.join(timeout=30)
    tr.join(timeout=30)
    for pipe in (proc.stdin, proc.stdout):
        try:
            if pipe is not None:
                pipe.close()
        except OSError:
            pass  # the unread end of a killed process's pipe
    return acks


def check_store(url: str, acked: dict[str, int]) -> int:
    if url.startswith("sqlite") and not os.path.exists(url.split(":///", 1)[1]):
        assert not acked, "events were acknowledged but no store exists"
        return 0  # killed before it opened the store: nothing acknowledged, nothing stored
    s = open_store(url, create=False)
    try:
        log = list(s.read())
        seqs = [e.seq for e in log]
        assert seqs == list(range(1, len(log) + 1)), "sequence numbers have a gap"
        ids = [e.event_id for e in log]
        assert len(ids) == len(set(ids)), "an event is stored twice"
        where = {e.event_id: e.seq for e in log}
        for eid, seq in acked.items():
            assert where.get(eid) == seq, f"acknowledged event {eid} (seq {seq}) is missing"
        for e in log:
            json.loads(e.body)  # whole, never half-written
    finally:
        s.close()
    # the state after a restart (snapshot + tail) equals the fold of the whole log
    c = OpsCentre(open_store(url, create=False))
    full = OpsCentre(MemoryStore())
    res = full.ingest([b for _, b in c.events()])
    assert all(r.ok for r in res)
    assert c.state().state_hash == full.state().state_hash
    n = c.last_seq
    c.close()
    return n


def _kill_trials(url: str) -> None:
    rng = random.Random(20261203)
    lines = stream()
    acked: dict[str, int] = {}
    stored = 0
    for _ in range(TRIALS):
        acks = run_trial(url, lines, rng.uniform(0.0, 1.2))
        for a in acks:
            assert "seq" in a and a["seq"] is not None
            prev = acked.setdefault(a["id"], a["seq"])
            assert prev == a["seq"], "an event was acknowledged with two sequence numbers"
        n = check_store(url, acked)
        assert n >= stored
        stored = n
    assert stored > 0


@pytest.mark.slow
def test_sigkill_sqlite(tmp_path: Any) -> None:
    _kill_trials(f"sqlite:///{tmp_path / 'ops.db'}")


@pytest.mark.slow
def test_sigkill_postgresql(pg_url: str) -> None:
    _kill_trials(pg_url)
