"""Where the work of a fan-out runs: in this process, on a local process pool, or on Ray.

One seam, :class:`Executor`, with three implementations that give identical
results for the same work:

- :class:`SerialExecutor` runs every task in the calling process, in order (tests,
  debugging, tiny jobs);
- :class:`LocalExecutor` runs them on a pool of worker processes on this machine
  (the default for the command line);
- :class:`RayExecutor` runs them as Ray tasks on a local Ray runtime
  (``address="auto"``) or on an existing cluster (``address="host:port"``).

A job is ``run(fn, items, shared)``: ``fn(shared, item)`` for every item, where
``shared`` is the large value common to every task (a compiled grid model). It
follows Ray's own guidance for task-parallel programs:

- the shared value is shipped once per version (``ray.put`` on Ray; a file read
  once by each worker process on the local pool), never with every task;
- items are grouped into batches (``batch_size``) so that each task carries
  enough work (about 100 ms or more) to hide the per-task overhead;
- the number of tasks in flight is bounded (``ray.wait`` on Ray), and results
  are handed back as they finish (``on_result``), not in submission order;
- a task whose worker process dies is submitted again, up to ``max_retries``
  times, and the run reports it (:attr:`RunStats.retries`,
  :attr:`RunStats.worker_failures`). An exception raised by ``fn`` itself is not
  retried: it is the answer (e.g. a validation error) and is raised to the caller.

Several jobs can share the workers: :meth:`Executor.fanout` gives a
:class:`Fanout`, to which a job is added as soon as its inputs are known (e.g.
the hours of a scenario once its plan is in) while earlier jobs still run; one
scheduler, the same for the three executors, submits the tasks of every job in
the order the jobs were added and hands results back as they finish.
:meth:`Executor.run` is a fan-out of one job.

``fn`` must be a module-level function (it is pickled by reference).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import pickle
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from aiguilleur.errors import AiguilleurError, ValidationError

__all__ = [
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "RunResult",
    "RunStats",
    "SerialExecutor",
    "WorkerLostError",
    "batch_size_for",
    "make_executor",
]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

#: Smallest work per task that Ray's guidance asks for (its per-task overhead is ~1 ms).
MIN_TASK_S = 0.1


class WorkerLostError(AiguilleurError):
    """A task's worker died more often than the retries allow."""


@dataclass(frozen=True)
class RunStats:
    """How a run went.

    Attributes
    ----------
    executor
        ``serial``, ``local`` or ``ray``.
    workers
        Workers available to the run.
    items
        Work items (``fn`` calls).
    tasks
        Tasks submitted (batches of items), retries included.
    batch_size
        Items per task.
    retries
        Tasks submitted again after their worker died.
    worker_failures
        One line per worker loss seen.
    wall_s
        Wall time of the run, shipping the shared value included.
    ship_s
        Time spent shipping the shared value (``ray.put`` or writing it once).
    shared_bytes
        Size of the pickled shared value.
    busy_s
        Sum over tasks of the time spent inside ``fn`` (in the workers).
    max_in_flight
        The bound on tasks submitted and not yet finished.
    """

    executor: str
    workers: int
    items: int
    tasks: int
    batch_size: int
    retries: int
    worker_failures: tuple[str, ...]
    wall_s: float
    ship_s: float
    shared_bytes: int
    busy_s: float
    max_in_flight: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "executor": self.executor,
            "workers": self.workers,
            "items": self.items,
            "tasks": self.tasks,
            "batch_size": self.batch_size,
            "retries": self.retries,
            "worker_failures": list(self.worker_failures),
            "wall_s": self.wall_s,
            "ship_s": self.ship_s,
            "shared_bytes": self.shared_bytes,
            "busy_s": self.busy_s,
            "max_in_flight": self.max_in_flight,
        }


@dataclass(frozen=True)
class RunResult(Generic[R]):
    """The results of a run, in item order, and how the run went."""

    results: tuple[R, ...]
    stats: RunStats


OnResult = Callable[[int, Any], None]


@runtime_checkable
class Executor(Protocol):
    """Runs ``fn(shared, item)`` for every item and returns the results in item order."""

    @property
    def kind(self) -> str:
        """``serial``, ``local`` or ``ray``."""
        ...

    @property
    def workers(self) -> int:
        """How many tasks can run at the same time."""
        ...

    def run(
        self,
        fn: Callable[[Any, Any], Any],
        items: Sequence[Any],
        shared: Any = None,
        *,
        batch_size: int = 1,
        on_result: OnResult | None = None,
    ) -> RunResult[Any]:
        """Run ``fn(shared, item)`` on every item (see the module notes)."""
        ...

    def fanout(self) -> Fanout:
        """A :class:`Fanout` on these workers: jobs added while others run."""
        ...

    def close(self) -> None:
        """Release the workers (idempotent)."""
        ...


def batch_size_for(item_cost_s: float, min_task_s: float = MIN_TASK_S) -> int:
    """Items per task so that a task carries at least ``min_task_s`` of work."""
    if not math.isfinite(item_cost_s) or item_cost_s <= 0:
        return 1
    return max(1, math.ceil(min_task_s / item_cost_s))


def _check_batch(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    return batch_size


def _run_batch(
    fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any]
) -> tuple[list[Any], float]:
    """Run one task: ``fn`` on each item of the batch; results and time inside ``fn``."""
    t0 = time.perf_counter()
    out = [fn(shared, it) for it in items]
    return out, time.perf_counter() - t0


def _key_of(payload: bytes) -> str:
    return hashlib.sha1(payload).hexdigest()[:16]


# -- the scheduler shared by every executor ---------------------------------------------------


class _Lost(Exception):
    """A task's worker went away (not an error of the work itself)."""


class _Backend(Protocol):
    """What an executor gives the scheduler: ship, submit, wait, collect."""

    @property
    def kind(self) -> str: ...

    @property
    def workers(self) -> int: ...

    in_flight: int
    max_retries: int
    #: a lost worker fails every task still running on it (a broken process pool)
    loses_all: bool

    def _ship(self, shared: Any, payload: bytes, key: str) -> Any: ...

    def _submit(self, fn: Callable[[Any, Any], Any], handle: Any, items: list[Any]) -> Any: ...

    def _wait(self, tokens: list[Any]) -> list[Any]: ...

    def _collect(self, token: Any) -> tuple[list[Any], float]: ...

    def _reset(self) -> None: ...


@dataclass
class _Job:
    fn: Callable[[Any, Any], Any]
    items: Sequence[Any]
    handle: Any
    batch_size: int | None  # None: sized from the first results
    min_task_s: float
    on_result: OnResult | None
    t0: float
    ship_s: float
    shared_bytes: int
    out: list[Any]
    spans: list[tuple[int, int]]
    attempts: list[int]
    retry: list[int]  # spans to submit again (a stack)
    cursor: int = 0  # first item not yet in a span
    finished: int = 0  # items whose result is in
    tasks: int = 0
    retries: int = 0
    busy_s: float = 0.0
    busy_items: int = 0
    used_size: int = 1
    t_end: float = 0.0
    failures: list[str] = dataclass_field(default_factory=list)

    def complete(self) -> bool:
        return self.finished == len(self.items)


class Fanout:
    """Several jobs on one executor, each added when its inputs are known.

    A job is ``fn(shared, item)`` on every item, as in :meth:`Executor.run`; jobs
    added while others run share the workers with them (the workers never wait for
    a whole stage to end). Tasks are submitted in the order the jobs were added,
    items in order within a job, under the executor's in-flight bound; results
    come back from :meth:`results` as they finish.

    ``batch_size=None`` sizes a job's tasks from its own first results: single
    items until one has finished, then enough items for ``min_task_s`` of work
    (at most a fair share of what is left per worker).
    """

    def __init__(self, backend: _Backend) -> None:
        self._b = backend
        self._jobs: list[_Job] = []
        self._running: dict[Any, tuple[int, int]] = {}  # token -> (job, span)
        self._keys: dict[int, tuple[Any, str, bytes]] = {}

    @property
    def workers(self) -> int:
        return self._b.workers

    def add(
        self,
        fn: Callable[[Any, Any], Any],
        items: Sequence[Any],
        shared: Any = None,
        *,
        batch_size: int | None = 1,
        min_task_s: float = MIN_TASK_S,
        on_result: OnResult | None = None,
    ) -> int:
        """Queue a job; its number (for :meth:`results`, :meth:`outputs`, :meth:`stats`)."""
        size = None if batch_size is None else _check_batch(batch_size)
        t0 = time.perf_counter()
        # the same shared object added again (one job per scenario) is shipped once
        known = self._keys.get(id(shared))
        if known is not None and known[0] is shared:
            handle, payload = known[1], known[2]
        else:
            payload = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
            handle = self._b._ship(shared, payload, _key_of(payload))
            self._keys[id(shared)] = (shared, handle, payload)
        job = _Job(
            fn, items, handle, size, min_task_s, on_result, t0, time.perf_counter() - t0,
            len(payload), [None] * len(items), [], [], [],
        )  # fmt: skip
        job.t_end = job.t0
        self._jobs.append(job)
        return len(self._jobs) - 1

    def outputs(self, job: int) -> tuple[Any, ...]:
        """The results of a job, in item order (complete once the job has finished)."""
        return tuple(self._jobs[job].out)

    def done(self, job: int) -> bool:
        """Whether every item of the job has its result."""
        return self._jobs[job].complete()

    def stats(self, *jobs: int) -> RunStats:
        """How the jobs ran, taken together (wall: first added to last result)."""
        js = [self._jobs[k] for k in jobs]
        if not js:
            raise ValidationError("stats: expected at least one job")
        return RunStats(
            self._b.kind, self._b.workers, sum(len(j.items) for j in js),
            sum(j.tasks for j in js), max(j.used_size for j in js),
            sum(j.retries for j in js), tuple(f for j in js for f in j.failures),
            max(j.t_end for j in js) - min(j.t0 for j in js), sum(j.ship_s for j in js),
            max(j.shared_bytes for j in js), sum(j.busy_s for j in js), self._b.in_flight,
        )  # fmt: skip

    def _next_span(self, job: _Job) -> int | None:
        if job.retry:
            return job.retry.pop()
        n = len(job.items)
        if job.cursor >= n:
            return None
        if job.batch_size is not None:
            size = job.batch_size
        elif job.busy_items:
            size = batch_size_for(job.busy_s / job.busy_items, job.min_task_s)
            size = max(1, min(size, math.ceil((n - job.cursor) / max(self._b.workers, 1))))
        else:
            size = 1
        job.used_size = max(job.used_size, size)
        job.spans.append((job.cursor, min(job.cursor + size, n)))
        job.attempts.append(0)
        job.cursor = job.spans[-1][1]
        return len(job.spans) - 1

    def _fill(self) -> bool:
        """Submit while below the in-flight bound; False if the backend refused a task."""
        for k, job in enumerate(self._jobs):
            while len(self._running) < self._b.in_flight:
                j = self._next_span(job)
                if j is None:
                    break
                a, b = job.spans[j]
                try:
                    tok = self._b._submit(job.fn, job.handle, list(job.items[a:b]))
                except _Lost:
                    job.retry.append(j)
                    return False
                self._running[tok] = (k, j)
                job.attempts[j] += 1
                job.tasks += 1
        return True

    def _finish(self, tok: Any, k: int, j: int, got: list[tuple[int, int, Any]]) -> bool:
        """Store a finished task's results in ``got``; False when its worker was lost."""
        job = self._jobs[k]
        try:
            res, dt = self._b._collect(tok)
        except _Lost as e:
            job.failures.append(f"task {j}: {e}")
            if job.attempts[j] > self._b.max_retries:
                self._b._reset()
                a, b = job.spans[j]
                where = " on Ray" if self._b.kind == "ray" else ""
                raise WorkerLostError(
                    f"task {j} (items {a}..{b - 1}): lost {job.attempts[j]} times{where}; giving up"
                ) from None
            job.retry.append(j)
            job.retries += 1
            return False
        job.busy_s += dt
        a = job.spans[j][0]
        job.busy_items += len(res)
        for i, r in enumerate(res):
            job.out[a + i] = r
            got.append((k, a + i, r))
        job.finished += len(res)
        job.t_end = time.perf_counter()
        return True

    def results(self) -> Iterator[tuple[int, int, Any]]:
        """``(job, item, result)`` as the tasks finish, until every job added has finished.

        Jobs may be added while iterating. The job's ``on_result`` is called first.
        """
        while True:
            if not self._fill() and not self._running:
                self._b._reset()
                continue
            if not self._running:
                if all(job.complete() for job in self._jobs):
                    return
                # never: a job with items left always has a task to submit
                raise AiguilleurError("fan-out: work left but no task running")  # pragma: no cover
            got: list[tuple[int, int, Any]] = []
            done = self._b._wait(list(self._running))
            lost = False
            for tok in done:
                k, j = self._running.pop(tok)
                lost |= not self._finish(tok, k, j, got)
            if lost and self._b.loses_all:
                # the tasks still on the broken pool finish or fail with it: collect them all
                rest = list(self._running.items())
                self._running.clear()
                for tok, (k, j) in rest:
                    self._finish(tok, k, j, got)
                self._b._reset()
            for k, i, r in got:
                cb = self._jobs[k].on_result
                if cb is not None:
                    cb(i, r)
                yield k, i, r

    def run_all(self) -> None:
        """Wait for every job added (the results are in :meth:`outputs`)."""
        for _ in self.results():
            pass


def _run_one(
    fan: Fanout,
    fn: Callable[[Any, Any], Any],
    items: Sequence[Any],
    shared: Any,
    batch_size: int,
    on_result: OnResult | None,
) -> RunResult[Any]:
    job = fan.add(fn, items, shared, batch_size=_check_batch(batch_size), on_result=on_result)
    fan.run_all()
    return RunResult(fan.outputs(job), fan.stats(job))


# -- in-process --------------------------------------------------------------------------


@dataclass(eq=False)
class _Deferred:
    """A task of the in-process executor: run when its result is asked for."""

    fn: Callable[[Any, Any], Any]
    shared: Any
    items: list[Any]


class SerialExecutor:
    """Every task in the calling process, in item order (the in-memory implementation).

    Parameters
    ----------
    roundtrip
        Pickle the shared value and every result there and back, as the other
        executors do, so that a value that cannot travel fails here too.
    """

    def __init__(self, *, roundtrip: bool = True) -> None:
        self.roundtrip = roundtrip

    @property
    def kind(self) -> str:
        return "serial"

    @property
    def workers(self) -> int:
        return 1

    in_flight = 1
    max_retries = 0
    loses_all = False

    def run(
        self,
        fn: Callable[[Any, Any], Any],
        items: Sequence[Any],
        shared: Any = None,
        *,
        batch_size: int = 1,
        on_result: OnResult | None = None,
    ) -> RunResult[Any]:
        return _run_one(self.fanout(), fn, items, shared, batch_size, on_result)

    def fanout(self) -> Fanout:
        return Fanout(self)

    def _ship(self, shared: Any, payload: bytes, key: str) -> Any:
        return pickle.loads(payload) if self.roundtrip else shared

    def _submit(self, fn: Callable[[Any, Any], Any], handle: Any, items: list[Any]) -> Any:
        return _Deferred(fn, handle, items)  # run when collected, in submission order

    def _wait(self, tokens: list[Any]) -> list[Any]:
        return tokens[:1]

    def _collect(self, token: Any) -> tuple[list[Any], float]:
        res, dt = _run_batch(token.fn, token.shared, token.items)
        if self.roundtrip:
            res = pickle.loads(pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL))
        return res, dt

    def _reset(self) -> None:
        return None

    def close(self) -> None:
        return None


# -- local process pool --------------------------------------------------------------------

# per worker process: the shared values read so far, by key (the few most recent: the
# jobs of a fan-out interleave, e.g. the last commitment next to the first hours)
_WORKER_SHARED: dict[str, Any] = {}
_WORKER_KEEP = 4


def _pool_task(
    fn: Callable[[Any, Any], Any], path: str, key: str, items: Sequence[Any]
) -> tuple[list[Any], float, int]:
    """A task on a pool worker: the shared value is read from ``path`` once per key."""
    if key in _WORKER_SHARED:
        shared = _WORKER_SHARED.pop(key)
    else:
        with open(path, "rb") as fh:
            shared = pickle.load(fh)
        while len(_WORKER_SHARED) >= _WORKER_KEEP:
            del _WORKER_SHARED[next(iter(_WORKER_SHARED))]
    _WORKER_SHARED[key] = shared  # most recent last
    res, dt = _run_batch(fn, shared, items)
    return res, dt, os.getpid()


def _pool_init(blas_threads: int) -> None:
    # one BLAS thread per worker: the workers are the parallelism
    for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = str(blas_threads)


#: Most worker processes of a local pool: a mistyped count must not fork thousands.
MAX_LOCAL_WORKERS = 256


class LocalExecutor:
    """A pool of worker processes on this machine.

    Parameters
    ----------
    workers
        Worker processes (default: the machine's cores).
    max_retries
        How many times a task is submitted again after its worker died.
    in_flight_per_worker
        Tasks submitted ahead per worker (the in-flight bound is this times ``workers``).
    start_method
        ``forkserver`` (default on Linux: workers forked from a clean server process,
        safe with threaded libraries in the parent), ``spawn`` or ``fork``.

    Notes
    -----
    The shared value of a run is pickled once into a private temporary folder;
    each worker reads it on its first task of that run and keeps it. The pool
    is created on first use and kept across runs until :meth:`close`.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        max_retries: int = 2,
        in_flight_per_worker: int = 2,
        start_method: Literal["forkserver", "spawn", "fork"] | None = None,
    ) -> None:
        n = (os.cpu_count() or 1) if workers is None else workers
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_LOCAL_WORKERS:
            raise ValidationError(
                f"workers: expected an integer from 1 to {MAX_LOCAL_WORKERS} (processes on "
                f"this machine), got {workers!r}"
            )
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValidationError(f"max_retries: expected an integer >= 0, got {max_retries!r}")
        if not isinstance(in_flight_per_worker, int) or in_flight_per_worker < 1:
            raise ValidationError(
                f"in_flight_per_worker: expected an integer >= 1, got {in_flight_per_worker!r}"
            )
        self._workers = n
        self.max_retries = max_retries
        self.in_flight = in_flight_per_worker * n
        import multiprocessing as mp

        method = start_method or (
            "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        )
        if method not in mp.get_all_start_methods():
            raise ValidationError(f"start_method: {method!r} is not available here")
        self._ctx = mp.get_context(method)
        self._pool: ProcessPoolExecutor | None = None
        self._dir: str | None = None

    @property
    def kind(self) -> str:
        return "local"

    @property
    def workers(self) -> int:
        return self._workers

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers, mp_context=self._ctx, initializer=_pool_init,
                initargs=(1,),
            )  # fmt: skip
        return self._pool

    def _reset_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    loses_all = True

    def run(
        self,
        fn: Callable[[Any, Any], Any],
        items: Sequence[Any],
        shared: Any = None,
        *,
        batch_size: int = 1,
        on_result: OnResult | None = None,
    ) -> RunResult[Any]:
        return _run_one(self.fanout(), fn, items, shared, batch_size, on_result)

    def fanout(self) -> Fanout:
        return Fanout(self)

    def _ship(self, shared: Any, payload: bytes, key: str) -> Any:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="aiguilleur-pool-")
        path = os.path.join(self._dir, f"{key}.pkl")
        if not os.path.exists(path):
            with open(path, "wb") as fh:
                fh.write(payload)
        return path, key

    def _submit(self, fn: Callable[[Any, Any], Any], handle: Any, items: list[Any]) -> Any:
        pool = self._ensure_pool()
        try:
            return pool.submit(_pool_task, fn, handle[0], handle[1], items)
        except BrokenProcessPool as e:
            raise _Lost(f"the pool is broken ({' '.join(str(e).split())})") from None

    def _wait(self, tokens: list[Any]) -> list[Any]:
        done, _ = wait(tokens, return_when=FIRST_COMPLETED)
        return list(done)

    def _collect(self, token: Any) -> tuple[list[Any], float]:
        try:
            res, dt, _pid = token.result()
        except BrokenProcessPool as e:
            raise _Lost(f"a worker process died ({' '.join(str(e).split())})") from None
        return res, dt

    def _reset(self) -> None:
        self._reset_pool()

    def close(self) -> None:
        self._reset_pool()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- Ray -----------------------------------------------------------------------------------

_ADDRESS = re.compile(r"^(ray://)?[A-Za-z0-9_.\-]+:\d{1,5}$")


def _ray_module() -> Any:
    try:
        import ray
    except ImportError:
        raise AiguilleurError(
            "Ray is not installed: pip install 'aiguilleur[ray]' (or run without --ray)"
        ) from None
    return ray


def _worker_env() -> dict[str, str]:
    """Environment of local Ray workers: one BLAS thread, and this process's import path
    (so that they import the same aiguilleur and the same task functions)."""
    import sys

    path = [p for p in sys.path if p and os.path.isdir(p)]
    return {
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(path),
    }


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast when nothing listens at ``address`` (Ray itself waits for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise AiguilleurError(
            f"--ray {address}: no Ray cluster answers there ({e.strerror or e}); "
            "use --ray auto for a local runtime"
        ) from None


_RAY_REMOTE: Any = None
#: Shared values kept in the object store at once (the most recent).
_RAY_KEEP = 4


def _ray_remote(ray: Any) -> Any:
    """The remote task function, defined once (Ray: never redefine a remote function)."""
    global _RAY_REMOTE
    if _RAY_REMOTE is None:
        # system failures are retried here, not by Ray, so that each retry is counted
        _RAY_REMOTE = ray.remote(max_retries=0)(_ray_task)
    return _RAY_REMOTE


def _ray_task(
    fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any]
) -> tuple[list[Any], float, int]:
    res, dt = _run_batch(fn, shared, items)
    return res, dt, os.getpid()


class RayExecutor:
    """Ray tasks on a local runtime or an existing cluster.

    Parameters
    ----------
    address
        ``"auto"`` starts a local Ray runtime with ``workers`` CPUs (and stops it
        on :meth:`close`); ``"host:port"`` or ``"ray://host:port"`` joins an
        existing cluster.
    workers
        CPUs of the local runtime (default: the machine's cores); ignored when
        joining a cluster (its CPUs are counted).
    max_retries
        How many times a task is submitted again after its worker died.
    in_flight_per_worker
        Tasks submitted ahead per worker (bounded with ``ray.wait``).
    """

    def __init__(
        self,
        address: str = "auto",
        workers: int | None = None,
        *,
        max_retries: int = 2,
        in_flight_per_worker: int = 2,
    ) -> None:
        if not isinstance(address, str) or not (address == "auto" or _ADDRESS.match(address)):
            raise ValidationError(
                f"--ray {address!r}: expected 'auto' or the address of a Ray cluster "
                "as host:port (or ray://host:port)"
            )
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValidationError(f"workers: expected an integer >= 1, got {workers!r}")
        ray = _ray_module()
        self.address = address
        self.max_retries = max_retries
        self._started = False
        if address != "auto":
            _probe(address)
        if ray.is_initialized():
            pass  # a runtime this process already joined: used as it is, left running
        elif address == "auto":
            ray.init(
                num_cpus=workers or os.cpu_count() or 1, include_dashboard=False,
                log_to_driver=False, configure_logging=False,
                runtime_env={"env_vars": _worker_env()},
            )  # fmt: skip
            self._started = True
        else:
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except Exception as e:  # Ray raises ConnectionError, RuntimeError, ...
                raise AiguilleurError(
                    f"--ray {address}: cannot join the Ray cluster ({' '.join(str(e).split())})"
                ) from None
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self._workers = max(1, cpus)
        self.in_flight = in_flight_per_worker * self._workers
        self._refs: dict[str, Any] = {}

    @property
    def kind(self) -> str:
        return "ray"

    @property
    def workers(self) -> int:
        return self._workers

    loses_all = False

    def run(
        self,
        fn: Callable[[Any, Any], Any],
        items: Sequence[Any],
        shared: Any = None,
        *,
        batch_size: int = 1,
        on_result: OnResult | None = None,
    ) -> RunResult[Any]:
        return _run_one(self.fanout(), fn, items, shared, batch_size, on_result)

    def fanout(self) -> Fanout:
        return Fanout(self)

    def _ship(self, shared: Any, payload: bytes, key: str) -> Any:
        ref = self._refs.pop(key, None)
        if ref is None:
            # each version of a shared value goes into the object store once
            ref = _ray_module().put(shared)
            while len(self._refs) >= _RAY_KEEP:
                del self._refs[next(iter(self._refs))]
        self._refs[key] = ref  # most recent last
        return ref

    def _submit(self, fn: Callable[[Any, Any], Any], handle: Any, items: list[Any]) -> Any:
        return _ray_remote(_ray_module()).remote(fn, handle, items)

    def _wait(self, tokens: list[Any]) -> list[Any]:
        ready, _ = _ray_module().wait(tokens, num_returns=1)
        return list(ready)

    def _collect(self, token: Any) -> tuple[list[Any], float]:
        ray = _ray_module()
        from ray.exceptions import RayTaskError

        try:
            res, dt, _pid = ray.get(token)
        except RayTaskError as e:
            # fn raised: that is the answer, not a lost worker
            cause = e.as_instanceof_cause()  # type: ignore[no-untyped-call,unused-ignore]
            raise cause from None
        except Exception as e:  # WorkerCrashedError, NodeDiedError, ObjectLostError
            raise _Lost(f"{type(e).__name__}: {' '.join(str(e).split())}") from None
        return res, dt

    def _reset(self) -> None:
        return None

    def close(self) -> None:
        self._refs = {}
        if self._started:
            ray = _ray_module()
            with contextlib.suppress(Exception):
                ray.shutdown()
            self._started = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(ray: str | None = None, workers: int | None = None) -> Executor:
    """The executor the command line asks for: Ray at ``ray`` when given, else a local pool.

    ``workers=1`` without Ray gives the in-process :class:`SerialExecutor`.
    """
    if ray is not None:
        return RayExecutor(ray, workers)
    if workers == 1:
        return SerialExecutor(roundtrip=False)
    return LocalExecutor(workers)
