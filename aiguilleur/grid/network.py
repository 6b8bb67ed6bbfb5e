"""The network model: a frozen value of numpy arrays.

A :class:`Network` holds the tables of a transmission grid as MATPOWER and
PGLib-OPF define them: buses (with their loads and shunts), generators with
their costs, and branches (lines and transformers). Every table is a frozen
dataclass of read-only arrays; a changed network is made with
:meth:`Network.replace` or one of the ``with_*`` helpers, never by mutation,
so that scenarios can fork a network and ship it to other processes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import ValidationError
from aiguilleur.grid.schema import BRANCH_SCHEMA, BUS_SCHEMA, GEN_SCHEMA, Schema

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BranchTable", "BusTable", "GenCostTable", "GenTable", "Network"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

BUS_PQ, BUS_PV, BUS_REF, BUS_ISOLATED = 1, 2, 3, 4
#: Largest magnitude accepted for a power (MW, MVAr) or a per-unit impedance in a case.
MAX_MAGNITUDE = 1e9


def _frozen(a: Any, dtype: str, name: str) -> Any:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


class _Table:
    """Shared behaviour of the component tables (private base)."""

    schema: ClassVar[Schema]
    extra: FloatArray

    def __post_init__(self) -> None:
        n = None
        for col in self.schema.columns:
            arr = _frozen(getattr(self, col.name), col.dtype, col.name)
            if arr.ndim != 1:
                raise ValidationError(f"{self.schema.component}.{col.name}: expected a 1-D array")
            if n is None:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                raise ValidationError(
                    f"{self.schema.component}.{col.name}: {arr.shape[0]} rows, expected {n}"
                )
            object.__setattr__(self, col.name, arr)
        extra = np.array(self.extra, dtype=np.float64, copy=True)
        if extra.ndim != 2 or extra.shape[0] != (n or 0):
            extra = extra.reshape((n or 0, -1)) if extra.size else np.zeros((n or 0, 0))
        extra.setflags(write=False)
        object.__setattr__(self, "extra", extra)

    def __len__(self) -> int:
        return int(getattr(self, self.schema.columns[0].name).shape[0])

    def matrix(self) -> FloatArray:
        """All columns as one float matrix in MATPOWER's column order (extras last)."""
        cols = [np.asarray(getattr(self, c.name), dtype=np.float64) for c in self.schema.columns]
        base = np.column_stack(cols) if cols else np.zeros((0, 0))
        extra = self.extra
        return np.hstack([base, extra]) if extra.shape[1] else base

    def to_frame(self) -> pd.DataFrame:
        """A pandas view of the table (a copy; the table stays frozen)."""
        import pandas as pd

        data = {c.name: np.array(getattr(self, c.name)) for c in self.schema.columns}
        return pd.DataFrame(data)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        for c in (*self.schema.names, "extra"):
            a, b = getattr(self, c), getattr(other, c)
            if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class BusTable(_Table):
    """Buses with their loads and shunts (MATPOWER ``bus`` matrix)."""

    schema: ClassVar[Schema] = BUS_SCHEMA
    bus_id: IntArray
    bus_type: IntArray
    pd_mw: FloatArray
    qd_mvar: FloatArray
    gs_mw: FloatArray
    bs_mvar: FloatArray
    area: IntArray
    vm_pu: FloatArray
    va_deg: FloatArray
    base_kv: FloatArray
    zone: IntArray
    vmax_pu: FloatArray
    vmin_pu: FloatArray
    extra: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))


@dataclass(frozen=True, eq=False)
class GenTable(_Table):
    """Generators (MATPOWER ``gen`` matrix); columns past the 10th are kept in ``extra``."""

    schema: ClassVar[Schema] = GEN_SCHEMA
    bus_id: IntArray
    pg_mw: FloatArray
    qg_mvar: FloatArray
    qmax_mvar: FloatArray
    qmin_mvar: FloatArray
    vg_pu: FloatArray
    mbase_mva: FloatArray
    in_service: IntArray
    pmax_mw: FloatArray
    pmin_mw: FloatArray
    extra: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))


@dataclass(frozen=True, eq=False)
class BranchTable(_Table):
    """Lines and transformers (MATPOWER ``branch`` matrix)."""

    schema: ClassVar[Schema] = BRANCH_SCHEMA
    from_bus_id: IntArray
    to_bus_id: IntArray
    r_pu: FloatArray
    x_pu: FloatArray
    b_pu: FloatArray
    rate_a_mva: FloatArray
    rate_b_mva: FloatArray
    rate_c_mva: FloatArray
    tap_ratio: FloatArray
    shift_deg: FloatArray
    in_service: IntArray
    angmin_deg: FloatArray
    angmax_deg: FloatArray
    extra: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def is_transformer(self) -> npt.NDArray[np.bool_]:
        """True where the branch has an off-nominal ratio or a phase shift."""
        out: npt.NDArray[np.bool_] = (self.tap_ratio != 0.0) | (self.shift_deg != 0.0)
        return out

    def rating_mva(self, rating: str = "a") -> FloatArray:
        """The rating column ``a``, ``b`` or ``c`` (0 means unlimited)."""
        if rating not in ("a", "b", "c"):
            raise ValidationError(f"rating: expected 'a', 'b' or 'c', got {rating!r}")
        out: FloatArray = getattr(self, f"rate_{rating}_mva")
        return out


@dataclass(frozen=True, eq=False)
class GenCostTable:
    """Generator costs (MATPOWER ``gencost`` matrix).

    ``model`` is 1 (piecewise linear) or 2 (polynomial). ``params`` holds the
    ``ncost`` coefficients of each row (polynomial: highest order first, in
    $/h per MW^k; piecewise: ``ncost`` pairs ``p_mw, cost``), padded with zeros
    to a common width. Rows past the number of generators are reactive costs.
    """

    model: IntArray
    startup: FloatArray
    shutdown: FloatArray
    ncost: IntArray
    params: FloatArray

    def __post_init__(self) -> None:
        for name, dt in (
            ("model", "int64"),
            ("startup", "float64"),
            ("shutdown", "float64"),
            ("ncost", "int64"),
        ):
            object.__setattr__(self, name, _frozen(getattr(self, name), dt, name))
        params = np.array(self.params, dtype=np.float64, copy=True)
        if params.ndim != 2:
            params = params.reshape((len(self.model), -1))
        params.setflags(write=False)
        object.__setattr__(self, "params", params)
        n = len(self.model)
        for name in ("startup", "shutdown", "ncost"):
            if len(getattr(self, name)) != n:
                raise ValidationError(f"gencost.{name}: expected {n} rows")
        if params.shape[0] != n:
            raise ValidationError(f"gencost.params: expected {n} rows")

    def __len__(self) -> int:
        return int(self.model.shape[0])

    def width(self, row: int) -> int:
        """Number of values used by ``row``'s cost parameters."""
        k = int(self.ncost[row])
        return 2 * k if int(self.model[row]) == 1 else k

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GenCostTable):
            return NotImplemented
        return (
            all(
                np.array_equal(getattr(self, c), getattr(other, c))
                for c in ("model", "startup", "shutdown", "ncost")
            )
            and self.params.shape == other.params.shape
            and np.array_equal(self.params, other.params)
        )

    __hash__ = None  # type: ignore[assignment]

    def polynomial(self, n_gen: int) -> FloatArray:
        """Active-power polynomial costs as an ``(n_gen, 3)`` array ``c2, c1, c0``.

        Raises :class:`ValidationError` for piecewise-linear rows or orders
        above 2.
        """
        rows = self.model[:n_gen]
        if np.any(rows != 2):
            raise ValidationError("gencost: piecewise-linear rows have no polynomial form")
        out = np.zeros((n_gen, 3))
        for k in np.unique(self.ncost[:n_gen]):
            sel = np.flatnonzero(self.ncost[:n_gen] == k)
            if k > 3:
                raise ValidationError(f"gencost: polynomial of order {k - 1} > 2")
            out[sel, 3 - k :] = self.params[sel, :k]
        return out

    def to_frame(self) -> pd.DataFrame:
        """A pandas view of the costs."""
        import pandas as pd

        df = pd.DataFrame(
            {
                "model": np.array(self.model),
                "startup": np.array(self.startup),
                "shutdown": np.array(self.shutdown),
                "ncost": np.array(self.ncost),
            }
        )
        for j in range(self.params.shape[1]):
            df[f"c{j}"] = self.params[:, j]
        return df


@dataclass(frozen=True, eq=False)
class Network:
    """A transmission grid as an immutable value.

    Parameters
    ----------
    name
        Case name (the MATPOWER function name).
    base_mva
        System MVA base.
    bus, gen, branch
        The component tables, in the order of the source file.
    gencost
        Generator costs, or ``None`` when the case has none.
    extras
        Other MATPOWER matrices of the file (``areas`` and the like) kept
        verbatim as ``(name, matrix)`` pairs.
    header
        The comment block that opens the file (source and licence notes).
    version
        MATPOWER case format version; only ``"2"`` is supported.
    """

    name: str
    base_mva: float
    bus: BusTable
    gen: GenTable
    branch: BranchTable
    gencost: GenCostTable | None = None
    extras: tuple[tuple[str, FloatArray], ...] = ()
    header: str = ""
    version: str = "2"

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_mva", float(self.base_mva))
        frozen_extras = []
        for nm, m in self.extras:
            arr = np.array(m, dtype=np.float64, copy=True)
            arr.setflags(write=False)
            frozen_extras.append((str(nm), arr))
        object.__setattr__(self, "extras", tuple(frozen_extras))
        self.validate()

    # -- structure -------------------------------------------------------------
    @property
    def n_bus(self) -> int:
        return len(self.bus)

    @property
    def n_branch(self) -> int:
        return len(self.branch)

    @property
    def n_gen(self) -> int:
        return len(self.gen)

    @cached_property
    def _bus_lookup(self) -> tuple[IntArray, IntArray]:
        order = np.argsort(self.bus.bus_id, kind="stable")
        return self.bus.bus_id[order], order

    def bus_index(self, bus_ids: npt.ArrayLike) -> IntArray:
        """Internal (0-based, contiguous) indices of the given bus ids.

        Raises :class:`ValidationError` naming the first unknown id.
        """
        ids = np.asarray(bus_ids, dtype=np.int64)
        sorted_ids, order = self._bus_lookup
        pos = np.searchsorted(sorted_ids, ids)
        pos_c = np.clip(pos, 0, max(len(sorted_ids) - 1, 0))
        ok = (pos < len(sorted_ids)) & (sorted_ids[pos_c] == ids) if len(sorted_ids) else ids != ids
        if not np.all(ok):
            bad = ids[~ok].ravel()[0]
            raise ValidationError(f"unknown bus id {int(bad)}")
        out: IntArray = order[pos_c]
        return out

    @cached_property
    def branch_from(self) -> IntArray:
        """Internal index of each branch's from-bus."""
        return self.bus_index(self.branch.from_bus_id)

    @cached_property
    def branch_to(self) -> IntArray:
        """Internal index of each branch's to-bus."""
        return self.bus_index(self.branch.to_bus_id)

    @cached_property
    def gen_bus(self) -> IntArray:
        """Internal index of each generator's bus."""
        return self.bus_index(self.gen.bus_id)

    def validate(self) -> None:
        """Check cross-table consistency; raise :class:`ValidationError` if broken."""
        b = self.bus
        if not np.isfinite(self.base_mva) or self.base_mva <= 0:
            raise ValidationError(f"baseMVA: expected a positive number, got {self.base_mva}")
        if len(b) == 0:
            raise ValidationError("bus: the network has no bus")
        if np.any(b.bus_id <= 0):
            i = int(np.flatnonzero(b.bus_id <= 0)[0])
            raise ValidationError(f"bus row {i + 1}: bus id must be a positive integer", "bus", i)
        ids_sorted = np.sort(b.bus_id)
        dup = ids_sorted[1:][ids_sorted[1:] == ids_sorted[:-1]]
        if dup.size:
            i = int(np.flatnonzero(b.bus_id == dup[0])[1])
            raise ValidationError(
                f"bus row {i + 1}: bus id {int(dup[0])} appears more than once", "bus", i
            )
        bad_type = ~np.isin(b.bus_type, (1, 2, 3, 4))
        if np.any(bad_type):
            i = int(np.flatnonzero(bad_type)[0])
            raise ValidationError(
                f"bus row {i + 1} (id {int(b.bus_id[i])}): bus type {int(b.bus_type[i])}, "
                "expected 1, 2, 3 or 4",
                "bus",
                i,
            )
        for tbl, cols in (
            (b, ("pd_mw", "qd_mvar", "gs_mw", "bs_mvar", "vm_pu", "va_deg", "base_kv")),
            (self.gen, ("pg_mw", "qg_mvar", "vg_pu", "mbase_mva")),
            (self.branch, ("r_pu", "x_pu", "b_pu", "tap_ratio", "shift_deg")),
        ):
            for c in cols:
                arr = getattr(tbl, c)
                if not np.all(np.isfinite(arr)):
                    i = int(np.flatnonzero(~np.isfinite(arr))[0])
                    raise ValidationError(
                        f"{tbl.schema.component} row {i + 1}: {c} is not a finite number",
                        tbl.schema.component,
                        i,
                    )
        limit_cols: tuple[tuple[_Table, tuple[str, ...]], ...] = (
            (b, ("vmax_pu", "vmin_pu")),
            (self.gen, ("qmax_mvar", "qmin_mvar", "pmax_mw", "pmin_mw")),
            (self.branch, ("rate_a_mva", "rate_b_mva", "rate_c_mva", "angmin_deg", "angmax_deg")),
        )
        for tbl2, cols2 in limit_cols:
            for c in cols2:
                arr = getattr(tbl2, c)
                if np.any(np.isnan(arr)):
                    i = int(np.flatnonzero(np.isnan(arr))[0])
                    raise ValidationError(
                        f"{tbl2.schema.component} row {i + 1}: {c} is NaN", tbl2.schema.component, i
                    )
        for tbl, key in ((self.gen, "in_service"), (self.branch, "in_service")):
            st = getattr(tbl, key)
            if np.any((st != 0) & (st != 1)):
                i = int(np.flatnonzero((st != 0) & (st != 1))[0])
                raise ValidationError(
                    f"{tbl.schema.component} row {i + 1}: status {int(st[i])}, expected 0 or 1",
                    tbl.schema.component,
                    i,
                )
        known = np.isin(self.gen.bus_id, b.bus_id)
        if not np.all(known):
            i = int(np.flatnonzero(~known)[0])
            raise ValidationError(
                f"gen row {i + 1}: bus id {int(self.gen.bus_id[i])} is not a bus of the network",
                "gen",
                i,
            )
        for col in ("from_bus_id", "to_bus_id"):
            ids = getattr(self.branch, col)
            known = np.isin(ids, b.bus_id)
            if not np.all(known):
                i = int(np.flatnonzero(~known)[0])
                raise ValidationError(
                    f"branch row {i + 1}: {col} {int(ids[i])} is not a bus of the network",
                    "branch",
                    i,
                )
        zero = (self.branch.r_pu == 0) & (self.branch.x_pu == 0)
        if np.any(zero):
            i = int(np.flatnonzero(zero)[0])
            raise ValidationError(
                f"branch row {i + 1}: zero impedance (r = x = 0) is not supported", "branch", i
            )
        if self.gencost is not None:
            ng, nc = len(self.gen), len(self.gencost)
            if nc not in (ng, 2 * ng):
                raise ValidationError(
                    f"gencost: {nc} rows, expected {ng} (or {2 * ng} with reactive costs)"
                )
            gc = self.gencost
            if np.any(~np.isin(gc.model, (1, 2))):
                i = int(np.flatnonzero(~np.isin(gc.model, (1, 2)))[0])
                raise ValidationError(
                    f"gencost row {i + 1}: model {int(gc.model[i])}, expected 1 or 2", "gencost", i
                )
            if np.any(gc.ncost < 0):
                i = int(np.flatnonzero(gc.ncost < 0)[0])
                raise ValidationError(
                    f"gencost row {i + 1}: negative number of cost terms", "gencost", i
                )
            widths = np.where(gc.model == 1, 2 * gc.ncost, gc.ncost)
            if np.any(widths > gc.params.shape[1]):
                i = int(np.flatnonzero(widths > gc.params.shape[1])[0])
                raise ValidationError(
                    f"gencost row {i + 1}: {int(gc.ncost[i])} cost terms need {int(widths[i])} "
                    f"values, the row has {gc.params.shape[1]}",
                    "gencost",
                    i,
                )
            finite = (
                np.all(np.isfinite(gc.params), axis=1)
                & np.isfinite(gc.startup)
                & np.isfinite(gc.shutdown)
            )
            if not np.all(finite):
                i = int(np.flatnonzero(~finite)[0])
                raise ValidationError(
                    f"gencost row {i + 1}: a cost value is not a finite number", "gencost", i
                )

    def check_solvable(self) -> None:
        """Check the values a solver needs to be meaningful; raise :class:`ValidationError`.

        :meth:`validate` checks that the tables hold a network (every value
        finite, ids consistent); this checks that its figures make sense to
        solve: ratings are >= 0 (0: unlimited), a unit in service has
        ``pmin <= pmax``, no power or impedance exceeds :data:`MAX_MAGNITUDE`.
        The solvers call it; a case file with such values can still be read
        and written back.
        """
        b = self.bus
        # a power of a billion MW is a typing or unit error, and it overflows the solvers
        for tbl, cols in (
            (b, ("pd_mw", "qd_mvar", "gs_mw", "bs_mvar")),
            (self.gen, ("pg_mw", "qg_mvar")),
            (self.branch, ("r_pu", "x_pu", "b_pu")),
        ):
            for c in cols:
                arr = getattr(tbl, c)
                if np.any(np.abs(arr) > MAX_MAGNITUDE):
                    i = int(np.flatnonzero(np.abs(arr) > MAX_MAGNITUDE)[0])
                    raise ValidationError(
                        f"{tbl.schema.component} row {i + 1}: {c} = {float(arr[i]):g} is out of "
                        f"range (at most {MAX_MAGNITUDE:g} in magnitude)",
                        tbl.schema.component,
                        i,
                    )
        for c in ("rate_a_mva", "rate_b_mva", "rate_c_mva"):
            arr = getattr(self.branch, c)
            if np.any(arr < 0):
                i = int(np.flatnonzero(arr < 0)[0])
                raise ValidationError(
                    f"branch row {i + 1} ({int(self.branch.from_bus_id[i])}-"
                    f"{int(self.branch.to_bus_id[i])}): {c} is negative ({float(arr[i]):g}); "
                    "a rating is >= 0 (0: unlimited)",
                    "branch",
                    i,
                )
        g = self.gen
        # only units in service: a unit out of service with odd limits is never used
        bad_p = (g.in_service == 1) & (g.pmin_mw > g.pmax_mw)
        if np.any(bad_p):
            i = int(np.flatnonzero(bad_p)[0])
            raise ValidationError(
                f"gen row {i + 1} (bus {int(g.bus_id[i])}): pmin {float(g.pmin_mw[i]):g} MW is "
                f"above pmax {float(g.pmax_mw[i]):g} MW",
                "gen",
                i,
            )

    # -- changes ---------------------------------------------------------------
    def replace(self, **changes: Any) -> Network:
        """A copy with the given fields replaced (tables are replaced whole)."""
        return dataclasses.replace(self, **changes)

    def with_branch_status(self, branches: npt.ArrayLike, in_service: int | bool) -> Network:
        """A copy with the given branches (0-based rows) switched in or out."""
        from aiguilleur.grid._checks import check_flag, check_rows

        idx = check_rows(branches, self.n_branch, "branch", "with_branch_status")
        flag = check_flag(in_service, "with_branch_status", "in_service")
        st = np.array(self.branch.in_service)
        st[idx] = flag
        return self.replace(branch=dataclasses.replace(self.branch, in_service=st))

    def with_gen_status(self, gens: npt.ArrayLike, in_service: int | bool) -> Network:
        """A copy with the given generators (0-based rows) switched in or out."""
        from aiguilleur.grid._checks import check_flag, check_rows

        idx = check_rows(gens, self.n_gen, "generator", "with_gen_status")
        flag = check_flag(in_service, "with_gen_status", "in_service")
        st = np.array(self.gen.in_service)
        st[idx] = flag
        return self.replace(gen=dataclasses.replace(self.gen, in_service=st))

    def with_dispatch(self, pg_mw: npt.ArrayLike) -> Network:
        """A copy with new generator active-power set-points."""
        try:
            pg = np.asarray(pg_mw, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValidationError(f"dispatch: expected {self.n_gen} numbers (MW)") from None
        if pg.shape != (self.n_gen,):
            raise ValidationError(f"dispatch: expected {self.n_gen} values, got {pg.shape}")
        if not np.all(np.isfinite(pg)):
            i = int(np.flatnonzero(~np.isfinite(pg))[0])
            raise ValidationError(f"dispatch: gen row {i + 1} is not a finite number", "gen", i)
        return self.replace(gen=dataclasses.replace(self.gen, pg_mw=pg))

    # -- views -----------------------------------------------------------------
    def to_frame(self, component: str = "bus") -> pd.DataFrame:
        """A pandas view of ``bus``, ``gen``, ``branch``, ``gencost`` or ``load``."""
        if component == "bus":
            return self.bus.to_frame()
        if component == "gen":
            return self.gen.to_frame()
        if component == "branch":
            return self.branch.to_frame()
        if component == "gencost":
            if self.gencost is None:
                raise ValidationError("the network has no generator costs")
            return self.gencost.to_frame()
        if component == "load":
            df = self.bus.to_frame()[["bus_id", "pd_mw", "qd_mvar"]]
            return df[(df.pd_mw != 0) | (df.qd_mvar != 0)].reset_index(drop=True)
        raise ValidationError(
            f"unknown component {component!r}: expected bus, gen, branch, gencost or load"
        )

    def summary(self) -> dict[str, float | int | str]:
        """Sizes and totals, as ``aiguilleur grid info`` prints them."""
        g_on = self.gen.in_service == 1
        return {
            "name": self.name,
            "base_mva": self.base_mva,
            "buses": self.n_bus,
            "branches": self.n_branch,
            "branches_in_service": int(np.sum(self.branch.in_service == 1)),
            "transformers": int(np.sum(self.branch.is_transformer)),
            "generators": self.n_gen,
            "generators_in_service": int(np.sum(g_on)),
            "load_mw": float(np.sum(self.bus.pd_mw)),
            "load_mvar": float(np.sum(self.bus.qd_mvar)),
            "generation_mw": float(np.sum(self.gen.pg_mw[g_on])),
            "pmax_mw": float(np.sum(self.gen.pmax_mw[g_on])),
            "shunt_mw": float(np.sum(self.bus.gs_mw)),
            "shunt_mvar": float(np.sum(self.bus.bs_mvar)),
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Network):
            return NotImplemented
        if (self.name, self.base_mva, self.version, self.header) != (
            other.name,
            other.base_mva,
            other.version,
            other.header,
        ):
            return False
        if len(self.extras) != len(other.extras) or any(
            a[0] != b[0] or a[1].shape != b[1].shape or not np.array_equal(a[1], b[1])
            for a, b in zip(self.extras, other.extras, strict=True)
        ):
            return False
        return (
            self.bus == other.bus
            and self.gen == other.gen
            and self.branch == other.branch
            and self.gencost == other.gencost
        )

    __hash__ = None  # type: ignore[assignment]
