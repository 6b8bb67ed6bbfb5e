"""Sparse LU with level-scheduled triangular solves for many right-hand sides.

SciPy's ``SuperLU.solve`` is fast for one right-hand side but slow for
hundreds (it does not block the work across them). Contingency analysis
needs exactly that: one factorisation, thousands of right-hand sides. This
solver factorises once with SuperLU, then splits the triangular factors into
*levels*: rows whose unknowns depend only on earlier levels. Each level is
then one sparse-times-dense product over all right-hand sides at once, so the
Python overhead is per level (a few hundred on a national grid), never per
bus or per right-hand side.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import splu

try:  # the raw kernel behind ``csr @ dense``; calling it directly saves the dispatch
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - a SciPy without it falls back to ``@``
    _csr_matvecs = None

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _levels(strict: sp.csr_matrix, reverse: bool = False) -> IntArray:
    """Longest-path depth of each row in the dependency graph of a triangular factor."""
    n = strict.shape[0]
    indptr = strict.indptr.tolist()
    indices = strict.indices
    lev = np.zeros(n, dtype=np.int64)
    rng = range(n - 1, -1, -1) if reverse else range(n)
    # One pass in elimination order; each row's dependencies are already final.
    for i in rng:
        a, b = indptr[i], indptr[i + 1]
        if b > a:
            lev[i] = lev[indices[a:b]].max() + 1
    return lev


def _schedule(strict: sp.csr_matrix, lev: IntArray) -> list[tuple[IntArray, sp.csr_matrix | None]]:
    order = np.argsort(lev, kind="stable")
    bounds = np.searchsorted(lev[order], np.arange(int(lev.max()) + 2))
    steps: list[tuple[IntArray, sp.csr_matrix | None]] = []
    for k in range(int(lev.max()) + 1):
        rows = order[bounds[k] : bounds[k + 1]]
        sub = strict[rows]
        steps.append((rows, sub if sub.nnz else None))
    return steps


class LevelLU:
    """``A = Pr^T L U Pc^T`` from SuperLU, solved level by level.

    Parameters
    ----------
    a
        A square sparse matrix.
    permc_spec
        SuperLU's column ordering.
    """

    def __init__(self, a: sp.spmatrix, permc_spec: str = "COLAMD") -> None:
        lu = splu(sp.csc_matrix(a), permc_spec=permc_spec)
        self.lu = lu
        self.n = int(a.shape[0])
        self.perm_r = np.asarray(lu.perm_r, dtype=np.int64)
        self.perm_c = np.asarray(lu.perm_c, dtype=np.int64)
        lower = sp.tril(lu.L, k=-1, format="csr")
        upper_full = sp.csr_matrix(lu.U)
        self.udiag = upper_full.diagonal()
        upper = sp.triu(upper_full, k=1, format="csr")
        self.lower_steps = _schedule(lower, _levels(lower))
        self.upper_steps = _schedule(upper, _levels(upper, reverse=True))

    @property
    def depth(self) -> tuple[int, int]:
        return len(self.lower_steps), len(self.upper_steps)

    def solve(self, b: FloatArray) -> FloatArray:
        """Solve ``A x = b`` for a vector or for every column of a matrix."""
        if b.ndim == 1:
            out: FloatArray = self.lu.solve(b)
            return out
        k = b.shape[1]
        x = np.empty((self.n, k))
        x[self.perm_r] = b
        for rows, sub in self.lower_steps:
            if sub is not None:
                x[rows] -= self._product(sub, x, k)
        for rows, sub in self.upper_steps:
            if sub is not None:
                x[rows] -= self._product(sub, x, k)
            x[rows] /= self.udiag[rows, None]
        result: FloatArray = x[self.perm_c]
        return result

    def _product(self, sub: sp.csr_matrix, x: FloatArray, k: int) -> FloatArray:
        if _csr_matvecs is None:
            out: FloatArray = sub @ x
            return out
        y = np.zeros((sub.shape[0], k))
        _csr_matvecs(sub.shape[0], self.n, k, sub.indptr, sub.indices, sub.data, x.ravel(), y.ravel())
        return y
