"""Solving a :class:`RoutingProblem` with PyVRP on every core (private).

PyVRP 0.14's engine is an iterated local search (ILS) with late-acceptance
hill climbing: one core per run. :func:`solve` uses ``workers`` processes:

* small instances (fewer than 200 clients): diversified full searches
  (different seeds and perturbation strengths) restarted from the best
  solution so far at each exchange point;
* larger ones: a Clarke-Wright savings start for plain CVRPs (PyVRP's random
  start plus a full local search costs seconds at 1,000 clients), a first
  epoch of full searches, then rounds in which each worker improves its own
  sector of the best plan (whole routes around the depot, the cut rotating
  every round) and the sectors are merged. An ILS iteration costs about the
  same on half the instance as on all of it, so two cores improve one plan
  about twice as fast instead of racing two.

The best solution, as recomputed by the independent checker, is returned.

Before searching, orders that no vehicle could serve on its own (a demand
above every capacity, a window that no vehicle can reach from its depot and
still get back in its shift) are set aside and reported as dropped with the
reason: an operational fact, not a failure of the search.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
import warnings
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import SolverError, ValidationError
from aiguilleur.logistics._vrp_check import check_plan
from aiguilleur.logistics._vrp_problem import (
    UNBOUNDED,
    PlannedRoute,
    RoutingProblem,
    RoutingSolution,
)

__all__ = [
    "MAX_SEED",
    "MAX_TIME_LIMIT_S",
    "MAX_WORKERS",
    "SolveSettings",
    "check_search_limits",
    "from_pyvrp_routes",
    "run_searches",
    "solve",
    "unservable_orders",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
RouteList = list[tuple[int, list[int]]]  # (PyVRP vehicle type, client indices)

# Perturbation strengths of the diversified workers: PyVRP's default first.
_PERTURBATIONS = ((1, 25), (1, 12), (2, 40), (1, 18))
_MARGIN_S = 0.15  # kept back per epoch for pickling the answer home

#: Stated maxima of the search settings (a day of search, 64 processes, a 31-bit seed:
#: workers use ``seed + 1000 w + 7919 e``, which must stay within PyVRP's 32-bit seed).
MAX_TIME_LIMIT_S = 86_400.0
MAX_WORKERS = 64
MAX_SEED = 2**31 - 1


def check_search_limits(
    time_limit_s: Any, seed: Any, workers: Any, what: str = "time_limit_s"
) -> None:
    """Raise :class:`ValidationError` unless the limits of a search are finite and in range."""
    t = time_limit_s
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise ValidationError(f"{what} must be a finite number of seconds, got {t!r}")
    if not 0 < t <= MAX_TIME_LIMIT_S:
        raise ValidationError(f"{what} must be in (0, {MAX_TIME_LIMIT_S:g}] seconds, got {t!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValidationError(f"seed must be an integer in 0..{MAX_SEED}, got {seed!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= MAX_WORKERS:
        raise ValidationError(
            f"workers must be an integer in 0..{MAX_WORKERS} (0: one per core), got {workers!r}"
        )


@dataclass(frozen=True)
class SolveSettings:
    """How long and how :func:`solve` searches.

    Parameters
    ----------
    time_limit_s
        Wall time for the whole call, preparation included.
    seed
        Seed of the first search; worker ``w`` uses ``seed + 1000 w``.
    workers
        Parallel searches (processes). ``0`` means one per core.
    exchanges
        How many times the workers restart from the best solution found so far.
        ``None``: one exchange at 60 % of the time when the limit is at least
        5 s, none below.

    Limits are finite and stated: ``0 < time_limit_s <= 86400``,
    ``0 <= seed <= 2**31 - 1``, ``0 <= workers <= 64``; anything else raises
    :class:`~aiguilleur.errors.ValidationError`.
    """

    time_limit_s: float = 10.0
    seed: int = 1
    workers: int = 0
    exchanges: int | None = None

    def __post_init__(self) -> None:
        check_search_limits(self.time_limit_s, self.seed, self.workers)
        if self.exchanges is not None and (
            isinstance(self.exchanges, bool)
            or not isinstance(self.exchanges, int)
            or not 0 <= self.exchanges <= 1000
        ):
            raise ValidationError(
                f"exchanges must be a non-negative integer, got {self.exchanges!r}"
            )

    def n_workers(self) -> int:
        """The number of parallel searches actually used."""
        import os

        n = self.workers or len(os.sched_getaffinity(0))
        return max(1, min(n, MAX_WORKERS))


# -- screening ---------------------------------------------------------------------------


def unservable_orders(problem: RoutingProblem) -> dict[int, str]:
    """Orders that no vehicle can serve even alone, with the reason."""
    p = problem
    out: dict[int, str] = {}
    avail = p.vehicle_count > 0
    if not avail.any():
        return {i: "no vehicle is available" for i in range(p.n_orders)}
    cap = int(p.vehicle_capacity[avail].max())
    for i in np.flatnonzero(p.order_demand > cap):
        out[int(i)] = (
            f"demand {int(p.order_demand[i])} exceeds every vehicle's capacity (largest {cap})"
        )
    k = np.flatnonzero(avail)
    sd = p.a("vehicle_start_depot")[k]
    ed = p.a("vehicle_end_depot")[k]
    start = np.maximum(p.a("vehicle_tw_early_s")[k], p.a("depot_tw_early_s")[sd])
    back_by = np.minimum(p.a("vehicle_tw_late_s")[k], p.a("depot_tw_late_s")[ed])
    loc = p.order_location
    # (orders, types): earliest service start, then back at the depot.
    arr = start[None, :] + p.duration_s[p.depot_location[sd]][:, loc].T
    begin = np.maximum(arr, p.a("order_tw_early_s")[:, None])
    back = begin + p.a("order_service_s")[:, None] + p.duration_s[loc][:, p.depot_location[ed]]
    fits = p.order_demand[:, None] <= p.vehicle_capacity[k][None, :]
    ok = (begin <= p.a("order_tw_late_s")[:, None]) & (back <= back_by[None, :]) & fits
    dur = back - np.maximum(start[None, :], begin - p.duration_s[p.depot_location[sd]][:, loc].T)
    ok &= dur <= p.a("vehicle_max_duration_s")[k][None, :]
    for i in np.flatnonzero(~ok.any(axis=1)):
        if int(i) not in out:
            out[int(i)] = (
                "no vehicle can reach it within its time window and get back within its shift"
            )
    return out


def _subset(problem: RoutingProblem, keep: IntArray) -> RoutingProblem:
    """The same problem restricted to the orders ``keep`` (in that order)."""
    p = problem
    return p.replace(
        order_location=p.order_location[keep],
        order_demand=p.order_demand[keep],
        order_service_s=p.a("order_service_s")[keep],
        order_tw_early_s=p.a("order_tw_early_s")[keep],
        order_tw_late_s=p.a("order_tw_late_s")[keep],
        order_required=p.a("order_required")[keep],
        order_penalty=p.a("order_penalty")[keep],
        order_priority=p.a("order_priority")[keep],
        order_id=tuple(p.order_id[i] for i in keep),
    )


# -- worker processes that never outlive the command ------------------------------------

_PR_SET_PDEATHSIG = 1


def _worker_init(parent_pid: int) -> None:
    """Initializer of every search worker: exit as soon as the parent process dies.

    A supervisor or the out-of-memory killer may SIGKILL the command; its
    workers would otherwise search on as orphans for their whole time limit.
    On Linux the kernel sends SIGKILL to the worker when its parent dies
    (``prctl(PR_SET_PDEATHSIG)``); everywhere, a daemon thread checks the
    parent's pid every 0.2 s as a fallback. Ctrl-C is left to the parent,
    which stops its workers itself.
    """
    import os
    import signal
    import sys
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no libc with prctl: the watchdog remains
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watchdog() -> None:
        while True:
            time.sleep(0.2)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watchdog, name="aiguilleur-parent-watchdog", daemon=True).start()


def _stop_pool(pool: ProcessPoolExecutor, *, kill: bool) -> None:
    """Shut the pool down; with ``kill``, end its workers now instead of waiting for them."""
    if kill:
        procs = list(getattr(pool, "_processes", {}).values())
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.join(timeout=2.0)
    else:
        pool.shutdown(wait=True, cancel_futures=True)


# -- the searches ------------------------------------------------------------------------


class _Deadline:
    """PyVRP stopping criterion: an absolute ``time.monotonic()`` deadline.

    PyVRP's ``MaxRuntime`` starts its clock at the first iteration, after the
    initial local search; a deadline keeps the whole call within the budget.
    """

    def __init__(self, t_end: float) -> None:
        self.t_end = t_end

    def __call__(self, best_cost: float) -> bool:
        return time.monotonic() >= self.t_end


def _search(
    data: Any, t_end: float, seed: int, pert: tuple[int, int], init: RouteList | None
) -> tuple[RouteList, int, bool, int]:
    """One PyVRP search until ``t_end`` (``time.monotonic()``; runs in a worker process)."""
    import logging

    import pyvrp
    from pyvrp.exceptions import PenaltyBoundWarning
    from pyvrp.search import PerturbationParams

    logging.getLogger("pyvrp").setLevel(logging.WARNING)
    params = pyvrp.SolveParams(perturbation=PerturbationParams(*pert))
    initial = None if init is None else _to_pyvrp_solution(data, init)
    with warnings.catch_warnings():
        # PyVRP warns when it cannot find a feasible solution (more required orders
        # than the fleet can serve); the caller repairs that case and says why.
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        res = pyvrp.solve(
            data,
            _Deadline(t_end),
            seed=seed,
            collect_stats=False,
            params=params,
            initial_solution=initial,
        )
    best = res.best
    routes = [
        (int(r.vehicle_type()), [int(a.idx) for a in r if a.is_client()]) for r in best.routes()
    ]
    cost = int(res.cost()) if best.is_feasible() else int(np.iinfo(np.int64).max)
    return routes, cost, bool(best.is_feasible()), int(res.num_iterations)


def _to_pyvrp_solution(data: Any, routes: RouteList) -> Any:
    import pyvrp

    rs = [
        pyvrp.Route(data, [pyvrp.Activity(pyvrp.ActivityType.CLIENT, c) for c in visits], vt)
        for vt, visits in routes
        if visits
    ]
    return pyvrp.Solution(data, rs)


def _penalised(data: Any, routes: RouteList) -> tuple[bool, int]:
    """PyVRP's own view of a route list: feasible, cost (for picking among workers)."""
    sol = _to_pyvrp_solution(data, routes)
    import pyvrp

    ce = pyvrp.CostEvaluator([1_000_000], 1_000_000, 1_000_000)
    return bool(sol.is_feasible()), int(ce.penalised_cost(sol))


def savings_routes(data: Any, k_nearest: int = 40) -> RouteList | None:
    """Clarke and Wright's parallel savings on a granular neighbour list, for plain CVRPs.

    Only for one depot, one vehicle type, no time windows and one load
    dimension (``None`` otherwise): a good start for large instances, where
    PyVRP's random start plus full local search costs seconds.
    """
    if data.num_depots != 1 or data.num_vehicle_types != 1 or data.has_time_windows():
        return None
    if data.num_load_dimensions != 1 or data.num_clients < 3:
        return None
    vt = data.vehicle_type(0)
    if vt.max_distance < np.iinfo(np.int64).max or vt.shift_duration < np.iinfo(np.int64).max:
        return None
    cap = int(vt.capacity[0])
    clients = data.clients()
    if any(not c.required for c in clients):
        return None
    loc = np.array([c.location for c in clients], np.int64)
    q = np.array([c.delivery[0] for c in clients], np.int64)
    dist = data.distance_matrix(0)
    d0 = int(data.depot(0).location)
    n = len(loc)
    dcc = dist[np.ix_(loc, loc)].astype(np.float64)
    np.fill_diagonal(dcc, np.inf)
    k = min(k_nearest, n - 1)
    nb = np.argpartition(dcc, k - 1, axis=1)[:, :k]
    a = np.repeat(np.arange(n), k)
    b = nb.ravel()
    sav = dist[d0, loc[a]] + dist[loc[b], d0] - dist[loc[a], loc[b]]
    route_of = np.arange(n)
    routes: dict[int, list[int]] = {i: [i] for i in range(n)}
    load = {i: int(q[i]) for i in range(n)}
    for t in np.argsort(-sav, kind="stable"):
        if sav[t] <= 0:
            break
        i, j = int(a[t]), int(b[t])
        ri, rj = int(route_of[i]), int(route_of[j])
        if ri == rj or load[ri] + load[rj] > cap:
            continue
        A, B = routes[ri], routes[rj]
        if A[-1] == i and B[0] == j:
            new = A + B
        elif A[0] == i and B[-1] == j:
            new = B + A
        elif A[-1] == i and B[-1] == j:
            new = A + B[::-1]
        elif A[0] == i and B[0] == j:
            new = A[::-1] + B
        else:
            continue
        routes[ri] = new
        load[ri] += load.pop(rj)
        del routes[rj]
        route_of[B] = ri
    if len(routes) > vt.num_available:
        return None
    return [(0, r) for r in routes.values()]


def _route_angles(data: Any, routes: RouteList) -> FloatArray | None:
    """Polar angle of each route's centroid around the first depot (``None`` without coordinates).

    One centre for all routes: in a re-plan, vehicles start where they are, so
    their own start depots would scatter the sectors.
    """
    xy = np.array([(loc.x, loc.y) for loc in data.locations()], dtype=np.float64)
    if not np.ptp(xy, axis=0).any():
        return None
    cl = np.array([c.location for c in data.clients()], dtype=np.int64)
    dep = np.array([d.location for d in data.depots()], dtype=np.int64)
    out = np.empty(len(routes))
    for r, (_vt, visits) in enumerate(routes):
        c = xy[cl[np.asarray(visits, np.int64)]].mean(axis=0)
        d = xy[dep[0]]
        out[r] = math.atan2(c[1] - d[1], c[0] - d[0])
    return out


def _split(
    data: Any, routes: RouteList, angles: FloatArray, n_parts: int, offset: float
) -> list[tuple[Any, IntArray, RouteList]]:
    """Cut the plan into ``n_parts`` sectors of whole routes with about as many clients each.

    Each part is a sub-problem with that part's clients only (same locations,
    matrices and vehicle types; spare vehicles shared out), its client index
    map, and its routes as the starting solution.
    """
    routes = [r for r in routes if r[1]]
    order = np.argsort((angles - offset) % (2 * math.pi), kind="stable")
    sizes = np.array([len(routes[r][1]) for r in order])
    cuts = np.searchsorted(np.cumsum(sizes), sizes.sum() * np.arange(1, n_parts) / n_parts)
    parts = np.split(order, cuts)
    served = {c for _, v in routes for c in v}
    loose = [c for c in range(data.num_clients) if c not in served]  # optional, left out
    clients = data.clients()
    types = data.vehicle_types()
    used = np.zeros(len(types), np.int64)
    for vt, _ in routes:
        used[vt] += 1
    spare = np.array([t.num_available for t in types]) - used
    out = []
    for g, part in enumerate(parts):
        idx = [c for r in part for c in routes[r][1]] + loose[g::n_parts]
        cmap = np.asarray(idx, np.int64)
        pos = {int(c): k for k, c in enumerate(idx)}
        in_part = np.zeros(len(types), np.int64)
        for r in part:
            in_part[routes[r][0]] += 1
        share = spare // n_parts + (g < spare % n_parts).astype(np.int64)
        # A type with no vehicle left for this part stays (PyVRP needs >= 1) but cannot move.
        n_av = in_part + share
        vts = [
            t.replace(num_available=max(int(n_av[k]), 1), max_distance=None if n_av[k] > 0 else 0)
            for k, t in enumerate(types)
        ]
        sub = data.replace(clients=[clients[c] for c in idx], vehicle_types=vts)
        init = [(routes[r][0], [pos[c] for c in routes[r][1]]) for r in part]
        out.append((sub, cmap, init))
    return out


def run_searches(
    data: Any,
    time_limit_s: float,
    *,
    seed: int = 1,
    workers: int = 1,
    exchanges: int | None = None,
    init: RouteList | None = None,
    decompose: bool | None = None,
) -> tuple[RouteList, int]:
    """Run diversified PyVRP searches on ``data`` for ``time_limit_s`` of wall time.

    With several workers and no decomposition, every epoch runs one full
    search per worker (different seeds and perturbation strengths) from the
    best solution so far, and keeps the best. With decomposition (default for
    200 clients or more with coordinates), a first epoch of full searches is
    followed by rounds in which each worker improves its own sector of the
    best plan (whole routes around the depot, the cut rotating every round);
    the sectors' results are merged, so two cores improve one plan instead of
    racing two. Returns the best route list (PyVRP indices) and the total
    iterations.
    """
    t0 = time.monotonic()
    t_end = t0 + time_limit_s
    if exchanges is None:
        exchanges = 1 if time_limit_s >= 5.0 and workers > 1 else 0
    if decompose is None:
        decompose = workers > 1 and data.num_clients >= 200 and time_limit_s >= 4.0
    # Epoch plan: (end time, decomposed?).
    epochs: list[tuple[float, bool]] = []
    if decompose and init is None:
        init = savings_routes(data)
    if decompose:
        first = t0 + 0.3 * time_limit_s
        epochs.append((first, False))
        n_rounds = max(1, int((t_end - first) / max(1.5, time_limit_s / 8)))
        for r in range(1, n_rounds + 1):
            epochs.append((first + (t_end - first) * r / n_rounds, True))
    else:
        fractions = [0.6, 0.4] if exchanges == 1 else [1.0 / (exchanges + 1)] * (exchanges + 1)
        acc = 0.0
        for f in fractions:
            acc += f
            epochs.append((t0 + acc * time_limit_s, False))
    best = init
    best_key: tuple[bool, int] | None = None if init is None else _penalised(data, init)
    iters = 0
    pool: ProcessPoolExecutor | None = None
    if workers > 1:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )

    def run(args_list: list[tuple[Any, ...]]) -> list[tuple[RouteList, int, bool, int]]:
        if pool is None:
            return [_search(*a) for a in args_list]
        jobs: list[Future[tuple[RouteList, int, bool, int]]] = [
            pool.submit(_search, *a) for a in args_list
        ]
        return [j.result() for j in jobs]

    finished = False
    try:
        for e, (end, split) in enumerate(epochs):
            share = end - time.monotonic()
            margin = 0.01 if pool is None else min(_MARGIN_S, 0.1 * max(share, 0.0))
            epoch_end = time.monotonic() + max(share - margin, 0.02)
            angles = None if not split or best is None else _route_angles(data, best)
            if split and best is not None and angles is not None and best_key and best_key[0]:
                offset = e * 2.399963  # the golden angle: cuts never repeat
                parts = _split(data, best, angles, workers, offset)
                res = run(
                    [
                        (
                            sub,
                            epoch_end,
                            seed + 1000 * w + 7919 * e,
                            _PERTURBATIONS[w % 4],
                            sub_init,
                        )
                        for w, (sub, _, sub_init) in enumerate(parts)
                    ]
                )
                merged: RouteList = []
                for (_, cmap, _), (routes, _c, _f, it) in zip(parts, res, strict=True):
                    iters += it
                    merged.extend((vt, [int(cmap[c]) for c in v]) for vt, v in routes if v)
                candidates = [merged]
            else:
                res = run(
                    [
                        (data, epoch_end, seed + 1000 * w + 7919 * e, _PERTURBATIONS[w % 4], best)
                        for w in range(workers)
                    ]
                )
                iters += sum(r[3] for r in res)
                candidates = [r[0] for r in res]
            for routes in candidates:
                key = _penalised(data, routes)
                # Feasible first, then the lower penalised cost.
                if best_key is None or (not key[0], key[1]) < (not best_key[0], best_key[1]):
                    best, best_key = routes, key
        finished = True
    except Exception as exc:  # a worker crashed or could not be started
        raise SolverError(f"PyVRP search failed: {exc}") from exc
    finally:
        if pool is not None:
            # Interrupted (Ctrl-C) or failed: end the workers now, leave no process behind.
            _stop_pool(pool, kill=not finished)
    assert best is not None
    return best, iters


def from_pyvrp_routes(
    problem: RoutingProblem, routes: RouteList, order_map: IntArray
) -> list[PlannedRoute]:
    """PyVRP route lists back to :class:`PlannedRoute` values with vehicle names."""
    type_map = problem.pyvrp_type_index()
    counters: dict[int, int] = {}
    out = []
    for vt, visits in sorted(routes, key=lambda r: (int(type_map[r[0]]), r[1][:1])):
        k = int(type_map[vt])
        n = counters.get(k, 0)
        counters[k] = n + 1
        out.append(
            PlannedRoute(
                vehicle_type=k,
                orders=order_map[np.asarray(visits, np.int64)],
                vehicle=f"{problem.vehicle_type_id[k]}#{n}",
            )
        )
    return out


def solve(problem: RoutingProblem, settings: SolveSettings | None = None) -> RoutingSolution:
    """Plan routes for ``problem`` within ``settings.time_limit_s`` seconds of wall time.

    Orders no vehicle can serve alone are dropped with the reason; optional
    orders the search leaves out are dropped as "not worth its penalty";
    required orders it cannot fit are dropped as "the fleet could not serve
    it" and make the plan infeasible. The independent checker decides
    ``feasible`` and recomputes the cost.
    """
    if not isinstance(problem, RoutingProblem):
        raise ValidationError(f"problem: expected a RoutingProblem, got {type(problem).__name__}")
    if settings is not None and not isinstance(settings, SolveSettings):
        raise ValidationError(f"settings: expected SolveSettings, got {type(settings).__name__}")
    settings = settings or SolveSettings()
    t0 = time.perf_counter()
    dropped = unservable_orders(problem)
    keep = np.array([i for i in range(problem.n_orders) if i not in dropped], np.int64)
    routes: list[PlannedRoute] = []
    iters = 0
    if len(keep) and problem.n_vehicles > 0:
        sub = _subset(problem, keep)
        data = sub.to_pyvrp()
        budget = settings.time_limit_s - (time.perf_counter() - t0)
        best, iters = run_searches(
            data,
            max(budget, 0.1),
            seed=settings.seed,
            workers=settings.n_workers(),
            exchanges=settings.exchanges,
        )
        planned = from_pyvrp_routes(sub, best, np.arange(len(keep), dtype=np.int64))
        served_sub = {int(o) for r in planned for o in r.orders}
        missing = [i for i in range(sub.n_orders) if i not in served_sub]
        if not check_plan(sub, planned, missing).feasible:
            # More required work than the fleet can do: drop what does not fit.
            from aiguilleur.logistics._vrp_repair import repair_plan

            planned, _ = repair_plan(sub, planned)
        routes = [
            PlannedRoute(r.vehicle_type, keep[r.orders], r.vehicle, r.start_s) for r in planned
        ]
    served = {int(o) for r in routes for o in r.orders}
    req = problem.a("order_required")
    for i in range(problem.n_orders):
        if i not in served and i not in dropped:
            dropped[i] = "not worth its penalty" if not req[i] else "the fleet could not serve it"
    return finish(
        problem,
        routes,
        dropped,
        time.perf_counter() - t0,
        f"aiguilleur (PyVRP x{settings.n_workers()})",
        iters,
    )


def finish(
    problem: RoutingProblem,
    routes: list[PlannedRoute],
    dropped: dict[int, str],
    time_s: float,
    solver: str,
    iterations: int = 0,
    capacities: dict[int, int] | None = None,
) -> RoutingSolution:
    """Check a plan independently and wrap it as a :class:`RoutingSolution`."""
    rep = check_plan(problem, routes, dropped, capacities=capacities)
    viol = list(rep.violations)
    # A required order dropped as unservable is an operational fact; any other is a failure.
    for i in rep.required_dropped:
        if not _is_fact(dropped.get(i, "")):
            viol.append(f"required order {problem.order_id[i]} not served: {dropped.get(i, '')}")
    objective = rep.objective
    return RoutingSolution(
        routes=tuple(routes),
        dropped=dict(sorted(dropped.items())),
        objective=int(objective),
        cost=round(objective * problem.cost_unit, 6) if objective < UNBOUNDED else math.inf,
        feasible=not viol,
        violations=tuple(viol),
        time_s=time_s,
        solver=solver,
        iterations=iterations,
        dropped_required=tuple(sorted(int(i) for i in rep.required_dropped)),
    )


_FACTS = ("demand ", "no vehicle", "vehicle broke down", "depot ")


def _is_fact(reason: str) -> bool:
    return reason.startswith(_FACTS)
