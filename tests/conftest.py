"""Shared test helpers.

The full PGLib-OPF development set lives outside the package, in
``shared/data/pglib-opf/cases`` beside the clone (CI has it; most users do not).
Tests that need it are skipped with a clear reason when it is absent; the three
bundled cases are always available through :mod:`aiguilleur.data`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

SHARED_CASES_REASON = (
    "the PGLib-OPF case set is not available: expected it in "
    "../shared/data/pglib-opf/cases beside the repository"
)


def shared_cases_dir() -> Path | None:
    """The directory of the shared PGLib-OPF cases, or ``None`` when absent."""
    d = REPO_ROOT.parent / "shared" / "data" / "pglib-opf" / "cases"
    return d if d.is_dir() and any(d.glob("*.m")) else None


def shared_case_files(pattern: str = "pglib_opf_*.m") -> list[Path]:
    """The shared case files matching ``pattern`` (sorted), or ``[]`` when absent."""
    d = shared_cases_dir()
    return sorted(d.glob(pattern)) if d is not None else []


def shared_case_params(pattern: str = "pglib_opf_*.m") -> list[Any]:
    """``pytest.mark.parametrize`` values: one per shared case, ids by file stem.

    When the shared set is absent this is a single skipped parameter, so the
    test shows up as skipped with the reason instead of silently vanishing.
    """
    files = shared_case_files(pattern)
    if not files:
        return [pytest.param(None, id="no-shared-cases", marks=requires_shared_cases)]
    return [pytest.param(f, id=f.stem.removeprefix("pglib_opf_")) for f in files]


# Decorate a test that needs the shared case set.
requires_shared_cases = pytest.mark.skipif(shared_cases_dir() is None, reason=SHARED_CASES_REASON)


@pytest.fixture
def shared_cases() -> Path:
    """The shared case directory; skips the test when it is absent."""
    d = shared_cases_dir()
    if d is None:
        pytest.skip(SHARED_CASES_REASON)
    return d
