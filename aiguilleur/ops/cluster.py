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
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
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


def _batches(n: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _run_batch(
    fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any]
) -> tuple[list[Any], float]:
    """Run one task: ``fn`` on each item of the batch; results and time inside ``fn``."""
    t0 = time.perf_counter()
    out = [fn(shared, it) for it in items]
    return out, time.perf_counter() - t0


def _key_of(payload: bytes) -> str:
    return hashlib.sha1(payload).hexdigest()[:16]


# -- in-process --------------------------------------------------------------------------


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

    def run(
        self,
        fn: Callable[[Any, Any], Any],
        items: Sequence[Any],
        shared: Any = None,
        *,
        batch_size: int = 1,
        on_result: OnResult | None = None,
    ) -> RunResult[Any]:
        size = _check_batch(batch_size)
        t0 = time.perf_counter()
        payload = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
        if self.roundtrip:
            shared = pickle.loads(payload)
        ship = time.perf_counter() - t0
        out: list[Any] = [None] * len(items)
        busy = 0.0
        spans = _batches(len(items), size)
        for a, b in spans:
            res, dt = _run_batch(fn, shared, items[a:b])
            busy += dt
            if self.roundtrip:
                res = pickle.loads(pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL))
            for k, r in enumerate(res):
                out[a + k] = r
                if on_result is not None:
                    on_result(a + k, r)
        stats = RunStats(
            "serial", 1, len(items), len(spans), size, 0, (), time.perf_counter() - t0,
            ship, len(payload), busy, 1,
        )  # fmt: skip
        return RunResult(tuple(out), stats)

    def close(self) -> None:
        return None


# -- local process pool --------------------------------------------------------------------

# per worker process: the shared values read so far, by key (one at a time is enough)
_WORKER_SHARED: dict[str, Any] = {}


def _pool_task(
    fn: Callable[[Any, Any], Any], path: str, key: str, items: Sequence[Any]
) -> tuple[list[Any], float, int]:
    """A task on a pool worker: the shared value is read from ``path`` once per key."""
    shared = _WORKER_SHARED.get(key)
    if shared is None and key not in _WORKER_SHARED:
        with open(path, "rb") as fh:
            shared = pickle.load(fh)
        _WORKER_SHARED.clear()
        _WORKER_SHARED[key] = shared
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

    def run(
        self,
        fn: Callable[[Any, Any], Any],
        items: Sequence[Any],
        shared: Any = None,
        *,
        batch_size: int = 1,
        on_result: OnResult | None = None,
    ) -> RunResult[Any]:
        size = _check_batch(batch_size)
        t0 = time.perf_counter()
        payload = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
        key = _key_of(payload)
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="aiguilleur-pool-")
        path = os.path.join(self._dir, f"{key}.pkl")
        if not os.path.exists(path):
            with open(path, "wb") as fh:
                fh.write(payload)
        ship = time.perf_counter() - t0
        spans = _batches(len(items), size)
        out: list[Any] = [None] * len(items)
        attempts = [0] * len(spans)
        pending = list(range(len(spans)))[::-1]  # a stack: pop() gives the first span
        running: dict[Future[tuple[list[Any], float, int]], int] = {}
        busy, tasks, retries = 0.0, 0, 0
        failures: list[str] = []

        def collect(fut: Future[tuple[list[Any], float, int]], j: int) -> bool:
            """Store a finished task's results; False when its worker died."""
            nonlocal busy, retries
            try:
                res, dt, _pid = fut.result()
            except BrokenProcessPool as e:
                failures.append(f"task {j}: a worker process died ({' '.join(str(e).split())})")
                if attempts[j] > self.max_retries:
                    self._reset_pool()
                    raise WorkerLostError(
                        f"task {j} (items {spans[j][0]}..{spans[j][1] - 1}): its worker "
                        f"died {attempts[j]} times; giving up"
                    ) from None
                pending.append(j)
                retries += 1
                return False
            busy += dt
            a = spans[j][0]
            for k, r in enumerate(res):
                out[a + k] = r
                if on_result is not None:
                    on_result(a + k, r)
            return True

        while pending or running:
            pool = self._ensure_pool()
            while pending and len(running) < self.in_flight:
                j = pending[-1]
                a, b = spans[j]
                try:
                    fut = pool.submit(_pool_task, fn, path, key, list(items[a:b]))
                except BrokenProcessPool:
                    break
                pending.pop()
                running[fut] = j
                attempts[j] += 1
                tasks += 1
            if not running:
                self._reset_pool()
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                broken |= not collect(fut, running.pop(fut))
            if broken:
                # the tasks still on the broken pool finish or fail with it: collect them all
                wait(list(running))
                for fut, j in list(running.items()):
                    collect(fut, j)
                running.clear()
                self._reset_pool()
        stats = RunStats(
            "local", self._workers, len(items), tasks, size, retries, tuple(failures),
            time.perf_counter() - t0, ship, len(payload), busy, self.in_flight,
        )  # fmt: skip
        return RunResult(tuple(out), stats)

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

    def run(
        self,
        fn: Callable[[Any, Any], Any],
        items: Sequence[Any],
        shared: Any = None,
        *,
        batch_size: int = 1,
        on_result: OnResult | None = None,
    ) -> RunResult[Any]:
        ray = _ray_module()
        from ray.exceptions import RayTaskError

        size = _check_batch(batch_size)
        remote = _ray_remote(ray)
        t0 = time.perf_counter()
        payload = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
        key = _key_of(payload)
        ref = self._refs.get(key)
        if ref is None:
            # the compiled model goes into the object store once per version
            ref = ray.put(shared)
            self._refs = {key: ref}
        ship = time.perf_counter() - t0
        spans = _batches(len(items), size)
        out: list[Any] = [None] * len(items)
        attempts = [0] * len(spans)
        pending = list(range(len(spans)))[::-1]
        running: dict[Any, int] = {}
        busy, tasks, retries = 0.0, 0, 0
        failures: list[str] = []
        while pending or running:
            while pending and len(running) < self.in_flight:
                j = pending.pop()
                a, b = spans[j]
                running[remote.remote(fn, ref, list(items[a:b]))] = j
                attempts[j] += 1
                tasks += 1
            ready, _ = ray.wait(list(running), num_returns=1)
            for r in ready:
                j = running.pop(r)
                try:
                    res, dt, _pid = ray.get(r)
                except RayTaskError as e:
                    # fn raised: that is the answer, not a lost worker
                    cause = e.as_instanceof_cause()  # type: ignore[no-untyped-call,unused-ignore]
                    raise cause from None
                except Exception as e:  # WorkerCrashedError, NodeDiedError, ObjectLostError
                    failures.append(f"task {j}: {type(e).__name__}: {' '.join(str(e).split())}")
                    if attempts[j] > self.max_retries:
                        raise WorkerLostError(
                            f"task {j} (items {spans[j][0]}..{spans[j][1] - 1}): lost "
                            f"{attempts[j]} times on Ray; giving up"
                        ) from None
                    pending.append(j)
                    retries += 1
                    continue
                busy += dt
                a = spans[j][0]
                for k, v in enumerate(res):
                    out[a + k] = v
                    if on_result is not None:
                        on_result(a + k, v)
        stats = RunStats(
            "ray", self._workers, len(items), tasks, size, retries, tuple(failures),
            time.perf_counter() - t0, ship, len(payload), busy, self.in_flight,
        )  # fmt: skip
        return RunResult(tuple(out), stats)

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
