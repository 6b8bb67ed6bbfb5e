"""aiguilleur: an open-source operations centre for energy grids and logistics."""

import logging

from aiguilleur.errors import (
    AiguilleurError,
    CaseFormatError,
    InfeasibleError,
    SolverError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "AiguilleurError",
    "CaseFormatError",
    "InfeasibleError",
    "SolverError",
    "ValidationError",
    "__version__",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
