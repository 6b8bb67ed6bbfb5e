"""AC state estimation: weighted least squares with bad-data detection and observability.

The estimator finds the bus voltages ``x`` (angles and magnitudes, polar)
that minimise ``J(x) = sum_i ((z_i - h_i(x)) / sigma_i)^2`` over the
readings ``z`` (:class:`~aiguilleur.grid.measurements.Measurements`), with
the network model our AC power flow uses (taps, phase shifters, shunts, line
charging: the same ``Ybus`` and branch admittances).

Solution
--------
Gauss-Newton: at each iteration the Jacobian ``H`` of the measurement
functions is gathered from per-bus and per-branch derivatives in one
vectorised pass and the step solves, with SuperLU,

* ``solver="normal"``: the normal equations ``H^T W H dx = H^T W r``; buses
  known to inject nothing (no load, no generator in service) are equality
  constraints ``c(x) = 0`` handled by the Lagrangian form
  ``[[G, C^T], [C, 0]]``, so that no huge weight spoils the gain matrix;
* ``solver="hachtel"``: Hachtel's augmented matrix
  ``[[alpha R, H, 0], [H^T, 0, C^T], [0, C, 0]]``, which never forms
  ``H^T W H`` and so keeps its condition number near that of ``H`` (for
  readings of very unequal accuracy).

With ``zero_injection="virtual"`` the zero injections are instead readings
of value 0 and standard deviation ``virtual_sigma_pu`` (pandapower's way).

The gain's pattern is fixed for a measurement set: it is ordered once and,
when the ``qdldl`` package can be imported (a dependency), factorised by an LDL^T
whose symbolic analysis is kept (SuperLU on the pre-ordered matrix
otherwise, and whenever LDL^T breaks down). Once the steps are small the
last factor is kept for the next steps (fixed-gain Gauss-Newton: the same
solution, the gradient being exact). Everything that depends only on the
network and on the kinds and places of the readings (observability, the
measurement model's index arrays, the start, the ordering) is kept between
calls for the last few (network, meter set) pairs: an operations centre
estimates the same grid from the same meters every few seconds. Networks are
immutable; a changed one is another object and gets its own structure.

Observability
-------------
Before estimating, the numerical method of Monticelli and Wu runs on the
decoupled unit-admittance model (P with angles, Q with magnitudes): zero
pivots of the gain matrix reveal the branches whose flows the readings do
not determine; removing them and the injections touching them until none is
left gives the observable islands. Each energised island keeps the
observable island holding its reference bus (else its largest one), where a
voltage magnitude is measured; buses elsewhere are named in
``unobservable_buses`` (grouped in ``unobservable_islands``), reported as
NaN, and the readings touching them are set aside (``unused_measurements``).

Bad data
--------
The objective is compared with the chi-square quantile of confidence
``chi2_confidence`` and ``m + c - n`` degrees of freedom (readings plus zero
injections minus states). Normalised residuals ``|r_i| / sqrt(Omega_ii)``,
with ``Omega = R - H K H^T`` the residual covariance, come from a selected
inverse of the gain matrix (Takahashi's recurrences on its factor: the
diagonal only, at about the cost of one factorisation); zero-injection
constraints enter it with a weight ``1e6`` times the largest reading's
(the exact constrained covariance is its limit; measured on case1888 the
residuals change by a relative 1e-6 between weights 1e5 and 1e6). Readings
whose residual variance is below 1e-6 of their own are critical: their
errors cannot be seen, and they get no normalised residual. Bad data is detected when the
chi-square test fails or when the largest normalised residual exceeds
``rn_detection`` (by default the Sidak-corrected normal quantile, which keeps
the false-alarm rate of the whole set at ``1 - chi2_confidence``: on a large
set the chi-square test alone misses single gross errors). The reading with
the largest normalised residual, if above ``rn_threshold``, is removed and
the state estimated again, until the tests pass. When several readings share
the largest normalised residual (to 1 %), as the two ends of a branch that
nothing else measures do, the bad one cannot be told: they are named in
``suspect_measurements``, none is removed and the status is ``bad_data``.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import splu
from scipy.stats import chi2, norm

from aiguilleur.errors import ValidationError
from aiguilleur.grid._checks import check_network, check_options
from aiguilleur.grid._compile import branch_admittance, find_islands, make_ybus
from aiguilleur.grid._estimation import (
    KINDS,
    P_FROM,
    P_INJ,
    P_TO,
    Q_FROM,
    Q_INJ,
    Q_TO,
    VM,
    MeasurementModel,
    flow_islands,
    fully_observable,
)
from aiguilleur.grid._selinv import NotPositiveDefinite, SelectedInverse
from aiguilleur.grid.measurements import (
    MEASUREMENT_KINDS,
    Measurements,
    SimulationOptions,
    read_measurements,
    read_measurements_string,
    simulate_measurements,
    write_measurements,
)
from aiguilleur.grid.network import Network
from aiguilleur.grid.powerflow import dc_power_flow

if TYPE_CHECKING:
    import pandas as pd

_qdldl: Any
try:  # optional: a sparse LDL^T whose numeric refactorisation reuses the symbolic one
    _qdldl = importlib.import_module("qdldl")
except ImportError:  # pragma: no cover - the SuperLU path below is the fallback
    _qdldl = None

__all__ = [
    "MEASUREMENT_KINDS",
    "EstimationOptions",
    "EstimationResult",
    "Measurements",
    "SimulationOptions",
    "estimate_state",
    "read_measurements",
    "read_measurements_string",
    "simulate_measurements",
    "write_measurements",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ComplexArray = npt.NDArray[np.complex128]
StrArray = npt.NDArray[np.str_]

Status = Literal["converged", "bad_data", "partial", "not_converged", "unobservable"]

#: weight of a zero-injection constraint in the residual covariance, relative to the readings
_CONSTRAINT_WEIGHT = 1e6
#: a residual whose variance is below this share of the reading's is critical (no test)
_CRITICAL = 1e-6
#: normalised residuals this close (relative) to the largest one make it unidentifiable
_TIE = 0.01
#: the largest state update of one Gauss-Newton step (rad or pu)
_MAX_STEP = 1.0
#: weight of the zero-injection penalty in the augmented Lagrangian, relative to the readings
_PENALTY = 1e4
#: Gauss-Newton steps below this (rad or pu) let the next reuse the gain's factor
_REUSE_BELOW = 1e-3
#: largest zero-injection mismatch (pu) of a converged estimate
_CONSTRAINT_TOL = 1e-8


def _number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, int | float)


@dataclass(frozen=True)
class EstimationOptions:
    """Settings of :func:`estimate_state`.

    Parameters
    ----------
    tolerance
        Stop when the largest state update is below this (rad and pu).
    max_iter
        Gauss-Newton iterations per estimate.
    solver
        ``normal`` (normal equations, zero injections as Lagrange
        constraints) or ``hachtel`` (the augmented matrix).
    zero_injection
        ``constraint`` (exact equality constraints), ``virtual`` (readings of
        value 0 and standard deviation ``virtual_sigma_pu``) or ``none``.
        A zero-injection bus has no load and no generator in service.
    virtual_sigma_pu
        Standard deviation of a virtual zero-injection reading (per unit of
        the system base).
    bad_data
        Identify and remove bad readings (normalised residuals). When off, the
        chi-square test still decides the status.
    chi2_confidence
        Confidence of the chi-square test on the objective.
    rn_threshold
        A reading is removed only if its normalised residual exceeds this.
    rn_detection
        The largest normalised residual above this flags bad data even when
        the chi-square test passes; ``None`` is the Sidak-corrected quantile
        ``Phi^-1(1 - (1 - chi2_confidence) / (2 m))``; ``math.inf`` leaves
        detection to the chi-square test alone.
    max_removals
        Most readings removed before giving up (status ``bad_data``).
    init
        Starting point: ``dc`` (magnitudes 1 pu, angles of a DC power flow of
        the network as given, which accounts for phase shifters) or ``flat``
        (1 pu, 0 rad). Only the path to the solution depends on it.
    """

    tolerance: float = 1e-8
    max_iter: int = 50
    solver: Literal["normal", "hachtel"] = "normal"
    zero_injection: Literal["constraint", "virtual", "none"] = "constraint"
    virtual_sigma_pu: float = 1e-3
    bad_data: bool = True
    chi2_confidence: float = 0.99
    rn_threshold: float = 3.0
    rn_detection: float | None = None
    max_removals: int = 10
    init: Literal["dc", "flat"] = "dc"

    def __post_init__(self) -> None:
        if not _number(self.tolerance) or not 0 < self.tolerance < 1:
            raise ValidationError(f"tolerance: expected a number in (0, 1), got {self.tolerance!r}")
        for name in ("max_iter", "max_removals"):
            v = getattr(self, name)
            low = 1 if name == "max_iter" else 0
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValidationError(f"{name}: expected an integer >= {low}, got {v!r}")
        if self.solver not in ("normal", "hachtel"):
            raise ValidationError(f"solver: expected normal or hachtel, got {self.solver!r}")
        if self.init not in ("dc", "flat"):
            raise ValidationError(f"init: expected dc or flat, got {self.init!r}")
        if self.zero_injection not in ("constraint", "virtual", "none"):
            raise ValidationError(
                f"zero_injection: expected constraint, virtual or none, got {self.zero_injection!r}"
            )
        s = self.virtual_sigma_pu
        if not _number(s) or not 0 < s < math.inf:
            raise ValidationError(f"virtual_sigma_pu: expected a positive number, got {s!r}")
        if not isinstance(self.bad_data, bool):
            raise ValidationError(f"bad_data: expected true or false, got {self.bad_data!r}")
        c = self.chi2_confidence
        if not _number(c) or not 0 < c < 1:
            raise ValidationError(f"chi2_confidence: expected a number in (0, 1), got {c!r}")
        if not _number(self.rn_threshold) or not 0 < self.rn_threshold < math.inf:
            raise ValidationError(
                f"rn_threshold: expected a positive number, got {self.rn_threshold!r}"
            )
        d = self.rn_detection
        if d is not None and (not _number(d) or not d > 0 or math.isnan(d)):
            raise ValidationError(f"rn_detection: expected a positive number or None, got {d!r}")


@dataclass(frozen=True)
class EstimationResult:
    """The estimated state, in the network's bus order.

    ``ok`` is true when the estimate converged over the whole energised grid
    and passed the bad-data tests (after removing bad readings, if any). The
    ``status`` says otherwise what is missing: ``not_converged``,
    ``unobservable`` (no bus could be estimated), ``bad_data`` (the tests
    still fail: bad data not identifiable or too many removals) or
    ``partial`` (some buses unobservable; the rest is estimated and passed).

    Buses not estimated have NaN voltages; de-energised buses (islands
    without generation) have 0. ``estimated_value`` and
    ``normalized_residual`` are per reading, in the order of the
    measurements given (NaN where not computed or not used).
    ``suspect_measurements`` names the readings among which bad data was
    detected but could not be identified (equal normalised residuals:
    critical pairs and other perfectly correlated groups); none of them is
    rejected.
    """

    status: Status
    converged: bool
    iterations: int
    time_s: float
    bus_id: IntArray
    vm_pu: FloatArray
    va_deg: FloatArray
    objective: float
    chi2_threshold: float
    degrees_of_freedom: int
    bad_data: tuple[tuple[str, float], ...]
    unobservable_islands: tuple[tuple[int, ...], ...]
    unused_measurements: tuple[str, ...]
    measurement_id: StrArray
    estimated_value: FloatArray
    normalized_residual: FloatArray
    message: str = ""
    reference_bus_ids: tuple[int, ...] = field(default=())
    suspect_measurements: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Converged over the whole energised grid and passed the bad-data tests."""
        return self.status == "converged"

    @property
    def unobservable_buses(self) -> IntArray:
        """Ids of the buses whose state the readings do not determine, ascending."""
        ids = [b for isl in self.unobservable_islands for b in isl]
        return np.array(sorted(ids), dtype=np.int64)

    def to_frame(self, component: str = "bus") -> pd.DataFrame:
        """``bus`` (voltages) or ``measurement`` (estimates and residuals) as a DataFrame."""
        import pandas as pd

        if component == "bus":
            return pd.DataFrame({"bus_id": self.bus_id, "vm_pu": self.vm_pu, "va_deg": self.va_deg})
        if component == "measurement":
            rejected = {i for i, _ in self.bad_data}
            unused = set(self.unused_measurements)
            return pd.DataFrame(
                {
                    "id": self.measurement_id.tolist(),
                    "estimated_value": self.estimated_value,
                    "normalized_residual": self.normalized_residual,
                    "rejected": [i in rejected for i in self.measurement_id.tolist()],
                    "unused": [i in unused for i in self.measurement_id.tolist()],
                }
            )
        raise ValidationError(f"unknown component {component!r}: expected bus or measurement")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (NaN as ``None``), the CLI's ``--json`` output."""

        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "status": self.status,
            "ok": self.ok,
            "converged": self.converged,
            "iterations": self.iterations,
            "time_s": self.time_s,
            "message": self.message,
            "bus_id": [int(b) for b in self.bus_id],
            "vm_pu": [num(x) for x in self.vm_pu.tolist()],
            "va_deg": [num(x) for x in self.va_deg.tolist()],
            "objective": num(self.objective),
            "chi2_threshold": num(self.chi2_threshold),
            "degrees_of_freedom": self.degrees_of_freedom,
            "bad_data": [{"id": i, "normalized_residual": num(r)} for i, r in self.bad_data],
            "unobservable_buses": [int(b) for b in self.unobservable_buses],
            "unobservable_islands": [list(i) for i in self.unobservable_islands],
            "unused_measurements": list(self.unused_measurements),
            "reference_bus_ids": list(self.reference_bus_ids),
            "suspect_measurements": list(self.suspect_measurements),
            "measurements": {
                "id": self.measurement_id.tolist(),
                "estimated_value": [num(x) for x in self.estimated_value.tolist()],
                "normalized_residual": [num(x) for x in self.normalized_residual.tolist()],
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EstimationResult:
        """The value written by :meth:`to_dict`.

        Raises
        ------
        ValidationError
            When a field is missing or malformed.
        """

        def arr(x: Any) -> FloatArray:
            return np.array([math.nan if v is None else float(v) for v in x], dtype=np.float64)

        def num(x: Any) -> float:
            return math.nan if x is None else float(x)

        try:
            status = str(data["status"])
            if status not in ("converged", "bad_data", "partial", "not_converged", "unobservable"):
                raise ValueError(f"unknown status {status!r}")
            m = data["measurements"]
            return cls(
                status=status,  # type: ignore[arg-type]  # checked above
                converged=bool(data["converged"]),
                iterations=int(data["iterations"]),
                time_s=float(data["time_s"]),
                bus_id=np.array(data["bus_id"], dtype=np.int64),
                vm_pu=arr(data["vm_pu"]),
                va_deg=arr(data["va_deg"]),
                objective=num(data["objective"]),
                chi2_threshold=num(data["chi2_threshold"]),
                degrees_of_freedom=int(data["degrees_of_freedom"]),
                bad_data=tuple(
                    (str(b["id"]), num(b["normalized_residual"])) for b in data["bad_data"]
                ),
                unobservable_islands=tuple(
                    tuple(int(x) for x in isl) for isl in data["unobservable_islands"]
                ),
                unused_measurements=tuple(str(x) for x in data["unused_measurements"]),
                measurement_id=np.array([str(x) for x in m["id"]], dtype=np.str_),
                estimated_value=arr(m["estimated_value"]),
                normalized_residual=arr(m["normalized_residual"]),
                message=str(data.get("message", "")),
                reference_bus_ids=tuple(int(x) for x in data.get("reference_bus_ids", ())),
                suspect_measurements=tuple(str(x) for x in data.get("suspect_measurements", ())),
            )
        except KeyError as e:
            raise ValidationError(f"estimation result: missing field {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise ValidationError(f"estimation result: {e}") from None


# -- set-up --------------------------------------------------------------------------------


@dataclass
class _Problem:
    """Everything fixed for one estimate: the estimated part, its rows and weights."""

    model: MeasurementModel
    z: FloatArray  # per row (pu); constraints: 0
    sigma: FloatArray  # per row (pu); constraints: 0
    meas: IntArray  # per row: index of the reading, -1 for a zero-injection row
    is_cons: BoolArray  # per row: exact constraint (zero_injection="constraint")
    estimated: BoolArray  # per bus
    ref: IntArray
    col_va: IntArray
    col_vm: IntArray


def _neighbours_inside(net: Network, br_on: BoolArray, inside: BoolArray) -> BoolArray:
    """Per bus: every in-service branch at it leads to a bus of ``inside``."""
    f, t = net.branch_from[br_on], net.branch_to[br_on]
    out_f = ~inside[t]
    out_t = ~inside[f]
    bad = np.zeros(net.n_bus, dtype=bool)
    bad[f[out_f]] = True
    bad[t[out_t]] = True
    return inside & ~bad


def _usable_rows(
    kind: IntArray, row: IntArray, net: Network, br_on: BoolArray, inside: BoolArray
) -> BoolArray:
    """Readings whose function only involves buses of ``inside``."""
    inj_ok = _neighbours_inside(net, br_on, inside)
    f, t = net.branch_from, net.branch_to
    is_bus = kind <= Q_INJ
    bus_row = np.where(is_bus, row, 0)
    br_row = np.where(is_bus, 0, row)
    flow_ok = br_on[br_row] & inside[f[br_row]] & inside[t[br_row]]
    return np.where(
        kind == VM,
        inside[bus_row],
        np.where(is_bus, inj_ok[bus_row], flow_ok),
    )


def _measured(
    net: Network,
    kind: IntArray,
    row: IntArray,
    ok: BoolArray,
    zero_inj: BoolArray,
    graph: BoolArray,
    inj_kind: int,
    flow_kinds: tuple[int, int],
) -> tuple[BoolArray, BoolArray]:
    """Buses with a known injection and branches of ``graph`` with a measured flow."""
    inj = zero_inj.copy()
    sel = ok & (kind == inj_kind)
    inj[row[sel]] = True
    flow = np.zeros(net.n_branch, dtype=bool)
    sel = ok & np.isin(kind, flow_kinds)
    flow[row[sel]] = True
    return inj, flow[graph]


def _observable(
    net: Network,
    kind: IntArray,
    row: IntArray,
    usable: BoolArray,
    zero_inj: BoolArray,
    energised: BoolArray,
    br_on: BoolArray,
    island_ref: IntArray,
    island_label: IntArray,
) -> tuple[BoolArray, IntArray, IntArray]:
    """Buses to estimate, the observable-island label of every bus, and the references."""
    n = net.n_bus
    rng = np.random.default_rng(12345)
    inside = energised.copy()
    lab_p = np.full(n, -1, dtype=np.int64)
    refs = np.zeros(0, dtype=np.int64)
    for _ in range(n + 1):
        ok = usable & _usable_rows(kind, row, net, br_on, inside)
        graph = br_on & inside[net.branch_from] & inside[net.branch_to]
        f, t = net.branch_from[graph], net.branch_to[graph]
        inj_ok = _neighbours_inside(net, br_on, inside)
        zi = zero_inj & inj_ok

        inj_p, flow_p = _measured(net, kind, row, ok, zi, graph, P_INJ, (P_FROM, P_TO))
        inj_q, flow_q = _measured(net, kind, row, ok, zi, graph, Q_INJ, (Q_FROM, Q_TO))
        lab_p, _ = flow_islands(n, f, t, flow_p, inj_p, rng)
        lab_q, _ = flow_islands(n, f, t, flow_q, inj_q, rng)
        has_vm = np.zeros(n, dtype=bool)
        sel = ok & (kind == VM)
        has_vm[row[sel]] = True
        # V-observable: a Q island holding a magnitude reading
        q_isl_vm = np.zeros(int(lab_q.max()) + 1 if n else 0, dtype=bool)
        q_isl_vm[lab_q[has_vm & inside]] = True
        v_obs = inside & q_isl_vm[lab_q]
        # each energised island keeps the P island of its reference, else its largest
        new_inside = np.zeros(n, dtype=bool)
        ref_list: list[int] = []
        for k, r in enumerate(island_ref.tolist()):
            if r < 0:
                continue
            members = (island_label == k) & inside & v_obs
            if not np.any(members):
                continue
            if members[r]:
                keep = lab_p[r]
            else:
                counts = np.bincount(lab_p[members])
                keep = int(np.argmax(counts))
            chosen = members & (lab_p == keep)
            new_inside |= chosen
            ref_list.append(r if chosen[r] else int(np.flatnonzero(chosen)[0]))
        refs = np.array(ref_list, dtype=np.int64)
        if np.array_equal(new_inside, inside):
            break
        inside = new_inside
    return inside, lab_p, refs


def _setup(
    net: Network, meas: Measurements, opts: EstimationOptions
) -> tuple[_Problem | None, BoolArray, IntArray, BoolArray, BoolArray]:
    """The problem over the observable part, or ``None`` when nothing is observable.

    Also returns the used readings, the observable-island labels, the
    energised buses and the zero-injection buses.
    """
    kind = np.zeros(len(meas), dtype=np.int64)
    for i, k in enumerate(KINDS):  # seven vectorised comparisons, not one per reading
        kind[meas.kind == k] = i
    row = meas.rows(net)
    isl = find_islands(net)
    energised = isl.label >= 0
    energised[energised] = isl.ref[isl.label[energised]] >= 0
    br_on = (
        (net.branch.in_service == 1)
        & energised[net.branch_from]
        & energised[net.branch_to]
        & (net.branch_from != net.branch_to)
    )
    gen_on = net.gen.in_service == 1
    has_gen = np.zeros(net.n_bus, dtype=bool)
    has_gen[net.gen_bus[gen_on]] = True
    zero_inj = (
        energised & ~has_gen & (net.bus.pd_mw == 0.0) & (net.bus.qd_mvar == 0.0)
        if opts.zero_injection != "none"
        else np.zeros(net.n_bus, dtype=bool)
    )
    usable = _usable_rows(kind, row, net, br_on, energised)
    isl_refs = isl.ref[isl.ref >= 0].astype(np.int64)
    # the whole energised grid first: when the decoupled model determines every state, the
    # island analysis below is not needed
    inj_ok = _neighbours_inside(net, br_on, energised)
    zi_ok = zero_inj & inj_ok
    f, t = net.branch_from[br_on], net.branch_to[br_on]
    inj_p, flow_p = _measured(net, kind, row, usable, zi_ok, br_on, P_INJ, (P_FROM, P_TO))
    inj_q, flow_q = _measured(net, kind, row, usable, zi_ok, br_on, Q_INJ, (Q_FROM, Q_TO))
    has_vm = np.zeros(net.n_bus, dtype=bool)
    has_vm[row[usable & (kind == VM)]] = True
    dead = ~energised
    # de-energised buses take no part: anchor them so that they do not look singular
    if np.any(energised) and fully_observable(
        net.n_bus,
        f,
        t,
        (flow_p, flow_q),
        (inj_p | dead, inj_q | dead),
        has_vm | dead,
        np.concatenate([isl_refs, np.flatnonzero(dead)]),
    ):
        prob = _build(net, meas, opts, kind, row, usable, zero_inj, br_on, energised, isl_refs)
        return prob, usable, isl.label, energised, zero_inj
    inside, lab, refs = _observable(
        net, kind, row, usable, zero_inj, energised, br_on, isl.ref, isl.label
    )
    used = usable & _usable_rows(kind, row, net, br_on, inside)
    if not np.any(inside):
        return None, used, lab, energised, zero_inj
    prob = _build(net, meas, opts, kind, row, used, zero_inj, br_on, inside, refs)
    return prob, used, lab, energised, zero_inj


def _build(
    net: Network,
    meas: Measurements,
    opts: EstimationOptions,
    kind: IntArray,
    row: IntArray,
    usable: BoolArray,
    zero_inj: BoolArray,
    br_on: BoolArray,
    inside: BoolArray,
    refs: IntArray,
) -> _Problem:
    """The problem over the buses ``inside`` with the readings that involve only them."""
    base = net.base_mva
    used = usable & _usable_rows(kind, row, net, br_on, inside)
    zi = np.flatnonzero(zero_inj & _neighbours_inside(net, br_on, inside))
    n = net.n_bus
    col_va = np.full(n, -1, dtype=np.int64)
    col_vm = np.full(n, -1, dtype=np.int64)
    ang = inside.copy()
    ang[refs] = False
    col_va[ang] = np.arange(int(ang.sum()))
    col_vm[inside] = int(ang.sum()) + np.arange(int(inside.sum()))
    mi = np.flatnonzero(used)
    to_pu = np.where(kind[mi] == VM, 1.0, 1.0 / base)
    r_kind = np.concatenate([kind[mi], np.full(zi.size, P_INJ), np.full(zi.size, Q_INJ)])
    r_elem = np.concatenate([row[mi], zi, zi])
    z = np.concatenate([meas.value[mi] * to_pu, np.zeros(2 * zi.size)])
    cons = opts.zero_injection == "constraint"
    sig_v = 0.0 if cons else opts.virtual_sigma_pu
    sigma = np.concatenate([meas.sigma[mi] * to_pu, np.full(2 * zi.size, sig_v)])
    is_cons = np.concatenate([np.zeros(mi.size, dtype=bool), np.full(2 * zi.size, cons)])
    adm = branch_admittance(net, br_on)
    ybus, _, _ = make_ybus(net, adm)
    model = MeasurementModel(
        ybus, adm, net.branch_from, net.branch_to, r_kind, r_elem, col_va, col_vm
    )
    return _Problem(
        model=model,
        z=z,
        sigma=sigma,
        meas=np.concatenate([mi, np.full(2 * zi.size, -1)]).astype(np.int64),
        is_cons=is_cons,
        estimated=inside,
        ref=refs,
        col_va=col_va,
        col_vm=col_vm,
    )


# -- the structure of one network and one set of meters, kept between calls -----------------


@dataclass
class _Structure:
    """What depends only on the network and the readings' kinds and places, not on values."""

    net: weakref.ref[Network]
    prob: _Problem | None  # z and sigma of the call that built it
    used: BoolArray
    lab: IntArray
    energised: BoolArray
    start: dict[str, FloatArray]  # starting angles per init rule
    fact: _Factor
    lock: threading.Lock


#: structures of the last few (network, meter set, options) seen: an operations centre
#: estimates the same grid with the same meters every few seconds, with new values
_STRUCTURES: dict[tuple[int, bytes, str, float], _Structure] = {}
_STRUCTURES_MAX = 4
_STRUCTURES_LOCK = threading.Lock()


def _structure(net: Network, meas: Measurements, opts: EstimationOptions) -> _Structure:
    """The cached structure of ``net`` and the readings' pattern (built on a miss).

    The network is immutable (read-only arrays), so it is identified by the object
    itself (held weakly); the meters by a digest of their kinds and elements.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.ascontiguousarray(meas.kind).tobytes())
    digest.update(np.ascontiguousarray(meas.element).tobytes())
    key = (id(net), digest.digest(), opts.zero_injection, float(opts.virtual_sigma_pu))
    with _STRUCTURES_LOCK:
        hit = _STRUCTURES.get(key)
    if hit is not None and hit.net() is net:
        return hit
    prob, used, lab, energised, _ = _setup(net, meas, opts)
    st = _Structure(
        net=weakref.ref(net),
        prob=prob,
        used=used,
        lab=lab,
        energised=energised,
        start={},
        fact=_Factor(),
        lock=threading.Lock(),
    )
    with _STRUCTURES_LOCK:
        _STRUCTURES.pop(key, None)
        while len(_STRUCTURES) >= _STRUCTURES_MAX:
            _STRUCTURES.pop(next(iter(_STRUCTURES)), None)
        _STRUCTURES[key] = st
    return st


def _with_readings(prob: _Problem, meas: Measurements, base: float) -> _Problem:
    """``prob`` with the values and standard deviations of ``meas`` (same pattern)."""
    real = prob.meas >= 0
    mi = prob.meas[real]
    to_pu = np.where(prob.model.kind[real] == VM, 1.0, 1.0 / base)
    z = prob.z.copy()
    z[real] = meas.value[mi] * to_pu
    sigma = prob.sigma.copy()
    sigma[real] = meas.sigma[mi] * to_pu
    return replace(prob, z=z, sigma=sigma)


def _start_angles(net: Network, prob: _Problem, lab: IntArray, init: str) -> FloatArray:
    """Starting angles (rad): 0, or a DC power flow's relative to each island's reference."""
    n = net.n_bus
    va0 = np.zeros(n)
    if init == "dc":
        dc = dc_power_flow(net)
        if dc.converged:
            # angles relative to the reference of each estimated island
            lab_p = np.full(n, -1, dtype=np.int64)
            lab_p[prob.estimated] = lab[prob.estimated]
            ref_angle = np.zeros(int(lab.max()) + 1 if n else 0)
            ref_angle[lab[prob.ref]] = np.deg2rad(dc.va_deg[prob.ref])
            va0 = np.where(lab_p >= 0, np.deg2rad(dc.va_deg) - ref_angle[np.maximum(lab_p, 0)], 0.0)
    return va0


# -- Gauss-Newton --------------------------------------------------------------------------


def _lu(a: sp.spmatrix, spd: bool) -> Any:
    # a positive definite matrix needs no off-diagonal pivot: keep the symmetric ordering's fill
    return splu(
        sp.csc_matrix(a),
        permc_spec="MMD_AT_PLUS_A",
        diag_pivot_thresh=0.0 if spd else 0.1,
        options={"SymmetricMode": True},
    )


class _Factor:
    """What the gain's factorisations share: its ordering (SuperLU) or its LDL^T (qdldl)."""

    def __init__(self) -> None:
        self.perm: IntArray | None = None
        self.ldl: Any = None
        self.ldl_failed = False
        #: the solve of the last factorised gain (``normal`` solver), for steps that reuse it
        self.solve: Callable[[FloatArray], FloatArray] | None = None


def _solve_ldl(gu: sp.csc_matrix, rhs: FloatArray, fact: _Factor) -> FloatArray | None:
    """``G x = rhs`` by qdldl from ``G``'s upper triangle, ``None`` when it fails.

    LDL^T without pivoting: the solution is accepted only when its residual is
    at rounding level (a gain that is not positive definite falls back to SuperLU).
    """
    try:
        if fact.ldl is None:
            fact.ldl = _qdldl.Solver(gu, upper=True)
        else:
            fact.ldl.update(gu, upper=True)
        x: FloatArray = np.asarray(fact.ldl.solve(rhs), dtype=np.float64)
    except (ValueError, RuntimeError):
        fact.ldl, fact.ldl_failed = None, True
        return None
    if not np.all(np.isfinite(x)):
        fact.ldl_failed = True
        return None
    res = gu @ x + gu.T @ x - gu.diagonal() * x - rhs
    scale = float(np.max(np.abs(gu.data))) * float(np.max(np.abs(x))) + float(np.max(np.abs(rhs)))
    if float(np.max(np.abs(res))) > 1e-9 * scale:
        fact.ldl_failed = True
        return None
    return x


def _step(
    prob: _Problem,
    hd: FloatArray,
    r: FloatArray,
    w: FloatArray,
    cres: FloatArray,
    lam: FloatArray,
    rho: float,
    solver: str,
    fact: _Factor,
    reuse: bool = False,
) -> FloatArray:
    """One Gauss-Newton step (raises RuntimeError on a singular system).

    ``normal``: the augmented Lagrangian's step ``(G + rho C^T C) dx =
    H^T W r - C^T (lam + rho c)``, a positive definite system; with ``reuse``
    the last factorised gain stands in for this one (a fixed-gain step: the
    same solution, as the right-hand side is still the gradient).
    ``hachtel``: the augmented matrix, with the constraints exact.
    """
    mdl = prob.model
    nx = mdl.nx
    cons = prob.is_cons
    if solver == "normal":
        wg = np.where(cons, rho, w)
        y = np.where(cons, 0.0, w * r)
        y[cons] = -(lam + rho * cres)
        rhs = np.bincount(mdl.h_col, weights=hd * y[mdl.h_row], minlength=nx).astype(np.float64)
        if reuse and fact.solve is not None:
            return fact.solve(rhs)
        if _qdldl is not None and not fact.ldl_failed:
            dx_ldl = _solve_ldl(mdl.gain_upper(hd, wg), rhs, fact)
            if dx_ldl is not None:
                ldl = fact.ldl
                fact.solve = lambda b: np.asarray(ldl.solve(b), dtype=np.float64)
                return dx_ldl
        g = mdl.gain(hd, wg)
        # the gain's pattern is the same at every iteration: order it once, then factorise
        # the symmetrically permuted matrix in its natural order
        perm = fact.perm
        if perm is None:
            lu = _lu(g, spd=True)
            fact.perm = np.argsort(np.asarray(lu.perm_c, dtype=np.int64))
            fact.solve = lu.solve
            dx: FloatArray = lu.solve(rhs)
            return dx
        gp = sp.csc_matrix(g[perm][:, perm])
        lu = splu(gp, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})

        def solve(b: FloatArray) -> FloatArray:
            out = np.empty(nx)
            out[perm] = lu.solve(b[perm])
            return out

        fact.solve = solve
        return solve(rhs)
    # Hachtel: [[alpha R, H, 0], [H^T, 0, C^T], [0, C, 0]] [lambda/alpha; dx; mu] = [r; 0; -c]
    live = np.flatnonzero(~cons & (w > 0))
    ci = np.flatnonzero(cons)
    h = mdl.jacobian(hd, live)
    var = 1.0 / w[live]
    alpha = float(np.median(np.abs(h.data))) / float(np.median(var)) if h.nnz else 1.0
    blocks: list[list[Any]] = [[sp.diags(alpha * var), h], [h.T, None]]
    rhs_parts = [r[live], np.zeros(nx)]
    if ci.size:
        c = mdl.jacobian(hd, ci)
        blocks[0].append(None)
        blocks[1].append(c.T)
        blocks.append([None, c, None])
        rhs_parts.append(-cres)
    aug = sp.bmat(blocks, format="csc")
    sol = _lu(aug, spd=False).solve(np.concatenate(rhs_parts))
    out: FloatArray = sol[live.size : live.size + nx]
    return out


@dataclass
class _Solution:
    v: ComplexArray
    converged: bool
    iterations: int
    h: FloatArray
    hd: FloatArray
    message: str = ""


def _gauss_newton(
    prob: _Problem,
    w: FloatArray,
    v0: ComplexArray,
    opts: EstimationOptions,
    fact: _Factor | None = None,
) -> _Solution:
    """Gauss-Newton with a backtracking line search on the augmented Lagrangian.

    Zero-injection constraints ``c(x) = 0`` enter the merit function
    ``sum w r^2 + rho sum (c + lam / rho)^2`` with ``rho`` far above every
    reading's weight; with ``solver="normal"`` the multipliers ``lam`` are
    updated (``lam += rho c``) once the steps are small, which drives ``c``
    to zero exactly (the method of multipliers). The line search keeps the
    first steps from a flat start, where the constraints are far from met,
    from diverging.
    """
    mdl = prob.model
    va = np.angle(v0)
    vm = np.abs(v0)
    ia = np.flatnonzero(prob.col_va >= 0)
    iv = np.flatnonzero(prob.col_vm >= 0)
    ca, cv = prob.col_va[ia], prob.col_vm[iv]
    cons = prob.is_cons
    has_cons = bool(np.any(cons))
    wmax = float(np.max(w[~cons])) if np.any(~cons) else 1.0
    rho = _PENALTY * wmax
    lam = np.zeros(int(cons.sum()))
    multipliers = opts.solver == "normal"
    fact = fact if fact is not None else _Factor()

    def merit(h: FloatArray) -> float:
        r = np.where(cons, 0.0, prob.z - h)
        c = h[cons] + lam / rho
        return float(np.sum(w * r * r) + rho * np.sum(c * c))

    v = v0.copy()
    h, hd = mdl.values(v)
    phi = merit(h)
    last_moved = math.inf
    refactor = True
    for it in range(1, opts.max_iter + 1):
        r = np.where(cons, 0.0, prob.z - h)
        reuse = not refactor
        try:
            dx = _step(prob, hd, r, w, h[cons], lam, rho, opts.solver, fact, reuse)
        except RuntimeError:
            return _Solution(v, False, it, h, hd, "singular gain matrix")
        if not np.all(np.isfinite(dx)):
            return _Solution(v, False, it, h, hd, "the step is not finite")
        big = float(np.max(np.abs(dx))) if dx.size else 0.0
        if big > _MAX_STEP:
            dx = dx * (_MAX_STEP / big)
            big = _MAX_STEP
        step = 1.0
        for _ in range(30):
            va_t, vm_t = va.copy(), vm.copy()
            va_t[ia] += step * dx[ca]
            vm_t[iv] += step * dx[cv]
            v_t = vm_t * np.exp(1j * va_t)
            h_t, hd_t = mdl.values(v_t)
            phi_t = merit(h_t)
            # near the solution rounding can make the merit flat: accept small steps as they are
            if phi_t <= phi or big * step < 1e3 * opts.tolerance:
                break
            step *= 0.5
        va, vm, v, h, hd, phi = va_t, vm_t, v_t, h_t, hd_t, phi_t
        moved = big * step
        # near the solution the gain hardly changes: keep its factor while the steps are
        # small and shrink fast (a step that does not shrink fourfold refactorises)
        refactor = not (moved < _REUSE_BELOW and (not reuse or moved < 0.25 * last_moved))
        last_moved = moved
        c_max = float(np.max(np.abs(h[cons]))) if has_cons else 0.0
        if has_cons and multipliers and moved < 1e-3:
            lam = lam + rho * h[cons]
            phi = merit(h)
        if moved < opts.tolerance and c_max < _CONSTRAINT_TOL:
            return _Solution(v, True, it, h, hd)
    return _Solution(
        v, False, opts.max_iter, h, hd, f"no convergence in {opts.max_iter} iterations"
    )


def _normalized_residuals(
    prob: _Problem, hd: FloatArray, r: FloatArray, w: FloatArray
) -> FloatArray | None:
    """``|r_i| / sqrt(Omega_ii)`` per row (NaN for critical, removed and constraint rows).

    ``None`` when the gain matrix cannot be factorised with diagonal pivots.
    """
    mdl = prob.model
    wmax = float(np.max(w)) if w.size else 1.0
    wg = np.where(prob.is_cons, _CONSTRAINT_WEIGHT * wmax, w)
    g = mdl.gain(hd, wg)
    try:
        si = SelectedInverse(g)
    except NotPositiveDefinite:
        return None
    z = si.compute()
    pos = si.positions(mdl.g_rows, mdl.g_cols)
    zg = np.where(pos >= 0, z[np.maximum(pos, 0)], 0.0)
    quad = mdl.quadratic_diag(hd, zg)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(w > 0, 1.0 / w, np.nan)
        omega = var - quad
        rn = np.abs(r) / np.sqrt(omega)
    valid = (w > 0) & ~prob.is_cons & (omega > _CRITICAL * var)
    out: FloatArray = np.where(valid, rn, np.nan)
    return out


# -- the estimator -------------------------------------------------------------------------


def estimate_state(
    net: Network, measurements: Measurements, options: EstimationOptions | None = None
) -> EstimationResult:
    """Weighted-least-squares AC state estimate of ``net`` from ``measurements``.

    Parameters
    ----------
    net
        The network (topology and parameters are taken as exact).
    measurements
        The readings; their elements must exist in ``net``.
    options
        Solver, zero injections and bad-data settings.

    Returns
    -------
    EstimationResult
        The voltages, the objective and its chi-square threshold, the
        readings rejected as bad data with their normalised residuals, the
        unobservable buses. A failure to converge or to pass the tests is
        reported in ``status``, not raised.

    Raises
    ------
    ValidationError
        When a reading names a bus or branch that ``net`` does not have.
    """
    check_network(net, "estimate_state", solve=True)
    if not isinstance(measurements, Measurements):
        raise ValidationError(
            f"estimate_state: measurements must be Measurements, got {type(measurements).__name__}"
        )
    check_options(options, EstimationOptions, "estimate_state")
    opts = options or EstimationOptions()
    t0 = time.perf_counter()
    n_meas = len(measurements)
    struct = _structure(net, measurements, opts)
    prob = struct.prob
    used, lab, energised = struct.used, struct.lab, struct.energised
    base = net.base_mva
    unused_idx = np.flatnonzero(~used)
    unused = tuple(str(measurements.id[i]) for i in unused_idx)
    est_value = np.full(n_meas, np.nan)
    rn_out = np.full(n_meas, np.nan)

    def islands_of(mask: BoolArray) -> tuple[tuple[int, ...], ...]:
        groups: dict[int, list[int]] = {}
        for b in np.flatnonzero(mask).tolist():
            groups.setdefault(int(lab[b]), []).append(int(net.bus.bus_id[b]))
        return tuple(tuple(sorted(g)) for _, g in sorted(groups.items(), key=lambda kv: min(kv[1])))

    if prob is None:
        return EstimationResult(
            status="unobservable",
            converged=False,
            iterations=0,
            time_s=time.perf_counter() - t0,
            bus_id=np.array(net.bus.bus_id),
            vm_pu=np.where(energised, np.nan, 0.0),
            va_deg=np.where(energised, np.nan, 0.0),
            objective=math.nan,
            chi2_threshold=math.nan,
            degrees_of_freedom=0,
            bad_data=(),
            unobservable_islands=islands_of(energised),
            unused_measurements=unused,
            measurement_id=np.array(measurements.id),
            estimated_value=est_value,
            normalized_residual=rn_out,
            message="no island has both an angle reference and a voltage magnitude reading",
        )
    prob = _with_readings(prob, measurements, base)
    va0 = struct.start.get(opts.init)
    if va0 is None:
        va0 = struct.start[opts.init] = _start_angles(net, prob, lab, opts.init)
    # one caller at a time shares the cached factorisation; another gets its own
    own = struct.lock.acquire(blocking=False)
    fact = struct.fact if own else _Factor()
    # LDL^T is tried again at every call: a breakdown (a gain made singular by a removed
    # reading) belongs to that call's weights, not to the meter set
    fact.ldl_failed = False
    try:
        return _estimate(net, measurements, opts, prob, struct, va0, fact, t0)
    finally:
        if own:
            struct.lock.release()


def _estimate(
    net: Network,
    measurements: Measurements,
    opts: EstimationOptions,
    prob: _Problem,
    struct: _Structure,
    va0: FloatArray,
    fact: _Factor,
    t0: float,
) -> EstimationResult:
    """Gauss-Newton, then the bad-data loop, on the observable part ``prob``."""
    base = net.base_mva
    n_meas = len(measurements)
    lab, energised = struct.lab, struct.energised
    unused = tuple(str(measurements.id[i]) for i in np.flatnonzero(~struct.used))
    est_value = np.full(n_meas, np.nan)
    rn_out = np.full(n_meas, np.nan)
    mdl = prob.model
    w = np.zeros(mdl.m)
    live = ~prob.is_cons
    w[live] = 1.0 / prob.sigma[live] ** 2

    def islands_of(mask: BoolArray) -> tuple[tuple[int, ...], ...]:
        groups: dict[int, list[int]] = {}
        for b in np.flatnonzero(mask).tolist():
            groups.setdefault(int(lab[b]), []).append(int(net.bus.bus_id[b]))
        return tuple(tuple(sorted(g)) for _, g in sorted(groups.items(), key=lambda kv: min(kv[1])))

    v0 = np.where(prob.estimated, np.exp(1j * va0), 0.0j).astype(np.complex128)
    real = prob.meas >= 0
    n_cons_eq = int(np.sum(prob.meas < 0))  # zero-injection equations, exact or virtual
    rejected: list[tuple[str, float]] = []
    suspects: tuple[str, ...] = ()
    total_it = 0
    status: Status = "converged"
    message = ""
    objective = math.nan
    threshold = math.nan
    dof = 0
    sol = _gauss_newton(prob, w, v0, opts, fact)
    total_it += sol.iterations
    rn = np.full(mdl.m, np.nan)
    while True:
        if not sol.converged:
            status = "not_converged"
            message = sol.message
            break
        r = np.where(prob.is_cons, 0.0, prob.z - sol.h)
        objective = float(np.sum(w * r * r))
        m_live = int(np.sum(real & (w > 0)))
        dof = m_live + n_cons_eq - mdl.nx
        threshold = float(chi2.ppf(opts.chi2_confidence, dof)) if dof > 0 else math.nan
        if dof <= 0:
            message = "no redundancy: bad data cannot be detected"
            break
        if not opts.bad_data:
            if objective > threshold:
                status = "bad_data"
                message = (
                    f"the objective {objective:.1f} exceeds the chi-square threshold "
                    f"{threshold:.1f} (bad-data removal is off)"
                )
            break
        rn_or_none = _normalized_residuals(prob, sol.hd, r, w)
        if rn_or_none is None:
            rn = np.full(mdl.m, np.nan)
            if objective > threshold:
                status = "bad_data"
            message = "normalised residuals unavailable: the gain matrix is not positive definite"
            break
        rn = rn_or_none
        cand = np.where(real, rn, np.nan)
        worst = int(np.nanargmax(cand)) if np.any(np.isfinite(cand)) else -1
        rn_max = float(cand[worst]) if worst >= 0 else 0.0
        det = opts.rn_detection
        if det is None:
            det = float(norm.ppf(1.0 - (1.0 - opts.chi2_confidence) / (2.0 * max(m_live, 1))))
        detected = objective > threshold or rn_max > det
        if not detected:
            break
        if worst < 0 or rn_max <= opts.rn_threshold:
            status = "bad_data"
            message = (
                f"bad data detected (objective {objective:.1f}, chi-square threshold "
                f"{threshold:.1f}, largest normalised residual {rn_max:.2f} against "
                f"{det:.2f}) but no normalised residual exceeds {opts.rn_threshold:g}"
            )
            break
        tied = np.flatnonzero(cand >= rn_max * (1.0 - _TIE))
        if tied.size > 1:
            # equal normalised residuals: the readings are (nearly) perfectly correlated,
            # e.g. the two ends of a branch that nothing else measures. Which one is bad
            # cannot be told; rejecting the larger would be a coin flip
            suspects = tuple(str(measurements.id[prob.meas[k]]) for k in tied)
            status = "bad_data"
            message = (
                f"bad data in a group of strongly correlated readings, not identifiable: "
                f"{', '.join(suspects)} (normalised residuals within {100 * _TIE:g} % of "
                f"{rn_max:.2f})"
            )
            break
        if len(rejected) >= opts.max_removals:
            status = "bad_data"
            message = f"bad data remains after {opts.max_removals} removals"
            break
        rejected.append((str(measurements.id[prob.meas[worst]]), rn_max))
        w[worst] = 0.0
        sol = _gauss_newton(prob, w, sol.v, opts, fact)
        total_it += sol.iterations
    v = sol.v
    vm = np.where(prob.estimated, np.abs(v), np.where(energised, np.nan, 0.0))
    va = np.where(prob.estimated, np.rad2deg(np.angle(v)), np.where(energised, np.nan, 0.0))
    unobs = energised & ~prob.estimated
    mi = prob.meas[real]
    scale = np.where(mdl.kind[real] == VM, 1.0, base)
    est_value[mi] = sol.h[real] * scale
    rn_out[mi] = rn[real]
    if status == "converged" and np.any(unobs):
        status = "partial"
        message = f"{int(unobs.sum())} buses are unobservable"
    if status == "converged" and rejected:
        message = f"{len(rejected)} bad readings removed"
    return EstimationResult(
        status=status,
        converged=bool(sol.converged),
        iterations=total_it,
        time_s=time.perf_counter() - t0,
        bus_id=np.array(net.bus.bus_id),
        vm_pu=vm,
        va_deg=va,
        objective=objective,
        chi2_threshold=threshold,
        degrees_of_freedom=int(dof),
        bad_data=tuple(rejected),
        unobservable_islands=islands_of(unobs),
        unused_measurements=unused,
        measurement_id=np.array(measurements.id),
        estimated_value=est_value,
        normalized_residual=rn_out,
        message=message,
        reference_bus_ids=tuple(int(net.bus.bus_id[r]) for r in prob.ref),
        suspect_measurements=suspects,
    )
