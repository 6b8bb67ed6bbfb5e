"""Selected inversion of a sparse symmetric positive definite matrix (private kernel).

Bad-data identification needs the diagonal of ``H G^-1 H^T``; every entry it
reads lies on the pattern of ``G``, which the Cholesky factor's pattern
contains. Takahashi's recurrences give ``Z = G^-1`` on the factor's pattern
from ``G = L D L^T`` alone, at about the cost of the factorisation:

    Z[s, j] = -Z[s, s] L[s, j]          (s: the rows of column j below the diagonal)
    Z[j, j] = 1 / d_j - L[s, j]^T Z[s, j]

Column ``j`` only reads columns that are its ancestors in the elimination
tree, so all the columns at one depth of the tree are computed together in
one vectorised step: the Python overhead is per level (a few hundred on a
national grid), never per column.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import splu

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class NotPositiveDefinite(Exception):
    """The matrix could not be factorised with symmetric diagonal pivots."""


def _ranges(starts: IntArray, counts: IntArray) -> IntArray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])`` without a loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    out: IntArray = np.repeat(starts, counts) + np.arange(total, dtype=np.int64) - offsets
    return out


class SelectedInverse:
    """Entries of ``A^-1`` on the pattern of the Cholesky factor of ``A``.

    Parameters
    ----------
    a
        A sparse symmetric positive definite matrix (CSC).

    Raises
    ------
    NotPositiveDefinite
        When SuperLU needed off-diagonal pivots or met a zero pivot.
    """

    def __init__(self, a: sp.csc_matrix) -> None:
        n = int(a.shape[0])
        self.n = n
        try:
            lu = splu(
                sp.csc_matrix(a),
                permc_spec="MMD_AT_PLUS_A",
                diag_pivot_thresh=0.0,
                options={"SymmetricMode": True},
            )
        except RuntimeError as err:
            raise NotPositiveDefinite(str(err)) from None
        perm_r = np.asarray(lu.perm_r, dtype=np.int64)
        perm_c = np.asarray(lu.perm_c, dtype=np.int64)
        if not np.array_equal(perm_r, perm_c):
            raise NotPositiveDefinite("off-diagonal pivots")
        self.perm = perm_c  # variable k sits at position perm[k] of the factor
        lower = sp.csc_matrix(lu.L)
        lower.sort_indices()
        d = np.asarray(lu.U.diagonal(), dtype=np.float64)
        if not np.all(np.isfinite(d)) or np.any(d <= 0.0):
            raise NotPositiveDefinite("a pivot is not positive")
        self.d = d
        # SuperLU leaves out entries that happen to be exactly zero, including entries of
        # A itself (a coupling whose value is 0 at this point): A^-1 is read there, so
        # A's own pattern is put back first (as zeros in L)
        ac = sp.coo_matrix(a)
        pi, pj = perm_c[ac.row.astype(np.int64)], perm_c[ac.col.astype(np.int64)]
        hi, lo = np.maximum(pi, pj), np.minimum(pi, pj)
        lc = sp.coo_matrix(lower)
        r_all = np.concatenate([lc.row.astype(np.int64), hi])
        c_all = np.concatenate([lc.col.astype(np.int64), lo])
        d_all = np.concatenate([lc.data, np.zeros(hi.size)])
        # duplicates summed: the zeros added to a stored entry change nothing
        lower = sp.csc_matrix((d_all, (r_all, c_all)), shape=(n, n))
        lower.sum_duplicates()
        lower.sort_indices()
        # ... and the recurrences need a closed pattern (the rows of each column pairwise
        # present), so fill that SuperLU dropped as exactly zero is put back as zeros
        for _ in range(n + 1):
            indptr = lower.indptr.astype(np.int64)
            rows = lower.indices.astype(np.int64)
            cols = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
            self.keys = cols * n + rows  # ascending: CSC with sorted rows
            strict = rows > cols  # entries strictly below the diagonal
            k = np.bincount(cols[strict], minlength=n).astype(np.int64)
            has = k > 0
            if np.any(rows[indptr[:-1][has]] != np.flatnonzero(has)):
                raise NotPositiveDefinite("the factor has no stored diagonal")
            first = indptr[:-1] + 1  # rows sorted: the diagonal comes first
            end = indptr[1:]
            # elimination tree: parent = first row below the diagonal; columns by depth
            parent = np.where(has, rows[np.minimum(first, rows.size - 1)], -1).tolist()
            dep = [0] * n
            for j in range(n - 1, -1, -1):
                p = parent[j]
                if p >= 0:
                    dep[j] = dep[p] + 1
            depth = np.array(dep, dtype=np.int64)
            col_order = np.argsort(depth, kind="stable")
            # strict entries grouped by the depth of their column, ascending within a column
            e = _ranges(first[col_order], k[col_order])
            # pairs (a, b) of strict entries of one column with a before b: Z is symmetric
            pa = np.repeat(e, end[cols[e]] - e - 1)
            pb = _ranges(e + 1, end[cols[e]] - e - 1)
            zpos = self.lookup(rows[pb], rows[pa])  # rows[pb] > rows[pa]
            if np.all(zpos >= 0):
                break
            bad = zpos < 0
            miss = np.unique(rows[pa][bad] * n + rows[pb][bad])  # absent, so no duplicate
            r_all = np.concatenate([rows, miss % n])
            c_all = np.concatenate([cols, miss // n])
            d_all = np.concatenate([lower.data, np.zeros(miss.size)])
            order = np.lexsort((r_all, c_all))
            ptr = np.searchsorted(c_all[order], np.arange(n + 1))
            lower = sp.csc_matrix((d_all[order], r_all[order], ptr), shape=(n, n))
        else:  # pragma: no cover - the closure adds fill monotonically and must stop
            raise NotPositiveDefinite("the factor's pattern could not be closed")
        self.ldata = lower.data.astype(np.float64)
        self.diag_pos = indptr[:-1].copy()
        nlev = int(depth.max()) + 1 if n else 0
        levels = np.arange(nlev + 1)
        self._pair_z = zpos
        self._pair_a = pa
        self._pair_b = pb
        self._pair_bounds = np.searchsorted(depth[cols[pa]], levels).astype(np.int64)
        # index of each strict entry in ``e``: pairs address their level's slice of it
        where = np.full(rows.size, -1, dtype=np.int64)
        where[e] = np.arange(e.size)
        self._pair_ia = where[pa]
        self._pair_ib = where[pb]
        self._ent = e
        self._ent_diag = self.diag_pos[rows[e]]  # where Z[s_a, s_a] is stored
        self._ent_bounds = np.searchsorted(depth[cols[e]], levels).astype(np.int64)
        self._col = col_order
        self._col_bounds = np.searchsorted(depth[col_order], levels).astype(np.int64)
        self._cols = cols
        self.nlev = nlev

    def lookup(self, hi: IntArray, lo: IntArray) -> IntArray:
        """Storage position of factor entries ``(hi, lo)`` (``hi >= lo``), ``-1`` if absent."""
        q = lo * self.n + hi
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, max(self.keys.size - 1, 0))
        ok = self.keys[pos] == q if self.keys.size else np.zeros(q.size, dtype=bool)
        out: IntArray = np.where(ok, pos, -1).astype(np.int64)
        return out

    def positions(self, i: IntArray, j: IntArray) -> IntArray:
        """Storage positions of ``A^-1[i, j]`` for variables ``i, j`` (original numbering)."""
        pi, pj = self.perm[i], self.perm[j]
        return self.lookup(np.maximum(pi, pj), np.minimum(pi, pj))

    def compute(self) -> FloatArray:
        """``A^-1`` on the factor's pattern, aligned with the storage positions."""
        z = np.zeros(self.keys.size)
        ld = self.ldata
        cols = self._cols
        for lev in range(self.nlev):
            a, b = int(self._pair_bounds[lev]), int(self._pair_bounds[lev + 1])
            ea, eb = int(self._ent_bounds[lev]), int(self._ent_bounds[lev + 1])
            ent = self._ent[ea:eb]
            if eb > ea:
                # Z[s_a, j] = -sum_b Z[s_a, s_b] L[s_b, j]: the diagonal terms, then each
                # stored pair (a before b) once for a and once for b
                acc = z[self._ent_diag[ea:eb]] * ld[ent]
                if b > a:
                    ia, ib = self._pair_ia[a:b] - ea, self._pair_ib[a:b] - ea
                    zab = z[self._pair_z[a:b]]
                    acc += np.bincount(ia, weights=zab * ld[self._pair_b[a:b]], minlength=eb - ea)
                    acc += np.bincount(ib, weights=zab * ld[self._pair_a[a:b]], minlength=eb - ea)
                z[ent] = -acc
            cj = self._col[int(self._col_bounds[lev]) : int(self._col_bounds[lev + 1])]
            tot = np.bincount(cols[ent], weights=ld[ent] * z[ent], minlength=self.n)
            z[self.diag_pos[cj]] = 1.0 / self.d[cj] - tot[cj]
        return z
