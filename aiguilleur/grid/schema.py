"""One declared schema per component type.

Each column has a name (with its unit), a dtype, a default, a description and
its position in the MATPOWER v2 matrix. The schema drives the importers, the
writer, validation and the ``to_frame()`` views.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BRANCH_SCHEMA", "BUS_SCHEMA", "GEN_SCHEMA", "Column", "Schema"]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a component table."""

    name: str
    dtype: str
    unit: str
    default: float
    description: str


@dataclass(frozen=True, slots=True)
class Schema:
    """The ordered columns of a component, as MATPOWER stores them.

    ``required`` is how many leading columns a MATPOWER matrix must have;
    columns beyond ``required`` take their default when the file omits them.
    """

    component: str
    columns: tuple[Column, ...]
    required: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def __len__(self) -> int:
        return len(self.columns)


BUS_SCHEMA = Schema(
    "bus",
    (
        Column("bus_id", "int64", "", 0, "bus number as the file gives it (positive integer)"),
        Column("bus_type", "int64", "", 1, "1 = PQ, 2 = PV, 3 = reference, 4 = isolated"),
        Column("pd_mw", "float64", "MW", 0.0, "active power demand"),
        Column("qd_mvar", "float64", "MVAr", 0.0, "reactive power demand"),
        Column("gs_mw", "float64", "MW", 0.0, "shunt conductance, MW consumed at 1.0 pu"),
        Column("bs_mvar", "float64", "MVAr", 0.0, "shunt susceptance, MVAr injected at 1.0 pu"),
        Column("area", "int64", "", 1, "area number"),
        Column("vm_pu", "float64", "pu", 1.0, "voltage magnitude (initial value or solution)"),
        Column("va_deg", "float64", "deg", 0.0, "voltage angle (initial value or solution)"),
        Column("base_kv", "float64", "kV", 0.0, "base voltage"),
        Column("zone", "int64", "", 1, "loss zone"),
        Column("vmax_pu", "float64", "pu", 1.1, "maximum voltage magnitude"),
        Column("vmin_pu", "float64", "pu", 0.9, "minimum voltage magnitude"),
    ),
    13,
)

GEN_SCHEMA = Schema(
    "gen",
    (
        Column("bus_id", "int64", "", 0, "bus the generator connects to"),
        Column("pg_mw", "float64", "MW", 0.0, "active power set-point"),
        Column("qg_mvar", "float64", "MVAr", 0.0, "reactive power output"),
        Column("qmax_mvar", "float64", "MVAr", 0.0, "maximum reactive power output"),
        Column("qmin_mvar", "float64", "MVAr", 0.0, "minimum reactive power output"),
        Column("vg_pu", "float64", "pu", 1.0, "voltage set-point"),
        Column("mbase_mva", "float64", "MVA", 100.0, "machine base"),
        Column("in_service", "int64", "", 1, "1 in service, 0 out of service"),
        Column("pmax_mw", "float64", "MW", 0.0, "maximum active power output"),
        Column("pmin_mw", "float64", "MW", 0.0, "minimum active power output"),
    ),
    10,
)

BRANCH_SCHEMA = Schema(
    "branch",
    (
        Column("from_bus_id", "int64", "", 0, "from-end bus"),
        Column("to_bus_id", "int64", "", 0, "to-end bus"),
        Column("r_pu", "float64", "pu", 0.0, "series resistance"),
        Column("x_pu", "float64", "pu", 0.0, "series reactance"),
        Column("b_pu", "float64", "pu", 0.0, "total line charging susceptance"),
        Column("rate_a_mva", "float64", "MVA", 0.0, "long-term rating (0 = unlimited)"),
        Column("rate_b_mva", "float64", "MVA", 0.0, "short-term rating (0 = unlimited)"),
        Column("rate_c_mva", "float64", "MVA", 0.0, "emergency rating (0 = unlimited)"),
        Column(
            "tap_ratio", "float64", "", 0.0, "off-nominal turns ratio at the from end (0 = line)"
        ),
        Column("shift_deg", "float64", "deg", 0.0, "phase shift angle"),
        Column("in_service", "int64", "", 1, "1 in service, 0 out of service"),
        Column("angmin_deg", "float64", "deg", -360.0, "minimum angle difference from - to"),
        Column("angmax_deg", "float64", "deg", 360.0, "maximum angle difference from - to"),
    ),
    11,
)
