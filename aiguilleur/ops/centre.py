"""The operations centre: the store, the state folded from its log, and the responder.

:class:`OpsCentre` is the one object the command line, the API and scenario
replays talk to:

* :meth:`~OpsCentre.ingest` validates events (schema, then the elements they
  name against the world), appends the valid ones in one transaction and
  acknowledges each only after that commit, then folds them into the state;
* :meth:`~OpsCentre.respond` hands what was committed since the last call to
  the :class:`~aiguilleur.ops.responder.Responder` (the newest state wins:
  a batch is analysed once), stores its analyses, proposals and alarms with
  the sequence number they answer, and applies the proposals the stated
  policy allows (never load shedding) as ``proposal_approved`` events;
* :meth:`~OpsCentre.approve`, :meth:`~OpsCentre.reject`,
  :meth:`~OpsCentre.acknowledge` turn an operator's decision into an event
  that carries what it applies, so that the log alone rebuilds the state.

On opening, the state is the latest snapshot plus the fold of the log's
tail; a snapshot is written every ``snapshot_every`` events.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiguilleur.errors import AiguilleurError, ValidationError
from aiguilleur.ops import events as ev
from aiguilleur.ops.responder import Reaction, Responder, ResponderOptions
from aiguilleur.ops.state import Folder, State, case_network, state_from_bytes
from aiguilleur.ops.store import NewEvent, Store, StoreError, _safe_url, open_store

__all__ = ["CentreOptions", "IngestResult", "OpsCentre"]

#: How many of the latest reactions :attr:`OpsCentre.reactions` keeps in memory (every
#: reaction's proposals, alarms and analyses are in the store regardless).
REACTIONS_KEPT = 1000


@dataclass(frozen=True)
class CentreOptions:
    """Settings of :class:`OpsCentre`.

    Parameters
    ----------
    snapshot_every
        Write a state snapshot every this many events (0: never).
    responder
        :class:`~aiguilleur.ops.responder.ResponderOptions` (deadlines, policy).
    """

    snapshot_every: int = 5000
    responder: ResponderOptions = field(default_factory=ResponderOptions)

    def __post_init__(self) -> None:
        n = self.snapshot_every
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValidationError(f"snapshot_every: expected a non-negative integer, got {n!r}")
        if not isinstance(self.responder, ResponderOptions):
            raise ValidationError("responder: expected ResponderOptions")


@dataclass(frozen=True)
class IngestResult:
    """The outcome of one submitted event: stored (``seq``), a duplicate, or refused (``error``)."""

    index: int
    id: str | None
    seq: int | None
    duplicate: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "seq": self.seq}
        if self.duplicate:
            d["duplicate"] = True
        if self.error is not None:
            d["error"] = self.error
        return d


def _occurred(e: Any) -> str:
    return str(e.occurred_at.astimezone(UTC).isoformat())


class OpsCentre:
    """The store, the state and the responder together (see the module docstring).

    Thread-safe: one lock serialises ingestion, folding and responding.
    """

    def __init__(self, store: Store, options: CentreOptions | None = None) -> None:
        self.store = store
        self.options = CentreOptions() if options is None else options
        self.responder = Responder(self.options.responder)
        self._lock = threading.RLock()
        self._folder = Folder()
        self._pending: list[tuple[int, Any]] = []
        self._committed_at: dict[int, float] = {}
        self._snapshot_seq = 0
        self._fleet_model: Any = None
        self.tracking = True  # keep committed events for the responder (off: ingest only)
        from concurrent.futures import ThreadPoolExecutor

        self._snapshots = ThreadPoolExecutor(1, thread_name_prefix="aiguilleur-snapshot")
        # the latest reactions, for callers that read them back (bounded: a centre that
        # runs for weeks must not grow without end); reaction_count counts them all
        self.reactions: deque[Reaction] = deque(maxlen=REACTIONS_KEPT)
        self.reaction_count = 0
        # records (alarms, proposals) stored so far: an alarm raised early in a reaction is
        # stored before the reaction ends, and watchers (the live feed) look at this count
        self.records_written = 0
        # set when a fold changes the grid: a limit watcher (ops.stream.LimitWatch) waits on it
        self.grid_changed = threading.Event()
        self.restart_s = self._load()

    @classmethod
    def open(cls, url: str | None, options: CentreOptions | None = None) -> OpsCentre:
        """Open (or create) the store at ``url`` and load the state."""
        return cls(open_store(url), options)

    def close(self) -> None:
        self._snapshots.shutdown(wait=True)
        self.store.close()

    def __enter__(self) -> OpsCentre:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loading -----------------------------------------------------------------------
    def _load(self) -> float:
        t0 = time.perf_counter()
        snap = self.store.latest_snapshot()
        if snap is not None:
            seq, digest, blob = snap
            try:
                st = state_from_bytes(blob)
                if st.state_hash != digest or st.last_seq != seq:
                    raise ValidationError("snapshot: its hash does not match")
                self._folder = Folder.from_state(st)
                self._snapshot_seq = seq
            except AiguilleurError:
                self._folder = Folder()  # a bad snapshot is ignored: the log is the truth
                self._snapshot_seq = 0
        self._catch_up(respond=False)
        return time.perf_counter() - t0

    def _catch_up(self, respond: bool = True) -> int:
        """Fold what the log holds beyond the state (events other writers appended)."""
        n = 0
        for rec in self.store.read(self._folder.last_seq):
            try:
                e = ev.parse_event_json(rec.body)
            except ValidationError as err:  # a log edited by hand, or damaged
                where = _safe_url(str(getattr(self.store, "url", "store")))
                raise StoreError(
                    f"{where}: the event at seq {rec.seq} ({rec.event_id[:128]!r}) "
                    f"cannot be read back: {err}"
                ) from None
            self._folder.apply(e, rec.seq)
            if respond and self.tracking:
                self._pending.append((rec.seq, e))
            n += 1
        return n

    # -- reading -------------------------------------------------------------------------
    def state(self) -> State:
        with self._lock:
            return self._folder.freeze()

    @property
    def last_seq(self) -> int:
        return self._folder.last_seq

    def events(self, since: int = 0, limit: int | None = None) -> Iterator[tuple[int, str]]:
        """``(seq, JSON line)`` of the log after ``since``: the format :meth:`ingest` reads."""
        for rec in self.store.read(since, limit):
            yield rec.seq, rec.body

    def proposals(
        self, status: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Proposals with their status from the log.

        Statuses: pending, approved, amended, rejected, superseded.
        """
        st = self.state()
        recs = self.store.records("proposals", limit=limit)
        latest: dict[str, int] = {}
        for p in recs:
            latest[p["scope"]] = max(latest.get(p["scope"], 0), int(p["seq"]))
        out = []
        for p in recs:
            d = st.decisions.get(p["id"])
            if d is not None:
                s = d["status"]
            elif int(p["seq"]) < latest[p["scope"]]:
                s = "superseded"
            else:
                s = "pending"
            q = {**p, "status": s, "decision": d}
            if status is None or s == status:
                out.append(q)
        return out

    def proposal(self, pid: str) -> dict[str, Any]:
        for p in self.proposals():
            if p["id"] == pid:
                return p
        raise ValidationError(f"proposal {pid!r}: no such proposal")

    def alarms(
        self, *, unacknowledged: bool = False, limit: int | None = None
    ) -> list[dict[str, Any]]:
        st = self.state()
        out = []
        for a in self.store.records("alarms", limit=limit):
            ack = st.acks.get(a["id"])
            q = {**a, "acknowledged": ack is not None, "ack": ack}
            if not (unacknowledged and ack is not None):
                out.append(q)
        return out

    def analyses(self, since_seq: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        return self.store.records("analyses", since_seq, limit)

    # -- validation ----------------------------------------------------------------------
    def _fleet(self) -> Any:
        from aiguilleur.ops.fleet import FleetModel

        f = self._folder.fleet
        if f is None:
            return None
        if self._fleet_model is None or self._fleet_model.sha256 != f["roads_sha256"]:
            self._fleet_model = FleetModel.load(f["roads"], f["roads_sha256"])
        return self._fleet_model

    def check(self, e: Any, pending: dict[str, set[Any]] | None = None) -> None:
        """Check ``e`` against the world; raise :class:`ValidationError` naming the field."""
        pend = pending if pending is not None else {}
        f = self._folder
        ev.check_event(e, f.base)
        t = e.type
        if t == "grid_initialised":
            base = case_network(e.case, e.case_sha256, e.case_text)
            for name in ("pg_mw", "vg_pu", "qg_mvar"):
                v = getattr(e, name)
                if v is not None and len(v) != base.n_gen:
                    raise ValidationError(
                        f"{name}: {len(v)} values, the case has {base.n_gen} units"
                    )
            for a, el in e.assets.items():
                try:
                    ev.element_row(el, base)
                except ValidationError as err:
                    raise ValidationError(f"assets.{a}: {err}") from None
            return
        if t == "fleet_initialised":
            from aiguilleur.ops.fleet import FleetModel

            m = FleetModel.load(e.roads, e.roads_sha256)
            sites = {s.site for s in e.sites}
            for k, s in enumerate(e.sites):
                if s.node >= m.graph.n_nodes:
                    raise ValidationError(f"sites[{k}].node: {s.node} is not a node of the roads")
            for k, fl in enumerate(e.fleets):
                if fl.depot not in sites:
                    raise ValidationError(f"fleets[{k}].depot: unknown site {fl.depot!r}")
                ids = {o.order for o in fl.orders}
                for j, o in enumerate(fl.orders):
                    if o.site not in sites:
                        raise ValidationError(
                            f"fleets[{k}].orders[{j}].site: unknown site {o.site!r}"
                        )
                for j, r in enumerate(fl.routes):
                    bad = [o for o in r.orders if o not in ids]
                    if bad:
                        raise ValidationError(f"fleets[{k}].routes[{j}]: unknown order {bad[0]!r}")
            return
        if t in ev.LOGISTICS_EVENT_TYPES:
            fl = f.fleet
            if fl is None:
                raise ValidationError(f"{t}: no fleet is initialised yet (no fleet_initialised)")
            if t == "order_created":
                if e.fleet not in fl["fleets"]:
                    raise ValidationError(
                        f"fleet: unknown fleet {e.fleet!r} "
                        f"(known: {', '.join(sorted(fl['fleets']))})"
                    )
                if e.order in fl["orders"] or e.order in pend.get("orders", set()):
                    raise ValidationError(f"order: {e.order!r} already exists")
                model = self._fleet()
                try:
                    model.snap(e.lat, e.lon)
                except AiguilleurError as err:
                    raise ValidationError(f"lat/lon: {err}") from None
                pend.setdefault("orders", set()).add(e.order)
            elif t in ("order_cancelled", "order_urgent"):
                o = fl["orders"].get(e.order)
                if o is None and e.order not in pend.get("orders", set()):
                    raise ValidationError(f"order: unknown order {e.order!r}")
                if o is not None and o["status"] != "open":
                    raise ValidationError(f"order: {e.order!r} is {o['status']}")
            elif t in ("vehicle_position", "vehicle_breakdown"):
                if e.vehicle not in fl["vehicles"]:
                    raise ValidationError(
                        f"vehicle: unknown vehicle {e.vehicle!r} "
                        f"(known: {', '.join(sorted(fl['vehicles']))})"
                    )
            elif t in ("depot_outage", "depot_restored"):
                depots = {fx["depot"] for fx in fl["fleets"].values()}
                if e.depot not in depots:
                    raise ValidationError(
                        f"depot: unknown depot {e.depot!r} (known: {', '.join(sorted(depots))})"
                    )
            elif t == "road_reopening":
                if e.closure not in fl["closures"] and e.closure not in pend.get("closures", set()):
                    raise ValidationError(f"closure: no closure {e.closure!r} is in force")
            elif t in ("road_closure", "road_slowdown"):
                model = self._fleet()
                bad = [x for x in e.area.edges if x >= model.graph.n_edges]
                if bad:
                    raise ValidationError(
                        f"area.edges: {bad[0]} is not an edge of the roads "
                        f"({model.graph.n_edges} edges)"
                    )
                pend.setdefault("closures", set()).add(e.closure)
            return
        if t in ("proposal_approved", "proposal_amended", "proposal_rejected"):
            # one decision per proposal: a second one would be stored and then ignored
            # by the fold (acknowledged in silence); it is refused instead
            # (a re-sent decision, same id, is left to the store: a duplicate, or refused
            # for a different body)
            prev = f.decisions.get(e.proposal)
            decided = pend.setdefault("decided", set())
            if (e.proposal, e.id) not in decided:
                if any(p == e.proposal for p, _ in decided) or (
                    prev is not None
                    and prev["status"] != "pending"
                    and not self._stored_as(int(prev["seq"]), e.id)
                ):
                    status = prev["status"] if prev is not None else "decided"
                    raise ValidationError(f"proposal: {e.proposal!r} is {status} already")
                decided.add((e.proposal, e.id))
        if t == "alarm_acknowledged":
            acked = pend.setdefault("acknowledged", set())
            if (e.alarm, e.id) not in acked:
                prev = f.acks.get(e.alarm)
                if any(a == e.alarm for a, _ in acked) or (
                    prev is not None and not self._stored_as(int(prev["seq"]), e.id)
                ):
                    raise ValidationError(f"alarm: {e.alarm!r} is acknowledged already")
                acked.add((e.alarm, e.id))
        if t in ("proposal_approved", "proposal_amended"):
            for k, a in enumerate(e.actions):
                if a.kind == "adopt_routes":
                    fl = f.fleet
                    if fl is None or a.fleet not in fl["fleets"]:
                        raise ValidationError(f"actions[{k}].fleet: unknown fleet {a.fleet!r}")

    def _stored_as(self, seq: int, event_id: str) -> bool:
        """Whether the event stored at ``seq`` has the id ``event_id`` (a re-send)."""
        rec = next(iter(self.store.read(seq - 1, limit=1)), None)
        return rec is not None and rec.seq == seq and rec.event_id == event_id

    # -- ingest --------------------------------------------------------------------------
    def ingest(self, items: Iterable[Any], *, respond: bool = False) -> list[IngestResult]:
        """Validate, append (one transaction) and fold events; return one result per item.

        Items are JSON text (one event), parsed objects, or event models. A
        refused item is reported with its reason and not stored; the others
        are stored. A world event (``grid_initialised``, ``fleet_initialised``)
        is committed before the items after it are checked against the world
        it makes. With ``respond``, the responder runs before returning.
        """
        with self._lock:
            if self.store.last_seq() > self._folder.last_seq:
                self._catch_up()
            results: dict[int, IngestResult] = {}
            todo: list[tuple[int, Any, NewEvent]] = []
            pending: dict[str, set[Any]] = {}
            n = 0
            for i, item in enumerate(items):
                n = i + 1
                try:
                    if isinstance(item, str | bytes):
                        e = ev.parse_event_json(item)
                    elif isinstance(item, dict):
                        e = ev.parse_event(item)
                    elif hasattr(item, "model_dump"):
                        e = ev.parse_event(item.model_dump(mode="json"))
                    else:  # a number, a list, None: one refused item, not a crash
                        e = ev.parse_event(item)
                    if e.type in ev.WORLD_EVENT_TYPES and todo:
                        self._commit(todo, results)
                        todo, pending = [], {}
                    self.check(e, pending)
                    body = ev.event_to_json(e)
                except AiguilleurError as err:
                    results[i] = IngestResult(
                        i, _id_of(item), None, error=" ".join(str(err).split())
                    )
                    continue
                todo.append((i, e, NewEvent(e.id, e.type, _occurred(e), e.source, body)))
                if e.type in ev.WORLD_EVENT_TYPES:
                    self._commit(todo, results)
                    todo, pending = [], {}
            if todo:
                self._commit(todo, results)
            out = [results[i] for i in range(n) if i in results]
        if respond:
            self.respond()
        return out

    def _commit(
        self, todo: list[tuple[int, Any, NewEvent]], results: dict[int, IngestResult]
    ) -> None:
        """Append ``todo`` in one transaction, acknowledge each, fold the new ones."""
        try:
            acks: list[Any] = self.store.append([n for _, _, n in todo])
        except ValidationError:
            # a conflicting re-send inside the batch: append one by one to name it
            acks = []
            for i, e, n in todo:
                try:
                    acks.extend(self.store.append([n]))
                except ValidationError as err:
                    results[i] = IngestResult(i, e.id, None, error=str(err))
                    acks.append(None)
        now = time.perf_counter()
        fresh: list[tuple[int, Any]] = []
        for (i, e, _n), a in zip(todo, acks, strict=True):
            if a is None:
                continue
            results[i] = IngestResult(i, e.id, a.seq, duplicate=a.duplicate)
            if not a.duplicate:
                fresh.append((a.seq, e))
                if self.tracking:
                    self._committed_at[a.seq] = now
        self._fold(fresh)

    def _fold(self, fresh: list[tuple[int, Any]]) -> None:
        fresh.sort(key=lambda x: x[0])
        if fresh and fresh[0][0] != self._folder.last_seq + 1:
            # another writer appended in between: fold from the log, in order
            self._catch_up()
        else:
            version = self._folder.grid_version
            for seq, e in fresh:
                self._folder.apply(e, seq)
                if self.tracking:
                    self._pending.append((seq, e))
            if self._folder.grid_version != version:
                self.grid_changed.set()
        n = self.options.snapshot_every
        if n and self._folder.last_seq - self._snapshot_seq >= n:
            # encoded and written beside ingestion: the frozen state is immutable
            st = self._folder.freeze()
            self._snapshot_seq = st.last_seq
            self._snapshots.submit(self._write_snapshot, st)

    def _write_snapshot(self, st: State) -> None:
        # a lost snapshot costs a longer restart, never an event
        with contextlib.suppress(AiguilleurError):
            self.store.save_snapshot(st.last_seq, st.state_hash, st.to_bytes())

    def flush(self) -> None:
        """Wait until the snapshots already taken are written."""
        self._snapshots.submit(lambda: None).result()

    def snapshot(self) -> tuple[int, str]:
        """Write a snapshot of the current state now; returns ``(seq, state hash)``."""
        with self._lock:
            st = self._folder.freeze()
            self._snapshots.submit(lambda: None).result()  # after any pending one
            self.store.save_snapshot(st.last_seq, st.state_hash, st.to_bytes())
            self._snapshot_seq = st.last_seq
            return st.last_seq, st.state_hash

    # -- responding ----------------------------------------------------------------------
    def pending(self) -> int:
        return len(self._pending)

    def respond(self, *, max_rounds: int = 5) -> list[Reaction]:
        """Run the responder on what was committed since the last call (see the module docstring).

        Proposals the policy applies become events, which may call for another
        round (at most ``max_rounds``).
        """
        out: list[Reaction] = []
        for _ in range(max_rounds):
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    break
                state = self._folder.freeze()
                committed = min(self._committed_at.pop(s, time.perf_counter()) for s, _ in batch)
                for s, _ in batch:
                    self._committed_at.pop(s, None)
            published: set[str] = set()

            def publish(
                a: dict[str, Any], committed: float = committed, published: set[str] = published
            ) -> None:
                a["reaction_s"] = time.perf_counter() - committed
                self.store.put_record("alarms", a["id"], a["seq"], a)
                published.add(a["id"])
                self.records_written += 1

            react = self.responder.react(state, batch, publish)
            lag = time.perf_counter() - committed
            for a in react.analyses:
                self.store.put_record("analyses", a["id"], a["seq"], a)
            for p in react.proposals:
                p["reaction_s"] = lag - react.time_s + p["reaction_s"]
                self.store.put_record("proposals", p["id"], p["seq"], p)
            for a in react.alarms:
                if a["id"] not in published:
                    a["reaction_s"] = lag - react.time_s + a["raised_after_s"]
                    self.store.put_record("alarms", a["id"], a["seq"], a)
            self.records_written += len(react.proposals) + len(react.alarms)
            out.append(react)
            self.reactions.append(react)
            self.reaction_count += 1
            self._auto_apply(react, state)
        return out

    def watch_limits(self) -> int:
        """Hold the newest grid version against its limits now, if nobody has yet.

        The responder opens each grid analysis with the same AC check; run from
        a second thread (:class:`aiguilleur.ops.stream.LimitWatch`), this puts
        the limit alarms of a new event in the store while the responder is
        still busy with an earlier one (the responder then reuses the check).
        Returns the number of alarms stored.
        """
        from aiguilleur.ops.responder import watch_limits

        with self._lock:
            if not self.tracking:
                return 0
            state = self._folder.freeze()
            committed = self._committed_at.get(state.last_seq, time.perf_counter())

        def publish(a: dict[str, Any]) -> None:
            a["reaction_s"] = time.perf_counter() - committed
            self.store.put_record("alarms", a["id"], a["seq"], a)
            self.records_written += 1

        opts = self.options.responder
        return len(watch_limits(state, self.responder.opening, publish, opts.minutes))

    def _auto_apply(self, react: Reaction, state: State) -> None:
        allowed = set(self.options.responder.auto_apply)
        if not allowed:
            return
        when = state.clock or datetime.now(UTC).isoformat()
        docs = []
        for p in react.proposals:
            if p["kind"] not in allowed or not p["ok"] or p["sheds_load"]:
                continue
            docs.append(
                {
                    "id": f"auto:{p['id']}",
                    "type": "proposal_approved",
                    "occurred_at": when,
                    "source": "policy:auto",
                    "proposal": p["id"],
                    "operator": "policy:auto",
                    "actions": p["actions"],
                }
            )
        if docs:
            res = self.ingest(docs)
            bad = [r for r in res if not r.ok]
            if bad:
                raise AiguilleurError(f"auto-apply of {bad[0].id}: {bad[0].error}")

    # -- operator decisions ------------------------------------------------------------
    def _decision_event(self, doc: dict[str, Any]) -> IngestResult:
        _check_operator(doc["operator"])
        res = self.ingest([doc])[0]
        if not res.ok:
            raise ValidationError(res.error or "refused")
        return res

    def approve(
        self,
        pid: str,
        operator: str,
        *,
        actions: Sequence[dict[str, Any]] | None = None,
        at: datetime | None = None,
        event_id: str | None = None,
        reason: str = "",
    ) -> IngestResult:
        """Approve a pending proposal (or apply it amended with ``actions``)."""
        p = self.proposal(pid)
        if p["status"] not in ("pending",):
            raise ValidationError(f"proposal {pid!r} is {p['status']}, not pending")
        when = (at or self.state().clock_dt or datetime.now(UTC)).isoformat()
        doc: dict[str, Any] = {
            "id": event_id or f"approve:{pid}",
            "type": "proposal_approved" if actions is None else "proposal_amended",
            "occurred_at": when,
            "source": f"operator:{operator}",
            "proposal": pid,
            "operator": operator,
            "actions": p["actions"] if actions is None else list(actions),
        }
        if actions is not None:
            doc["reason"] = reason
        return self._decision_event(doc)

    def reject(
        self, pid: str, operator: str, reason: str = "", *, at: datetime | None = None
    ) -> IngestResult:
        p = self.proposal(pid)
        if p["status"] != "pending":
            raise ValidationError(f"proposal {pid!r} is {p['status']}, not pending")
        when = (at or self.state().clock_dt or datetime.now(UTC)).isoformat()
        return self._decision_event(
            {
                "id": f"reject:{pid}",
                "type": "proposal_rejected",
                "occurred_at": when,
                "source": f"operator:{operator}",
                "proposal": pid,
                "operator": operator,
                "reason": reason,
            }
        )

    def acknowledge(
        self, alarm_id: str, operator: str, *, at: datetime | None = None
    ) -> IngestResult:
        if self.store.record("alarms", alarm_id) is None:
            raise ValidationError(f"alarm {alarm_id!r}: no such alarm")
        if alarm_id in self.state().acks:
            raise ValidationError(f"alarm {alarm_id!r} is already acknowledged")
        when = (at or self.state().clock_dt or datetime.now(UTC)).isoformat()
        return self._decision_event(
            {
                "id": f"ack:{alarm_id}",
                "type": "alarm_acknowledged",
                "occurred_at": when,
                "source": f"operator:{operator}",
                "alarm": alarm_id,
                "operator": operator,
            }
        )


def _check_operator(name: Any) -> None:
    """An operator's name: 1 to 119 printable characters (it is also the event's source,
    ``operator:<name>``, of at most 128)."""
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= 119
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
    ):
        raise ValidationError(
            "operator: expected a name of 1 to 119 printable characters "
            f"(got {len(name) if isinstance(name, str) else type(name).__name__}"
            f"{' characters' if isinstance(name, str) else ''})"
        )


def _id_of(item: Any) -> str | None:
    try:
        if isinstance(item, dict):
            v = item.get("id")
        elif isinstance(item, str | bytes):
            v = json.loads(item).get("id") if len(item) < 1_000_000 else None
        else:
            v = getattr(item, "id", None)
    except (ValueError, AttributeError, RecursionError):
        return None
    return v if isinstance(v, str) and len(v) <= 128 else None
