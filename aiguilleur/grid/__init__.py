"""Energy networks: model, MATPOWER I/O, power flow, state estimation, sensitivities, N-1."""

from aiguilleur.grid.acopf import ACOPFOptions, ACOPFResult, ACOPFStart, BindingLimits, ac_opf
from aiguilleur.grid.commitment import CommitmentOptions, CommitmentResult, commit
from aiguilleur.grid.contingency import (
    ContingencyOptions,
    ContingencyResult,
    apply_outage,
    screen_n1,
)
from aiguilleur.grid.dispatch import DCOPFOptions, DCOPFResult, dc_opf
from aiguilleur.grid.estimation import EstimationOptions, EstimationResult, estimate_state
from aiguilleur.grid.matpower import (
    read_matpower,
    read_matpower_string,
    write_matpower,
    write_matpower_string,
)
from aiguilleur.grid.measurements import (
    Measurements,
    SimulationOptions,
    read_measurements,
    simulate_measurements,
    write_measurements,
)
from aiguilleur.grid.network import BranchTable, BusTable, GenCostTable, GenTable, Network
from aiguilleur.grid.operating_point import scaled_dispatch
from aiguilleur.grid.powerflow import (
    DCPowerFlowResult,
    IslandReport,
    PowerFlowOptions,
    PowerFlowResult,
    ac_power_flow,
    dc_power_flow,
)
from aiguilleur.grid.redispatch import (
    Redispatcher,
    RedispatchOptions,
    RedispatchResult,
    redispatch,
)
from aiguilleur.grid.security import SCEDOptions, SCEDResult, sced
from aiguilleur.grid.sensitivity import DCModel, bridges, lodf, ptdf

__all__ = [
    "ACOPFOptions",
    "ACOPFResult",
    "ACOPFStart",
    "BindingLimits",
    "BranchTable",
    "BusTable",
    "CommitmentOptions",
    "CommitmentResult",
    "ContingencyOptions",
    "ContingencyResult",
    "DCModel",
    "DCOPFOptions",
    "DCOPFResult",
    "DCPowerFlowResult",
    "EstimationOptions",
    "EstimationResult",
    "GenCostTable",
    "GenTable",
    "IslandReport",
    "Measurements",
    "Network",
    "PowerFlowOptions",
    "PowerFlowResult",
    "RedispatchOptions",
    "RedispatchResult",
    "Redispatcher",
    "SCEDOptions",
    "SCEDResult",
    "SimulationOptions",
    "ac_opf",
    "ac_power_flow",
    "apply_outage",
    "bridges",
    "commit",
    "dc_opf",
    "dc_power_flow",
    "estimate_state",
    "lodf",
    "ptdf",
    "read_matpower",
    "read_matpower_string",
    "read_measurements",
    "redispatch",
    "scaled_dispatch",
    "sced",
    "screen_n1",
    "simulate_measurements",
    "write_matpower",
    "write_matpower_string",
    "write_measurements",
]
