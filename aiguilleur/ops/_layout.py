"""A drawing layout for a grid without coordinates (PGLib cases carry none)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh

from aiguilleur.grid import Network


def grid_layout(net: Network, iterations: int = 60, seed: int = 0) -> npt.NDArray[np.float64]:
    """``(n_bus, 2)`` positions: a spectral embedding relaxed by a few smoothing sweeps.

    The two eigenvectors after the constant one of the normalised Laplacian
    place buses near their electrical neighbours; Laplacian smoothing towards
    the neighbours' mean, with the spread renormalised each sweep, then eases
    the clumps that spectral layouts of meshed grids leave. Deterministic.
    """
    n = net.n_bus
    on = net.branch.in_service == 1
    f, t = net.branch_from[on], net.branch_to[on]
    a = sp.csr_matrix((np.ones(2 * f.size), (np.r_[f, t], np.r_[t, f])), shape=(n, n))
    a.data[:] = 1.0
    deg = np.asarray(a.sum(axis=1)).ravel()
    d = sp.diags(1.0 / np.sqrt(np.maximum(deg, 1.0)))
    lap = sp.identity(n) - d @ a @ d
    rng = np.random.default_rng(seed)
    v0 = rng.random(n)
    try:
        _, vec = eigsh(lap.tocsc(), k=3, sigma=-1e-3, which="LM", v0=v0)
        xy = vec[:, 1:3] / np.sqrt(np.maximum(deg, 1.0))[:, None]
    except Exception:  # eigsh can fail on odd graphs: fall back to a random start
        xy = rng.random((n, 2))
    walk = sp.diags(1.0 / np.maximum(deg, 1.0)) @ a
    for _ in range(iterations):
        xy = 0.5 * xy + 0.5 * (walk @ xy)
        xy -= xy.mean(axis=0)
        # rank-based spreading keeps buses from collapsing onto the centre
        for j in range(2):
            r = np.argsort(np.argsort(xy[:, j], kind="stable"), kind="stable")
            xy[:, j] = 0.7 * xy[:, j] / (np.std(xy[:, j]) or 1.0) + 0.3 * (r / n - 0.5) * 3.4
    return np.asarray(xy, dtype=np.float64)
