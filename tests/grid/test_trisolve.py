"""The level-scheduled sparse solver against scipy's direct solve."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import spsolve

from aiguilleur.data import bundled_case_path
from aiguilleur.grid import DCModel, read_matpower
from aiguilleur.grid._trisolve import LevelLU


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 60),
    density=st.floats(0.01, 0.3),
    symmetric=st.booleans(),
    k=st.integers(1, 7),
    seed=st.integers(0, 2**31 - 1),
)
def test_matches_direct_solve(n: int, density: float, symmetric: bool, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density=density, format="csr", random_state=rng)
    if symmetric:
        a = a + a.T
    a = sp.csr_matrix(a + sp.eye(n) * (1.0 + abs(a).sum(axis=1).max()))  # nonsingular
    b = rng.standard_normal((n, k))
    lu = LevelLU(a)
    expected = spsolve(sp.csc_matrix(a), b).reshape(n, k)
    np.testing.assert_allclose(lu.solve(b), expected, rtol=1e-9, atol=1e-9)
    # the ordered entry point, with one extra zero row as the DC model uses it
    y = np.zeros((n + 1, k))
    y[:n] = b[lu.gather_in]
    z = lu.solve_ordered(y, extra_rows=1)
    np.testing.assert_allclose(z[lu.gather_out], expected, rtol=1e-9, atol=1e-9)
    assert np.all(z[n] == 0.0)


def test_grid_matrix_uses_one_shared_order() -> None:
    model = DCModel.build(read_matpower(bundled_case_path("case118")))
    assert model.lu is not None and model.lu.shared
    rhs = np.eye(model.free.size)[:, :5]
    red = model.lu
    x = red.solve(rhs)
    assert x.shape == (model.free.size, 5)
