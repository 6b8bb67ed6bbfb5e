"""The durable log and its side tables: SQLite by default, PostgreSQL by URL.

The log is append-only. An event is acknowledged only after the transaction
that appends it commits; sequence numbers start at 1 and have no gaps: they
come from one counter row (``log_head``) updated in the same transaction as
the inserts, so a rolled-back append leaves no hole (a database sequence
would), and concurrent writers are serialised on that row. On SQLite the
write lock taken at ``BEGIN IMMEDIATE`` already serialises writers, so the
next number is read from the log itself (its largest ``seq``, the end of the
table's primary key) and the counter row is not written: one page fewer in
each commit's write-ahead log. A repeated event
id is idempotent: the stored event's sequence number is returned again and
nothing is written; a repeated id with a different body is refused.

Beside the log: state snapshots (so that a restart folds only the tail),
proposals, alarms and analysis records, each keyed by the sequence number of
the event it answers (provenance), and a dead-letter table for messages that
could not become events. None of them is the truth: the log is.

SQLite runs in WAL mode with ``synchronous=FULL`` (each commit is on disk
before it is acknowledged) and takes the write lock at the start of each
write transaction (``BEGIN IMMEDIATE``), so that two processes appending to
one file are serialised instead of failing on a lock upgrade.

The schema is versioned: :data:`MIGRATIONS` lists the steps, and opening a
store applies those it has not seen, each in its own transaction.
:class:`MemoryStore` is the same contract in memory, for tests.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

from aiguilleur.errors import AiguilleurError, ValidationError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Appended",
    "MemoryStore",
    "NewEvent",
    "SqlStore",
    "Store",
    "StoreError",
    "StoredEvent",
    "open_store",
]


class StoreError(AiguilleurError):
    """The store cannot be opened, is of an unknown schema, or a write failed."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event ready to append: its id, type, time, source and canonical JSON body."""

    event_id: str
    type: str
    occurred_at: str
    source: str
    body: str


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the log holds it."""

    seq: int
    event_id: str
    type: str
    occurred_at: str
    source: str
    body: str
    recorded_at: float


class Appended(NamedTuple):
    """The outcome of appending one event: its sequence number, and whether it was new.

    A named tuple rather than a frozen dataclass: a batch of 100 builds 100 of
    them, and a frozen dataclass's ``__init__`` costs twice as much.
    """

    event_id: str
    seq: int
    duplicate: bool


@runtime_checkable
class Store(Protocol):
    """What the operations centre needs from a store (see :class:`SqlStore`)."""

    url: str

    def append(self, events: Sequence[NewEvent]) -> list[Appended]:
        """Append in one transaction; return each event's outcome, in input order."""
        ...

    def read(self, since: int = 0, limit: int | None = None) -> Iterator[StoredEvent]:
        """Events with ``seq > since`` in order (at most ``limit``)."""
        ...

    def last_seq(self) -> int: ...

    def count(self) -> int: ...

    def save_snapshot(self, seq: int, state_hash: str, blob: bytes) -> None: ...

    def latest_snapshot(self) -> tuple[int, str, bytes] | None: ...

    def put_record(self, table: str, key: str, seq: int, body: dict[str, Any]) -> None: ...

    def records(
        self, table: str, since_seq: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]: ...

    def record(self, table: str, key: str) -> dict[str, Any] | None: ...

    def record_log(
        self, table: str, after_n: int = 0, limit: int | None = None
    ) -> list[tuple[int, float, dict[str, Any]]]:
        """``(n, stored at (Unix time), body)`` of the records stored after the ``n``-th, in order.

        ``n`` counts stores (a replaced record takes a new ``n``): a reader that
        remembers the last ``n`` it saw misses nothing and sees nothing twice.
        """
        ...

    def dead_letter(self, source: str, reason: str, payload: str | bytes) -> None: ...

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


RECORD_TABLES = ("proposals", "alarms", "analyses")
SNAPSHOTS_KEPT = 3
MAX_DEAD_LETTER_PAYLOAD = 64 * 1024


def _conflict(e: NewEvent) -> ValidationError:
    return ValidationError(f"event id {e.event_id!r}: already stored with a different body")


def _check_batch(events: Sequence[NewEvent]) -> None:
    seen: dict[str, str] = {}
    for e in events:
        prev = seen.get(e.event_id)
        if prev is not None and prev != e.body:
            raise _conflict(e)
        seen[e.event_id] = e.body


# -- in memory ---------------------------------------------------------------------------------


class MemoryStore:
    """The store contract in memory (tests, what-if runs); thread-safe."""

    def __init__(self) -> None:
        self.url = "memory://"
        self._lock = threading.Lock()
        self._log: list[StoredEvent] = []
        self._ids: dict[str, int] = {}
        self._snap: list[tuple[int, str, bytes]] = []
        self._records: dict[str, dict[str, tuple[int, int, dict[str, Any], float]]] = {
            t: {} for t in RECORD_TABLES
        }
        self._dead: list[dict[str, Any]] = []
        self._counter = 0

    def append(self, events: Sequence[NewEvent]) -> list[Appended]:
        _check_batch(events)
        with self._lock:
            for e in events:
                s = self._ids.get(e.event_id)
                if s is not None and self._log[s - 1].body != e.body:
                    raise _conflict(e)
            out: list[Appended] = []
            now = time.time()
            for e in events:
                s = self._ids.get(e.event_id)
                if s is not None:
                    out.append(Appended(e.event_id, s, True))
                    continue
                seq = len(self._log) + 1
                self._log.append(
                    StoredEvent(seq, e.event_id, e.type, e.occurred_at, e.source, e.body, now)
                )
                self._ids[e.event_id] = seq
                out.append(Appended(e.event_id, seq, False))
            return out

    def read(self, since: int = 0, limit: int | None = None) -> Iterator[StoredEvent]:
        with self._lock:
            part = self._log[max(since, 0) :]
        if limit is not None:
            part = part[:limit]
        yield from part

    def last_seq(self) -> int:
        return len(self._log)

    def count(self) -> int:
        return len(self._log)

    def save_snapshot(self, seq: int, state_hash: str, blob: bytes) -> None:
        with self._lock:
            self._snap = [s for s in self._snap if s[0] != seq]
            self._snap.append((seq, state_hash, bytes(blob)))
            self._snap.sort()
            del self._snap[:-SNAPSHOTS_KEPT]

    def latest_snapshot(self) -> tuple[int, str, bytes] | None:
        with self._lock:
            return self._snap[-1] if self._snap else None

    def put_record(self, table: str, key: str, seq: int, body: dict[str, Any]) -> None:
        _table(table)
        with self._lock:
            self._counter += 1
            self._records[table][key] = (seq, self._counter, json.loads(_json(body)), time.time())

    def records(
        self, table: str, since_seq: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        _table(table)
        with self._lock:
            rows = sorted(self._records[table].values(), key=lambda r: (r[0], r[1]))
        out = [r[2] for r in rows if r[0] > since_seq]
        return out[-limit:] if limit else out

    def record(self, table: str, key: str) -> dict[str, Any] | None:
        _table(table)
        with self._lock:
            r = self._records[table].get(key)
        return None if r is None else r[2]

    def record_log(
        self, table: str, after_n: int = 0, limit: int | None = None
    ) -> list[tuple[int, float, dict[str, Any]]]:
        _table(table)
        with self._lock:
            rows = sorted(
                ((r[1], r[3], r[2]) for r in self._records[table].values() if r[1] > after_n),
                key=lambda x: x[0],
            )
        return rows[:limit] if limit else rows

    def dead_letter(self, source: str, reason: str, payload: str | bytes) -> None:
        with self._lock:
            self._dead.append(
                {
                    "id": len(self._dead) + 1,
                    "received_at": time.time(),
                    "source": _text(source)[:200],
                    "reason": _text(reason)[:1000],
                    "payload": _text(_raw(payload)),
                }
            )

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._dead[-limit:])

    def close(self) -> None:
        pass


def _raw(payload: str | bytes) -> bytes:
    b = payload.encode("utf-8", errors="replace") if isinstance(payload, str) else bytes(payload)
    return b[:MAX_DEAD_LETTER_PAYLOAD]


def _text(x: str | bytes) -> str:
    """Printable text for a column: NUL and other control bytes escaped (PostgreSQL refuses NUL)."""
    s = x.decode("utf-8", errors="replace") if isinstance(x, bytes) else x
    return "".join(c if c.isprintable() or c in "\n\t" else f"\\x{ord(c):02x}" for c in s)


def _table(name: str) -> None:
    if name not in RECORD_TABLES:
        raise ValidationError(f"unknown record table {name!r} (expected {RECORD_TABLES})")


def _json(body: dict[str, Any]) -> str:
    try:
        return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError as e:
        raise ValidationError(f"record: not JSON-safe ({e})") from None


# -- SQL -----------------------------------------------------------------------------------------


def _tables(md: Any) -> dict[str, Any]:
    from sqlalchemy import (
        BigInteger,
        Column,
        Float,
        Integer,
        LargeBinary,
        String,
        Table,
        Text,
    )

    big = BigInteger().with_variant(Integer(), "sqlite")
    t = {
        "meta": Table(
            "ops_meta",
            md,
            Column("key", String(64), primary_key=True),
            Column("value", Text, nullable=False),
        ),
        "head": Table(
            "log_head",
            md,
            Column("id", Integer, primary_key=True, autoincrement=False),
            Column("last_seq", BigInteger, nullable=False),
        ),
        "events": Table(
            "events",
            md,
            Column("seq", big, primary_key=True, autoincrement=False),
            Column("event_id", String(128), nullable=False, unique=True),
            Column("type", String(40), nullable=False),
            Column("occurred_at", String(40), nullable=False),
            Column("source", String(128), nullable=False),
            Column("body", Text, nullable=False),
            Column("recorded_at", Float, nullable=False),
        ),
        "snapshots": Table(
            "snapshots",
            md,
            Column("seq", big, primary_key=True, autoincrement=False),
            Column("state_hash", String(64), nullable=False),
            Column("created_at", Float, nullable=False),
            Column("body", LargeBinary, nullable=False),
        ),
        "dead_letters": Table(
            "dead_letters",
            md,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("received_at", Float, nullable=False),
            Column("source", String(200), nullable=False),
            Column("reason", Text, nullable=False),
            Column("payload", LargeBinary, nullable=False),
        ),
    }
    for name in RECORD_TABLES:
        t[name] = Table(
            name,
            md,
            Column("key", String(128), primary_key=True),
            Column("seq", BigInteger, nullable=False, index=True),
            Column("n", big, nullable=False),
            Column("created_at", Float, nullable=False),
            Column("body", Text, nullable=False),
        )
    return t


_TABLE_NAMES = ("ops_meta", "log_head", "events", "snapshots", "dead_letters", *RECORD_TABLES)


def _migration_1(conn: Any, tables: dict[str, Any]) -> None:
    for name in ("head", "events", "snapshots", "dead_letters", *RECORD_TABLES):
        tables[name].create(conn, checkfirst=True)
    conn.execute(tables["head"].insert().values(id=1, last_seq=0))


MIGRATIONS: tuple[tuple[int, str, Callable[[Any, dict[str, Any]], None]], ...] = (
    (1, "log, head counter, snapshots, proposals, alarms, analyses, dead letters", _migration_1),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    rest = url.split("://", 1)[1] if "://" in url else ""
    rest = rest[1:] if rest.startswith("/") else rest
    if rest in ("", ":memory:"):
        return None
    return Path(rest.split("?", 1)[0])


_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg")


def _refuse_foreign(names: set[str], create: bool, url: str) -> None:
    """A database without our schema: refuse it unless creating, and never beside others' tables."""
    if not create:
        raise StoreError(f"{_safe_url(url)}: not an aiguilleur store (no schema)")
    foreign = names - set(_TABLE_NAMES)
    if foreign:
        raise StoreError(
            f"{_safe_url(url)}: holds tables of something else "
            f"({sorted(foreign)[0][:60]!r}); give aiguilleur its own database"
        )


def _sqlite_precheck(path: Path, create: bool, url: str) -> None:
    """Refuse a SQLite file that is not a store, reading it only.

    SQLAlchemy's connection would switch the file to WAL mode (a write) before
    the schema is looked at; a file named by mistake must stay as it was.
    """
    import sqlite3

    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = con.execute("select name from sqlite_master where type = 'table'").fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError:
        return  # locked, or a WAL store read-only cannot open: the engine will say
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{_safe_url(url)}: cannot open the store ({e})") from None
    names = {str(r[0]) for r in rows}
    if "ops_meta" not in names:
        _refuse_foreign(names, create, url)


def _normalise_url(url: str) -> str:
    """A bare path is a SQLite file; ``postgresql://`` uses psycopg 3.

    Any other scheme is refused in one line (SQLAlchemy would name a plugin it
    cannot load, or a driver module that is missing).
    """
    if not isinstance(url, str) or not url.strip():
        raise StoreError("store: expected a path, sqlite:///FILE, postgresql://... or memory://")
    if "://" not in url:
        return f"sqlite:///{url}"
    scheme = url.split("://", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise StoreError(
            f"{_safe_url(url)}: unknown store scheme {scheme[:40]!r} (use a path, "
            "sqlite:///FILE, postgresql://user@host/db or memory://)"
        )
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


_SQLITE_LOG_END = "SELECT COALESCE(MAX(seq), 0) FROM events"
_PG_ADVANCE_HEAD = "UPDATE log_head SET last_seq = last_seq + %s WHERE id = 1 RETURNING last_seq"


class SqlStore:
    """The store on SQLAlchemy 2: an embedded SQLite file, or PostgreSQL by URL.

    Parameters
    ----------
    url
        ``sqlite:///path/to/ops.db`` (or a bare path), or
        ``postgresql+psycopg://user@host:port/db``.
    create
        Create the schema when the database is empty (else an empty database
        is an error).
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        try:
            import sqlalchemy as sa
        except ImportError:  # pragma: no cover - a dependency
            raise StoreError("the store needs SQLAlchemy: pip install sqlalchemy") from None
        self.url = _normalise_url(url)
        self._sa = sa
        path = _sqlite_path(self.url)
        self._sqlite = self.url.startswith("sqlite")
        if path is not None:
            if path.exists() and path.is_dir():
                raise StoreError(f"{path}: is a folder, expected a SQLite file")
            if not path.parent.exists():
                raise StoreError(f"{path}: the folder {path.parent} does not exist")
            if path.is_file() and path.stat().st_size > 0:
                _sqlite_precheck(path, create, self.url)
        try:
            if self._sqlite:
                if path is None:
                    raise StoreError(
                        "an in-memory SQLite store would vanish with the process: use a file, "
                        "or memory:// for a throw-away store"
                    )
                args = {"isolation_level": None, "timeout": 30.0, "check_same_thread": False}
                # writes take the lock at BEGIN; reads stay deferred (WAL readers never block)
                self._engine = sa.create_engine(self.url, connect_args=args, pool_size=2)
                self._reader = sa.create_engine(self.url, connect_args=args, pool_size=4)
                for eng, begin in ((self._engine, "BEGIN IMMEDIATE"), (self._reader, "BEGIN")):
                    sa.event.listen(eng, "connect", _sqlite_on_connect)
                    sa.event.listen(eng, "begin", _sqlite_begin(begin))
            else:
                self._engine = sa.create_engine(self.url, pool_pre_ping=True, pool_size=4)
                self._reader = self._engine
            self._md = sa.MetaData()
            self._t = _tables(self._md)
            self._raw: Any = None
            self._raw_lock = threading.Lock()
            dbapi: Any = self._engine.dialect.dbapi
            mark = "?" if self._engine.dialect.paramstyle == "qmark" else "%s"
            self._insert_sql = (
                "INSERT INTO events (seq, event_id, type, occurred_at, source, body, recorded_at)"
                f" VALUES ({', '.join([mark] * 7)})"
            )
            self._dbapi_integrity = dbapi.IntegrityError
            self._dbapi_error = dbapi.Error
            self._migrate(create)
        except StoreError:
            raise
        except ImportError as e:
            raise StoreError(
                f"{_safe_url(self.url)}: the database driver is missing ({e})"
            ) from None
        except sa.exc.SQLAlchemyError as e:
            raise StoreError(
                f"{_safe_url(self.url)}: cannot open the store ({_db_reason(e)})"
            ) from None

    # -- schema ---------------------------------------------------------------------
    def _migrate(self, create: bool) -> None:
        sa = self._sa
        with self._engine.begin() as conn:
            names = set(sa.inspect(conn).get_table_names())
            if self._t["meta"].name not in names:
                # never write into a database that is not ours: reading a store must not
                # change a file named by mistake, nor mix our tables into another schema
                _refuse_foreign(names, create, self.url)
            self._t["meta"].create(conn, checkfirst=True)
            row = conn.execute(
                sa.select(self._t["meta"].c.value).where(self._t["meta"].c.key == "schema_version")
            ).first()
        raw_version = row[0] if row is not None else 0
        try:
            version = int(raw_version)
        except ValueError:
            raise StoreError(
                f"{_safe_url(self.url)}: unreadable schema version {str(raw_version)[:20]!r}"
            ) from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{_safe_url(self.url)}: store schema version {version} is newer than this "
                f"aiguilleur knows ({SCHEMA_VERSION}); upgrade aiguilleur"
            )
        if version == 0 and not create:
            raise StoreError(f"{_safe_url(self.url)}: not an aiguilleur store (no schema)")
        if version == SCHEMA_VERSION:
            with self._engine.begin() as conn:
                missing = set(_TABLE_NAMES) - set(sa.inspect(conn).get_table_names())
            if missing:
                raise StoreError(
                    f"{_safe_url(self.url)}: a damaged store (table {sorted(missing)[0]!r} "
                    "is missing); restore it from a backup, or replay its log into a new one"
                )
        for v, _desc, step in MIGRATIONS:
            if v <= version:
                continue
            with self._engine.begin() as conn:
                # re-read under the write lock: another process may have migrated meanwhile
                row = conn.execute(
                    sa.select(self._t["meta"].c.value).where(
                        self._t["meta"].c.key == "schema_version"
                    )
                ).first()
                if row is not None and int(row[0]) >= v:
                    continue
                step(conn, self._t)
                meta = self._t["meta"]
                if row is None:
                    conn.execute(meta.insert().values(key="schema_version", value=str(v)))
                else:
                    conn.execute(
                        meta.update().where(meta.c.key == "schema_version").values(value=str(v))
                    )

    def schema_version(self) -> int:
        sa = self._sa
        with self._reader.connect() as conn:
            row = conn.execute(
                sa.select(self._t["meta"].c.value).where(self._t["meta"].c.key == "schema_version")
            ).first()
        return int(row[0]) if row else 0

    # -- the log --------------------------------------------------------------------
    def append(self, events: Sequence[NewEvent]) -> list[Appended]:
        if not events:
            return []
        ids = [e.event_id for e in events]
        n = len(ids)
        if len(set(ids)) == n:
            fresh: Sequence[NewEvent] = events
        else:  # an id repeated inside the batch: stored once if the bodies agree
            _check_batch(events)
            first: dict[str, NewEvent] = {}
            for e in events:
                first.setdefault(e.event_id, e)
            fresh = list(first.values())
        sa = self._sa
        try:
            start = self._append_new(fresh)
        except sa.exc.IntegrityError:
            # an id already stored: the transaction rolled back (no number consumed)
            return self._append_checked(events)
        except sa.exc.OperationalError as e:
            raise StoreError(f"append: {_db_reason(e)}") from None
        if fresh is events:
            return [Appended(i, q, False) for q, i in enumerate(ids, start)]
        seq_of = {e.event_id: q for q, e in enumerate(fresh, start)}
        seen: set[str] = set()
        out: list[Appended] = []
        for i in ids:
            out.append(Appended(i, seq_of[i], i in seen))
            seen.add(i)
        return out

    def _append_new(self, fresh: Sequence[NewEvent]) -> int:
        """Append events whose ids are new in one transaction; return the first's number.

        The hot path of ingestion: one DBAPI connection kept for it (the pool's
        checkout, reset and checkin cost more than a small commit), the insert's
        SQL text built once (the driver keeps it prepared), one ``executemany``.
        On SQLite the next number is the log's end read under the write lock
        taken at ``BEGIN IMMEDIATE``; on PostgreSQL the counter row is advanced
        by the batch's size in the same transaction. A repeated id fails on the
        unique index and rolls the whole batch back.
        """
        n = len(fresh)
        with self._raw_lock:
            if self._raw is None:
                self._raw = self._engine.raw_connection()
            con = self._raw.driver_connection
            try:
                cur = con.cursor()
                try:
                    if self._sqlite:
                        cur.execute("BEGIN IMMEDIATE")
                        cur.execute(_SQLITE_LOG_END)
                        start = int(cur.fetchone()[0]) + 1
                    else:
                        cur.execute(_PG_ADVANCE_HEAD, (n,))
                        start = int(cur.fetchone()[0]) - n + 1
                    now = time.time()
                    cur.executemany(
                        self._insert_sql,
                        [
                            (q, e.event_id, e.type, e.occurred_at, e.source, e.body, now)
                            for q, e in enumerate(fresh, start)
                        ],
                    )
                finally:
                    cur.close()
                con.commit()
            except BaseException as e:
                try:
                    con.rollback()
                except Exception:  # the connection is gone: a fresh one next time
                    self._drop_raw()
                if isinstance(e, self._dbapi_integrity):
                    raise self._sa.exc.IntegrityError("append", None, e) from None
                if isinstance(e, self._dbapi_error):
                    self._drop_raw()
                    raise self._sa.exc.OperationalError("append", None, e) from None
                raise
        return start

    def _drop_raw(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.invalidate()

    def _append_checked(self, events: Sequence[NewEvent]) -> list[Appended]:
        """The general path: look up which ids are stored, append the others."""
        sa = self._sa
        ev = self._t["events"]
        ids = list(dict.fromkeys(e.event_id for e in events))
        for attempt in range(5):
            try:
                with self._engine.begin() as conn:
                    known: dict[str, tuple[int, str]] = {}
                    for k in range(0, len(ids), 500):
                        rows = conn.execute(
                            sa.select(ev.c.event_id, ev.c.seq, ev.c.body).where(
                                ev.c.event_id.in_(ids[k : k + 500])
                            )
                        )
                        known.update({r[0]: (int(r[1]), r[2]) for r in rows})
                    for e in events:
                        if e.event_id in known and known[e.event_id][1] != e.body:
                            raise _conflict(e)
                    fresh: list[NewEvent] = []
                    taken: set[str] = set(known)
                    for e in events:
                        if e.event_id not in taken:
                            fresh.append(e)
                            taken.add(e.event_id)
                    seq_of: dict[str, int] = {k: v[0] for k, v in known.items()}
                    if fresh:
                        if self._sqlite:  # the write lock is held: the log's end is the head
                            last = conn.execute(
                                sa.select(sa.func.coalesce(sa.func.max(ev.c.seq), 0))
                            ).scalar_one()
                            first = int(last) + 1
                        else:
                            head = self._t["head"]
                            last = conn.execute(
                                head.update()
                                .where(head.c.id == 1)
                                .values(last_seq=head.c.last_seq + len(fresh))
                                .returning(head.c.last_seq)
                            ).scalar_one()
                            first = int(last) - len(fresh) + 1
                        now = time.time()
                        rows_in = []
                        for i, e in enumerate(fresh):
                            seq_of[e.event_id] = first + i
                            rows_in.append(
                                (
                                    first + i,
                                    e.event_id,
                                    e.type,
                                    e.occurred_at,
                                    e.source,
                                    e.body,
                                    now,
                                )
                            )
                        conn.exec_driver_sql(self._insert_sql, rows_in)
                new_ids = {e.event_id for e in fresh}
                out: list[Appended] = []
                seen: set[str] = set()
                for e in events:
                    dup = e.event_id not in new_ids or e.event_id in seen
                    seen.add(e.event_id)
                    out.append(Appended(e.event_id, seq_of[e.event_id], dup))
                return out
            except sa.exc.IntegrityError:
                # another writer stored one of these ids between our read and our insert
                if attempt == 4:
                    raise StoreError("append: conflicting concurrent writers, gave up") from None
            except sa.exc.OperationalError as e:
                raise StoreError(f"append: {_db_reason(e)}") from None
        raise StoreError("append: unreachable")  # pragma: no cover

    def read(self, since: int = 0, limit: int | None = None) -> Iterator[StoredEvent]:
        sa = self._sa
        ev = self._t["events"]
        page = 2000
        after = since
        left = limit
        while left is None or left > 0:
            n = page if left is None else min(page, left)
            with self._reader.connect() as conn:
                rows = conn.execute(
                    sa.select(
                        ev.c.seq,
                        ev.c.event_id,
                        ev.c.type,
                        ev.c.occurred_at,
                        ev.c.source,
                        ev.c.body,
                        ev.c.recorded_at,
                    )
                    .where(ev.c.seq > after)
                    .order_by(ev.c.seq)
                    .limit(n)
                ).all()
            if not rows:
                return
            for r in rows:
                yield StoredEvent(int(r[0]), r[1], r[2], r[3], r[4], r[5], float(r[6]))
            after = int(rows[-1][0])
            if left is not None:
                left -= len(rows)
            if len(rows) < n:
                return

    def last_seq(self) -> int:
        sa = self._sa
        with self._reader.connect() as conn:
            if self._sqlite:
                ev = self._t["events"]
                v = conn.execute(sa.select(sa.func.max(ev.c.seq))).scalar()
            else:
                v = conn.execute(sa.select(self._t["head"].c.last_seq)).scalar()
        return int(v or 0)

    def count(self) -> int:
        sa = self._sa
        with self._reader.connect() as conn:
            v = conn.execute(sa.select(sa.func.count()).select_from(self._t["events"])).scalar()
        return int(v or 0)

    # -- snapshots ------------------------------------------------------------------
    def save_snapshot(self, seq: int, state_hash: str, blob: bytes) -> None:
        sa = self._sa
        t = self._t["snapshots"]
        with self._engine.begin() as conn:
            conn.execute(t.delete().where(t.c.seq == seq))
            conn.execute(
                t.insert().values(seq=seq, state_hash=state_hash, created_at=time.time(), body=blob)
            )
            keep = conn.execute(
                sa.select(t.c.seq).order_by(t.c.seq.desc()).limit(SNAPSHOTS_KEPT)
            ).all()
            if len(keep) == SNAPSHOTS_KEPT:
                conn.execute(t.delete().where(t.c.seq < int(keep[-1][0])))

    def latest_snapshot(self) -> tuple[int, str, bytes] | None:
        sa = self._sa
        t = self._t["snapshots"]
        with self._reader.connect() as conn:
            r = conn.execute(
                sa.select(t.c.seq, t.c.state_hash, t.c.body).order_by(t.c.seq.desc()).limit(1)
            ).first()
        return None if r is None else (int(r[0]), str(r[1]), bytes(r[2]))

    # -- proposals, alarms, analyses ------------------------------------------------
    def put_record(self, table: str, key: str, seq: int, body: dict[str, Any]) -> None:
        _table(table)
        sa = self._sa
        t = self._t[table]
        text = _json(body)
        with self._engine.begin() as conn:
            n = conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.c.n), 0))).scalar_one()
            conn.execute(t.delete().where(t.c.key == key))
            conn.execute(
                t.insert().values(key=key, seq=seq, n=int(n) + 1, created_at=time.time(), body=text)
            )

    def records(
        self, table: str, since_seq: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        _table(table)
        sa = self._sa
        t = self._t[table]
        q = sa.select(t.c.body).where(t.c.seq > since_seq)
        if limit:
            q = q.order_by(t.c.seq.desc(), t.c.n.desc()).limit(limit)
            with self._reader.connect() as conn:
                rows = conn.execute(q).all()
            return [json.loads(r[0]) for r in reversed(rows)]
        with self._reader.connect() as conn:
            rows = conn.execute(q.order_by(t.c.seq, t.c.n)).all()
        return [json.loads(r[0]) for r in rows]

    def record(self, table: str, key: str) -> dict[str, Any] | None:
        _table(table)
        sa = self._sa
        t = self._t[table]
        with self._reader.connect() as conn:
            r = conn.execute(sa.select(t.c.body).where(t.c.key == key)).first()
        return None if r is None else dict(json.loads(r[0]))

    def record_log(
        self, table: str, after_n: int = 0, limit: int | None = None
    ) -> list[tuple[int, float, dict[str, Any]]]:
        _table(table)
        sa = self._sa
        t = self._t[table]
        q = sa.select(t.c.n, t.c.created_at, t.c.body).where(t.c.n > after_n).order_by(t.c.n)
        if limit:
            q = q.limit(limit)
        with self._reader.connect() as conn:
            rows = conn.execute(q).all()
        return [(int(r[0]), float(r[1]), json.loads(r[2])) for r in rows]

    # -- dead letters ---------------------------------------------------------------
    def dead_letter(self, source: str, reason: str, payload: str | bytes) -> None:
        t = self._t["dead_letters"]
        with self._engine.begin() as conn:
            conn.execute(
                t.insert().values(
                    received_at=time.time(),
                    source=_text(source)[:200],
                    reason=_text(reason)[:1000],
                    payload=_raw(payload),
                )
            )

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        sa = self._sa
        t = self._t["dead_letters"]
        with self._reader.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.id, t.c.received_at, t.c.source, t.c.reason, t.c.payload)
                .order_by(t.c.id.desc())
                .limit(limit)
            ).all()
        return [
            {
                "id": r[0],
                "received_at": r[1],
                "source": r[2],
                "reason": r[3],
                "payload": _text(bytes(r[4])),
            }
            for r in reversed(rows)
        ]

    def close(self) -> None:
        with self._raw_lock:
            if self._raw is not None:
                with contextlib.suppress(Exception):
                    self._raw.close()
                self._raw = None
        self._engine.dispose()
        if self._reader is not self._engine:
            self._reader.dispose()


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(statement: str) -> Callable[[Any], None]:
    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql(statement)

    return on_begin


def _safe_url(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url


def _db_reason(e: Exception) -> str:
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def open_store(
    url: str | None, *, default_path: str | Path = "aiguilleur-ops.db", create: bool = True
) -> Store:
    """A store by URL: ``memory://``, a SQLite URL or bare path, or a PostgreSQL URL.

    With ``create`` false, a SQLite file that does not exist (or a database
    without aiguilleur's schema) is an error instead of a new, empty store.
    """
    if url is None:
        url = str(default_path)
    if url.startswith("memory:"):
        return MemoryStore()
    if not create:
        path = _sqlite_path(_normalise_url(url))
        if path is not None and not path.exists():
            raise StoreError(f"{path}: no such store (ingest or replay into it first)")
    return SqlStore(url, create=create)
