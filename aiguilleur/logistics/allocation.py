"""Allocation of scarce supplies from depots to demand points, by priority.

A transportation problem solved with HiGHS (``highspy``), assembled as sparse
matrices. Variables::

    x[i, j]   units shipped from depot i to point j (only on routes that exist),
              0 <= x[i, j] <= route_capacity[i, j]
    s[j]      shortfall at point j, 0 <= s[j] <= demand[j]
    z[c]      largest shortfall fraction within priority class c (fair shares)

Rows::

    supply    sum_j x[i, j]         <= supply[i]
    demand    sum_i x[i, j] + s[j]   = demand[j]       (never more than asked)
    fairness  s[j] - demand[j] z[c] <= 0                (j in class c)

Priorities are lexicographic, as an operator means them ("a hospital before
a shop"): class by class, most urgent first, the total shortfall of the class
is minimised and then held; with fair shares on, the largest shortfall
fraction within the class is minimised next and held, so that two hospitals
are short by the same fraction rather than one of them going without. Only
then is the transport cost minimised. Each stage re-solves the same HiGHS
model with a new objective and one more row (no big-M weights, so no
scaling trouble). Flows are whole units by default (a small MIP; without
fair shares the transportation LP already has integral vertices).

:func:`delivery_orders` turns an allocation into orders (point, quantity,
time window, priority) for the fleet, split to fit a vehicle.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from aiguilleur.errors import SolverError, ValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Allocation",
    "AllocationOptions",
    "DeliveryOrder",
    "allocate",
    "delivery_orders",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _frozen(a: npt.ArrayLike, dtype: Any) -> Any:
    arr: npt.NDArray[Any] = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class AllocationOptions:
    """Settings of :func:`allocate`.

    Parameters
    ----------
    fair_shares
        Within a priority class, minimise the largest shortfall fraction
        (after the class's total shortfall), so that shortage is shared.
    integral
        Whole units only (HiGHS's MIP solver); otherwise a plain LP.
    time_limit_s
        Wall-clock limit of all stages together; ``None`` for none.
    mip_rel_gap
        Relative gap at which a MIP stage stops (whole units: 0 is cheap).
    """

    fair_shares: bool = True
    integral: bool = True
    time_limit_s: float | None = None
    mip_rel_gap: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fair_shares", "integral"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(
                    f"{name}: expected True or False, got {getattr(self, name)!r}"
                )
        t = self.time_limit_s
        if t is not None and (
            isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 86_400
        ):
            raise ValidationError(
                f"time_limit_s: expected a number of seconds in (0, 86400] or None, got {t!r}"
            )
        g = self.mip_rel_gap
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not (0 <= g < 1):
            raise ValidationError(f"mip_rel_gap: expected a number in [0, 1), got {g!r}")


@dataclass(frozen=True, eq=False)
class Allocation:
    """What each depot sends to each point, and what is missing where.

    Attributes
    ----------
    depot_ids, point_ids
        Names of the depots and the points.
    priority
        Priority class of each point (1 = most urgent).
    supply, demand
        The inputs, in units.
    shipped
        Units from each depot (rows) to each point (columns).
    delivered
        Units each point receives.
    shortfall
        ``demand - delivered``.
    transport_cost
        Sum of cost x units shipped.
    shortfall_by_class
        Total shortfall of each priority class, most urgent first.
    solve_time_s
        Wall time of all HiGHS stages.
    """

    depot_ids: tuple[str, ...]
    point_ids: tuple[str, ...]
    priority: IntArray
    supply: FloatArray
    demand: FloatArray
    shipped: FloatArray
    delivered: FloatArray
    shortfall: FloatArray
    transport_cost: float
    shortfall_by_class: tuple[tuple[int, float], ...]
    solve_time_s: float

    @property
    def short_points(self) -> dict[str, float]:
        """Points that do not receive all they asked for, with the units missing."""
        idx = np.flatnonzero(self.shortfall > 1e-9)
        return {self.point_ids[int(j)]: float(self.shortfall[j]) for j in idx}

    @property
    def status(self) -> str:
        """``optimal`` when every point receives its demand, else ``partial`` (see
        :attr:`short_points`): every stage is solved to optimality, so the shortfall
        left is the least the supplies and routes allow."""
        return "partial" if self.short_points else "optimal"

    @property
    def ok(self) -> bool:
        """True when every point receives all it asked for."""
        return self.status == "optimal"

    @property
    def shortfall_fraction(self) -> FloatArray:
        """Shortfall over demand at each point (0 where nothing is asked)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            out: FloatArray = np.where(self.demand > 0, self.shortfall / self.demand, 0.0)
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per point: priority, demand, delivered, shortfall and its main depot."""
        import pandas as pd

        main = np.argmax(self.shipped, axis=0) if self.shipped.size else np.zeros(0, np.int64)
        has = self.shipped.sum(axis=0) > 0
        return pd.DataFrame(
            {
                "point": list(self.point_ids),
                "priority": self.priority,
                "demand": self.demand,
                "delivered": self.delivered,
                "shortfall": self.shortfall,
                "shortfall_pct": 100.0 * self.shortfall_fraction,
                "main_depot": [
                    self.depot_ids[d] if h else None for d, h in zip(main, has, strict=True)
                ],
            }
        )

    def flows_frame(self) -> pd.DataFrame:
        """One row per (depot, point) with units shipped."""
        import pandas as pd

        i, j = np.nonzero(self.shipped > 0)
        return pd.DataFrame(
            {
                "depot": [self.depot_ids[k] for k in i],
                "point": [self.point_ids[k] for k in j],
                "units": self.shipped[i, j],
            }
        )


def _vector(name: str, value: npt.ArrayLike, size: int | None = None) -> FloatArray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}: expected numbers") from None
    if arr.ndim != 1 or (size is not None and arr.shape[0] != size):
        want = f"{size} values" if size is not None else "a 1-D array"
        raise ValidationError(f"{name}: expected {want}, got shape {arr.shape}")
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValidationError(
            f"{name}[{k}] = {float(arr[k])!r}: expected a finite number >= 0", name, k
        )
    return arr


def _ids(name: str, given: Sequence[str] | None, n: int, prefix: str) -> tuple[str, ...]:
    if given is None:
        return tuple(f"{prefix}{k}" for k in range(n))
    out = tuple(str(v) for v in given)
    if len(out) != n:
        raise ValidationError(f"{name}: expected {n} ids, got {len(out)}")
    if len(set(out)) != n:
        raise ValidationError(f"{name}: ids must be unique")
    return out


def allocate(
    supply: npt.ArrayLike,
    demand: npt.ArrayLike,
    cost: npt.ArrayLike,
    *,
    priority: npt.ArrayLike | None = None,
    route_capacity: npt.ArrayLike | None = None,
    depot_ids: Sequence[str] | None = None,
    point_ids: Sequence[str] | None = None,
    options: AllocationOptions | None = None,
) -> Allocation:
    """Share scarce supplies among demand points: most urgent first, then cheapest.

    Parameters
    ----------
    supply
        Units available at each depot, shape ``(m,)``.
    demand
        Units asked by each point, shape ``(n,)``.
    cost
        Cost per unit from each depot to each point, ``(m, n)`` (travel
        time or distance from :func:`~aiguilleur.logistics.roads.travel_matrices`);
        ``inf`` where there is no route.
    priority
        Priority class of each point: 1 is the most urgent (hospital), larger
        numbers less (substation 2, shop 3, ...). Default: all equal.
    route_capacity
        Most units per route, ``(m, n)`` (``inf``: no limit; 0: no route).
    depot_ids, point_ids
        Names for the result and the orders.
    options
        :class:`AllocationOptions`.

    Returns
    -------
    Allocation
        Shortage is a result, not an error: it is reported per point.

    Raises
    ------
    ValidationError
        A negative or non-finite supply or demand, a negative cost, shapes
        that do not match (the field and index are named).
    SolverError
        HiGHS fails (time limit reached included).
    """
    opts = options or AllocationOptions()
    s_avail = _vector("supply", supply)
    d = _vector("demand", demand)
    m, n = s_avail.shape[0], d.shape[0]
    c = np.asarray(cost, dtype=np.float64)
    if c.shape != (m, n):
        raise ValidationError(f"cost: expected shape ({m}, {n}) (depots x points), got {c.shape}")
    if np.isnan(c).any() or (c < 0).any():
        i, j = np.argwhere(np.isnan(c) | (c < 0))[0]
        raise ValidationError(f"cost[{i}, {j}] = {float(c[i, j])!r}: expected a number >= 0 or inf")
    cap = (
        np.full((m, n), np.inf)
        if route_capacity is None
        else np.asarray(route_capacity, dtype=np.float64)
    )
    if cap.shape != (m, n):
        raise ValidationError(f"route_capacity: expected shape ({m}, {n}), got {cap.shape}")
    if np.isnan(cap).any() or (cap < 0).any():
        i, j = np.argwhere(np.isnan(cap) | (cap < 0))[0]
        raise ValidationError(
            f"route_capacity[{i}, {j}] = {float(cap[i, j])!r}: expected >= 0 or inf"
        )
    if priority is None:
        prio = np.ones(n, dtype=np.int64)
    else:
        p = np.asarray(priority)
        if p.shape != (n,) or not np.issubdtype(p.dtype, np.integer) or (p < 1).any():
            raise ValidationError(f"priority: expected {n} integers >= 1 (1 = most urgent)")
        prio = p.astype(np.int64)
    dep = _ids("depot_ids", depot_ids, m, "depot-")
    pts = _ids("point_ids", point_ids, n, "point-")

    # Columns: x on existing routes, s per point, z per class.
    ri, rj = np.nonzero(np.isfinite(c) & (cap > 0))
    nx = ri.shape[0]
    classes = np.unique(prio)
    cls_of = np.searchsorted(classes, prio)
    k = classes.shape[0]
    n_col = nx + n + k
    x_cols = np.arange(nx)
    s_cols = nx + np.arange(n)
    z_cols = nx + n + np.arange(k)
    col_lower = np.zeros(n_col)
    col_upper = np.concatenate([cap[ri, rj], d, np.ones(k)])

    # Rows: supply (m), demand (n), fairness (n).
    sup_rows = sp.csr_array((np.ones(nx), (ri, x_cols)), shape=(m, n_col))
    dem_rows = sp.csr_array(
        (np.ones(nx + n), (np.concatenate([rj, np.arange(n)]), np.concatenate([x_cols, s_cols]))),
        shape=(n, n_col),
    )
    fair_rows = sp.csr_array(
        (
            np.concatenate([np.ones(n), -d]),
            (
                np.concatenate([np.arange(n), np.arange(n)]),
                np.concatenate([s_cols, z_cols[cls_of]]),
            ),
        ),
        shape=(n, n_col),
    )
    a = sp.csc_array(sp.vstack([sup_rows, dem_rows, fair_rows]))
    row_lower = np.concatenate([np.full(m, -np.inf), d, np.full(n, -np.inf)])
    row_upper = np.concatenate([s_avail, d, np.full(n, np.inf)])
    col_upper[z_cols] = 0.0
    integrality = np.zeros(n_col, dtype=np.int32)

    h = _highs(opts)
    _pass(h, n_col, a, col_lower, col_upper, row_lower, row_upper, integrality)
    t0 = time.perf_counter()
    by_class: list[tuple[int, float]] = []

    def stage(cost_vec: FloatArray, what: str) -> float:
        h.changeColsCost(n_col, np.arange(n_col, dtype=np.int32), cost_vec)
        if opts.time_limit_s is not None:
            left = opts.time_limit_s - (time.perf_counter() - t0)
            if left <= 0:
                raise SolverError(f"allocation: time limit reached before {what}")
            h.setOptionValue("time_limit", left)
        h.run()
        _check(h, what)
        return float(h.getInfo().objective_function_value)

    fair_rows_at = m + n  # the fairness rows follow supply and demand; inactive until used
    for ci, cls in enumerate(classes):
        members = np.flatnonzero(cls_of == ci)
        obj = np.zeros(n_col)
        obj[s_cols[members]] = 1.0
        short = stage(obj, f"the shortfall of priority class {cls}")
        # Hold the class's shortfall at its optimum (integral by total
        # unimodularity in whole units; a hair of slack for the LP otherwise).
        held = float(round(short)) if opts.integral else short + 1e-9 * max(1.0, short)
        idx = s_cols[members].astype(np.int32)
        h.addRow(-np.inf, held, idx.shape[0], idx, np.ones(idx.shape[0]))
        by_class.append((int(cls), short))
        if opts.fair_shares and short > 1e-6:
            _fair_shares(
                h, stage, members, d, s_cols, int(z_cols[ci]), fair_rows_at, n_col, opts, cls
            )
    obj = np.zeros(n_col)
    obj[x_cols] = c[ri, rj]
    stage(obj, "the transport cost")
    x = np.asarray(h.getSolution().col_value)[: nx + n]
    if opts.integral:
        x = np.round(x)
    shipped = np.zeros((m, n))
    shipped[ri, rj] = np.maximum(x[:nx], 0.0)
    delivered = shipped.sum(axis=0)
    shortfall = np.maximum(d - delivered, 0.0)
    elapsed = time.perf_counter() - t0
    return Allocation(
        depot_ids=dep,
        point_ids=pts,
        priority=_frozen(prio, np.int64),
        supply=_frozen(s_avail, np.float64),
        demand=_frozen(d, np.float64),
        shipped=_frozen(shipped, np.float64),
        delivered=_frozen(delivered, np.float64),
        shortfall=_frozen(shortfall, np.float64),
        transport_cost=float(np.sum(shipped[ri, rj] * c[ri, rj])) if nx else 0.0,
        shortfall_by_class=tuple((cls, float(shortfall[prio == cls].sum())) for cls, _ in by_class),
        solve_time_s=elapsed,
    )


def _fair_shares(
    h: Any,
    stage: Any,
    members: IntArray,
    d: FloatArray,
    s_cols: IntArray,
    z_col: int,
    rows_at: int,
    n_col: int,
    opts: AllocationOptions,
    cls: int,
) -> None:
    """Minimise the largest shortfall fraction of a class, then hold it as bounds.

    The fairness rows ``s_j - d_j z <= 0`` of the class are switched on (and
    the shipments made whole units, a MIP, when ``opts.integral``) for this
    stage only; the result is then kept as upper bounds on the shortfalls and
    the rows switched off again, so that the following stages are plain
    transportation LPs again, whose vertices are integral.
    """
    k = members.shape[0]
    rows = (rows_at + members).astype(np.int32)
    h.changeRowsBounds(k, rows, np.full(k, -np.inf), np.zeros(k))
    h.changeColBounds(z_col, 0.0, 1.0)
    whole = np.arange(n_col, dtype=np.int32)
    n_int = int(s_cols.max()) + 1  # shipments and shortfalls come first
    if opts.integral:
        h.changeColsIntegrality(n_col, whole, _integrality(n_col, n_int, 1))
    obj = np.zeros(n_col)
    obj[z_col] = 1.0
    z = stage(obj, f"the fair shares of priority class {cls}")
    bound = d[members] * z
    if opts.integral:
        bound = np.floor(bound + 1e-6)
        h.changeColsIntegrality(n_col, whole, _integrality(n_col, n_int, 0))
    else:
        bound = bound + 1e-9 * np.maximum(1.0, d[members])
    cols = s_cols[members].astype(np.int32)
    h.changeColsBounds(k, cols, np.zeros(k), np.minimum(bound, d[members]))
    h.changeRowsBounds(k, rows, np.full(k, -np.inf), np.full(k, np.inf))
    h.changeColBounds(z_col, 0.0, 0.0)


def _integrality(n_col: int, n_int: int, value: int) -> npt.NDArray[np.uint8]:
    """Integrality flags: ``value`` for the first ``n_int`` columns, 0 for the z's."""
    out = np.zeros(n_col, dtype=np.uint8)
    out[:n_int] = value
    return out


def _highs(opts: AllocationOptions) -> Any:
    # The core object: highspy.Highs's callback set-up prints a banner on stdout.
    try:
        from highspy._core import _Highs
    except ImportError:  # a highspy without that layout: the public class
        from highspy import Highs as _Highs

    h = _Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", float(opts.mip_rel_gap))
    return h


def _pass(
    h: Any,
    n_col: int,
    a: sp.csc_array,
    col_lower: FloatArray,
    col_upper: FloatArray,
    row_lower: FloatArray,
    row_upper: FloatArray,
    integrality: npt.NDArray[np.int32],
) -> None:
    import highspy

    st = h.passModel(
        n_col,
        a.shape[0],
        int(a.nnz),
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        np.zeros(n_col),
        col_lower,
        col_upper,
        row_lower,
        row_upper,
        a.indptr[:-1].astype(np.int32),
        a.indices.astype(np.int32),
        a.data.astype(np.float64),
        integrality,
    )
    if st == highspy.HighsStatus.kError:
        raise SolverError("HiGHS rejected the allocation model (passModel returned an error)")


def _check(h: Any, what: str) -> None:
    import highspy

    ms = h.getModelStatus()
    if ms != highspy.HighsModelStatus.kOptimal:
        raise SolverError(f"allocation: HiGHS stopped on {what}: {h.modelStatusToString(ms)}")


# -- orders for the fleet -----------------------------------------------------------


@dataclass(frozen=True)
class DeliveryOrder:
    """One delivery for the fleet: a quantity from a depot to a point, within a window.

    ``to_record()`` gives it in aiguilleur's JSON order format (``id``,
    ``location``, ``demand``, ``service_s``, ``window_s``, ``priority``,
    ``penalty``).
    """

    order_id: str
    depot: str
    point: str
    quantity: float
    window_open_s: float
    window_close_s: float
    service_s: float
    priority: int
    penalty: float | None = None

    def to_record(self, location: int | str | None = None) -> dict[str, Any]:
        """The order as a JSON-ready record (``location`` defaults to the point's id)."""
        rec: dict[str, Any] = {
            "id": self.order_id,
            "location": self.point if location is None else location,
            "depot": self.depot,
            "demand": round(self.quantity),
            "service_s": self.service_s,
            "window_s": [
                self.window_open_s,
                self.window_close_s if math.isfinite(self.window_close_s) else None,
            ],
            "priority": self.priority,
        }
        if self.penalty is not None:
            rec["penalty"] = self.penalty
        return rec


def delivery_orders(
    allocation: Allocation,
    *,
    window_s: Sequence[tuple[float, float]] | tuple[float, float] = (0.0, math.inf),
    service_s: npt.ArrayLike = 0.0,
    max_quantity: float | None = None,
    penalty_by_priority: dict[int, float] | None = None,
) -> list[DeliveryOrder]:
    """The deliveries that carry out an allocation, ready for the router.

    Parameters
    ----------
    allocation
        From :func:`allocate`.
    window_s
        Time window of each point (one pair per point) or one for all, in
        seconds from the start of the plan.
    service_s
        Unloading time at each point (or one for all).
    max_quantity
        Largest quantity of one order (a vehicle's capacity): bigger
        deliveries are split into equal orders that fit.
    penalty_by_priority
        Penalty of dropping an order, per priority class; classes not listed
        (and ``None``) give required orders.

    Returns
    -------
    list of DeliveryOrder
        One per (depot, point) with units shipped (or more, when split), in
        priority order, then depot, then point. Ids are
        ``"<depot>><point>"`` plus ``"#k"`` for the parts of a split order.

    Raises
    ------
    ValidationError
        A window closes before it opens (the point is named), or the sizes do
        not match.
    """
    n = len(allocation.point_ids)
    if isinstance(window_s, tuple) and len(window_s) == 2 and not isinstance(window_s[0], tuple):
        windows = [(float(window_s[0]), float(window_s[1]))] * n
    else:
        windows = [(float(a), float(b)) for a, b in window_s]
        if len(windows) != n:
            raise ValidationError(f"window_s: expected one (open, close) per point ({n})")
    for j, (a, b) in enumerate(windows):
        if not b >= a:
            raise ValidationError(
                f"point {allocation.point_ids[j]!r}: time window closes ({b:g}) before it opens "
                f"({a:g})",
                "point",
                j,
            )
    svc = np.broadcast_to(np.asarray(service_s, dtype=np.float64), (n,))
    if max_quantity is not None and not max_quantity > 0:
        raise ValidationError(f"max_quantity: expected a positive number, got {max_quantity!r}")
    pen = penalty_by_priority or {}
    out: list[DeliveryOrder] = []
    i_s, j_s = np.nonzero(allocation.shipped > 0)
    order = np.lexsort((j_s, i_s, allocation.priority[j_s]))
    for i, j in zip(i_s[order], j_s[order], strict=True):
        units = float(allocation.shipped[i, j])
        parts = 1 if max_quantity is None else max(1, math.ceil(units / max_quantity - 1e-9))
        depot, point = allocation.depot_ids[i], allocation.point_ids[j]
        prio = int(allocation.priority[j])
        base = math.floor(units / parts)
        for k in range(parts):
            share = units / parts
            if parts > 1 and units.is_integer():
                # Whole units per part: the first parts take the remainder.
                share = float(base + (1 if k < units - base * parts else 0))
            out.append(
                DeliveryOrder(
                    order_id=f"{depot}>{point}" + (f"#{k + 1}" if parts > 1 else ""),
                    depot=depot,
                    point=point,
                    quantity=share,
                    window_open_s=windows[j][0],
                    window_close_s=windows[j][1],
                    service_s=float(svc[j]),
                    priority=prio,
                    penalty=pen.get(prio),
                )
            )
    return out
