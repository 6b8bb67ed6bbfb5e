"""Fixtures of the health tests: the bundled C-MAPSS sample and, when present, the full set."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import pytest

from aiguilleur.health import Telemetry, read_cmapss, read_rul
from tests.conftest import REPO_ROOT

SHARED_CMAPSS = REPO_ROOT.parent / "shared" / "data" / "cmapss"
SHARED_CMAPSS_REASON = (
    "the C-MAPSS data set is not available: expected train/test/RUL_FD00x.txt in "
    "../shared/data/cmapss beside the repository"
)
requires_shared_cmapss = pytest.mark.skipif(
    not (SHARED_CMAPSS / "train_FD001.txt").is_file(), reason=SHARED_CMAPSS_REASON
)
# FD002 and FD003 on the full sets take 85-160 s each on one core, and both miss an
# issue target (expected failures that still catch a regression): out of the default
# run, which must stay within 10 minutes on 2 cores. `make test-full` runs them, and
# benchmarks/bench_health.py prints the same figures.
requires_full_reference = pytest.mark.skipif(
    not os.environ.get("AIGUILLEUR_FULL_REFERENCE"),
    reason="long reference check: set AIGUILLEUR_FULL_REFERENCE=1 (make test-full)",
)


def sample_path(name: str, subset: str = "FD001") -> Path:
    """A file of the bundled sample (``train``, ``test`` or ``RUL``; ``FD001`` or ``FD002``)."""
    return Path(str(files("aiguilleur.data").joinpath("cmapss", f"{name}_{subset}_units1-10.txt")))


@pytest.fixture(scope="session")
def sample_train() -> Telemetry:
    return read_cmapss(sample_path("train"))


@pytest.fixture(scope="session")
def sample_test() -> Telemetry:
    return read_cmapss(sample_path("test"))


@pytest.fixture(scope="session")
def sample_rul() -> object:
    return read_rul(sample_path("RUL"), 10)
