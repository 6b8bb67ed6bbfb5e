"""Day-ahead security assessment: tomorrow's congestions, their remedies and the risk of shedding.

For each hour of the target day and each load scenario, the operator's
question is whether the planned dispatch survives every single outage, and
what it would cost to make it do so. The steps:

1. **Forecast.** A probabilistic load forecast of the day, issued at 12:00 on
   D-1 from the history known then (LightGBM quantiles with conformal
   calibration, :mod:`aiguilleur.forecast`).
2. **Scenarios.** Three paths P10, P50 and P90 (every hour at that quantile;
   weights 0.3, 0.4, 0.3, the extended Swanson-Megill discretisation of Keefer
   and Bodily, Management Science 29(5), 1983), or ``N`` sampled paths of equal
   weight from a Gaussian copula: each hour's marginal passes through its
   forecast quantiles, and the hour-to-hour correlation is that of the normal
   scores of the out-of-sample forecast errors of the days before (a
   rolling-origin backtest), shrunk towards independence by the Ledoit-Wolf
   rule (J. Multivariate Analysis 88(2), 2004).
3. **Spread to buses.** Each hour's system load is a multiple of a reference
   level of the history (its highest hour over the last 365 days by default,
   PGLib-OPF cases being peak snapshots; or its mean); that multiple scales the
   case's positive bus loads (active and reactive, constant power factor).
   Negative loads of the case (embedded generation) stay as they are.
4. **Plan.** Unit commitment and dispatch per scenario over the 24 hours
   (:func:`aiguilleur.grid.commit`, copper plate by default: the market's
   plan that the security assessment then checks), with the planned outages
   applied for the whole day.
5. **Assess** every hour of every scenario: AC power flow and the full N-1
   screen with AC verification (:func:`aiguilleur.grid.screen_n1`).
6. **Remedy.** Where the screen finds a branch above its rating, the
   preventive security-constrained dispatch of the committed units
   (:func:`aiguilleur.grid.sced`, post-outage limit = the same rating, load
   shedding at the value of lost load as a last resort) and its cost against
   the planned dispatch; the remedied point is screened again in AC and what
   remains is reported.
7. **Risk beyond N-1.** Outage states sampled from the elements' failure
   probabilities for the hour, conditioned on at least one failure (the
   no-failure state is evaluated exactly), each answered by a corrective
   redispatch with load shedding (:class:`aiguilleur.grid.redispatch.Redispatcher`);
   the expected energy not served with a 95 % confidence interval (Monte Carlo
   error only; the scenario discretisation is not part of it).

Work fans out over an :class:`~aiguilleur.ops.cluster.Executor`, in one
:class:`~aiguilleur.ops.cluster.Fanout` whose stages overlap: the forecast's
independent parts (the calibration, each booster of the final model) as tasks,
then one commitment per scenario, and each scenario's (hour, scenario) tasks as
soon as its plan is in, beside the commitments still running. The results do not depend on the
executor nor on the order in which the tasks finish.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from aiguilleur._files import read_input_text
from aiguilleur.errors import ValidationError
from aiguilleur.forecast import ForecastSettings, HourlySeries
from aiguilleur.grid import (
    CommitmentOptions,
    ContingencyOptions,
    DCOPFOptions,
    Network,
    SCEDOptions,
)
from aiguilleur.grid.redispatch import Outage, RedispatchOptions, parse_outage
from aiguilleur.ops._dayahead_work import (
    SHED_TOL_MW,
    CommitJob,
    CommitOutcome,
    ForecastJob,
    HourItem,
    HourJob,
    HourOutcome,
    Spread,
    commit_task,
    forecast_parts,
    forecast_quantiles,
    forecast_task,
    hour_task,
    operating_point,
    z_to_quantile,
)
from aiguilleur.ops.cluster import Executor, RunStats, SerialExecutor

#: Bound on a failure-rate or renewable-forecast CSV (rows per element and hour fit easily).
MAX_TABLE_BYTES = 64 * 1024 * 1024

__all__ = [
    "DEFAULT_BRANCH_FAILURES_PER_YEAR",
    "DEFAULT_GEN_FAILURES_PER_YEAR",
    "CriticalTriple",
    "DayAheadOptions",
    "DayAheadResult",
    "FailureRates",
    "Scenarios",
    "assess_day_ahead",
    "default_failure_rates",
    "ledoit_wolf_correlation",
    "parse_outages",
    "read_failure_rates",
    "read_renewables",
    "sample_paths",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

Progress = Callable[[str, int, int], None]

#: Forced outages per year of a transmission branch: the IEEE Reliability Test System
#: (IEEE Trans. PAS-98(6), 1979; RTS-96, IEEE Trans. Power Systems 14(3), 1999) gives
#: its lines permanent outage rates of a few tenths per year; 0.5 is at the top of that.
DEFAULT_BRANCH_FAILURES_PER_YEAR = 0.5
#: Forced outages per year of a generating unit in operation: the RTS units' mean times
#: to failure are 450 to 2,940 h; 1,000 h gives 8.76 per year.
DEFAULT_GEN_FAILURES_PER_YEAR = 8.76
_HOURS_PER_YEAR = 8760.0
#: Extended Swanson-Megill weights of P10, P50, P90 (Keefer and Bodily, 1983).
SWANSON_MEGILL = (0.3, 0.4, 0.3)


# -- inputs ----------------------------------------------------------------------------------


def parse_outages(texts: Sequence[str], net: Network) -> tuple[Outage, ...]:
    """Planned outages ``branch:K`` / ``gen:J`` (case-file rows from 1), checked against ``net``."""
    out = []
    for text in texts:
        o = parse_outage(text)
        n = net.n_branch if o.kind == "branch" else net.n_gen
        if o.row >= n:
            what = "branches" if o.kind == "branch" else "generators"
            raise ValidationError(f"outage {text!r}: the case has {n} {what} (rows 1..{n})")
        out.append(o)
    return tuple(out)


@dataclass(frozen=True)
class FailureRates:
    """Probability that each element fails within each hour of the day.

    ``branch_per_h`` is ``(24, n_branch)``, ``gen_per_h`` ``(24, n_gen)``;
    ``source`` says where the figures come from.
    """

    branch_per_h: FloatArray
    gen_per_h: FloatArray
    source: str

    def __post_init__(self) -> None:
        for name in ("branch_per_h", "gen_per_h"):
            a = np.array(getattr(self, name), dtype=np.float64)
            if a.ndim != 2 or a.shape[0] != 24:
                raise ValidationError(f"{name}: expected 24 rows (hours), got shape {a.shape}")
            if np.any(~np.isfinite(a)) or np.any((a < 0) | (a > 1)):
                raise ValidationError(f"{name}: probabilities must lie in [0, 1]")
            a.setflags(write=False)
            object.__setattr__(self, name, a)


def default_failure_rates(
    net: Network,
    branch_per_year: float = DEFAULT_BRANCH_FAILURES_PER_YEAR,
    gen_per_year: float = DEFAULT_GEN_FAILURES_PER_YEAR,
) -> FailureRates:
    """Constant hourly failure probabilities ``1 - exp(-rate / 8760)`` per element kind."""
    pb = -math.expm1(-branch_per_year / _HOURS_PER_YEAR)
    pg = -math.expm1(-gen_per_year / _HOURS_PER_YEAR)
    return FailureRates(
        np.full((24, net.n_branch), pb),
        np.full((24, net.n_gen), pg),
        f"defaults: {branch_per_year:g} failures/year per branch, {gen_per_year:g} per unit "
        "(IEEE RTS order of magnitude)",
    )


def read_failure_rates(path: str | Path, net: Network) -> FailureRates:
    """Read ``element,probability[,hour]`` rows: the probability that the element fails
    within an hour (``hour`` 0-23 for that hour only; without it, for every hour).

    Elements are ``branch:K`` / ``gen:J`` (case-file rows from 1). Elements not
    listed keep the default rate of their kind (:func:`default_failure_rates`).
    Errors name the file, line and field.
    """
    p = Path(path)
    text = read_input_text(p, max_bytes=MAX_TABLE_BYTES)
    rows = [(i + 1, r) for i, r in enumerate(csv.reader(text.splitlines())) if any(r)]
    if not rows:
        raise ValidationError(f"{p}: empty file, expected a header element,probability[,hour]")
    head = [c.strip().lower() for c in rows[0][1]]
    for need in ("element", "probability"):
        if need not in head:
            raise ValidationError(f"{p}, line {rows[0][0]}: missing column {need!r}")
    ie, ip = head.index("element"), head.index("probability")
    ih = head.index("hour") if "hour" in head else -1
    base = default_failure_rates(net)
    br = np.array(base.branch_per_h)
    gn = np.array(base.gen_per_h)
    all_day: list[tuple[int, str, int, float]] = []
    per_hour: list[tuple[int, str, int, int, float]] = []
    for line, r in rows[1:]:
        if len(r) != len(head):
            raise ValidationError(f"{p}, line {line}: {len(r)} fields, expected {len(head)}")
        try:
            o = parse_outage(r[ie])
        except ValidationError as e:
            raise ValidationError(f"{p}, line {line}, field element: {e}") from None
        n = net.n_branch if o.kind == "branch" else net.n_gen
        if o.row >= n:
            raise ValidationError(
                f"{p}, line {line}, field element: {r[ie].strip()!r}: the case has {n} rows"
            )
        try:
            prob = float(r[ip])
        except ValueError:
            raise ValidationError(
                f"{p}, line {line}, field probability: {r[ip].strip()!r} is not a number"
            ) from None
        if not 0.0 <= prob <= 1.0:
            raise ValidationError(f"{p}, line {line}, field probability: {prob:g} is not in [0, 1]")
        if ih >= 0 and r[ih].strip():
            try:
                h = int(r[ih])
            except ValueError:
                raise ValidationError(
                    f"{p}, line {line}, field hour: {r[ih].strip()!r} is not an hour 0-23"
                ) from None
            if not 0 <= h <= 23:
                raise ValidationError(f"{p}, line {line}, field hour: {h} is not in 0-23")
            per_hour.append((line, o.kind, o.row, h, prob))
        else:
            all_day.append((line, o.kind, o.row, prob))
    for _, kind, row, prob in all_day:
        (br if kind == "branch" else gn)[:, row] = prob
    for _, kind, row, h, prob in per_hour:
        (br if kind == "branch" else gn)[h, row] = prob
    return FailureRates(br, gn, f"{p.name} ({len(rows) - 1} rows; others at the defaults)")


def read_renewables(path: str | Path, net: Network) -> FloatArray:
    """Read a renewable forecast ``hour,bus_id,available_mw`` into ``(24, n_bus)``.

    ``hour`` is 0-23 of the target day; buses not listed have none. The output
    is offered to the commitment, which takes what it needs.
    """
    p = Path(path)
    text = read_input_text(p, max_bytes=MAX_TABLE_BYTES)
    rows = [(i + 1, r) for i, r in enumerate(csv.reader(text.splitlines())) if any(r)]
    if not rows:
        raise ValidationError(f"{p}: empty file, expected a header hour,bus_id,available_mw")
    head = [c.strip().lower() for c in rows[0][1]]
    for need in ("hour", "bus_id", "available_mw"):
        if need not in head:
            raise ValidationError(f"{p}, line {rows[0][0]}: missing column {need!r}")
    ih, ib, iv = head.index("hour"), head.index("bus_id"), head.index("available_mw")
    out = np.zeros((24, net.n_bus))
    for line, r in rows[1:]:
        if len(r) != len(head):
            raise ValidationError(f"{p}, line {line}: {len(r)} fields, expected {len(head)}")
        vals = []
        for name, k in (("hour", ih), ("bus_id", ib), ("available_mw", iv)):
            try:
                vals.append(float(r[k]))
            except ValueError:
                raise ValidationError(
                    f"{p}, line {line}, field {name}: {r[k].strip()!r} is not a number"
                ) from None
        h, bus, mw = vals
        if h != int(h) or not 0 <= h <= 23:
            raise ValidationError(f"{p}, line {line}, field hour: {r[ih].strip()!r} is not 0-23")
        if not np.isin(int(bus), net.bus.bus_id) or bus != int(bus):
            raise ValidationError(
                f"{p}, line {line}, field bus_id: no bus {r[ib].strip()} in the case"
            )
        if not math.isfinite(mw) or mw < 0:
            raise ValidationError(
                f"{p}, line {line}, field available_mw: {mw:g} is not a non-negative number"
            )
        out[int(h), int(net.bus_index([int(bus)])[0])] += mw
    return out


# -- options ---------------------------------------------------------------------------------


def _default_commitment() -> CommitmentOptions:
    return CommitmentOptions(mip_gap=1e-3, time_limit_s=300.0)


@dataclass(frozen=True)
class DayAheadOptions:
    """Settings of the day-ahead assessment.

    Parameters
    ----------
    scenarios
        Load scenarios: 1 (P50), 3 (P10, P50, P90 paths) or any ``N`` sampled paths
        (see ``sampling``).
    sampling
        ``"auto"``: quantile paths for 1 and 3 scenarios, sampled paths otherwise;
        ``"quantiles"`` or ``"copula"`` to choose.
    rating
        Branch rating held in the base case and after every contingency.
    margin_pct
        Contingencies whose DC estimate comes within this margin of a rating are
        verified in AC (:class:`~aiguilleur.grid.ContingencyOptions`).
    generator_contingencies
        Screen the loss of each committed unit as well as each branch.
    distributed_slack
        AC power flows share the imbalance (the losses the plan does not carry)
        among the committed units in proportion to their capacity.
    load_reference
        The level of the history that the case's loads stand for: ``"peak"``
        (the highest hour of the last 365 days) or ``"mean"``.
    forecast
        The forecaster's settings.
    residual_days
        Days of out-of-sample forecasts whose errors give the copula's correlation.
    commitment
        Unit-commitment settings.
    preventive
        Compute the preventive redispatch of congested hours.
    verify_preventive
        Screen the remedied operating point again in AC.
    voll_eur_per_mwh
        Value of lost load of the preventive and corrective redispatch.
    samples
        Monte Carlo outage states per hour and scenario (0: no EENS estimate).
    redispatch_minutes
        Time the corrective redispatch of a sampled outage state may take.
    seed
        Seed of the scenario sampling and of the Monte Carlo draws.
    min_task_s
        Least work per task, by which (hour, scenario) items are batched.
    critical_limit
        How many critical triples the JSON summary lists (all are kept in the result).
    """

    scenarios: int = 3
    sampling: Literal["auto", "quantiles", "copula"] = "auto"
    rating: Literal["a", "b", "c"] = "a"
    margin_pct: float = 10.0
    generator_contingencies: bool = False
    distributed_slack: bool = True
    load_reference: Literal["peak", "mean"] = "peak"
    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    residual_days: int = 60
    commitment: CommitmentOptions = field(default_factory=_default_commitment)
    preventive: bool = True
    verify_preventive: bool = True
    voll_eur_per_mwh: float = 10_000.0
    samples: int = 64
    redispatch_minutes: float = 15.0
    seed: int = 0
    min_task_s: float = 0.1
    critical_limit: int = 100

    def __post_init__(self) -> None:
        def integer(name: str, lo: int, hi: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValidationError(f"{name}: expected an integer >= {lo}, got {v!r}")
            if v > hi:  # a stated ceiling: a mistyped count must not run for days
                raise ValidationError(f"{name}: expected at most {hi:,}, got {v:,}")

        integer("scenarios", 1, 1_000)
        integer("residual_days", 14, 36_500)
        integer("samples", 0, 100_000)
        integer("seed", 0, 2**32 - 1)
        integer("critical_limit", 0, 1_000_000)
        if self.sampling not in ("auto", "quantiles", "copula"):
            raise ValidationError(
                f"sampling: expected auto, quantiles or copula, got {self.sampling!r}"
            )
        if self.sampling == "quantiles" and self.scenarios not in (1, 3):
            raise ValidationError(
                f"scenarios: quantile paths give 1 (P50) or 3 (P10, P50, P90), got {self.scenarios}"
            )
        if self.load_reference not in ("peak", "mean"):
            raise ValidationError(
                f"load_reference: expected peak or mean, got {self.load_reference!r}"
            )
        for name, lo, hi in (
            ("voll_eur_per_mwh", 0.0, 1e7),
            ("redispatch_minutes", 0.0, 24 * 60.0),
            ("min_task_s", 0.0, 3600.0),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo < v <= hi:
                raise ValidationError(f"{name}: expected a number in ({lo:g}, {hi:g}], got {v!r}")
        if not isinstance(self.forecast, ForecastSettings):
            raise ValidationError("forecast: expected ForecastSettings")
        for q in (0.1, 0.5, 0.9):
            if q not in self.forecast.quantiles:
                raise ValidationError(f"forecast.quantiles: the level {q} is needed")
        if not isinstance(self.commitment, CommitmentOptions):
            raise ValidationError("commitment: expected CommitmentOptions")
        ContingencyOptions(rating=self.rating, margin_pct=self.margin_pct)

    @property
    def copula(self) -> bool:
        """Whether the scenarios are sampled paths."""
        if self.sampling == "auto":
            return self.scenarios not in (1, 3)
        return self.sampling == "copula"

    def contingency_options(self) -> ContingencyOptions:
        return ContingencyOptions(
            rating=self.rating,
            margin_pct=self.margin_pct,
            generators=self.generator_contingencies,
            distributed_slack=self.distributed_slack,
        )


# -- scenarios -------------------------------------------------------------------------------


def ledoit_wolf_correlation(z: FloatArray) -> tuple[FloatArray, float]:
    """Correlation of the columns of ``z`` shrunk towards the identity (Ledoit-Wolf, 2004).

    Rows with a missing value are dropped. Returns the correlation matrix and
    the shrinkage intensity in [0, 1].
    """
    x = np.asarray(z, dtype=np.float64)
    x = x[np.all(np.isfinite(x), axis=1)]
    n, p = x.shape
    if n < 2:
        return np.eye(p), 1.0
    x = x - x.mean(axis=0)
    sd = x.std(axis=0)
    x = x / np.where(sd > 0, sd, 1.0)
    s = x.T @ x / n
    mu = float(np.trace(s)) / p
    d2 = float(np.sum((s - mu * np.eye(p)) ** 2)) / p
    b2_bar = float(np.sum((np.einsum("ki,kj->kij", x, x) - s[None]) ** 2)) / (n * n * p)
    b2 = min(b2_bar, d2)
    lam = b2 / d2 if d2 > 0 else 1.0
    c = lam * mu * np.eye(p) + (1.0 - lam) * s
    dg = np.sqrt(np.diag(c))
    c = c / dg[:, None] / dg[None, :]
    return c, lam


def sample_paths(
    quantiles: FloatArray,
    levels: FloatArray,
    correlation: FloatArray,
    n: int,
    rng: np.random.Generator,
) -> FloatArray:
    """``n`` daily paths ``(n, 24)`` from a Gaussian copula.

    Each hour's marginal passes through its quantiles (piecewise linear in the
    normal score, extended linearly beyond the outermost levels); the normal
    scores of the 24 hours are drawn jointly with ``correlation``.
    """
    c = np.asarray(correlation, dtype=np.float64)
    w, v = np.linalg.eigh(0.5 * (c + c.T))
    root = v * np.sqrt(np.clip(w, 0.0, None))[None, :]
    z = rng.standard_normal((n, c.shape[0])) @ root.T
    return z_to_quantile(np.asarray(quantiles)[None, :, :], np.asarray(levels), z)


@dataclass(frozen=True)
class Scenarios:
    """The load scenarios of the day.

    Attributes
    ----------
    labels
        ``P10``, ``P50``, ``P90`` or ``S1``...``SN``.
    weights
        Probability of each scenario (sum 1).
    load_mw
        System load ``(n_scenarios, 24)``.
    factors
        The same as multiples of the reference level ``(n_scenarios, 24)``.
    quantiles, levels
        The forecast ``(24, n_q)`` and its quantile levels.
    reference_mw
        The history's level that the case's loads stand for.
    correlation
        The copula's hour-to-hour correlation (``None`` for quantile paths).
    shrinkage
        Its Ledoit-Wolf shrinkage intensity (NaN for quantile paths).
    """

    labels: tuple[str, ...]
    weights: FloatArray
    load_mw: FloatArray
    factors: FloatArray
    quantiles: FloatArray
    levels: FloatArray
    reference_mw: float
    correlation: FloatArray | None = None
    shrinkage: float = math.nan

    @property
    def count(self) -> int:
        return len(self.labels)


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriticalTriple:
    """A branch above its rating after a contingency in an hour, with its probability.

    ``contingency`` is ``base`` (no outage: the branch is already above its
    rating) or ``branch:K`` / ``gen:J`` (case-file rows from 1); ``branch`` is
    the 0-based row of the overloaded branch; ``max_loading_pct`` the worst
    loading over the scenarios where it occurs.
    """

    hour: int
    contingency: str
    branch: int
    probability: float
    max_loading_pct: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "hour": self.hour,
            "contingency": self.contingency,
            "branch": f"branch:{self.branch + 1}",
            "probability": self.probability,
            "max_loading_pct": self.max_loading_pct,
        }


@dataclass(frozen=True)
class DayAheadResult:
    """The assessment of one day (see the module notes).

    Attributes
    ----------
    status
        ``complete`` (every hour of every scenario assessed), ``partial`` (some
        could not be: ``messages`` says which and why) or ``error``.
    ok
        ``status == "complete"``.
    day
        The target day.
    net
        The network of the day (planned outages applied), before any scaling.
    scenarios
        The load scenarios and the forecast behind them.
    commitment
        One plan per scenario.
    outcomes
        One per (hour, scenario), hour-major.
    overload_probability
        ``(24, n_branch)``: probability that the branch is above its rating in
        the base case or after some contingency, per hour.
    critical
        Every (hour, contingency, branch) triple, most probable first.
    preventive_cost
        Expected cost of the preventive redispatch over the day (currency of the
        case's costs; the scenarios' weights).
    eens_mwh, eens_ci_mwh
        Expected energy not served over the day and its 95 % interval.
    lolp
        Probability of some load shedding, per hour.
    stages
        How each stage's tasks ran (forecast, commitment, hours).
    stage_s
        Seconds: ``forecast`` (from the start until the forecast is in),
        ``commitment`` (from then until the last plan is in), ``hours`` (from the
        first (hour, scenario) task submitted until the last result), and
        ``first_point_at`` (when that first task was submitted, from the start) and
        ``overlap`` (from then until the last plan was in: how long the hours could run
        beside the commitments; on one worker they wait behind them).
    """

    status: str
    day: np.datetime64
    net: Network
    outages: tuple[Outage, ...]
    options: DayAheadOptions
    scenarios: Scenarios
    commitment: tuple[CommitOutcome, ...]
    outcomes: tuple[HourOutcome, ...]
    overload_probability: FloatArray
    critical: tuple[CriticalTriple, ...]
    preventive_cost: float
    preventive_cost_by_hour: FloatArray
    eens_mwh: float
    eens_ci_mwh: tuple[float, float]
    eens_by_hour_mwh: FloatArray
    lolp: FloatArray
    failure_source: str
    stages: dict[str, RunStats]
    executor: str
    workers: int
    wall_s: float
    stage_s: dict[str, float]
    messages: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    @property
    def hours(self) -> int:
        return 24

    @property
    def tasks(self) -> int:
        return sum(s.tasks for s in self.stages.values())

    @property
    def contingencies_per_hour(self) -> int:
        return max((o.contingencies for o in self.outcomes), default=0)

    def outcome(self, hour: int, scenario: int) -> HourOutcome:
        """The outcome of one hour of one scenario."""
        return self.outcomes[hour * self.scenarios.count + scenario]

    def operating_point(self, hour: int, scenario: int) -> Network:
        """The network that was assessed for ``hour`` of ``scenario`` (before any remedy)."""
        if not 0 <= hour < 24 or not 0 <= scenario < self.scenarios.count:
            raise ValidationError(f"hour {hour}, scenario {scenario}: out of range")
        c = self.commitment[scenario]
        return operating_point(
            self.net, Spread.of(self.net), float(self.scenarios.factors[scenario, hour]),
            c.pg_mw[hour], c.committed[hour], c.renewable_mw[hour] + c.shed_mw[hour],
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary (the ``aiguilleur ops day-ahead --json`` contract and more)."""
        sc = self.scenarios
        crit = self.critical[: self.options.critical_limit]
        w = sc.weights
        n_s = sc.count
        div = []
        for o in self.outcomes:
            for code in o.diverged.tolist():
                div.append((o.hour, self._label(code), float(w[o.scenario])))
        div_agg: dict[tuple[int, str], float] = {}
        for h, lab, p in div:
            div_agg[(h, lab)] = div_agg.get((h, lab), 0.0) + p
        pv = [o for o in self.outcomes if o.preventive_status not in ("not_needed", "not_run")]
        return {
            "ok": self.ok,
            "status": self.status,
            "case": self.net.name,
            "day": str(self.day),
            "hours": 24,
            "scenarios": n_s,
            "scenario_labels": list(sc.labels),
            "scenario_weights": [float(x) for x in w],
            "load_reference_mw": sc.reference_mw,
            "load_mw": {lab: [float(x) for x in sc.load_mw[i]] for i, lab in enumerate(sc.labels)},
            "contingencies_per_hour": self.contingencies_per_hour,
            "critical": [c.to_dict() for c in crit],
            "critical_total": len(self.critical),
            "overloaded_branches": int(np.sum(self.overload_probability.max(axis=0) > 0)),
            "diverged": [
                {"hour": h, "contingency": lab, "probability": p}
                for (h, lab), p in sorted(div_agg.items())
            ],
            "preventive_cost": self.preventive_cost,
            "preventive_cost_by_hour": [float(x) for x in self.preventive_cost_by_hour],
            "preventive": {
                "points": len(pv),
                "statuses": sorted({o.preventive_status for o in pv}),
                "residual_base_overloads": sum(max(o.residual_base, 0) for o in pv),
                "residual_n1_pairs": sum(max(o.residual_pairs, 0) for o in pv),
                "shed_mw_max": max((o.preventive_shed_mw for o in pv), default=0.0),
                "unsecured_outages": sum(o.preventive_unsecured for o in pv),
            },
            "planned_shed_mwh": float(
                sum(w[i] * float(np.sum(c.shed_mw)) for i, c in enumerate(self.commitment))
            ),
            "eens_mwh": self.eens_mwh,
            "eens_ci_mwh": list(self.eens_ci_mwh),
            "eens_by_hour_mwh": [float(x) for x in self.eens_by_hour_mwh],
            "lolp_by_hour": [float(x) for x in self.lolp],
            "failure_rates": self.failure_source,
            "samples_per_hour_scenario": self.options.samples,
            "planned_outages": [o.label for o in self.outages],
            "wall_s": self.wall_s,
            "stage_s": dict(self.stage_s),
            "tasks": self.tasks,
            "workers": self.workers,
            "executor": self.executor,
            "retries": sum(s.retries for s in self.stages.values()),
            "worker_failures": [f for s in self.stages.values() for f in s.worker_failures],
            "stages": {k: v.to_dict() for k, v in self.stages.items()},
            "messages": list(self.messages),
        }

    def _label(self, code: int) -> str:
        nl = self.net.n_branch
        if code < 0:
            return "base"
        return f"branch:{code + 1}" if code < nl else f"gen:{code - nl + 1}"

    def write_report(self, path: str | Path) -> Path:
        """Write the HTML report (heat map, critical triples, remedies, EENS)."""
        from aiguilleur.ops._dayahead_report import write_report

        return write_report(self, path)


# -- the assessment --------------------------------------------------------------------------


def _issue_time(day: np.datetime64, s: ForecastSettings) -> np.datetime64:
    d = day.astype("datetime64[h]")
    out: np.datetime64 = d - np.timedelta64(24 - s.issue_hour, "h")
    return out


def _parse_day(day: object) -> np.datetime64:
    try:
        d = np.datetime64(str(day), "D")
    except ValueError:
        raise ValidationError(f"day: expected a date YYYY-MM-DD, got {day!r}") from None
    return d


def _history_until(
    history: HourlySeries, day: np.datetime64, opts: DayAheadOptions
) -> tuple[HourlySeries, np.datetime64]:
    s = opts.forecast
    issue = _issue_time(day, s)
    if history.end <= issue:
        last = history.end - np.timedelta64(1, "h") + np.timedelta64(24 - s.issue_hour, "h")
        last_day = last.astype("datetime64[D]")
        raise ValidationError(
            f"day {day}: no forecast can be issued: the history ends at {history.end} and the "
            f"forecast of a day is issued at {s.issue_hour:02d}:00 the day before (the last "
            f"day that can be assessed is {last_day})"
        )
    need = s.calibration_days + 14 + 7 + (opts.residual_days if opts.copula else 0)
    first = history.start.astype("datetime64[D]") + np.timedelta64(need + 1, "D")
    if day < first:
        raise ValidationError(
            f"day {day}: no forecast can be issued: the history starts at {history.start}; "
            f"training, calibration ({s.calibration_days} days) and a week of lags"
            + (f" and {opts.residual_days} days of errors for the copula" if opts.copula else "")
            + f" need history up to {first} at least"
        )
    hist = history.slice_time(history.start, issue)
    return hist, issue


def _reference(history: HourlySeries, how: str) -> float:
    y = history.target[-365 * 24 :]
    y = y[np.isfinite(y)]
    if not y.size or float(np.max(y)) <= 0:
        raise ValidationError("history: no positive load value to scale the case's loads by")
    return float(np.max(y)) if how == "peak" else float(np.mean(y))


def _scenarios(
    opts: DayAheadOptions,
    hist: HourlySeries,
    quant: FloatArray,
    levels: FloatArray,
    z: FloatArray | None,
) -> Scenarios:
    """The day's load scenarios from its forecast (and the normal scores of past errors)."""
    ref = _reference(hist, opts.load_reference)
    ql = list(levels)
    if opts.copula:
        assert z is not None
        corr, lam = ledoit_wolf_correlation(z)
        rng = np.random.default_rng([opts.seed, 7])
        paths = sample_paths(quant, levels, corr, opts.scenarios, rng)
        paths = np.clip(paths, 0.0, None)
        labels = tuple(f"S{i + 1}" for i in range(opts.scenarios))
        weights = np.full(opts.scenarios, 1.0 / opts.scenarios)
        return Scenarios(labels, weights, paths, paths / ref, quant, levels, ref, corr, lam)
    use = [0.5] if opts.scenarios == 1 else [0.1, 0.5, 0.9]
    paths = np.stack([quant[:, ql.index(q)] for q in use])
    labels = tuple(f"P{round(q * 100)}" for q in use)
    weights = np.array([1.0] if opts.scenarios == 1 else SWANSON_MEGILL)
    return Scenarios(labels, weights, paths, paths / ref, quant, levels, ref)


def _hour_job(
    opts: DayAheadOptions, day_net: Network, spread: Spread, rates: FailureRates
) -> HourJob:
    """What every (hour, scenario) task shares."""
    # preventive actions move generation only; load is shed only where not even the base
    # case can be met by the committed units (then at the value of lost load)
    sced_opts = sced_shed = None
    if opts.preventive:
        sced_opts = SCEDOptions(
            dcopf=DCOPFOptions(rating=opts.rating, enforce_angle_limits=False),
            emergency_rating=opts.rating,
            emergency_factor=1.0,
        )  # fmt: skip
        sced_shed = SCEDOptions(
            dcopf=DCOPFOptions(
                rating=opts.rating, voll_eur_per_mwh=opts.voll_eur_per_mwh,
                enforce_angle_limits=False,
            ),
            emergency_rating=opts.rating, emergency_factor=1.0,
        )  # fmt: skip
    return HourJob(
        net=day_net,
        spread=spread,
        contingency=opts.contingency_options(),
        sced=sced_opts,
        sced_shed=sced_shed,
        verify_preventive=opts.verify_preventive,
        redispatch=RedispatchOptions(
            minutes=opts.redispatch_minutes,
            rating=opts.rating,
            voll_eur_per_mwh=opts.voll_eur_per_mwh,
        ),
        branch_fail_per_h=rates.branch_per_h,
        gen_fail_per_h=rates.gen_per_h,
        samples=opts.samples,
        seed=opts.seed,
    )


def assess_day_ahead(
    net: Network,
    history: HourlySeries,
    day: object,
    options: DayAheadOptions | None = None,
    *,
    outages: Sequence[Outage] = (),
    failure_rates: FailureRates | None = None,
    renewables: FloatArray | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> DayAheadResult:
    """Assess the security of ``day`` on ``net`` (see the module notes).

    Parameters
    ----------
    net
        The grid, with generator costs.
    history
        Hourly load (and temperature, for the weather-aware forecast settings);
        only what precedes the issue time (12:00 on the day before) is read.
    day
        The target day, ``YYYY-MM-DD``.
    options
        :class:`DayAheadOptions`.
    outages
        Planned outages for the whole day (:func:`parse_outages`).
    failure_rates
        Hourly failure probabilities for the Monte Carlo (default:
        :func:`default_failure_rates`).
    renewables
        Renewable availability ``(24, n_bus)`` (:func:`read_renewables`).
    executor
        Where the work runs (default: in this process).
    progress
        Called as ``progress(stage, done, total)``.

    Raises
    ------
    ValidationError
        For a day the history cannot forecast, bad outages or inputs.
    """
    opts = DayAheadOptions() if options is None else options
    if not isinstance(opts, DayAheadOptions):
        raise ValidationError(f"options: expected DayAheadOptions, got {type(opts).__name__}")
    t_start = time.perf_counter()
    ex: Executor = SerialExecutor(roundtrip=False) if executor is None else executor
    d = _parse_day(day)
    if net.gencost is None:
        raise ValidationError(f"{net.name}: the case has no generator costs (gencost)")
    hist, issue = _history_until(history, d, opts)
    outs = tuple(outages)
    for ot in outs:
        n = net.n_branch if ot.kind == "branch" else net.n_gen
        if ot.row >= n:
            raise ValidationError(f"outage {ot.label}: the case has {n} rows of that kind")
    day_net = net
    if any(o.kind == "branch" for o in outs):
        day_net = day_net.with_branch_status([o.row for o in outs if o.kind == "branch"], 0)
    if any(o.kind == "gen" for o in outs):
        day_net = day_net.with_gen_status([o.row for o in outs if o.kind == "gen"], 0)
    rates = default_failure_rates(day_net) if failure_rates is None else failure_rates
    if rates.branch_per_h.shape[1] != net.n_branch or rates.gen_per_h.shape[1] != net.n_gen:
        raise ValidationError(
            "failure_rates: not the same number of branches and units as the case"
        )
    ren = np.zeros((24, net.n_bus)) if renewables is None else np.asarray(renewables, np.float64)
    if ren.shape != (24, net.n_bus) or np.any(~np.isfinite(ren)) or np.any(ren < 0):
        raise ValidationError(f"renewables: expected (24, {net.n_bus}) non-negative values")
    stages: dict[str, RunStats] = {}
    stage_s: dict[str, float] = {}
    messages: list[str] = []

    def tick(stage: str, total: int) -> Callable[[int, Any], None]:
        count = [0]

        def cb(_i: int, _r: Any) -> None:
            count[0] += 1
            if progress is not None:
                progress(stage, count[0], total)

        return cb

    # 1-2. forecast and scenarios; 3-4. one plan per scenario; 5-7. every hour of every
    # scenario. One fan-out: each stage's tasks are added as soon as their inputs are
    # known, so the workers never wait for a whole stage (a scenario's hours start as
    # soon as its plan is in, next to the other scenarios' commitments)
    fan = ex.fanout()
    job = ForecastJob(hist, issue, opts.forecast, opts.residual_days)
    parts = forecast_parts(opts.forecast)
    what = [*parts, "residuals"] if opts.copula else parts
    fj = fan.add(forecast_task, what, job, on_result=tick("forecast", len(what)))
    spread = Spread.of(day_net)
    cjob = CommitJob(day_net, spread, ren, opts.commitment)
    hjob = _hour_job(opts, day_net, spread, rates)
    scen: Scenarios | None = None
    cj = -1
    hour_jobs: list[int] = []
    plans_in: list[CommitOutcome | None] = []
    cb = tick("hours", 24 * opts.scenarios)
    t_hours = math.nan
    for k, i, r in fan.results():
        if k == fj and fan.done(fj):
            out = fan.outputs(fj)
            quant, levels = forecast_quantiles(job, parts, out[: len(parts)])
            scen = _scenarios(opts, hist, quant, levels, out[-1][0] if opts.copula else None)
            stage_s["forecast"] = time.perf_counter() - t_start
            plans_in = [None] * scen.count
            cj = fan.add(
                commit_task, list(scen.factors), cjob, on_result=tick("commitment", scen.count)
            )
        elif k == cj:
            assert scen is not None
            plans_in[i] = c = r
            if c.status in ("optimal", "time_limit"):
                # this scenario's hours start now, next to the other commitments
                items = [
                    HourItem(
                        h,
                        i,
                        float(scen.factors[i, h]),
                        c.pg_mw[h],
                        c.committed[h],
                        c.renewable_mw[h] + c.shed_mw[h],
                    )
                    for h in range(24)
                ]
                if not hour_jobs:
                    t_hours = time.perf_counter()
                hour_jobs.append(
                    fan.add(
                        hour_task,
                        items,
                        hjob,
                        batch_size=None,
                        min_task_s=opts.min_task_s,
                        on_result=cb,
                    )
                )
            if fan.done(cj):
                stage_s["commitment"] = time.perf_counter() - t_start - stage_s["forecast"]
    assert scen is not None
    plans = tuple(c for c in plans_in if c is not None)
    stages["forecast"] = fan.stats(fj)
    stages["commitment"] = fan.stats(cj)
    if hour_jobs:
        stages["hours"] = fan.stats(*hour_jobs)
        # when the first point was submitted, after the assessment's start, and how long
        # the points could run beside commitments still running (the stages' overlap)
        stage_s["hours"] = stages["hours"].wall_s
        stage_s["first_point_at"] = t_hours - t_start
        stage_s["overlap"] = max(
            0.0, stage_s["forecast"] + stage_s["commitment"] - (t_hours - t_start)
        )
    else:
        stages["hours"] = RunStats(ex.kind, ex.workers, 0, 0, 1, 0, (), 0.0, 0.0, 0, 0.0, 0)
        stage_s["hours"] = 0.0
    for i, c in enumerate(plans):
        if c.status not in ("optimal", "time_limit"):
            messages.append(f"scenario {scen.labels[i]}: unit commitment {c.status} ({c.message})")
        elif c.status == "time_limit":
            messages.append(
                f"scenario {scen.labels[i]}: unit commitment stopped at its time limit "
                f"(gap {c.mip_gap:.2%})"
            )
    usable = [c.status in ("optimal", "time_limit") for c in plans]
    outcomes: list[HourOutcome] = [o for k in hour_jobs for o in fan.outputs(k)]
    # put the outcomes in hour-major order with placeholders for missing scenarios
    by_key = {(o.hour, o.scenario): o for o in outcomes}
    n_s = scen.count
    ordered: list[HourOutcome] = []
    for h in range(24):
        for s in range(n_s):
            o = by_key.get((h, s))
            if o is None:
                o = _missing(h, s, day_net.n_branch)
            ordered.append(o)
    bad = [o for o in ordered if o.status != "ok"]
    for o in bad[:10]:
        messages.append(
            f"hour {o.hour}, scenario {scen.labels[o.scenario]}: {o.status}: {o.message}"
        )
    if len(bad) > 10:
        messages.append(f"... and {len(bad) - 10} more (hour, scenario) points not assessed")

    prob, critical = _congestion(ordered, scen.weights, day_net.n_branch)
    pc_hour = np.zeros(24)
    for o in ordered:
        if o.preventive_status not in ("not_needed", "not_run") and math.isfinite(
            o.preventive_cost
        ):
            pc_hour[o.hour] += scen.weights[o.scenario] * o.preventive_cost
    eens_h, var_h, lolp = _eens(ordered, scen.weights)
    eens = float(eens_h.sum())
    half = 1.959963984540054 * math.sqrt(float(var_h.sum()))
    if opts.samples == 0:
        eens, half = math.nan, math.nan
    status = (
        "complete"
        if not bad and all(usable)
        else ("partial" if len(bad) < len(ordered) else "error")
    )
    return DayAheadResult(
        status=status,
        day=d,
        net=day_net,
        outages=outs,
        options=opts,
        scenarios=scen,
        commitment=plans,
        outcomes=tuple(ordered),
        overload_probability=prob,
        critical=critical,
        preventive_cost=float(pc_hour.sum()),
        preventive_cost_by_hour=pc_hour,
        eens_mwh=eens,
        eens_ci_mwh=(max(eens - half, 0.0), eens + half)
        if math.isfinite(eens)
        else (math.nan, math.nan),
        eens_by_hour_mwh=eens_h,
        lolp=lolp,
        failure_source=rates.source,
        stages=stages,
        executor=ex.kind,
        workers=ex.workers,
        wall_s=time.perf_counter() - t_start,
        stage_s=stage_s,
        messages=tuple(messages),
    )


def _missing(hour: int, scenario: int, n_branch: int) -> HourOutcome:
    e_i, e_f = np.zeros(0, dtype=np.int64), np.zeros(0)
    return HourOutcome(
        hour, scenario, "not_run", "the scenario has no plan", 0, 0, 0, 0.0, e_i, e_i, e_f,
        e_i, e_i, e_f, np.zeros(n_branch), math.nan, "not_run", math.nan, 0.0, 0.0, 0, -1, -1,
        math.nan, e_f, math.nan, 0, 0, 0.0, 0.0, 0.0,
    )  # fmt: skip


def _congestion(
    outcomes: Sequence[HourOutcome], weights: FloatArray, n_branch: int
) -> tuple[FloatArray, tuple[CriticalTriple, ...]]:
    """Overload probability per (hour, branch) and the critical triples, by scenario weight."""
    prob = np.zeros((24, n_branch))
    hs, codes, brs, ws, loads, scs = [], [], [], [], [], []
    for o in outcomes:
        if o.status != "ok":
            continue
        w = float(weights[o.scenario])
        hit = np.zeros(n_branch, dtype=bool)
        hit[o.base_over] = True
        hit[o.pair_branch] = True
        prob[o.hour] += w * hit
        m = o.base_over.size + o.pair_branch.size
        hs.append(np.full(m, o.hour, dtype=np.int64))
        codes.append(np.concatenate([np.full(o.base_over.size, -1, np.int64), o.pair_cont]))
        brs.append(np.concatenate([o.base_over, o.pair_branch]))
        ws.append(np.full(m, w))
        loads.append(np.concatenate([o.base_loading, o.pair_loading]))
        scs.append(np.full(m, o.scenario, dtype=np.int64))
    if not hs:
        return prob, ()
    h = np.concatenate(hs)
    c = np.concatenate(codes)
    b = np.concatenate(brs)
    w_all = np.concatenate(ws)
    lv = np.concatenate(loads)
    if not h.size:
        return np.minimum(prob, 1.0), ()
    span_c = 2 * n_branch + 10_000_000
    key = (h * span_c + (c + 1)) * n_branch + b
    uniq, inv = np.unique(key, return_inverse=True)
    p = np.bincount(inv, weights=w_all)
    worst = np.full(uniq.size, -np.inf)
    np.maximum.at(worst, inv, np.where(np.isfinite(lv), lv, -np.inf))
    uh = uniq // n_branch // span_c
    uc = (uniq // n_branch) % span_c - 1
    ub = uniq % n_branch
    order = np.lexsort((ub, uc, uh, -worst, -np.round(p, 12)))
    out = []
    for i in order.tolist():
        code = int(uc[i])
        lab = (
            "base"
            if code < 0
            else (f"branch:{code + 1}" if code < n_branch else f"gen:{code - n_branch + 1}")
        )
        wv = float(worst[i])
        out.append(
            CriticalTriple(int(uh[i]), lab, int(ub[i]), min(float(p[i]), 1.0),
                           wv if math.isfinite(wv) else math.nan)
        )  # fmt: skip
    return np.minimum(prob, 1.0), tuple(out)


def _eens(
    outcomes: Sequence[HourOutcome], weights: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Expected energy not served per hour, its Monte Carlo variance, and the LOLP."""
    eens = np.zeros(24)
    var = np.zeros(24)
    lolp = np.zeros(24)
    for o in outcomes:
        if o.status != "ok" or not o.mc_shed_mw.size:
            continue
        w = float(weights[o.scenario])
        n = o.mc_shed_mw.size
        pa = o.mc_p_any
        base = o.mc_base_shed_mw if math.isfinite(o.mc_base_shed_mw) else 0.0
        mean = float(o.mc_shed_mw.mean())
        v = float(o.mc_shed_mw.var(ddof=1)) / n if n > 1 else 0.0
        eens[o.hour] += w * (pa * mean + (1.0 - pa) * base)
        var[o.hour] += w * w * pa * pa * v
        frac = float(np.mean(o.mc_shed_mw > SHED_TOL_MW))
        lolp[o.hour] += w * (pa * frac + (1.0 - pa) * float(base > SHED_TOL_MW))
    return eens, var, lolp
