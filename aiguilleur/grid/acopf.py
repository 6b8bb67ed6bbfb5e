"""AC optimal power flow: PGLib-OPF's polar formulation solved with IPOPT.

The problem is PowerModels' ``ACPPowerModel``, the formulation behind
PGLib-OPF's reference objectives: voltage magnitudes and angles as
variables, active and reactive power balance at every energised bus (bus
shunts included), apparent-power limits ``|S| <= rate_a`` at both ends of
every rated branch (MATPOWER's pi model with taps and phase shifts),
angle-difference limits (with PowerModels' correction of limits at or beyond
+-90 degrees), a zero angle at one reference bus per island, voltage and
generator limits, and polynomial costs up to order 2. A ``rate_a`` of 0 means
unlimited.

The solver is IPOPT (with MUMPS) as bundled in the ``casadi`` wheel, fed with
hand-written exact sparse first and second derivatives evaluated by
vectorised numpy (see :mod:`aiguilleur.grid._acopf_model`). IPOPT is called
through its C interface (:mod:`aiguilleur.grid._ipopt`, ctypes) or, where
that library cannot be loaded, through casadi's ``nlpsol``: no
automatic-differentiation graph is built either way, so the set-up of a
3,000-bus case takes tens of milliseconds instead of seconds. Angle-difference
rows that a branch's flow and voltage limits already imply are left out of
the problem IPOPT sees (and checked after the solve).

Starts: ``"flat"`` (angles 0, magnitudes 1 pu within limits, outputs at the
middle of their ranges), ``"dc"`` (angles and outputs of a DC-OPF),
a previous :class:`ACOPFResult` (primal and dual warm start: the crisis path
of re-solving after an outage from the pre-outage optimum) or an
:class:`ACOPFStart` read from a JSON file.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from aiguilleur._files import read_input_text
from aiguilleur.errors import CaseFormatError, SolverError, ValidationError
from aiguilleur.grid import _ipopt
from aiguilleur.grid._acopf_model import ACModel, Terms, compile_model
from aiguilleur.grid._checks import check_network, check_options
from aiguilleur.grid.network import BUS_ISOLATED, Network

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ACOPFOptions", "ACOPFResult", "ACOPFStart", "BindingLimits", "ac_opf"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

Status = Literal["optimal", "locally_infeasible", "iteration_limit", "time_limit", "error"]
StartKind = Literal["flat", "dc"]

_STATUS: dict[str, Status] = {
    "Solve_Succeeded": "optimal",
    "Solved_To_Acceptable_Level": "optimal",
    "Infeasible_Problem_Detected": "locally_infeasible",
    "Maximum_Iterations_Exceeded": "iteration_limit",
    "Maximum_CpuTime_Exceeded": "time_limit",
    "Maximum_WallTime_Exceeded": "time_limit",
}

# A limit binds when its multiplier exceeds this ($/h per pu, or per pu^2).
_DUAL_TOL = 1e-5
# ... and its slack is below this (pu, rad, or pu^2 for flows).
_SLACK_TOL = 1e-5
_N_VIOLATIONS = 5
_NO_ITERATION = frozenset(
    {"Invalid_Problem_Definition", "Invalid_Option", "Not_Enough_Degrees_Of_Freedom"}
)
# an angle-difference limit left out as implied may be exceeded by this much, rad
_ANGLE_TOL = 1e-6
_QUIET = frozenset({"print_level", "sb", "file_print_level", "output_file", "print_user_options"})


def _number(name: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    if not (lo < v < hi):
        raise ValidationError(f"{name}: expected a number in ({lo:g}, {hi:g}), got {value!r}")
    return v


@dataclass(frozen=True)
class ACOPFOptions:
    """Settings of an AC optimal power flow.

    Parameters
    ----------
    tolerance
        IPOPT's overall convergence tolerance ``tol`` (scaled KKT error).
    max_iter
        IPOPT iterations before the status ``"iteration_limit"``.
    time_limit_s
        Wall-clock limit of the IPOPT run (``None``: none); status
        ``"time_limit"`` when it runs out.
    rating
        Branch rating used as the apparent-power limit: ``"a"`` (long term,
        PGLib's), ``"b"`` or ``"c"``. A rating of 0 means unlimited.
    enforce_angle_limits
        Keep the angle-difference limits (PGLib's formulation has them).
    screen_angle_limits
        Leave out of the problem given to IPOPT the angle-difference rows that
        the branch's flow limit and its end voltage limits already imply
        (nearly all of them on the PGLib cases; a smaller KKT system and the
        same optimum). The solution is checked against every limit afterwards
        and solved again with all rows should one be exceeded.
    warm_start_mu
        Initial barrier parameter when warm-starting from a previous result
        (primal and dual): small, so that IPOPT stays near the given point.
    ipopt_options
        Further IPOPT options (name to value), applied last; for example
        ``{"acceptable_tol": 1e-5}``. Output options cannot be changed.
    """

    tolerance: float = 1e-8
    max_iter: int = 1000
    time_limit_s: float | None = None
    rating: Literal["a", "b", "c"] = "a"
    enforce_angle_limits: bool = True
    screen_angle_limits: bool = True
    warm_start_mu: float = 1e-4
    ipopt_options: Mapping[str, str | int | float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tolerance", _number("tolerance", self.tolerance, 0.0, 1.0))
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int):
            raise ValidationError(f"max_iter: expected an integer, got {self.max_iter!r}")
        if self.max_iter < 0:
            raise ValidationError(f"max_iter: expected a non-negative integer, got {self.max_iter}")
        if self.time_limit_s is not None:
            t = _number("time_limit_s", self.time_limit_s, 0.0, math.inf)
            object.__setattr__(self, "time_limit_s", t)
        if self.rating not in ("a", "b", "c"):
            raise ValidationError(f"rating: expected 'a', 'b' or 'c', got {self.rating!r}")
        for flag in ("enforce_angle_limits", "screen_angle_limits"):
            if not isinstance(getattr(self, flag), bool):
                raise ValidationError(
                    f"{flag}: expected True or False, got {getattr(self, flag)!r}"
                )
        mu = _number("warm_start_mu", self.warm_start_mu, 0.0, 1.0)
        object.__setattr__(self, "warm_start_mu", mu)
        if self.ipopt_options is not None:
            if not isinstance(self.ipopt_options, Mapping):
                raise ValidationError(
                    f"ipopt_options: expected a mapping, got {type(self.ipopt_options).__name__}"
                )
            frozen: dict[str, str | int | float] = {}
            for k, v in self.ipopt_options.items():
                if (
                    not isinstance(k, str)
                    or isinstance(v, bool)
                    or not isinstance(v, (str, int, float))
                ):
                    raise ValidationError(
                        f"ipopt_options: expected option names and str/int/float values, "
                        f"got {k!r}: {v!r}"
                    )
                if k in _QUIET:
                    raise ValidationError(f"ipopt_options: {k!r} is fixed (IPOPT stays quiet)")
                frozen[k] = v
            object.__setattr__(self, "ipopt_options", MappingProxyType(frozen))


def _readonly(a: npt.ArrayLike, dtype: type[np.generic] = np.float64) -> Any:
    arr: npt.NDArray[Any] = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class ACOPFStart:
    """A primal starting point in the network's row order.

    Parameters
    ----------
    vm_pu, va_deg
        Bus voltage magnitudes and angles (NaN entries fall back to 1 pu, 0).
    pg_mw, qg_mvar
        Generator outputs (NaN entries fall back to the middle of the range).
    """

    vm_pu: FloatArray
    va_deg: FloatArray
    pg_mw: FloatArray
    qg_mvar: FloatArray

    def __post_init__(self) -> None:
        for name in ("vm_pu", "va_deg", "pg_mw", "qg_mvar"):
            arr = np.array(getattr(self, name), dtype=np.float64, copy=True)
            if arr.ndim != 1:
                raise ValidationError(f"start.{name}: expected a 1-D array")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @classmethod
    def from_json(cls, path: str | Path) -> ACOPFStart:
        """Read a start from a JSON object with ``vm_pu``, ``va_deg``, ``pg_mw``, ``qg_mvar``.

        The ``--json`` output of ``aiguilleur grid opf --ac`` is such a file.
        """
        if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
            raise ValidationError(
                f"ACOPFStart.from_json: path must be a file path, got {type(path).__name__}"
            )
        p = Path(path)
        text = read_input_text(p, encoding="utf-8-sig")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise CaseFormatError(f"not valid JSON: {e.msg}", str(p), e.lineno) from None
        except RecursionError:
            raise CaseFormatError("JSON nested too deeply", str(p)) from None
        if not isinstance(obj, dict):
            raise CaseFormatError("expected a JSON object", str(p))
        vals: dict[str, FloatArray] = {}
        for key in ("vm_pu", "va_deg", "pg_mw", "qg_mvar"):
            if key not in obj:
                raise CaseFormatError(f"missing key {key!r} (a list of numbers)", str(p))
            raw = obj[key]
            if not isinstance(raw, list) or not all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in raw
            ):
                raise CaseFormatError(f"{key}: expected a list of numbers or nulls", str(p))
            vals[key] = np.array([np.nan if v is None else float(v) for v in raw])
        return cls(**vals)


@dataclass(frozen=True, eq=False)
class BindingLimits:
    """Rows (0-based, in the network's order) of the limits that bind at the solution.

    A limit binds when it is met with equality and its multiplier is
    non-zero: relaxing it would lower the cost.
    """

    flow_from: IntArray
    flow_to: IntArray
    angle: IntArray
    vm_max: IntArray
    vm_min: IntArray
    pg_max: IntArray
    pg_min: IntArray
    qg_max: IntArray
    qg_min: IntArray

    def counts(self) -> dict[str, int]:
        """How many limits of each kind bind."""
        return {k: int(getattr(self, k).size) for k in self.__dataclass_fields__}


@dataclass(frozen=True, eq=False)
class _Duals:
    """Multipliers in solver units and network order, kept for warm starts."""

    lam_p: FloatArray  # per bus
    lam_q: FloatArray
    mu_f: FloatArray  # per branch (0 where unlimited or out)
    mu_t: FloatArray
    lam_ang: FloatArray  # per branch
    z_va: FloatArray  # bound multipliers per bus / generator
    z_vm: FloatArray
    z_pg: FloatArray
    z_qg: FloatArray


@dataclass(frozen=True, eq=False)
class ACOPFResult:
    """The solution of an AC optimal power flow, in the network's row order.

    When ``status`` is not ``"optimal"`` the arrays hold IPOPT's last iterate
    (useful to see what went wrong, not a solution) and ``violations`` names
    the most violated constraints there.

    Attributes
    ----------
    status
        ``"optimal"``, ``"locally_infeasible"`` (IPOPT converged to a point
        of locally minimal infeasibility), ``"iteration_limit"``,
        ``"time_limit"`` or ``"error"``.
    objective
        Generation cost in $/h (constant terms included) at the returned point.
    vm_pu, va_deg
        Bus voltages (NaN at isolated buses).
    pg_mw, qg_mvar
        Generator outputs (0 for generators out of service).
    pf_mw, qf_mvar, pt_mw, qt_mvar
        Branch flows into the branch at its from and to ends (0 when out of
        service).
    losses_mw
        Total active losses of the branches.
    lmp, lmp_q
        Active ($/MWh) and reactive ($/MVArh) locational marginal prices:
        the cost of one more MW (MVAr) of demand at each bus (NaN at
        isolated buses).
    flow_dual_from, flow_dual_to
        Value of one more MVA of rating at each end of each branch, $/MVAh
        (0 where the limit is slack or absent).
    angle_dual
        Change in cost, $/h per degree, if ``va_from - va_to`` were held one
        degree higher: negative at an upper limit, positive at a lower one.
    binding
        The limits that bind.
    rating_mva
        The flow limit of each branch (``inf`` where unlimited).
    max_violation
        Largest violation of any constraint or bound at the returned point,
        per unit (powers on the system base, angles in radians).
    violations
        The most violated constraints, worst first, in words (empty when
        every constraint holds within 1e-6 pu).
    iterations
        IPOPT iterations.
    time_s, build_time_s, solver_time_s
        Total (build plus solve; parsing excluded), model build (with the
        DC-OPF of a ``"dc"`` start) and IPOPT.
    message
        IPOPT's return status (and notes on the start).
    start
        The start used: ``"flat"``, ``"dc"``, ``"warm"`` (a previous result)
        or ``"given"`` (an :class:`ACOPFStart`).
    bus_id, gen_bus_id, from_bus_id, to_bus_id
        Labels of the rows, copied from the network for the frames.
    """

    status: Status
    objective: float
    vm_pu: FloatArray
    va_deg: FloatArray
    pg_mw: FloatArray
    qg_mvar: FloatArray
    pf_mw: FloatArray
    qf_mvar: FloatArray
    pt_mw: FloatArray
    qt_mvar: FloatArray
    losses_mw: float
    lmp: FloatArray
    lmp_q: FloatArray
    flow_dual_from: FloatArray
    flow_dual_to: FloatArray
    angle_dual: FloatArray
    binding: BindingLimits
    rating_mva: FloatArray
    max_violation: float
    violations: tuple[str, ...]
    iterations: int
    time_s: float
    build_time_s: float
    solver_time_s: float
    message: str
    start: str
    bus_id: IntArray
    gen_bus_id: IntArray
    from_bus_id: IntArray
    to_bus_id: IntArray
    _duals: _Duals = field(repr=False, compare=False)

    @property
    def converged(self) -> bool:
        """True when ``status == "optimal"``."""
        return self.status == "optimal"

    def as_start(self) -> ACOPFStart:
        """The primal point of this result as an :class:`ACOPFStart`."""
        return ACOPFStart(self.vm_pu, self.va_deg, self.pg_mw, self.qg_mvar)

    def to_frame(self, component: str = "bus") -> pd.DataFrame:
        """A pandas view of the ``bus``, ``gen`` or ``branch`` results."""
        import pandas as pd

        b = self.binding
        if component == "bus":
            n = self.vm_pu.size
            return pd.DataFrame(
                {
                    "bus_id": np.array(self.bus_id),
                    "vm_pu": np.array(self.vm_pu),
                    "va_deg": np.array(self.va_deg),
                    "lmp": np.array(self.lmp),
                    "lmp_q": np.array(self.lmp_q),
                    "vm_at_max": np.isin(np.arange(n), b.vm_max),
                    "vm_at_min": np.isin(np.arange(n), b.vm_min),
                }
            )
        if component == "gen":
            n = self.pg_mw.size
            return pd.DataFrame(
                {
                    "bus_id": np.array(self.gen_bus_id),
                    "pg_mw": np.array(self.pg_mw),
                    "qg_mvar": np.array(self.qg_mvar),
                    "pg_at_max": np.isin(np.arange(n), b.pg_max),
                    "pg_at_min": np.isin(np.arange(n), b.pg_min),
                    "qg_at_max": np.isin(np.arange(n), b.qg_max),
                    "qg_at_min": np.isin(np.arange(n), b.qg_min),
                }
            )
        if component == "branch":
            n = self.pf_mw.size
            sf = np.hypot(self.pf_mw, self.qf_mvar)
            st = np.hypot(self.pt_mw, self.qt_mvar)
            with np.errstate(divide="ignore", invalid="ignore"):
                loading = np.where(
                    np.isfinite(self.rating_mva),
                    100.0 * np.maximum(sf, st) / self.rating_mva,
                    np.nan,
                )
            return pd.DataFrame(
                {
                    "from_bus_id": np.array(self.from_bus_id),
                    "to_bus_id": np.array(self.to_bus_id),
                    "pf_mw": np.array(self.pf_mw),
                    "qf_mvar": np.array(self.qf_mvar),
                    "pt_mw": np.array(self.pt_mw),
                    "qt_mvar": np.array(self.qt_mvar),
                    "sf_mva": sf,
                    "st_mva": st,
                    "rating_mva": np.array(self.rating_mva),
                    "loading_pct": loading,
                    "flow_dual_from": np.array(self.flow_dual_from),
                    "flow_dual_to": np.array(self.flow_dual_to),
                    "angle_dual": np.array(self.angle_dual),
                    "binding": np.isin(np.arange(n), np.concatenate([b.flow_from, b.flow_to])),
                    "angle_binding": np.isin(np.arange(n), b.angle),
                }
            )
        raise ValidationError(f"unknown component {component!r}: expected bus, gen or branch")


# -- costs ----------------------------------------------------------------------------


def _costs(net: Network, gens: IntArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``c2, c1, c0`` ($/h per MW^k) of the given generators; polynomials up to order 2."""
    gc = net.gencost
    if gc is None:
        raise ValidationError("gencost: the network has no generator costs")
    if len(gc) > net.n_gen:
        extra = gc.params[net.n_gen :]
        if np.any(extra != 0.0):
            raise ValidationError(
                "gencost: reactive-power cost rows are not supported by the AC OPF",
                "gencost",
                net.n_gen,
            )
    model = gc.model[gens]
    if np.any(model != 2):
        i = int(gens[np.flatnonzero(model != 2)[0]])
        raise ValidationError(
            f"gencost row {i + 1}: piecewise-linear costs (model 1) are not supported by the "
            "AC OPF; expected a polynomial (model 2)",
            "gencost",
            i,
        )
    k = gc.ncost[gens]
    params = gc.params[gens]
    rows = np.arange(gens.size)
    coef = np.zeros((gens.size, 3))
    for d in range(3):
        col = k - 1 - d
        ok = col >= 0
        coef[ok, 2 - d] = params[rows[ok], col[ok]]
    lead = np.arange(params.shape[1])[None, :] < (k - 3)[:, None]
    bad = np.any(lead & (params != 0.0), axis=1)
    if np.any(bad):
        i = int(gens[np.flatnonzero(bad)[0]])
        raise ValidationError(
            f"gencost row {i + 1}: polynomial of order {int(gc.ncost[i]) - 1} > 2 is not "
            "supported by the AC OPF",
            "gencost",
            i,
        )
    return coef[:, 0], coef[:, 1], coef[:, 2]


# -- casadi plumbing ------------------------------------------------------------------


def _casadi() -> Any:
    try:
        import casadi
    except ImportError:  # pragma: no cover - casadi is a dependency
        raise SolverError(
            "the AC OPF needs the 'casadi' package (it bundles IPOPT): pip install casadi"
        ) from None
    return casadi


class _Evaluator:
    """The NLP's functions on one model, sharing work between calls at the same point.

    IPOPT evaluates g at a trial point, then (once accepted) the gradient, the
    Jacobian and the Hessian at that same point: the cosines, sines and branch
    terms of the last point are kept, keyed by the bytes of x (cheaper than a
    comparison of arrays).
    """

    def __init__(self, model: ACModel) -> None:
        self.model = model
        self._key = b""
        self._trig: Any = None
        self._terms: Terms | None = None

    def _at(self, x: FloatArray) -> None:
        key = x.tobytes()
        if key != self._key:
            self._key = key
            self._trig = self.model.branch_trig(x)
            self._terms = None

    def terms(self, x: FloatArray) -> Terms:
        self._at(x)
        if self._terms is None:
            self._terms = self.model.branch_terms(x, self._trig)
        return self._terms

    def g(self, x: FloatArray) -> FloatArray:
        self._at(x)
        m = self.model
        val = self._terms[0] if self._terms is not None else m.branch_values(x, self._trig)
        return m._constraints(x, val)

    def jac(self, x: FloatArray) -> FloatArray:
        return self.model.jacobian_values(x, self.terms(x))

    def hess(self, x: FloatArray, sigma: float, lam: FloatArray) -> FloatArray:
        return self.model.hessian_values(x, sigma, lam, self.terms(x))


def _option_error(detail: str) -> ValidationError:
    return ValidationError(f"ipopt_options: IPOPT rejected an option or its value ({detail})")


def _ipopt_options(options: ACOPFOptions, warm: bool) -> dict[str, Any]:
    ipopt: dict[str, Any] = {
        "print_level": 0,
        "sb": "yes",
        "tol": options.tolerance,
        "max_iter": options.max_iter,
        "linear_solver": "mumps",
        # approximate minimum degree: 10 to 30 % faster than MUMPS's automatic
        # choice on the PGLib cases of 1,000 to 3,000 buses
        "mumps_pivot_order": 0,
    }
    if options.time_limit_s is not None:
        ipopt["max_wall_time"] = options.time_limit_s
    if warm:
        ipopt.update(
            {
                "warm_start_init_point": "yes",
                "warm_start_bound_push": 1e-9,
                "warm_start_bound_frac": 1e-9,
                "warm_start_slack_bound_push": 1e-9,
                "warm_start_slack_bound_frac": 1e-9,
                "warm_start_mult_bound_push": 1e-9,
                "mu_init": options.warm_start_mu,
            }
        )
    if options.ipopt_options:
        ipopt.update(options.ipopt_options)
    return ipopt


def _run_c(
    model: ACModel,
    options: ACOPFOptions,
    warm: bool,
    x0: FloatArray,
    lam_g0: FloatArray,
    lam_x0: FloatArray,
) -> tuple[str, int, FloatArray, FloatArray, FloatArray, float]:
    """IPOPT through its C interface.

    Returns status, iterations, x, lam_g, lam_x and the time the solve started.
    """
    ev = _Evaluator(model)
    jac, hess = model.jac, model.hess
    jac_cols = np.repeat(np.arange(jac.n_col), np.diff(jac.indptr))
    hess_cols = np.repeat(np.arange(hess.n_col), np.diff(hess.indptr))
    prob = _ipopt.Problem(
        lbx=model.lbx,
        ubx=model.ubx,
        lbg=model.lbg,
        ubg=model.ubg,
        jac_rows=jac.indices,
        jac_cols=jac_cols,
        # the pattern holds the upper triangle; IPOPT takes the lower one
        hess_rows=hess_cols,
        hess_cols=hess.indices,
        f=model.objective,
        grad=model.objective_grad,
        g=ev.g,
        jac=ev.jac,
        hess=ev.hess,
    )
    t1 = time.perf_counter()
    try:
        sol = _ipopt.solve(prob, x0, _ipopt_options(options, warm), lam_g0, lam_x0)
    except _ipopt.OptionError as e:
        raise _option_error(str(e)) from None
    except RuntimeError as e:  # IPOPT refused to create the problem
        return "IPOPT failed: " + " ".join(str(e).split())[:300], 0, x0, lam_g0, lam_x0, t1
    if sol.error is not None:
        if isinstance(sol.error, (KeyboardInterrupt, MemoryError)):
            raise sol.error
        raise SolverError(
            f"evaluating the AC OPF failed inside IPOPT: {type(sol.error).__name__}: {sol.error}"
        ) from sol.error
    return sol.status, sol.iterations, sol.x, sol.lam_g, sol.lam_x, t1


def _run_casadi(
    model: ACModel,
    options: ACOPFOptions,
    warm: bool,
    x0: FloatArray,
    lam_g0: FloatArray,
    lam_x0: FloatArray,
) -> tuple[str, int, FloatArray, FloatArray, FloatArray, float]:
    """IPOPT through casadi's ``nlpsol`` (where the C interface cannot be loaded).

    Returns status, iterations, x, lam_g, lam_x and the time the solve started.
    """
    try:
        solver, keep = _make_solver(model, options, warm)
    except RuntimeError as e:
        text = " ".join(str(e).split())
        if options.ipopt_options and "option" in text.lower():
            raise _option_error(str(dict(options.ipopt_options))) from None
        raise SolverError(f"IPOPT could not be set up: {text}") from None
    t1 = time.perf_counter()
    try:
        sol = solver(
            x0=x0,
            lbx=model.lbx,
            ubx=model.ubx,
            lbg=model.lbg,
            ubg=model.ubg,
            lam_g0=lam_g0,
            lam_x0=lam_x0,
        )
    except RuntimeError as e:
        return "IPOPT failed: " + " ".join(str(e).split())[:300], 0, x0, lam_g0, lam_x0, t1
    finally:
        del keep
    stats = solver.stats()
    return (
        str(stats.get("return_status", "unknown")),
        int(stats.get("iter_count", 0)),
        np.asarray(sol["x"].full(), dtype=np.float64).ravel(),
        np.asarray(sol["lam_g"].full(), dtype=np.float64).ravel(),
        np.asarray(sol["lam_x"].full(), dtype=np.float64).ravel(),
        t1,
    )


def _make_solver(model: ACModel, options: ACOPFOptions, warm: bool) -> tuple[Any, list[Any]]:
    """An IPOPT solver (through casadi) on numpy callbacks; also the callbacks to keep alive."""
    ca = _casadi()

    def sparsity(p: Any) -> Any:
        return ca.Sparsity(p.n_row, p.n_col, p.indptr.tolist(), p.indices.tolist())

    jac_sp = sparsity(model.jac)
    hess_sp = sparsity(model.hess)
    nx, ng = model.n_x, model.n_g

    class _Fn(ca.Callback):  # type: ignore[misc,name-defined]
        def __init__(
            self,
            name: str,
            ins: list[tuple[str, Any]],
            outs: list[tuple[str, Any]],
            fn: Any,
        ) -> None:
            ca.Callback.__init__(self)
            self._ins, self._outs, self._fn = ins, outs, fn
            self.construct(name, {})

        def get_n_in(self) -> int:
            return len(self._ins)

        def get_n_out(self) -> int:
            return len(self._outs)

        def get_name_in(self, i: int) -> str:
            return str(self._ins[i][0])

        def get_name_out(self, i: int) -> str:
            return str(self._outs[i][0])

        def get_sparsity_in(self, i: int) -> Any:
            return self._ins[i][1]

        def get_sparsity_out(self, i: int) -> Any:
            return self._outs[i][1]

        def has_eval_buffer(self) -> bool:
            return True

        def eval_buffer(self, arg: Any, res: Any) -> int:
            # copy-free: casadi hands over its non-zero buffers as memoryviews
            ins = [np.zeros(0) if a is None else np.frombuffer(a, dtype=np.float64) for a in arg]
            want = [buf is not None for buf in res]
            for buf, val in zip(res, self._fn(ins, want), strict=True):
                if buf is not None:
                    np.frombuffer(buf, dtype=np.float64)[:] = val
            return 0

    dx = ca.Sparsity.dense(nx, 1)
    dp = ca.Sparsity.dense(0, 1)
    d1 = ca.Sparsity.dense(1, 1)
    dg = ca.Sparsity.dense(ng, 1)

    # IPOPT asks for f and g through casadi's derived functions one at a time:
    # compute only the outputs casadi has a buffer for
    nothing = np.zeros(0)

    ev = _Evaluator(model)
    terms = ev.terms

    def f_nlp(arg: list[FloatArray], want: list[bool]) -> tuple[Any, Any]:
        x = arg[0]
        if not want[1]:
            return model.objective(x), nothing
        return model.objective(x) if want[0] else nothing, ev.g(x)

    def f_grad(arg: list[FloatArray], want: list[bool]) -> tuple[Any, Any]:
        x = arg[0]
        return model.objective(x) if want[0] else nothing, model.objective_grad(x)

    def f_jac(arg: list[FloatArray], want: list[bool]) -> tuple[FloatArray, FloatArray]:
        x = arg[0]
        if want[0]:
            return model.constraints_and_jacobian(x, terms(x))
        return nothing, model.jacobian_values(x, terms(x))

    def f_hess(arg: list[FloatArray], want: list[bool]) -> tuple[FloatArray]:
        x = arg[0]
        return (model.hessian_values(x, float(arg[2][0]), arg[3], terms(x)),)

    ins2 = [("x", dx), ("p", dp)]
    nlp = _Fn("aiguilleur_acopf", ins2, [("f", d1), ("g", dg)], f_nlp)
    grad = _Fn("grad_f", ins2, [("f", d1), ("grad_f_x", ca.Sparsity.dense(1, nx))], f_grad)
    jac = _Fn("jac_g", ins2, [("g", dg), ("jac_g_x", jac_sp)], f_jac)
    hess = _Fn(
        "hess_l",
        [*ins2, ("lam_f", d1), ("lam_g", dg)],
        [("hess_gamma_x_x", hess_sp)],
        f_hess,
    )
    ipopt = _ipopt_options(options, warm)
    opts: dict[str, Any] = {
        "grad_f": grad,
        "jac_g": jac,
        "hess_lag": hess,
        "print_time": False,
        "calc_lam_p": False,
        "calc_lam_x": False,
        "no_nlp_grad": True,
        "error_on_fail": False,
        "ipopt": ipopt,
    }
    solver = ca.nlpsol("aiguilleur_acopf", "ipopt", nlp, opts)
    return solver, [nlp, grad, jac, hess]


# -- starts ---------------------------------------------------------------------------


def _mid(lo: FloatArray, hi: FloatArray) -> FloatArray:
    lo_f = np.where(np.isfinite(lo), lo, np.where(np.isfinite(hi), np.minimum(hi, 0.0), 0.0))
    hi_f = np.where(np.isfinite(hi), hi, np.maximum(lo_f, 0.0))
    out: FloatArray = 0.5 * (lo_f + hi_f)
    return out


def _flat(model: ACModel) -> FloatArray:
    nb = model.n_bus
    lo, hi = model.lbx, model.ubx
    vm = np.clip(np.ones(nb), lo[nb : 2 * nb], hi[nb : 2 * nb])
    return np.concatenate([np.zeros(nb), vm, _mid(lo[2 * nb :], hi[2 * nb :])])


def _from_point(model: ACModel, pt: ACOPFStart, net: Network) -> FloatArray:
    nb = model.n_bus
    for name, n in (("vm_pu", nb), ("va_deg", nb), ("pg_mw", net.n_gen), ("qg_mvar", net.n_gen)):
        if getattr(pt, name).shape != (n,):
            raise ValidationError(
                f"start.{name}: {getattr(pt, name).size} values, expected {n} for {net.name}"
            )
    x = _flat(model)
    base = model.base
    parts = (
        (np.deg2rad(pt.va_deg), 0, None),
        (pt.vm_pu, nb, None),
        (pt.pg_mw / base, 2 * nb, model.gens),
        (pt.qg_mvar / base, model.off_qg, model.gens),
    )
    for vals, off, rows in parts:
        v = vals if rows is None else vals[rows]
        seg = x[off : off + v.size]
        x[off : off + v.size] = np.where(np.isfinite(v), v, seg)
    # a fixed variable (reference angle) must sit at its value
    return np.where(model.lbx == model.ubx, model.lbx, x)


def _dc_start(model: ACModel, net: Network) -> tuple[FloatArray, str]:
    from aiguilleur.grid.dispatch import DCOPFOptions, dc_opf

    dc = dc_opf(net, DCOPFOptions(model="pglib"))
    if dc.status != "optimal":
        return _flat(model), f"DC-OPF {dc.status}, flat start used instead"
    pt = ACOPFStart(
        vm_pu=np.full(net.n_bus, np.nan),
        va_deg=dc.va_deg,
        pg_mw=dc.pg_mw,
        qg_mvar=np.full(net.n_gen, np.nan),
    )
    return _from_point(model, pt, net), ""


def _warm_duals(model: ACModel, net: Network, d: _Duals) -> tuple[FloatArray, FloatArray]:
    """Multipliers of a previous solution mapped onto this model's rows and columns."""
    if d.lam_p.size != net.n_bus or d.mu_f.size != net.n_branch or d.z_pg.size != net.n_gen:
        raise ValidationError("start: the previous result is of a network of another size")
    br_l = model.br[model.lim]
    br_a = model.br[model.ang]
    lam_g = np.concatenate(
        [
            d.lam_p[model.bal_bus],
            d.lam_q[model.bal_bus],
            d.mu_f[br_l],
            d.mu_t[br_l],
            d.lam_ang[br_a],
        ]
    )
    lam_x = np.concatenate([d.z_va, d.z_vm, d.z_pg[model.gens], d.z_qg[model.gens]])
    return np.nan_to_num(lam_g), np.nan_to_num(lam_x)


# -- results --------------------------------------------------------------------------


def _violations(
    model: ACModel, net: Network, x: FloatArray, g: FloatArray
) -> tuple[float, tuple[str, ...]]:
    """Largest violation (pu) and the worst violated constraints in words."""
    base = model.base
    nb, nbal, nl = model.n_bus, model.n_bal, model.lim.size
    kinds: list[tuple[FloatArray, Any]] = []
    bid = net.bus.bus_id
    br_id = model.br
    # balance rows, pu
    kinds.append(
        (
            np.abs(g[:nbal]),
            lambda i, v: (
                f"active power balance at bus {int(bid[model.bal_bus[i]])}: "
                f"mismatch {v * base:.4g} MW"
            ),
        )
    )
    kinds.append(
        (
            np.abs(g[nbal : 2 * nbal]),
            lambda i, v: (
                f"reactive power balance at bus {int(bid[model.bal_bus[i]])}: "
                f"mismatch {v * base:.4g} MVAr"
            ),
        )
    )
    rate = np.sqrt(model.rate2)
    for end, off in (("from", 2 * nbal), ("to", 2 * nbal + nl)):
        s = np.sqrt(np.maximum(g[off : off + nl], 0.0))
        kinds.append(
            (
                np.maximum(s - rate, 0.0),
                lambda i, v, end=end: (
                    f"flow limit of branch {int(br_id[model.lim[i]]) + 1} "
                    f"({int(net.branch.from_bus_id[br_id[model.lim[i]]])}-"
                    f"{int(net.branch.to_bus_id[br_id[model.lim[i]]])}) at the {end} end: "
                    f"{(v + rate[i]) * base:.4g} MVA over a rating of {rate[i] * base:.4g} MVA"
                ),
            )
        )
    # every angle limit, those left out as implied included
    kinds.append(
        (
            model.angle_excess(x),
            lambda i, v: (
                f"angle-difference limit of branch {int(br_id[model.ang_all[i]]) + 1}: "
                f"{np.rad2deg(v):.4g} degrees beyond"
            ),
        )
    )
    below = np.maximum(model.lbx - x, 0.0)
    above = np.maximum(x - model.ubx, 0.0)
    out = np.maximum(below, above)

    def var_name(j: int, v: float) -> str:
        if j < nb:
            return f"reference angle of bus {int(bid[j])}: {np.rad2deg(v):.4g} degrees off"
        if j < 2 * nb:
            return f"voltage limit of bus {int(bid[j - nb])}: {v:.4g} pu beyond"
        k = j - 2 * nb
        what = "active" if k < model.n_gen else "reactive"
        gi = int(model.gens[k % model.n_gen])
        unit = "MW" if k < model.n_gen else "MVAr"
        return f"{what} power limit of generator {gi + 1}: {v * base:.4g} {unit} beyond"

    kinds.append((out, var_name))
    worst: list[tuple[float, str]] = []
    biggest = 0.0
    for vals, name in kinds:
        if vals.size == 0:
            continue
        vals = np.nan_to_num(vals, nan=np.inf)
        biggest = max(biggest, float(vals.max()))
        top = np.argsort(-vals)[:_N_VIOLATIONS]
        worst.extend((float(vals[i]), name(int(i), float(vals[i]))) for i in top if vals[i] > 1e-6)
    worst.sort(key=lambda p: -p[0])
    return biggest, tuple(s for _, s in worst[:_N_VIOLATIONS])


def _result(
    net: Network,
    model: ACModel,
    status: Status,
    message: str,
    x: FloatArray,
    lam_g: FloatArray,
    lam_x: FloatArray,
    iterations: int,
    times: tuple[float, float, float],
    start: str,
) -> ACOPFResult:
    base = model.base
    nb, nl_all, ng_all = net.n_bus, net.n_branch, net.n_gen
    va, vm, pg, qg = model.split(x)
    val, _, _, _ = model.branch_terms(x)
    g = model.constraints(x)
    on = model.bus_on

    def per_branch(v: FloatArray, rows: IntArray) -> FloatArray:
        out = np.zeros(nl_all)
        out[rows] = v
        return out

    flows = [per_branch(val[k] * base, model.br) for k in range(4)]
    pg_all = np.zeros(ng_all)
    qg_all = np.zeros(ng_all)
    pg_all[model.gens] = pg * base
    qg_all[model.gens] = qg * base
    nbal, nl = model.n_bal, model.lim.size
    lam_p = np.full(nb, np.nan)
    lam_q = np.full(nb, np.nan)
    lam_p[model.bal_bus] = lam_g[:nbal]
    lam_q[model.bal_bus] = lam_g[nbal : 2 * nbal]
    br_l = model.br[model.lim]
    mu_f = per_branch(lam_g[2 * nbal : 2 * nbal + nl], br_l)
    mu_t = per_branch(lam_g[2 * nbal + nl : 2 * nbal + 2 * nl], br_l)
    lam_ang = per_branch(lam_g[model.row_ang :], model.br[model.ang])
    rate_pu = np.zeros(nl_all)
    rate_pu[br_l] = np.sqrt(model.rate2)
    rating = np.where(rate_pu > 0, rate_pu * base, np.inf)
    ng = model.n_gen
    z_pg = np.zeros(ng_all)
    z_qg = np.zeros(ng_all)
    z_pg[model.gens] = lam_x[2 * nb : 2 * nb + ng]
    z_qg[model.gens] = lam_x[2 * nb + ng :]
    duals = _Duals(
        lam_p=lam_p,
        lam_q=lam_q,
        mu_f=mu_f,
        mu_t=mu_t,
        lam_ang=lam_ang,
        z_va=lam_x[:nb].copy(),
        z_vm=lam_x[nb : 2 * nb].copy(),
        z_pg=z_pg,
        z_qg=z_qg,
    )

    # binding limits: multiplier non-zero and slack (nearly) zero
    def rows_where(mask: npt.NDArray[np.bool_], rows: IntArray) -> IntArray:
        out: IntArray = np.sort(rows[mask]).astype(np.int64)
        return out

    sf = g[2 * nbal : 2 * nbal + nl]
    st = g[2 * nbal + nl : 2 * nbal + 2 * nl]
    tight = _SLACK_TOL * np.maximum(model.rate2, 1.0)
    ga = g[model.row_ang :]
    lg_a = lam_g[model.row_ang :]
    lx, ux = model.lbx, model.ubx
    free = lx < ux
    at_hi = free & (lam_x > _DUAL_TOL) & (ux - x < _SLACK_TOL)
    at_lo = free & (lam_x < -_DUAL_TOL) & (x - lx < _SLACK_TOL)
    ar_b, ar_g = np.arange(nb), model.gens
    sl = slice(nb, 2 * nb)
    sp_ = slice(2 * nb, 2 * nb + ng)
    sq = slice(2 * nb + ng, 2 * nb + 2 * ng)
    binding = BindingLimits(
        flow_from=rows_where(
            (lam_g[2 * nbal : 2 * nbal + nl] > _DUAL_TOL) & (model.rate2 - sf < tight), br_l
        ),
        flow_to=rows_where(
            (lam_g[2 * nbal + nl : 2 * nbal + 2 * nl] > _DUAL_TOL) & (model.rate2 - st < tight),
            br_l,
        ),
        angle=rows_where(
            ((lg_a > _DUAL_TOL) & (model.ang_hi - ga < _SLACK_TOL))
            | ((lg_a < -_DUAL_TOL) & (ga - model.ang_lo < _SLACK_TOL)),
            model.br[model.ang],
        ),
        vm_max=rows_where(at_hi[sl], ar_b),
        vm_min=rows_where(at_lo[sl], ar_b),
        pg_max=rows_where(at_hi[sp_], ar_g),
        pg_min=rows_where(at_lo[sp_], ar_g),
        qg_max=rows_where(at_hi[sq], ar_g),
        qg_min=rows_where(at_lo[sq], ar_g),
    )
    max_viol, viol = _violations(model, net, x, g)
    build_s, solve_s, total_s = times
    return ACOPFResult(
        status=status,
        objective=model.objective(x),
        vm_pu=_readonly(np.where(on, vm, np.nan)),
        va_deg=_readonly(np.where(on, np.rad2deg(va), np.nan)),
        pg_mw=_readonly(pg_all),
        qg_mvar=_readonly(qg_all),
        pf_mw=_readonly(flows[0]),
        qf_mvar=_readonly(flows[1]),
        pt_mw=_readonly(flows[2]),
        qt_mvar=_readonly(flows[3]),
        losses_mw=float(np.sum(flows[0]) + np.sum(flows[2])),
        lmp=_readonly(lam_p / base),
        lmp_q=_readonly(lam_q / base),
        flow_dual_from=_readonly(mu_f * 2.0 * rate_pu / base),
        flow_dual_to=_readonly(mu_t * 2.0 * rate_pu / base),
        angle_dual=_readonly(-lam_ang * np.pi / 180.0 + 0.0),
        binding=binding,
        rating_mva=_readonly(rating),
        max_violation=max_viol,
        violations=viol,
        iterations=iterations,
        time_s=total_s,
        build_time_s=build_s,
        solver_time_s=solve_s,
        message=message,
        start=start,
        bus_id=_readonly(net.bus.bus_id, np.int64),
        gen_bus_id=_readonly(net.gen.bus_id, np.int64),
        from_bus_id=_readonly(net.branch.from_bus_id, np.int64),
        to_bus_id=_readonly(net.branch.to_bus_id, np.int64),
        _duals=duals,
    )


def _check_bounds(model: ACModel, net: Network) -> None:
    """Refuse crossed limits (min above max): bad data, not an optimisation outcome."""
    bad = np.flatnonzero(model.lbx > model.ubx)
    if bad.size == 0:
        return
    j = int(bad[0])
    nb, ng = model.n_bus, model.n_gen
    if j < 2 * nb:
        i = j - nb
        raise ValidationError(
            f"bus row {i + 1} (id {int(net.bus.bus_id[i])}): vmin_pu {net.bus.vmin_pu[i]:g} "
            f"is above vmax_pu {net.bus.vmax_pu[i]:g}",
            "bus",
            i,
        )
    k = int(model.gens[(j - 2 * nb) % ng])
    lo, hi = ("pmin_mw", "pmax_mw") if j < 2 * nb + ng else ("qmin_mvar", "qmax_mvar")
    raise ValidationError(
        f"gen row {k + 1}: {lo} {getattr(net.gen, lo)[k]:g} is above {hi} "
        f"{getattr(net.gen, hi)[k]:g}",
        "gen",
        k,
    )


# -- the solve ------------------------------------------------------------------------


def ac_opf(
    net: Network,
    options: ACOPFOptions | None = None,
    *,
    start: StartKind | ACOPFResult | ACOPFStart = "flat",
) -> ACOPFResult:
    """Solve the AC optimal power flow of one snapshot (PGLib-OPF's formulation).

    Parameters
    ----------
    net
        The network, with polynomial generator costs (order up to 2).
    options
        Solver settings; :class:`ACOPFOptions` defaults.
    start
        ``"flat"`` (default), ``"dc"`` (from a DC-OPF), a previous
        :class:`ACOPFResult` on a network of the same size (primal and dual
        warm start, e.g. the pre-outage optimum when re-solving after an
        outage) or an :class:`ACOPFStart` (primal only).

    Returns
    -------
    ACOPFResult
        Dispatch, voltages, flows, prices and binding limits. Failures of the
        solver (local infeasibility, iteration or time limit, numerical
        trouble) are reported through ``status``, not raised.

    Raises
    ------
    ValidationError
        Bad options or start, crossed limits (a minimum above its maximum),
        or costs the AC OPF cannot take (piecewise linear, order above 2,
        reactive costs).
    SolverError
        IPOPT could not be set up at all (casadi missing or broken).
    """
    check_network(net, "ac_opf", solve=True)
    check_options(options, ACOPFOptions, "ac_opf")
    opts = ACOPFOptions() if options is None else options
    if not isinstance(opts, ACOPFOptions):
        raise ValidationError(f"options: expected ACOPFOptions, got {type(opts).__name__}")
    if not (isinstance(start, (ACOPFResult, ACOPFStart)) or start in ("flat", "dc")):
        raise ValidationError(
            f"start: expected 'flat', 'dc', an ACOPFResult or an ACOPFStart, got {start!r}"
        )
    t0 = time.perf_counter()
    gens = np.flatnonzero(
        (net.gen.in_service == 1) & (net.bus.bus_type[net.gen_bus] != BUS_ISOLATED)
    ).astype(np.int64)
    c2, c1, c0 = _costs(net, gens)
    rate = net.branch.rating_mva(opts.rating)
    screen = opts.screen_angle_limits and opts.enforce_angle_limits
    run = _solve(net, opts, start, c2, c1, c0, rate, screen, t0)
    model = run.model
    if screen and model.ang.size < model.ang_all.size and run.status == "optimal":
        # the rows left out are implied up to whole turns of an angle: make sure
        dropped = np.ones(model.ang_all.size, dtype=bool)
        dropped[np.searchsorted(model.ang_all, model.ang)] = False
        if float(np.max(model.angle_excess(run.x)[dropped], initial=0.0)) > _ANGLE_TOL:
            again = _solve(net, opts, start, c2, c1, c0, rate, False, time.perf_counter())
            (b0, s0, t0_), (b1, s1, t1_) = run.times, again.times
            run = again._replace(
                iterations=run.iterations + again.iterations,
                times=(b0 + b1, s0 + s1, t0_ + t1_),
                message=f"{again.message} (solved again with every angle-difference row)",
            )
    return _result(net, *run)


class _Run(NamedTuple):
    """One compile-and-solve: what ``_result`` needs."""

    model: ACModel
    status: Status
    message: str
    x: FloatArray
    lam_g: FloatArray
    lam_x: FloatArray
    iterations: int
    times: tuple[float, float, float]  # build, solve, total seconds
    start: str


def _solve(
    net: Network,
    opts: ACOPFOptions,
    start: StartKind | ACOPFResult | ACOPFStart,
    c2: FloatArray,
    c1: FloatArray,
    c0: FloatArray,
    rate: FloatArray,
    screen: bool,
    t0: float,
) -> _Run:
    """Compile and solve once."""
    model = compile_model(
        net,
        c2,
        c1,
        c0,
        rate_mva=rate,
        angle_limits=opts.enforce_angle_limits,
        screen_angle_limits=screen,
    )
    _check_bounds(model, net)
    warm = isinstance(start, ACOPFResult)
    notes = ""
    lam_g0 = np.zeros(model.n_g)
    lam_x0 = np.zeros(model.n_x)
    if isinstance(start, ACOPFResult):
        x0 = _from_point(model, start.as_start(), net)
        lam_g0, lam_x0 = _warm_duals(model, net, start._duals)
        start_name = "warm"
    elif isinstance(start, ACOPFStart):
        x0 = _from_point(model, start, net)
        start_name = "given"
    elif start == "dc":
        x0, notes = _dc_start(model, net)
        start_name = "dc"
    else:
        x0 = _flat(model)
        start_name = "flat"
    run_ipopt = _run_c if _ipopt.available() else _run_casadi
    ret, iterations, x, lam_g, lam_x, t1 = run_ipopt(model, opts, warm, x0, lam_g0, lam_x0)
    if ret == "Invalid_Option":
        raise _option_error(str(dict(opts.ipopt_options or {})))
    status: Status = _STATUS.get(ret, "error")
    if ret in _NO_ITERATION:  # before the first iteration IPOPT leaves its counter unset
        iterations = 0
    message = ret
    t2 = time.perf_counter()
    if notes:
        message = f"{message} ({notes})"
    if not np.all(np.isfinite(x)):
        status = "error"
        x = np.where(np.isfinite(x), x, x0)
    return _Run(
        model,
        status,
        message,
        x,
        np.nan_to_num(lam_g),
        np.nan_to_num(lam_x),
        iterations,
        (t1 - t0, t2 - t1, t2 - t0),
        start_name,
    )
