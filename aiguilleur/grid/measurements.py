"""Measurement sets for state estimation: the value, its CSV file and a simulator.

A :class:`Measurements` value is a frozen set of readings, each with an id, a
kind, the element it is taken at, its value and its standard deviation:

========  ==========================================  ======  ==============
kind      what                                        unit    element
========  ==========================================  ======  ==============
vm        voltage magnitude                           pu      ``bus:<id>``
p_inj     active injection (positive into the grid)   MW      ``bus:<id>``
q_inj     reactive injection (positive into the grid) Mvar    ``bus:<id>``
p_from    active flow into the branch at its from end MW      ``branch:<n>``
q_from    reactive flow at the from end               Mvar    ``branch:<n>``
p_to      active flow into the branch at its to end   MW      ``branch:<n>``
q_to      reactive flow at the to end                 Mvar    ``branch:<n>``
========  ==========================================  ======  ==============

``branch:<n>`` is the n-th branch row of the case file, from 1. The CSV file
has one reading a line, ``id,kind,element,value,sigma``, an optional header
line with those names, blank lines and ``#`` comments.

:func:`simulate_measurements` draws a noisy set from an AC power flow, with a
chosen redundancy, dropout and gross errors, for tests, benchmarks and the
operations centre's telemetry simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components
from scipy.sparse.linalg import splu

from aiguilleur._files import atomic_write_bytes, read_input_text
from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.grid._checks import check_network, check_options, check_path
from aiguilleur.grid._compile import branch_admittance, make_ybus
from aiguilleur.grid._estimation import (
    P_FROM,
    P_INJ,
    P_TO,
    Q_FROM,
    Q_INJ,
    Q_TO,
    VM,
    MeasurementModel,
)
from aiguilleur.grid._selinv import NotPositiveDefinite, SelectedInverse
from aiguilleur.grid.network import Network
from aiguilleur.grid.powerflow import PowerFlowResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MEASUREMENT_KINDS",
    "Measurements",
    "SimulationOptions",
    "measured_values",
    "read_measurements",
    "read_measurements_string",
    "simulate_measurements",
    "write_measurements",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.str_]

#: the measurement kinds, in the order of the table above
MEASUREMENT_KINDS = ("vm", "p_inj", "q_inj", "p_from", "q_from", "p_to", "q_to")
_BUS_KINDS = frozenset(("vm", "p_inj", "q_inj"))
_HEADER = ("id", "kind", "element", "value", "sigma")
#: largest element number accepted (ids are 64-bit integers inside)
_MAX_ELEMENT = 2**62


def _readonly(a: Any, dtype: Any) -> Any:
    arr = np.array(a, dtype=dtype, copy=True)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Measurements:
    """A frozen set of measurements (one entry per reading, arrays of equal length).

    Parameters
    ----------
    id
        A unique, non-empty name per reading (no comma, no line break).
    kind
        One of :data:`MEASUREMENT_KINDS`.
    element
        The bus id for ``vm``, ``p_inj``, ``q_inj``; the branch's row in the
        case file, from 1, for the flow kinds.
    value
        The reading, in pu (``vm``), MW or Mvar.
    sigma
        Its standard deviation, in the same unit, positive.
    true_value
        The noise-free value when known (a simulator's truth), else ``None``.
    """

    id: StrArray
    kind: StrArray
    element: IntArray
    value: FloatArray
    sigma: FloatArray
    true_value: FloatArray | None = field(default=None)

    def __post_init__(self) -> None:
        ids = _readonly(self.id, np.str_)
        kinds = _readonly(self.kind, np.str_)
        try:
            element = _readonly(self.element, np.int64)
            value = _readonly(self.value, np.float64)
            sigma = _readonly(self.sigma, np.float64)
        except (TypeError, ValueError, OverflowError) as e:
            raise ValidationError(f"measurements: {e}") from None
        n = ids.size
        for name, arr in (("kind", kinds), ("element", element), ("value", value)):
            if arr.size != n:
                raise ValidationError(f"measurements.{name}: {arr.size} entries, expected {n}")
        if sigma.size != n:
            raise ValidationError(f"measurements.sigma: {sigma.size} entries, expected {n}")
        truth = None
        if self.true_value is not None:
            truth = _readonly(self.true_value, np.float64)
            if truth.size != n:
                raise ValidationError(
                    f"measurements.true_value: {truth.size} entries, expected {n}"
                )
        for i in range(n):  # validation of a value, not a hot path: name the first offender
            mid = str(ids[i])
            if not mid.strip() or any(c in mid for c in ",\n\r\"'"):
                raise ValidationError(
                    f"measurement {mid!r}: an id must be non-empty, without commas, quotes or "
                    "line breaks"
                )
        bad = np.flatnonzero(~np.isin(kinds, MEASUREMENT_KINDS))
        if bad.size:
            k = int(bad[0])
            raise ValidationError(
                f"measurement {ids[k]}: unknown kind {kinds[k]!r}; expected one of "
                f"{', '.join(MEASUREMENT_KINDS)}"
            )
        bad = np.flatnonzero(~np.isfinite(value))
        if bad.size:
            raise ValidationError(f"measurement {ids[bad[0]]}: value must be finite")
        bad = np.flatnonzero(~(np.isfinite(sigma) & (sigma > 0)))
        if bad.size:
            k = int(bad[0])
            raise ValidationError(
                f"measurement {ids[k]}: sigma must be a positive finite number, got {sigma[k]}"
            )
        bad = np.flatnonzero((element <= 0) | (element >= _MAX_ELEMENT))
        if bad.size:
            k = int(bad[0])
            raise ValidationError(
                f"measurement {ids[k]}: element number must be positive, got {element[k]}"
            )
        uniq, counts = np.unique(ids, return_counts=True)
        if np.any(counts > 1):
            raise ValidationError(f"measurement {uniq[counts > 1][0]}: the id is used twice")
        for name, arr in (("id", ids), ("kind", kinds), ("element", element), ("value", value)):
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "true_value", truth)

    def __len__(self) -> int:
        return int(self.id.size)

    @property
    def labels(self) -> list[str]:
        """``bus:<id>`` or ``branch:<n>`` per reading."""
        return [
            f"{'bus' if k in _BUS_KINDS else 'branch'}:{int(e)}"
            for k, e in zip(self.kind.tolist(), self.element.tolist(), strict=True)
        ]

    def subset(self, keep: npt.ArrayLike) -> Measurements:
        """The readings selected by a boolean mask or by positions."""
        sel = np.asarray(keep)
        return Measurements(
            self.id[sel],
            self.kind[sel],
            self.element[sel],
            self.value[sel],
            self.sigma[sel],
            None if self.true_value is None else self.true_value[sel],
        )

    def with_values(self, value: npt.ArrayLike) -> Measurements:
        """The same readings with new values (the truth, if any, is kept)."""
        v = np.asarray(value, dtype=np.float64)
        return Measurements(self.id, self.kind, self.element, v, self.sigma, self.true_value)

    def rows(self, net: Network) -> IntArray:
        """0-based bus or branch row of each reading in ``net``.

        Raises
        ------
        ValidationError
            Naming the first reading whose bus or branch is not in ``net``.
        """
        out = np.zeros(len(self), dtype=np.int64)
        is_bus = np.isin(self.kind, tuple(_BUS_KINDS))
        if np.any(is_bus):
            ids = self.element[is_bus]
            known = np.isin(ids, net.bus.bus_id)
            if not np.all(known):
                k = int(np.flatnonzero(is_bus)[np.flatnonzero(~known)[0]])
                raise ValidationError(
                    f"measurement {self.id[k]}: no bus {int(self.element[k])} in {net.name}"
                )
            out[is_bus] = net.bus_index(ids)
        br = ~is_bus
        bad = np.flatnonzero(br & (self.element > net.n_branch))
        if bad.size:
            k = int(bad[0])
            raise ValidationError(
                f"measurement {self.id[k]}: no branch {int(self.element[k])} in {net.name} "
                f"(it has {net.n_branch})"
            )
        out[br] = self.element[br] - 1
        return out

    @classmethod
    def from_csv(cls, path: str | Path, net: Network | None = None) -> Measurements:
        """Read a measurements CSV file (see :func:`read_measurements`)."""
        return read_measurements(path, net)

    def to_frame(self) -> pd.DataFrame:
        """The readings as a DataFrame: ``id, kind, element, value, sigma`` (and ``true_value``)."""
        import pandas as pd

        data: dict[str, Any] = {
            "id": self.id.tolist(),
            "kind": self.kind.tolist(),
            "element": self.labels,
            "value": np.array(self.value),
            "sigma": np.array(self.sigma),
        }
        if self.true_value is not None:
            data["true_value"] = np.array(self.true_value)
        return pd.DataFrame(data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (lists), read back by :meth:`from_dict`."""
        out: dict[str, Any] = {
            "id": self.id.tolist(),
            "kind": self.kind.tolist(),
            "element": self.labels,
            "value": self.value.tolist(),
            "sigma": self.sigma.tolist(),
        }
        if self.true_value is not None:
            out["true_value"] = self.true_value.tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurements:
        """The value written by :meth:`to_dict`.

        Raises
        ------
        ValidationError
            When a field is missing or malformed.
        """
        try:
            kinds = [str(k) for k in data["kind"]]
            elements = [
                _parse_element(str(e), k) for e, k in zip(data["element"], kinds, strict=True)
            ]
            truth = data.get("true_value")
            return cls(
                np.array([str(i) for i in data["id"]], dtype=np.str_),
                np.array(kinds, dtype=np.str_),
                np.array(elements, dtype=np.int64),
                np.array(data["value"], dtype=np.float64),
                np.array(data["sigma"], dtype=np.float64),
                None if truth is None else np.array(truth, dtype=np.float64),
            )
        except KeyError as e:
            raise ValidationError(f"measurements: missing field {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise ValidationError(f"measurements: {e}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Measurements):
            return NotImplemented
        same = (
            np.array_equal(self.id, other.id)
            and np.array_equal(self.kind, other.kind)
            and np.array_equal(self.element, other.element)
            and np.array_equal(self.value, other.value)
            and np.array_equal(self.sigma, other.sigma)
        )
        if self.true_value is None or other.true_value is None:
            return same and self.true_value is None and other.true_value is None
        return same and np.array_equal(self.true_value, other.true_value)

    __hash__ = None  # type: ignore[assignment]


# -- CSV -----------------------------------------------------------------------------------


def _tok(text: str, limit: int = 40) -> str:
    """A field as an error shows it: quoted, and cut short (never a whole line or file)."""
    t = text.strip()
    return repr(t if len(t) <= limit else t[:limit] + "...")


def _parse_element(text: str, kind: str) -> int:
    """``bus:<id>`` or ``branch:<n>`` (matching the kind) -> the number; ValueError otherwise."""
    prefix, sep, num = text.strip().partition(":")
    want = "bus" if kind in _BUS_KINDS else "branch"
    if not sep or prefix.strip() != want:
        raise ValueError(f"expected {want}:<{'id' if want == 'bus' else 'n'}> for {kind}")
    s = num.strip()
    if not s or not s.isascii() or not s.isdigit():
        raise ValueError(f"{_tok(text)}: the number must be a positive integer")
    k = int(s)
    if k <= 0 or k >= _MAX_ELEMENT:
        raise ValueError(f"{_tok(text)}: the number must be a positive integer")
    return k


def _parse_float(text: str) -> float:
    s = text.strip()
    # Python's float() also reads "1_0", "infinity" and "nan"; a data file should not
    if not s or "_" in s:
        raise ValueError(f"{_tok(s)} is not a number")
    try:
        x = float(s)
    except ValueError:
        raise ValueError(f"{_tok(s)} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{_tok(s)} is not a finite number")
    return x


def read_measurements_string(
    text: str, net: Network | None = None, *, source: str = "<string>"
) -> Measurements:
    """Parse measurements from CSV text (see :func:`read_measurements`).

    Parameters
    ----------
    text
        The file's content.
    net
        When given, every element must exist in it.
    source
        The name used in error messages.
    """
    ids: list[str] = []
    kinds: list[str] = []
    elements: list[int] = []
    values: list[float] = []
    sigmas: list[float] = []
    seen: dict[str, int] = {}
    first = True
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = [x.strip() for x in line.split(",")]
        if first:
            first = False
            if [x.lower() for x in fields] == list(_HEADER):
                continue
        if len(fields) != 5:
            raise CaseFormatError(
                f"expected 5 fields id,kind,element,value,sigma, got {len(fields)}",
                source,
                lineno,
            )
        mid, kind, elem, val, sig = fields
        if not mid or any(c in mid for c in "\"'"):
            raise CaseFormatError(f"field id: {_tok(mid)} is not a valid id", source, lineno)
        if mid in seen:
            raise CaseFormatError(
                f"field id: {_tok(mid)} is already used on line {seen[mid]}", source, lineno
            )
        if kind not in MEASUREMENT_KINDS:
            raise CaseFormatError(
                f"field kind: {_tok(kind)} is not one of {', '.join(MEASUREMENT_KINDS)}",
                source,
                lineno,
            )
        try:
            number = _parse_element(elem, kind)
        except ValueError as e:
            raise CaseFormatError(f"field element: {e}", source, lineno) from None
        if net is not None:
            if kind in _BUS_KINDS and not np.any(net.bus.bus_id == number):
                raise CaseFormatError(
                    f"field element: no bus {number} in {net.name}", source, lineno
                )
            if kind not in _BUS_KINDS and number > net.n_branch:
                raise CaseFormatError(
                    f"field element: no branch {number} in {net.name} (it has {net.n_branch})",
                    source,
                    lineno,
                )
        try:
            value = _parse_float(val)
        except ValueError as e:
            raise CaseFormatError(f"field value: {e}", source, lineno) from None
        try:
            sigma = _parse_float(sig)
        except ValueError as e:
            raise CaseFormatError(f"field sigma: {e}", source, lineno) from None
        if sigma <= 0:
            raise CaseFormatError(f"field sigma: must be positive, got {_tok(sig)}", source, lineno)
        seen[mid] = lineno
        ids.append(mid)
        kinds.append(kind)
        elements.append(number)
        values.append(value)
        sigmas.append(sigma)
    if not ids:
        raise CaseFormatError("no measurement in the file", source)
    return Measurements(
        np.array(ids, dtype=np.str_),
        np.array(kinds, dtype=np.str_),
        np.array(elements, dtype=np.int64),
        np.array(values, dtype=np.float64),
        np.array(sigmas, dtype=np.float64),
    )


def read_measurements(path: str | Path, net: Network | None = None) -> Measurements:
    """Read a measurements CSV file: ``id,kind,element,value,sigma``, one reading a line.

    Parameters
    ----------
    path
        The file.
    net
        When given, every ``bus:<id>`` and ``branch:<n>`` must exist in it.

    Raises
    ------
    CaseFormatError
        Naming the file and line of the first malformed line, unknown kind or
        element, non-finite value or non-positive sigma, or repeated id.
    """
    check_path(path, "read_measurements")
    if net is not None:
        check_network(net, "read_measurements")
    p = Path(path)
    text = read_input_text(p, encoding="utf-8-sig")
    return read_measurements_string(text, net, source=str(p))


def write_measurements(meas: Measurements, path: str | Path) -> None:
    """Write ``meas`` as CSV (with a header line); :func:`read_measurements` reads it back."""
    if not isinstance(meas, Measurements):
        raise ValidationError(
            f"write_measurements: meas must be Measurements, got {type(meas).__name__}"
        )
    check_path(path, "write_measurements")
    out = [",".join(_HEADER)]
    for mid, kind, label, v, s in zip(
        meas.id.tolist(),
        meas.kind.tolist(),
        meas.labels,
        meas.value.tolist(),
        meas.sigma.tolist(),
        strict=True,
    ):
        out.append(f"{mid},{kind},{label},{v!r},{s!r}")
    try:
        atomic_write_bytes(Path(path), ("\n".join(out) + "\n").encode("utf-8"))
    except OSError as e:
        raise CaseFormatError(f"cannot write: {e.strerror or e}", str(path)) from None


# -- simulation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulationOptions:
    """How :func:`simulate_measurements` draws a measurement set.

    Parameters
    ----------
    redundancy
        Number of readings over number of state variables (``2 n - 1`` per
        energised island). A random spanning tree's flows (P and Q at the
        from end) and one voltage magnitude per island come first, so that
        the set is observable; the rest are drawn at random among voltage
        magnitudes, injection pairs and flow pairs. ``None`` takes every
        candidate reading: all magnitudes, injections and flows at both ends.
    sigma_vm_pu
        Standard deviation of voltage magnitudes.
    sigma_power_mw
        Standard deviation of active and reactive powers (MW, Mvar).
    dropout
        Probability that each drawn reading is lost (after the selection: a
        large dropout can make the set unobservable).
    gross_errors
        How many readings receive a gross error.
    gross_error_sigma
        Its size, in standard deviations of the reading (random sign).
    placement
        ``random`` (the backbone, then random sites) or ``redundant``: the
        same backbone and budget, with meters added where a reading is
        critical, nearly critical (residual variance below
        ``_WEAK_SENSITIVITY`` of its own) or strongly correlated with another
        (residual correlation above ``_PAIR_CORRELATION``, as the two ends of
        a branch nothing else measures), so that a gross error on any reading
        can be identified where the grid allows it. Checked on the AC model
        at the power flow's state. Ignored when ``redundancy`` is ``None``.
    """

    redundancy: float | None = 2.0
    sigma_vm_pu: float = 0.004
    sigma_power_mw: float = 1.0
    dropout: float = 0.0
    gross_errors: int = 0
    gross_error_sigma: float = 20.0
    placement: Literal["random", "redundant"] = "random"

    def __post_init__(self) -> None:
        if self.placement not in ("random", "redundant"):
            raise ValidationError(
                f"placement: expected random or redundant, got {self.placement!r}"
            )
        r = self.redundancy
        if r is not None and (
            isinstance(r, bool) or not isinstance(r, int | float) or not 0 < r < 1e6
        ):
            raise ValidationError(f"redundancy: expected a positive number or None, got {r!r}")
        for name in ("sigma_vm_pu", "sigma_power_mw", "gross_error_sigma"):
            x = getattr(self, name)
            if isinstance(x, bool) or not isinstance(x, int | float) or not 0 < x < math.inf:
                raise ValidationError(f"{name}: expected a positive number, got {x!r}")
        d = self.dropout
        if isinstance(d, bool) or not isinstance(d, int | float) or not 0 <= d < 1:
            raise ValidationError(f"dropout: expected a number in [0, 1), got {d!r}")
        g = self.gross_errors
        if isinstance(g, bool) or not isinstance(g, int) or g < 0:
            raise ValidationError(f"gross_errors: expected an integer >= 0, got {g!r}")


def _true_values(
    net: Network, vm: FloatArray, va_deg: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Injections and end flows (MW, Mvar) of the voltages, with the estimator's model."""
    v = vm * np.exp(1j * np.deg2rad(va_deg))
    ybus, yf, yt = make_ybus(net, branch_admittance(net))
    base = net.base_mva
    s = v * np.conj(ybus @ v) * base
    sf = v[net.branch_from] * np.conj(yf @ v) * base
    st = v[net.branch_to] * np.conj(yt @ v) * base
    return s.real, s.imag, sf.real, sf.imag, st.real, st.imag


def measured_values(
    net: Network, vm_pu: npt.ArrayLike, va_deg: npt.ArrayLike
) -> dict[str, FloatArray]:
    """What each measurement kind reads at the bus voltages ``vm_pu``, ``va_deg``.

    The estimator's own model (the same admittances as the AC power flow):
    ``vm`` per bus (pu), ``p_inj``/``q_inj`` per bus (MW, Mvar, positive into
    the grid), ``p_from``/``q_from``/``p_to``/``q_to`` per branch row (MW,
    Mvar, into the branch at that end). Out-of-service branches carry 0;
    NaN voltages (buses not estimated) give NaN where they enter.

    Raises
    ------
    ValidationError
        When the voltages are not one per bus of ``net``.
    """
    vm = np.asarray(vm_pu, dtype=np.float64).reshape(-1)
    va = np.asarray(va_deg, dtype=np.float64).reshape(-1)
    if vm.size != net.n_bus or va.size != net.n_bus:
        raise ValidationError(
            f"measured_values: {vm.size} magnitudes and {va.size} angles for {net.n_bus} buses"
        )
    pinj, qinj, pf_, qf_, pt_, qt_ = _true_values(net, vm, va)
    return {
        "vm": np.array(vm),
        "p_inj": pinj,
        "q_inj": qinj,
        "p_from": pf_,
        "q_from": qf_,
        "p_to": pt_,
        "q_to": qt_,
    }


#: a reading whose residual variance is below this share of its own is weak: a 20-sigma
#: error on it gives a normalised residual below 20 sqrt(0.15) = 7.7
_WEAK_SENSITIVITY = 0.15
#: two readings whose residuals correlate above this cannot be told apart reliably
_PAIR_CORRELATION = 0.9
#: a reading whose residual variance is below this share of its own is critical
_CRITICAL_SENSITIVITY = 1e-6
#: residual correlations are looked for among readings whose S_ii is below this
_PAIR_SENSITIVITY = 0.75
#: rounds of the redundant placement's repair
_REPAIR_ROUNDS = 8
#: readings per block of the residual correlations (a dense block of m x this)
_BLOCK = 512
#: kind codes of the readings of each site type: magnitude, injection pair, flow pairs
_SITE_KINDS = np.array([[VM, -1], [P_INJ, Q_INJ], [P_FROM, Q_FROM], [P_TO, Q_TO]], dtype=np.int64)


def _residual_redundancy(
    net: Network,
    v: npt.NDArray[np.complex128],
    kind: IntArray,
    elem: IntArray,
    sigma_pu: FloatArray,
    zero_injection: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """Per reading: residual variance over its own (``S_ii``) and largest residual correlation.

    ``S = I - W^1/2 H G^-1 H^T W^1/2`` at the voltages ``v`` (the AC model, one
    angle reference per island: the first energised bus of each). ``S_ii`` near
    0 marks a critical reading; a correlation ``|S_ij| / sqrt(S_ii S_jj)`` near
    1 a critical pair. ``kind`` uses the estimator's codes, ``elem`` 0-based
    bus or branch rows. With ``zero_injection``, buses without load or unit
    in service inject nothing, as the default estimator knows: their P and Q
    enter as readings a thousand times more accurate than the best one. The
    correlations are computed only for readings with ``S_ii`` below
    ``_PAIR_SENSITIVITY`` (0 elsewhere). Raises ``ValueError`` when the
    readings do not determine the state.
    """
    n = net.n_bus
    energised = np.abs(v) > 0
    br_on = (net.branch.in_service == 1) & energised[net.branch_from] & energised[net.branch_to]
    f, t = net.branch_from[br_on], net.branch_to[br_on]
    adj = sp.csr_matrix((np.ones(f.size), (f, t)), shape=(n, n))
    _, lab = connected_components(adj, directed=False)
    lab = np.where(energised, lab, -1)
    first = np.full(int(lab.max()) + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first, lab[energised], np.flatnonzero(energised))
    ang = energised.copy()
    ang[first[first < n]] = False
    col_va = np.full(n, -1, dtype=np.int64)
    col_vm = np.full(n, -1, dtype=np.int64)
    col_va[ang] = np.arange(int(ang.sum()))
    col_vm[energised] = int(ang.sum()) + np.arange(int(energised.sum()))
    m = kind.size
    if zero_injection:
        gen_on = net.gen.in_service == 1
        has_gen = np.zeros(n, dtype=bool)
        has_gen[net.gen_bus[gen_on]] = True
        zi = np.flatnonzero(
            energised & ~has_gen & (net.bus.pd_mw == 0.0) & (net.bus.qd_mvar == 0.0)
        )
        kind = np.concatenate([kind, np.full(zi.size, P_INJ), np.full(zi.size, Q_INJ)])
        elem = np.concatenate([elem, zi, zi])
        sig_zi = 1e-3 * float(np.min(sigma_pu)) if m else 1e-6
        sigma_pu = np.concatenate([sigma_pu, np.full(2 * zi.size, sig_zi)])
    adm = branch_admittance(net, br_on)
    ybus, _, _ = make_ybus(net, adm)
    mdl = MeasurementModel(ybus, adm, net.branch_from, net.branch_to, kind, elem, col_va, col_vm)
    _, hd = mdl.values(v)
    w = 1.0 / sigma_pu**2
    g = mdl.gain(hd, w)
    try:
        si = SelectedInverse(g)
        lu = splu(
            sp.csc_matrix(g),
            permc_spec="MMD_AT_PLUS_A",
            diag_pivot_thresh=0.0,
            options={"SymmetricMode": True},
        )
    except (NotPositiveDefinite, RuntimeError):
        raise ValueError("the readings do not determine the state") from None
    z = si.compute()
    pos = si.positions(mdl.g_rows, mdl.g_cols)
    zg = np.where(pos >= 0, z[np.maximum(pos, 0)], 0.0)
    s_all = 1.0 - w * mdl.quadratic_diag(hd, zg)
    mm = kind.size
    hs = sp.csr_matrix((hd * np.sqrt(w[mdl.h_row]), (mdl.h_row, mdl.h_col)), shape=(mm, mdl.nx))
    ok = np.zeros(mm, dtype=bool)
    ok[:m] = s_all[:m] > _CRITICAL_SENSITIVITY  # the zero injections are no readings
    inv_sd = np.where(ok, 1.0 / np.sqrt(np.maximum(s_all, _CRITICAL_SENSITIVITY)), 0.0)
    rho = np.zeros(m)
    look = np.flatnonzero(ok[:m] & (s_all[:m] < _PAIR_SENSITIVITY))
    hst = sp.csc_matrix(hs.T)[:, look]
    for a in range(0, look.size, _BLOCK):
        b = min(a + _BLOCK, look.size)
        j = look[a:b]
        blk: FloatArray = -np.asarray(hs @ lu.solve(hst[:, a:b].toarray()))  # S[:, j], i != j
        blk[j, np.arange(b - a)] = 0.0
        corr = np.abs(blk) * inv_sd[:, None] * inv_sd[None, j]
        rho[j] = corr.max(axis=0)
    return s_all[:m], rho


def _redundant_sites(
    net: Network,
    v: npt.NDArray[np.complex128],
    site_type: IntArray,
    site_elem: IntArray,
    site_bus: sp.csr_matrix,
    backbone: IntArray,
    target: int,
    sigma: tuple[float, float],
    rng: np.random.Generator,
) -> IntArray:
    """Sites for about ``target`` readings, with as few weak readings as the grid allows.

    Meters go first where they check one another: P/Q injections at every bus
    with load or generation (a bus without either is known to inject nothing),
    P/Q flows at one end, drawn at random, of every branch; then voltage
    magnitudes and the other ends; each tier in random order, until the
    budget. A few repair rounds follow: every site holding a weak reading
    (see :func:`_residual_redundancy`) gets a random unchosen site touching
    its buses, and as many readings are taken from the sites the
    others check best, so that the redundancy stays the same. The round with
    the fewest weak sites is kept.
    """
    n_sites = site_type.size
    size = np.where(site_type == 0, 1, 2)
    gen_on = net.gen.in_service == 1
    has_gen = np.zeros(net.n_bus, dtype=bool)
    has_gen[net.gen_bus[gen_on]] = True
    loaded = has_gen | (net.bus.pd_mw != 0.0) | (net.bus.qd_mvar != 0.0)
    inj = site_type == 1
    bus_loaded = loaded[np.where(inj, site_elem, 0)]
    useful_inj = np.flatnonzero(inj & bus_loaded)
    idle_inj = np.flatnonzero(inj & ~bus_loaded)
    first_flow = int(np.searchsorted(site_type, 2))
    no = int(np.sum(site_type == 2))
    end = rng.integers(0, 2, size=no)
    one_end = first_flow + end * no + np.arange(no)
    other_end = first_flow + (1 - end) * no + np.arange(no)
    tiers = [
        np.concatenate([useful_inj, one_end]),
        np.concatenate([np.flatnonzero(site_type == 0), other_end]),
        idle_inj,
    ]
    order = np.concatenate([rng.permutation(t) for t in tiers])
    # the backbone's magnitudes always; its tree's flows only when the tiers alone do not
    # make the set observable
    for keep in (backbone[site_type[backbone] == 0], backbone):
        chosen = np.zeros(n_sites, dtype=bool)
        chosen[keep] = True
        fixed = chosen.copy()
        rest = order[~chosen[order]]
        have = int(size[chosen].sum())
        cum = have + np.cumsum(size[rest])
        take = int(np.searchsorted(cum, target, side="left")) + 1 if have < target else 0
        chosen[rest[:take]] = True
        try:
            _site_strength(net, v, np.flatnonzero(chosen), site_type, site_elem, sigma)
        except ValueError:
            continue
        break
    best = (np.inf, np.flatnonzero(chosen))
    for r in range(_REPAIR_ROUNDS + 1):
        sites = np.flatnonzero(chosen)
        try:
            weak, score = _site_strength(net, v, sites, site_type, site_elem, sigma)
        except ValueError:
            break
        if weak.size < best[0]:
            best = (weak.size, sites)
        if weak.size == 0 or r == _REPAIR_ROUNDS:
            break
        touched = np.zeros(site_bus.shape[1])
        touched[np.unique(site_bus[weak].indices)] = 1.0
        cand = np.flatnonzero(~chosen & (site_bus @ touched > 0))
        if cand.size == 0:
            break
        add = rng.choice(cand, size=min(cand.size, weak.size), replace=False)
        chosen[add] = True
        # as many readings off the best-checked sites (never the backbone's)
        spare = sites[~fixed[sites]]
        spare = spare[np.argsort(-score[~fixed[sites]], kind="stable")]
        cut = int(np.searchsorted(np.cumsum(size[spare]), int(size[add].sum()))) + 1
        chosen[spare[:cut]] = False
    return best[1]


def _site_readings(
    sites: IntArray, site_type: IntArray, site_elem: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Kind code, element row and site of every reading of ``sites`` (in that order)."""
    typ = site_type[sites]
    cnt = np.where(typ == 0, 1, 2)
    site_of = np.repeat(sites, cnt)
    second = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    kind = _SITE_KINDS[site_type[site_of], second]
    return kind, site_elem[site_of], site_of


def _site_strength(
    net: Network,
    v: npt.NDArray[np.complex128],
    sites: IntArray,
    site_type: IntArray,
    site_elem: IntArray,
    sigma: tuple[float, float],
) -> tuple[IntArray, FloatArray]:
    """Among ``sites``: those holding a weak reading, and a score of each (aligned with ``sites``).

    Weak: critical, nearly critical (``S_ii`` below ``_WEAK_SENSITIVITY``) or
    correlated above ``_PAIR_CORRELATION`` with another reading. The score is
    the smallest ``min(S_ii, 1 - correlation)`` of the site's readings: high
    for sites the others check well.
    """
    kind, elem, site_of = _site_readings(sites, site_type, site_elem)
    sig = np.where(kind == VM, sigma[0], sigma[1])
    s_ii, rho = _residual_redundancy(net, v, kind, elem, sig)
    weak = (s_ii < _WEAK_SENSITIVITY) | (rho > _PAIR_CORRELATION)
    pos = np.searchsorted(sites, site_of)
    score = np.full(sites.size, np.inf)
    np.minimum.at(score, pos, np.minimum(s_ii, 1.0 - rho))
    return np.unique(site_of[weak]), score


def simulate_measurements(
    net: Network,
    pf: PowerFlowResult,
    options: SimulationOptions | None = None,
    *,
    seed: int | None = 0,
) -> Measurements:
    """Noisy readings of the state ``pf`` of ``net``.

    Parameters
    ----------
    net
        The network the power flow solved.
    pf
        A converged AC power flow of ``net``: the truth.
    options
        Redundancy, noise, dropout and gross errors.
    seed
        Seed of the random generator (selection, noise, errors).

    Returns
    -------
    Measurements
        Ids ``<kind>:<element>`` (``p_from:branch:12``), values with Gaussian
        noise of the given standard deviations, and the truth in
        ``true_value``. Only energised buses and in-service branches are
        measured.

    Raises
    ------
    ValidationError
        When ``pf`` did not converge or is not a power flow of ``net``.
    """
    check_network(net, "simulate_measurements")
    if not isinstance(pf, PowerFlowResult):
        raise ValidationError(
            f"simulate_measurements: pf must be a PowerFlowResult, got {type(pf).__name__}"
        )
    check_options(options, SimulationOptions, "simulate_measurements")
    opts = options or SimulationOptions()
    if not pf.converged:
        raise ValidationError("simulate_measurements: the power flow did not converge")
    if pf.vm_pu.size != net.n_bus or not np.array_equal(pf.bus_id, net.bus.bus_id):
        raise ValidationError("simulate_measurements: the power flow is not one of this network")
    rng = np.random.default_rng(seed)
    n = net.n_bus
    pinj, qinj, pf_, qf_, pt_, qt_ = _true_values(net, pf.vm_pu, pf.va_deg)
    energised = pf.vm_pu > 0
    br_on = (net.branch.in_service == 1) & energised[net.branch_from] & energised[net.branch_to]
    # candidate sites: (kinds, element number, true values)
    bus_ids = net.bus.bus_id
    sites_kind: list[tuple[str, ...]] = []
    sites_elem: list[int] = []
    sites_val: list[tuple[float, ...]] = []
    eb = np.flatnonzero(energised)
    ob = np.flatnonzero(br_on)
    vm_site = {}
    for i in eb.tolist():
        vm_site[i] = len(sites_kind)
        sites_kind.append(("vm",))
        sites_elem.append(int(bus_ids[i]))
        sites_val.append((float(pf.vm_pu[i]),))
    for i in eb.tolist():
        sites_kind.append(("p_inj", "q_inj"))
        sites_elem.append(int(bus_ids[i]))
        sites_val.append((float(pinj[i]), float(qinj[i])))
    from_site = {}
    for k in ob.tolist():
        from_site[k] = len(sites_kind)
        sites_kind.append(("p_from", "q_from"))
        sites_elem.append(k + 1)
        sites_val.append((float(pf_[k]), float(qf_[k])))
    for k in ob.tolist():
        sites_kind.append(("p_to", "q_to"))
        sites_elem.append(k + 1)
        sites_val.append((float(pt_[k]), float(qt_[k])))
    n_sites = len(sites_kind)
    size = np.array([len(s) for s in sites_kind], dtype=np.int64)
    if opts.redundancy is None:
        chosen = np.arange(n_sites)
    else:
        # the backbone: a random spanning tree's flows and one magnitude per island
        f, t = net.branch_from[ob], net.branch_to[ob]
        w = rng.uniform(1.0, 2.0, size=ob.size)
        adj = sp.csr_matrix(
            (np.concatenate([w, w]), (np.concatenate([f, t]), np.concatenate([t, f]))), shape=(n, n)
        )
        n_comp, lab = connected_components(adj, directed=False)
        backbone: list[int] = []
        n_state = 0
        for c in range(n_comp):
            members = np.flatnonzero((lab == c) & energised)
            if members.size == 0:
                continue
            n_state += 2 * members.size - 1
            root = int(rng.choice(members))
            backbone.append(vm_site[root])
            order, pred = breadth_first_order(adj, root, directed=False)
            for child in order[1:].tolist():
                parent = int(pred[child])
                # a branch joining parent and child, chosen at random among parallels
                cand = np.flatnonzero(
                    ((f == parent) & (t == child)) | ((f == child) & (t == parent))
                )
                backbone.append(from_site[int(ob[int(rng.choice(cand))])])
        target = round(opts.redundancy * n_state)
        if opts.placement == "redundant":
            ne, no = eb.size, ob.size
            site_type = np.repeat(np.arange(4, dtype=np.int64), [ne, ne, no, no])
            site_elem = np.concatenate([eb, eb, ob, ob]).astype(np.int64)
            b1 = np.where(
                site_type >= 2, net.branch_from[np.where(site_type >= 2, site_elem, 0)], site_elem
            )
            b2 = np.where(
                site_type >= 2, net.branch_to[np.where(site_type >= 2, site_elem, 0)], site_elem
            )
            site_bus = sp.csr_matrix(
                (np.ones(2 * n_sites), (np.tile(np.arange(n_sites), 2), np.concatenate([b1, b2]))),
                shape=(n_sites, n),
            )
            site_bus.data[:] = 1.0
            v_true = (pf.vm_pu * np.exp(1j * np.deg2rad(pf.va_deg))).astype(np.complex128)
            chosen = _redundant_sites(
                net,
                v_true,
                site_type,
                site_elem,
                site_bus,
                np.array(backbone, dtype=np.int64),
                target,
                (opts.sigma_vm_pu, opts.sigma_power_mw / net.base_mva),
                rng,
            )
        else:
            rest = np.setdiff1d(np.arange(n_sites), np.array(backbone, dtype=np.int64))
            rest = rng.permutation(rest)
            have = int(size[backbone].sum()) if backbone else 0
            cum = have + np.cumsum(size[rest])
            take = int(np.searchsorted(cum, target, side="left")) + 1 if cum.size else 0
            if have >= target:
                take = 0
            chosen = np.sort(np.concatenate([np.array(backbone, dtype=np.int64), rest[:take]]))
    ids: list[str] = []
    kinds: list[str] = []
    elems: list[int] = []
    truth: list[float] = []
    for s in chosen.tolist():
        for kind, val in zip(sites_kind[s], sites_val[s], strict=True):
            label = "bus" if kind in _BUS_KINDS else "branch"
            ids.append(f"{kind}:{label}:{sites_elem[s]}")
            kinds.append(kind)
            elems.append(sites_elem[s])
            truth.append(val)
    kind_arr = np.array(kinds, dtype=np.str_)
    true_arr = np.array(truth, dtype=np.float64)
    sigma = np.where(kind_arr == "vm", opts.sigma_vm_pu, opts.sigma_power_mw)
    value = true_arr + sigma * rng.standard_normal(true_arr.size)
    keep = rng.random(true_arr.size) >= opts.dropout
    if opts.gross_errors:
        idx = np.flatnonzero(keep)
        if opts.gross_errors > idx.size:
            raise ValidationError(
                f"gross_errors: {opts.gross_errors} requested but only {idx.size} readings drawn"
            )
        bad = rng.choice(idx, size=opts.gross_errors, replace=False)
        sign = rng.choice(np.array([-1.0, 1.0]), size=bad.size)
        value[bad] += sign * opts.gross_error_sigma * sigma[bad]
    return Measurements(
        np.array(ids, dtype=np.str_)[keep],
        kind_arr[keep],
        np.array(elems, dtype=np.int64)[keep],
        value[keep],
        sigma[keep],
        true_arr[keep],
    )
