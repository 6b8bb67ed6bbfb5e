"""The live feed of the operations centre: events, alarms and proposals, resumable by cursor.

A feed is three sub-streams read from the store, each in the order it was
written: the log (by sequence number), the alarms and the proposals (by the
store's record counter ``n``). A :class:`Cursor` holds the last position seen
in each (``"<seq>.<alarm n>.<proposal n>"``), so a client that reconnects with
the cursor of the last message it received gets everything it missed, in
order, exactly once, from the store alone (a restarted server included).
A bare sequence number (``"120"``) is accepted too: the events after it and
the alarms and proposals answering them.

Within one read the alarms and proposals are read *before* the events, and the
events are delivered first: a record answers an event already in the log, so
no client ever sees an answer before the event it answers.

:class:`FeedHub` reads the store once for every subscriber and hands each new
batch to their callbacks (a thread, woken by :meth:`FeedHub.notify` after an
ingest, by the centre's in-memory counters, and by a slower poll of the log's
head for other writers). Transport (WebSocket, server-sent events) is the
caller's business: the hub hands out JSON text.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiguilleur.errors import ValidationError
from aiguilleur.ops.centre import OpsCentre

__all__ = ["MAX_EVENT_BODY_CHARS", "Cursor", "FeedBatch", "FeedHub", "head", "read_feed"]

MAX_EVENT_BODY_CHARS = 4096  # larger event bodies (world events, telemetry) are sent without body
_CURSOR = re.compile(r"^(0|[1-9][0-9]{0,17})(?:\.(0|[1-9][0-9]{0,17})\.(0|[1-9][0-9]{0,17}))?$")


@dataclass(frozen=True, order=True)
class Cursor:
    """The last position seen in each sub-stream: log seq, alarm ``n``, proposal ``n``."""

    events: int = 0
    alarms: int = 0
    proposals: int = 0

    def __str__(self) -> str:
        return f"{self.events}.{self.alarms}.{self.proposals}"

    @classmethod
    def parse(cls, text: str, centre: OpsCentre | None = None) -> Cursor:
        """Read ``"E.A.P"`` or a bare sequence number ``"E"`` (``centre`` then finds A and P)."""
        m = _CURSOR.match(text.strip()) if isinstance(text, str) else None
        if m is None:
            raise ValidationError(
                f"since: expected a sequence number or a cursor like 12.3.4, got {str(text)[:40]!r}"
            )
        e = int(m.group(1))
        if centre is not None and e > 0:
            head = centre.store.last_seq()
            if e > head:  # a cursor of another store, or of a log since replaced
                raise ValidationError(
                    f"since: {e} is ahead of this log (last seq {head}); "
                    "reconnect without since, or with a cursor this server gave"
                )
        if m.group(2) is not None:
            return cls(e, int(m.group(2)), int(m.group(3)))
        if centre is None or e == 0:
            return cls(e, 0, 0)
        # records are stored in the order of the events they answer: the last one
        # answering an event at or before ``e`` is where this client stands
        a = _last_n_answering(centre, "alarms", e)
        p = _last_n_answering(centre, "proposals", e)
        return cls(e, a, p)


def _last_n_answering(centre: OpsCentre, table: str, seq: int) -> int:
    last = 0
    for n, _at, body in centre.store.record_log(table):
        if int(body.get("seq", 0)) <= seq:
            last = n
    return last


@dataclass(frozen=True)
class FeedBatch:
    """New items after ``start`` up to ``end``; ``text`` is the JSON message sent to clients."""

    start: Cursor
    end: Cursor
    items: tuple[dict[str, Any], ...]
    text: str = field(repr=False)

    def after(self, cursor: Cursor) -> FeedBatch | None:
        """This batch without what ``cursor`` has already seen (None when nothing is left)."""
        if cursor.events <= self.start.events and (
            cursor.alarms <= self.start.alarms and cursor.proposals <= self.start.proposals
        ):
            return self
        keep = tuple(it for it in self.items if _pos(it) > _seen(it, cursor))
        if not keep:
            return None
        end = Cursor(
            max(self.end.events, cursor.events),
            max(self.end.alarms, cursor.alarms),
            max(self.end.proposals, cursor.proposals),
        )
        return _batch(cursor, end, keep)


def _pos(item: dict[str, Any]) -> int:
    return int(item["seq"] if item["kind"] == "event" else item["n"])


def _seen(item: dict[str, Any], c: Cursor) -> int:
    k = item["kind"]
    return c.events if k == "event" else c.alarms if k == "alarm" else c.proposals


def _batch(start: Cursor, end: Cursor, items: tuple[dict[str, Any], ...]) -> FeedBatch:
    text = json.dumps(
        {"type": "batch", "cursor": str(end), "items": list(items)},
        separators=(",", ":"),
        allow_nan=False,
    )
    return FeedBatch(start, end, items, text)


def head(centre: OpsCentre) -> Cursor:
    """The cursor of the newest item in the store (where a client that read the lists starts)."""
    s = centre.store
    a = s.record_log("alarms")
    p = s.record_log("proposals")
    return Cursor(s.last_seq(), a[-1][0] if a else 0, p[-1][0] if p else 0)


def read_feed(centre: OpsCentre, cursor: Cursor, limit: int = 2000) -> FeedBatch | None:
    """What the store holds after ``cursor`` (at most ``limit`` events), or None.

    Alarms and proposals are read first, then the events: see the module docstring.
    """
    store = centre.store
    alarms = store.record_log("alarms", cursor.alarms, limit)
    props = store.record_log("proposals", cursor.proposals, limit)
    events = list(store.read(cursor.events, limit))
    if not (alarms or props or events):
        return None
    items: list[dict[str, Any]] = []
    for r in events:
        it: dict[str, Any] = {
            "kind": "event",
            "seq": r.seq,
            "id": r.event_id,
            "type": r.type,
            "occurred_at": r.occurred_at,
            "source": r.source,
            "recorded_at": r.recorded_at,
        }
        if len(r.body) <= MAX_EVENT_BODY_CHARS:
            it["body"] = json.loads(r.body)
        items.append(it)
    if events and len(events) == limit:
        # a full page of events: hold back records answering events beyond it
        top = events[-1].seq
        props = [x for x in props if int(x[2].get("seq", 0)) <= top]
        alarms = [x for x in alarms if int(x[2].get("seq", 0)) <= top]
    for n, at, body in props:
        items.append({"kind": "proposal", "n": n, "stored_at": at, "proposal": body})
    for n, at, body in alarms:
        items.append({"kind": "alarm", "n": n, "stored_at": at, "alarm": body})
    if not items:
        return None
    end = Cursor(
        events[-1].seq if events else cursor.events,
        alarms[-1][0] if alarms else cursor.alarms,
        props[-1][0] if props else cursor.proposals,
    )
    return _batch(cursor, end, tuple(items))


Callback = Callable[[FeedBatch], None]


@dataclass(eq=False)
class _Sub:
    cursor: Cursor
    callback: Callback


class FeedHub:
    """One reader of the store for every subscriber of the live feed (see the module docstring).

    Parameters
    ----------
    centre
        The operations centre whose store is read.
    poll_s
        How often the centre's in-memory counters are looked at.
    head_poll_s
        How often the store's head is read (events appended by other processes).
    """

    def __init__(self, centre: OpsCentre, poll_s: float = 0.005, head_poll_s: float = 0.25) -> None:
        self.centre = centre
        self.poll_s = poll_s
        self.head_poll_s = head_poll_s
        self._lock = threading.Lock()
        self._subs: list[_Sub] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.head = Cursor()
        self.error: BaseException | None = None
        self.batches = 0

    def start(self) -> FeedHub:
        with self._lock:
            self.head = head(self.centre)
        self._thread = threading.Thread(target=self._run, name="aiguilleur-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def notify(self) -> None:
        """Something was written: read the store now."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def subscribe(self, cursor: Cursor, callback: Callback) -> _Sub:
        """Deliver what was written after ``cursor``, then every new batch, to ``callback``.

        ``callback`` runs on the hub's thread (or the caller's, for the backlog):
        it must only hand the batch over (e.g. to an asyncio queue).
        """
        sub = _Sub(cursor, callback)
        # the bulk of a long backlog outside the lock, the rest under it
        while True:
            b = read_feed(self.centre, sub.cursor)
            if b is None or len(b.items) < 1000:
                break
            self._deliver(sub, b)
        with self._lock:
            while True:
                b = read_feed(self.centre, sub.cursor)
                if b is None:
                    break
                self._deliver(sub, b)
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: _Sub) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    @staticmethod
    def _deliver(sub: _Sub, b: FeedBatch) -> None:
        part = b.after(sub.cursor)
        if part is None:
            return
        sub.cursor = part.end
        sub.callback(part)

    def _changed(self, seen: tuple[int, int, int]) -> tuple[bool, tuple[int, int, int]]:
        c = self.centre
        now = (c.last_seq, c.reaction_count, getattr(c, "records_written", 0))
        return now != seen, now

    def _run(self) -> None:
        seen = (-1, -1, -1)
        next_head = 0.0
        try:
            while not self._stop.is_set():
                woke = self._wake.wait(self.poll_s)
                self._wake.clear()
                changed, seen = self._changed(seen)
                t = time.monotonic()
                if t >= next_head:
                    next_head = t + self.head_poll_s
                    changed = changed or self.centre.store.last_seq() > self.head.events
                if not (woke or changed):
                    continue
                self.pump()
        except BaseException as e:  # kept for the server to report; subscribers see the close
            self.error = e

    def pump(self) -> int:
        """Read what is new and hand it to every subscriber; returns the number of batches."""
        n = 0
        with self._lock:
            if (
                not self._subs
            ):  # nobody listens: only move the head (subscribers read their backlog)
                self.head = Cursor(
                    self.centre.store.last_seq(), self.head.alarms, self.head.proposals
                )
                return 0
            while True:
                b = read_feed(self.centre, self.head)
                if b is None:
                    return n
                self.head = b.end
                self.batches += 1
                n += 1
                for sub in list(self._subs):
                    self._deliver(sub, b)
