"""Ingesting a stream of events (JSON lines) with group commit and a background responder.

:func:`ingest_lines` reads lines from a file or a pipe on a reader thread;
the ingesting loop takes what has arrived (up to ``batch_max`` lines),
validates each, appends the valid ones in one transaction and only then
acknowledges them, in order (``on_ack``). A line that is not a valid event
is reported with its line number (``on_error``) and not stored; ingestion
goes on. Grouping what arrives while the previous commit runs is what keeps
the time to acknowledgement short under load (group commit), without ever
acknowledging before the commit.

With ``respond``, a :class:`Responder` thread analyses what was committed,
newest state first (events that arrive while an analysis runs are analysed
together next); the stream ends after the responder has caught up.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any

from aiguilleur.ops.centre import OpsCentre

__all__ = ["IngestStats", "LimitWatch", "ResponderThread", "ingest_lines"]

MAX_LINE_BYTES = 16 * 1024 * 1024


@dataclass
class IngestStats:
    """Counts of one stream: lines read, events stored, duplicates, refused lines."""

    lines: int = 0
    stored: int = 0
    duplicates: int = 0
    refused: int = 0
    batches: int = 0
    wall_s: float = 0.0


class LimitWatch:
    """Holds each new grid version against its limits as soon as it is folded.

    The responder analyses one batch at a time: an event that arrives while it
    is busy (an N-1 screen, a corrective plan) waits for the whole previous
    reaction. The watch runs the responder's opening AC check
    (:meth:`OpsCentre.watch_limits`) on its own thread the moment a fold changes
    the grid, so a new overload is an alarm in the store within one AC power
    flow of its event's commit; the responder reuses that check.
    """

    def __init__(self, centre: OpsCentre, poll_s: float = 0.5) -> None:
        self.centre = centre
        self.poll_s = poll_s
        self.checks = 0
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="aiguilleur-limits", daemon=True)

    def start(self) -> LimitWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        changed = self.centre.grid_changed
        while not self._stop.is_set():
            if not changed.wait(self.poll_s):
                continue
            changed.clear()
            try:
                self.centre.watch_limits()
                self.checks += 1
            except BaseException as e:  # reported by stop(); the responder still runs the check
                self.error = e
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.error is not None:
            raise self.error


class ResponderThread:
    """Runs :meth:`OpsCentre.respond` whenever events are pending, until stopped.

    With ``watch_limits`` a :class:`LimitWatch` runs beside it.
    """

    def __init__(
        self, centre: OpsCentre, idle_s: float = 0.02, *, watch_limits: bool = True
    ) -> None:
        self.centre = centre
        self.idle_s = idle_s
        self._stop = threading.Event()
        self._busy = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="aiguilleur-responder", daemon=True)
        self.watch = LimitWatch(centre) if watch_limits else None

    def start(self) -> ResponderThread:
        self._thread.start()
        if self.watch is not None:
            self.watch.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.centre.pending():
                self._busy.set()
                try:
                    self.centre.respond()
                except BaseException as e:  # reported by stop(): a responder never dies silently
                    self.error = e
                    return
                finally:
                    self._busy.clear()
            else:
                time.sleep(self.idle_s)

    def drain(self, timeout_s: float | None = None) -> bool:
        """Wait until nothing is pending and no analysis runs; False on timeout."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while self.centre.pending() or self._busy.is_set():
            if self.error is not None or not self._thread.is_alive():
                return False
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(self.idle_s)
        return True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.watch is not None:
            try:
                self.watch.stop()
            except BaseException:
                if self.error is None:
                    raise
        if self.error is not None:
            raise self.error


def _reader(source: IO[bytes], out: queue.Queue[list[tuple[int, bytes]] | None]) -> None:
    """Read what is available (not line by line), split it into numbered lines, queue them."""
    n = 0
    rest = b""
    skipping = False  # inside an over-long line: drop bytes until its end
    read = getattr(source, "read1", source.read)
    try:
        while True:
            chunk = read(1 << 16)
            if not chunk:
                break
            parts = (rest + chunk).split(b"\n")
            rest = parts.pop()
            batch: list[tuple[int, bytes]] = []
            for line in parts:
                n += 1
                if skipping or len(line) > MAX_LINE_BYTES:
                    skipping = False
                    batch.append((n, b"\x00too-long"))
                    continue
                batch.append((n, line))
            if len(rest) > MAX_LINE_BYTES:
                rest = b""
                skipping = True
            if batch:
                out.put(batch)
        if skipping or len(rest) > MAX_LINE_BYTES:
            out.put([(n + 1, b"\x00too-long")])
        elif rest.strip():
            out.put([(n + 1, rest)])
    finally:
        out.put(None)


def ingest_lines(
    centre: OpsCentre,
    source: IO[bytes],
    *,
    on_ack: Callable[[dict[str, Any]], None],
    on_error: Callable[[int, str], None],
    respond: bool = True,
    batch_max: int = 1000,
    on_batch: Callable[[], None] | None = None,
) -> IngestStats:
    """Ingest JSON lines from ``source`` until its end (see the module docstring)."""
    stats = IngestStats()
    t0 = time.perf_counter()
    if batch_max < 1:
        raise ValueError("batch_max must be at least 1")
    q: queue.Queue[list[tuple[int, bytes]] | None] = queue.Queue(maxsize=1000)
    reader = threading.Thread(target=_reader, args=(source, q), daemon=True)
    reader.start()
    centre.tracking = respond
    responder = ResponderThread(centre).start() if respond else None
    pending: list[tuple[int, bytes]] = []
    done = False
    try:
        while not done or pending:
            if not pending:
                got = q.get()
                if got is None:
                    break
                pending.extend(got)
            # take what has arrived, up to batch_max lines: one transaction
            while len(pending) < batch_max:
                try:
                    more = q.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    done = True
                    break
                pending.extend(more)
            batch, pending = pending[:batch_max], pending[batch_max:]
            stats.lines += len(batch)
            items: list[tuple[int, bytes]] = []
            too_long: list[int] = []
            for n, line in batch:
                if line == b"\x00too-long":
                    too_long.append(n)
                elif line.strip():
                    items.append((n, line))
            results = centre.ingest([line for _, line in items]) if items else []
            if items:
                stats.batches += 1
            # acknowledgements and errors in line order
            answers: list[tuple[int, Any]] = [(n, None) for n in too_long]
            answers += [(n, r) for (n, _), r in zip(items, results, strict=True)]
            answers.sort(key=lambda x: x[0])
            for n, r in answers:
                if r is None:
                    stats.refused += 1
                    on_error(n, f"longer than {MAX_LINE_BYTES:,} bytes, the most one event may be")
                elif r.ok:
                    on_ack(r.to_dict())
                    if r.duplicate:
                        stats.duplicates += 1
                    else:
                        stats.stored += 1
                else:
                    stats.refused += 1
                    on_error(n, r.error or "refused")
            if on_batch is not None:
                on_batch()
        if responder is not None:
            responder.drain()
    finally:
        if responder is not None:
            responder.stop()
    stats.wall_s = time.perf_counter() - t0
    return stats


def iter_json_lines(lines: Iterable[str]) -> Iterable[str]:
    """Non-empty lines (a helper for callers that already hold text)."""
    return (line for line in lines if line.strip())
