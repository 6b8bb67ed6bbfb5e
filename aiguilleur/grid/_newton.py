"""Newton-Raphson in polar form on sparse matrices (private kernel).

The Jacobian is assembled from the entries of ``Ybus`` in one vectorised pass
(no per-bus Python loop); its pattern is fixed for a given bus typing, so the
index arrays are computed once per call and reused at every iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import splu

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ComplexArray = npt.NDArray[np.complex128]


#: a mismatch this large (per unit) means the iteration has diverged
DIVERGED_PU = 1e8


@dataclass
class NewtonResult:
    v: ComplexArray
    converged: bool
    iterations: int
    max_mismatch: float
    slack: FloatArray  # distributed-slack variable per island (pu), empty if unused


class JacobianPattern:
    """Index maps from the entries of ``Ybus`` into the Jacobian's blocks.

    Unknowns: angles of ``pvpq`` buses, magnitudes of ``pq`` buses, then one
    slack variable per distributed-slack group. Equations: P at ``prow`` buses
    (``pvpq``, plus the reference buses when the slack is distributed), then Q
    at ``pq`` buses.
    """

    def __init__(
        self,
        ybus: sp.csr_matrix,
        ref: IntArray,
        pv: IntArray,
        pq: IntArray,
        alpha: FloatArray | None = None,
        group: IntArray | None = None,
    ) -> None:
        n = ybus.shape[0]
        self.n = n
        self.pv, self.pq, self.ref = pv, pq, ref
        self.pvpq = np.concatenate([pv, pq])
        self.distributed = alpha is not None
        self.prow = np.concatenate([self.pvpq, ref]) if self.distributed else self.pvpq
        coo = ybus.tocoo()
        self.yr = coo.row.astype(np.int64)
        self.yc = coo.col.astype(np.int64)
        n_p = self.prow.size
        n_a = self.pvpq.size
        n_q = pq.size
        row_p = np.full(n, -1, dtype=np.int64)
        row_p[self.prow] = np.arange(n_p)
        row_q = np.full(n, -1, dtype=np.int64)
        row_q[pq] = n_p + np.arange(n_q)
        col_a = np.full(n, -1, dtype=np.int64)
        col_a[self.pvpq] = np.arange(n_a)
        col_v = np.full(n, -1, dtype=np.int64)
        col_v[pq] = n_a + np.arange(n_q)
        self.row_p, self.row_q, self.col_a, self.col_v = row_p, row_q, col_a, col_v
        r, c = self.yr, self.yc
        self.m11 = np.flatnonzero((row_p[r] >= 0) & (col_a[c] >= 0))
        self.m12 = np.flatnonzero((row_p[r] >= 0) & (col_v[c] >= 0))
        self.m21 = np.flatnonzero((row_q[r] >= 0) & (col_a[c] >= 0))
        self.m22 = np.flatnonzero((row_q[r] >= 0) & (col_v[c] >= 0))
        n_groups = 0
        rows_k: IntArray = np.zeros(0, dtype=np.int64)
        cols_k: IntArray = np.zeros(0, dtype=np.int64)
        vals_k: FloatArray = np.zeros(0)
        if self.distributed:
            assert alpha is not None and group is not None
            n_groups = int(group.max()) + 1 if group.size else 0
            part = np.flatnonzero((alpha != 0) & (row_p >= 0))
            rows_k = row_p[part]
            cols_k = n_a + n_q + group[part]
            vals_k = -alpha[part]
        self.n_groups = n_groups
        self.rows_k, self.cols_k, self.vals_k = rows_k, cols_k, vals_k
        self.size = n_p + n_q
        self.rows = np.concatenate(
            [
                row_p[r[self.m11]],
                row_p[r[self.m12]],
                row_q[r[self.m21]],
                row_q[r[self.m22]],
                rows_k,
            ]
        )
        self.cols = np.concatenate(
            [
                col_a[c[self.m11]],
                col_v[c[self.m12]],
                col_a[c[self.m21]],
                col_v[c[self.m22]],
                cols_k,
            ]
        )
        # Convert once to CSC to learn where each COO entry lands.
        probe = sp.csc_matrix(
            (np.arange(1, self.rows.size + 1, dtype=np.float64), (self.rows, self.cols)),
            shape=(self.size, self.size),
        )
        probe.sort_indices()
        self.csc_indices = probe.indices.copy()
        self.csc_indptr = probe.indptr.copy()
        self.perm = (probe.data - 1).astype(np.int64)

    def jacobian(self, ybus_data: ComplexArray, v: ComplexArray) -> sp.csc_matrix:
        """The Jacobian at ``v``; ``ybus_data`` are the COO values of ``Ybus``."""
        r, c = self.yr, self.yc
        ibus = _spmv(r, ybus_data * v[c], self.n)
        vm = np.abs(v)
        # de-energised buses (v = 0) have no equations; keep their entries finite
        vnorm = np.divide(v, vm, out=np.zeros_like(v), where=vm > 0)
        # dS/dVm and dS/dVa entry-wise (MATPOWER's dSbus_dV in polar form)
        dvm = v[r] * np.conj(ybus_data * vnorm[c])
        dva = -1j * v[r] * np.conj(ybus_data * v[c])
        diag = r == c
        dvm[diag] += (np.conj(ibus) * vnorm)[r[diag]]
        dva[diag] += (1j * v * np.conj(ibus))[r[diag]]
        data = np.concatenate(
            [
                dva[self.m11].real,
                dvm[self.m12].real,
                dva[self.m21].imag,
                dvm[self.m22].imag,
                self.vals_k,
            ]
        )
        return sp.csc_matrix(
            (data[self.perm], self.csc_indices, self.csc_indptr), shape=(self.size, self.size)
        )


def _spmv(rows: IntArray, vals: ComplexArray, n: int) -> ComplexArray:
    out: ComplexArray = np.bincount(rows, weights=vals.real, minlength=n) + 1j * np.bincount(
        rows, weights=vals.imag, minlength=n
    )
    return out


def newton(
    ybus: sp.csr_matrix,
    sbus: ComplexArray,
    v0: ComplexArray,
    ref: IntArray,
    pv: IntArray,
    pq: IntArray,
    *,
    tol: float = 1e-8,
    max_iter: int = 30,
    alpha: FloatArray | None = None,
    group: IntArray | None = None,
    pattern: JacobianPattern | None = None,
) -> NewtonResult:
    """Solve ``V * conj(Ybus V) = Sbus`` for the unknown angles and magnitudes.

    With ``alpha`` (participation per bus) and ``group`` (island of each bus),
    each island's active-power imbalance is shared by its participating buses:
    ``P_i = P_sched_i + alpha_i * k_island``.
    """
    pat = pattern or JacobianPattern(ybus, ref, pv, pq, alpha, group)
    coo = ybus.tocoo()
    ydata = coo.data.astype(np.complex128)
    if coo.row.size != pat.yr.size or not (
        np.array_equal(coo.row, pat.yr) and np.array_equal(coo.col, pat.yc)
    ):
        pat = JacobianPattern(ybus, ref, pv, pq, alpha, group)
    v = v0.astype(np.complex128).copy()
    vm = np.abs(v)
    va = np.angle(v)
    k = np.zeros(pat.n_groups)
    alpha_b = alpha if alpha is not None else np.zeros(v.size)
    grp = group if group is not None else np.zeros(v.size, dtype=np.int64)

    def mismatch() -> FloatArray:
        s_sched = sbus.copy()
        if pat.distributed and pat.n_groups:
            s_sched = s_sched + alpha_b * k[np.maximum(grp, 0)]
        mis = v * np.conj(_spmv(pat.yr, ydata * v[pat.yc], v.size)) - s_sched
        out: FloatArray = np.concatenate([mis[pat.prow].real, mis[pat.pq].imag])
        return out

    f = mismatch()
    norm = float(np.max(np.abs(f))) if f.size else 0.0
    it = 0
    n_a, n_q = pat.pvpq.size, pat.pq.size
    while norm > tol and it < max_iter:
        it += 1
        jac = pat.jacobian(ydata, v)
        try:
            # the Jacobian's pattern is symmetric: a symmetric ordering keeps the fill low
            dx = splu(
                jac,
                permc_spec="MMD_AT_PLUS_A",
                diag_pivot_thresh=0.1,
                options={"SymmetricMode": True},
            ).solve(-f)
        except RuntimeError:  # singular Jacobian: no usable step
            return NewtonResult(v, False, it, norm, k)
        if not np.all(np.isfinite(dx)):
            return NewtonResult(v, False, it, norm, k)
        va[pat.pvpq] += dx[:n_a]
        vm[pat.pq] += dx[n_a : n_a + n_q]
        if pat.distributed:
            k += dx[n_a + n_q :]
        v = vm * np.exp(1j * va)
        f = mismatch()
        norm = float(np.max(np.abs(f))) if f.size else 0.0
        # 1e8 pu (1e10 MW at 100 MVA) is no intermediate step of a solvable case:
        # stop instead of spending the remaining iterations on a diverged one
        if not np.isfinite(norm) or norm > DIVERGED_PU:
            return NewtonResult(v, False, it, norm, k)
    return NewtonResult(v, norm <= tol, it, norm, k)
