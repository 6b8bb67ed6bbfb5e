"""The exported names are the public surface: changing them is a deliberate act."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "aiguilleur": [
        "AiguilleurError",
        "CaseFormatError",
        "InfeasibleError",
        "SolverError",
        "ValidationError",
        "__version__",
    ],
    "aiguilleur.errors": [
        "AiguilleurError",
        "CaseFormatError",
        "InfeasibleError",
        "SolverError",
        "ValidationError",
    ],
    "aiguilleur.grid": [
        "BranchTable",
        "BusTable",
        "ContingencyOptions",
        "ContingencyResult",
        "DCModel",
        "DCOPFOptions",
        "DCOPFResult",
        "DCPowerFlowResult",
        "GenCostTable",
        "GenTable",
        "IslandReport",
        "Network",
        "PowerFlowOptions",
        "PowerFlowResult",
        "ac_power_flow",
        "apply_outage",
        "bridges",
        "dc_opf",
        "dc_power_flow",
        "lodf",
        "ptdf",
        "read_matpower",
        "read_matpower_string",
        "scaled_dispatch",
        "screen_n1",
        "write_matpower",
        "write_matpower_string",
    ],
    "aiguilleur.grid.matpower": [
        "read_matpower",
        "read_matpower_string",
        "write_matpower",
        "write_matpower_string",
    ],
    "aiguilleur.grid.powerflow": [
        "DCPowerFlowResult",
        "IslandReport",
        "PowerFlowOptions",
        "PowerFlowResult",
        "ac_power_flow",
        "dc_power_flow",
    ],
    "aiguilleur.grid.sensitivity": ["DCModel", "bridges", "lodf", "ptdf"],
    "aiguilleur.grid.dispatch": ["DCOPFOptions", "DCOPFResult", "dc_opf"],
    "aiguilleur.grid.pypsa_io": ["to_pypsa"],
    "aiguilleur.grid.contingency": [
        "ContingencyOptions",
        "ContingencyResult",
        "apply_outage",
        "screen_n1",
    ],
    "aiguilleur.ops": [
        "Bar",
        "BranchLoading",
        "DemoProgress",
        "DemoResult",
        "Outage",
        "Table",
        "run_demo",
        "write_html_report",
    ],
    "aiguilleur.ops.demo": ["BranchLoading", "DemoProgress", "DemoResult", "Outage", "run_demo"],
    "aiguilleur.ops.report": ["Bar", "Table", "write_html_report"],
    "aiguilleur.grid.operating_point": ["scaled_dispatch"],
    "aiguilleur.grid.pandapower_io": ["from_pandapower", "to_pandapower"],
    "aiguilleur.data": ["bundled_case_path", "bundled_cases"],
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_exports_are_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(EXPECTED[module])
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is listed in __all__ but missing"


def test_grid_imports_neither_cli_nor_optional_packages() -> None:
    import subprocess
    import sys

    code = (
        "import sys, aiguilleur.grid\n"
        "bad = [m for m in ('aiguilleur.cli', 'aiguilleur.ops', 'pandapower', 'typer', 'rich')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
