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

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import splu

_csr_matvecs: Any
try:  # the raw kernel behind ``csr @ dense``; calling it directly saves the dispatch
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - a SciPy without it falls back to ``@``
    _csr_matvecs = None

FloatArray = npt.NDArray[np.float64]
#: double or single precision right-hand sides
RealArray = npt.NDArray[np.floating[Any]]
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


def _schedule(strict: sp.csr_matrix, lev: IntArray) -> tuple[IntArray, sp.csr_matrix, IntArray]:
    """Relabel rows and columns by level so that each level is a contiguous slice.

    A level order is a topological order of the factor's dependencies, so the
    relabelled factor is still strictly triangular; each level then reads only
    earlier slices and can be updated in place.
    """
    order = np.argsort(lev, kind="stable").astype(np.int64)
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    relabelled = sp.csr_matrix(strict[order][:, order])
    relabelled.sort_indices()
    bounds = np.searchsorted(lev[order], np.arange(int(lev.max()) + 2)).astype(np.int64)
    return order, relabelled, bounds


def _transpose_within(upper: sp.csr_matrix, lower: sp.csr_matrix) -> bool:
    """True when every entry of ``upper`` sits where ``lower`` has one, transposed."""
    ut = sp.csr_matrix(upper.T, copy=True)
    ut.data = np.ones_like(ut.data)
    lo = sp.csr_matrix(lower, copy=True)
    lo.data = np.ones_like(lo.data)
    outside = ut - ut.multiply(lo)  # entries of U^T where L has none
    return not bool(np.any(outside.data != 0))


class LevelLU:
    """``A = Pr^T L U Pc^T`` from SuperLU, solved level by level.

    Parameters
    ----------
    a
        A square sparse matrix.
    permc_spec
        SuperLU's column ordering.
    """

    def __init__(
        self,
        a: sp.spmatrix,
        permc_spec: str = "MMD_AT_PLUS_A",
        diag_pivot_thresh: float = 0.1,
        symmetric: bool = True,
    ) -> None:
        # Power-grid matrices have a symmetric pattern: a symmetric ordering gives less
        # fill and far fewer levels than COLAMD (case8387: 125 levels instead of 306).
        lu = splu(  # type: ignore[call-overload]
            sp.csc_matrix(a, dtype=np.float64),
            permc_spec=permc_spec,
            diag_pivot_thresh=diag_pivot_thresh,
            options={"SymmetricMode": symmetric},
        )
        self.lu = lu
        n = int(a.shape[0])
        self.n = n
        perm_r = np.asarray(lu.perm_r, dtype=np.int64)
        perm_c = np.asarray(lu.perm_c, dtype=np.int64)
        inv_perm_r = np.empty_like(perm_r)
        inv_perm_r[perm_r] = np.arange(n)
        lower = sp.tril(lu.L, k=-1, format="csr")
        upper_full = sp.csr_matrix(lu.U)
        udiag = upper_full.diagonal()
        upper = sp.triu(upper_full, k=1, format="csr")
        p_l, self.lower, self.lower_bounds = _schedule(lower, _levels(lower))
        # When U's pattern is L's transposed (a symmetric factorisation without
        # off-diagonal pivots), row i of U only depends on rows of higher L level:
        # L's levels, swept backwards, then serve U too and no reordering is needed.
        self.shared = _transpose_within(upper, lower)
        if self.shared:
            p_u = p_l
            self.upper = sp.csr_matrix(upper[p_l][:, p_l])
            self.upper.sort_indices()
            self.upper_bounds = self.lower_bounds
        else:
            p_u, self.upper, self.upper_bounds = _schedule(upper, _levels(upper, reverse=True))
        # the products are accumulated in place: store the negated factors
        self.lower.data = -self.lower.data
        self.upper.data = -self.upper.data
        inv_l = np.empty_like(p_l)
        inv_l[p_l] = np.arange(n)
        inv_u = np.empty_like(p_u)
        inv_u[p_u] = np.arange(n)
        self.gather_in = inv_perm_r[p_l]  # b -> L-ordered right-hand side
        self.in_pos = np.empty_like(self.gather_in)
        self.in_pos[self.gather_in] = np.arange(n)  # row j of b sits at in_pos[j]
        self.gather_mid = inv_l[p_u]  # L order -> U order
        self.gather_out = inv_u[perm_c]  # U order -> solution
        self.udiag_u = udiag[p_u][:, None]
        self._single: tuple[sp.csr_matrix, sp.csr_matrix, FloatArray] | None = None

    def _factors(self, dtype: np.dtype[Any]) -> tuple[sp.csr_matrix, sp.csr_matrix, Any]:
        """The (negated, relabelled) factors in the precision of the right-hand side."""
        if dtype != np.float32:
            return self.lower, self.upper, self.udiag_u
        if self._single is None:
            lo = self.lower.astype(np.float32)
            up = self.upper.astype(np.float32)
            self._single = (lo, up, self.udiag_u.astype(np.float32))
        return self._single

    @property
    def depth(self) -> tuple[int, int]:
        return self.lower_bounds.size - 1, self.upper_bounds.size - 1

    def solve(self, b: RealArray) -> Any:
        """Solve ``A x = b`` for a vector or for every column of a matrix."""
        if b.ndim == 1:
            out: FloatArray = self.lu.solve(b)
            return out
        # single precision is kept when asked for: an iteration whose residual is
        # computed in double precision only needs an approximate correction
        dt = np.float32 if b.dtype == np.float32 else np.float64
        y: RealArray = np.ascontiguousarray(b[self.gather_in], dtype=dt)
        result: FloatArray = self.solve_ordered(y)[self.gather_out]
        return result

    def solve_ordered(self, y: RealArray, extra_rows: int = 0, out: RealArray | None = None) -> Any:
        """Solve with ``y`` already in the factor's order (``y[in_pos[j]] = b[j]``).

        ``y`` is overwritten. The solution comes back in the factor's order
        too: ``x[j] = z[gather_out[j]]``; ``extra_rows`` zero rows are appended
        so that callers can point absent unknowns at them. ``out`` (shape
        ``(n + extra_rows, k)``) is reused when given: fresh arrays of this
        size cost page faults on every block.
        """
        k = y.shape[1]
        if self.shared and y.shape[0] == self.n + extra_rows:
            # everything in place in y, in one order
            y[self.n :] = 0.0
            lower, upper, udiag = self._factors(y.dtype)
            self._sweep(lower, self.lower_bounds, y, k, None)
            self._sweep(upper, self.upper_bounds, y, k, udiag, backwards=True)
            return y
        lower, upper, udiag = self._factors(y.dtype)
        self._sweep(lower, self.lower_bounds, y, k, None)
        if out is not None and out.shape == (self.n + extra_rows, k) and out.dtype == y.dtype:
            z = out
            z[self.n :] = 0.0
        else:
            z = np.zeros((self.n + extra_rows, k), dtype=y.dtype)
        np.take(y, self.gather_mid, axis=0, out=z[: self.n])
        self._sweep(upper, self.upper_bounds, z, k, udiag, backwards=self.shared)
        return z

    def _sweep(
        self,
        m: sp.csr_matrix,
        bounds: IntArray,
        x: RealArray,
        k: int,
        diag: FloatArray | None,
        backwards: bool = False,
    ) -> None:
        indptr, indices, data = m.indptr, m.indices, m.data
        flat = x.ravel()
        n = self.n
        levels = range(bounds.size - 2, -1, -1) if backwards else range(bounds.size - 1)
        for lv in levels:
            a, b = int(bounds[lv]), int(bounds[lv + 1])
            p0, p1 = int(indptr[a]), int(indptr[b])
            if p1 > p0:
                sub_ptr = indptr[a : b + 1] - p0
                target = x[a:b]
                if _csr_matvecs is not None:
                    _csr_matvecs(
                        b - a, n, k, sub_ptr, indices[p0:p1], data[p0:p1], flat, target.ravel()
                    )
                else:  # pragma: no cover
                    sub = sp.csr_matrix((data[p0:p1], indices[p0:p1], sub_ptr), shape=(b - a, n))
                    target += sub @ x
            if diag is not None:
                x[a:b] /= diag[a:b]
