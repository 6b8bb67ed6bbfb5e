"""Kernels of AC state estimation (private): measurement functions, gain matrices, observability.

Per unit and radians throughout. A measurement row is a kind code and an
element (0-based bus or branch row); the measurement functions and their
Jacobian are gathered from per-bus and per-branch complex derivatives in one
vectorised pass, with index arrays computed once per measurement set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

from aiguilleur.grid._compile import BranchAdmittance

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ComplexArray = npt.NDArray[np.complex128]

KINDS = ("vm", "p_inj", "q_inj", "p_from", "q_from", "p_to", "q_to")
VM, P_INJ, Q_INJ, P_FROM, Q_FROM, P_TO, Q_TO = range(7)
BUS_KINDS = (VM, P_INJ, Q_INJ)
#: reactive kinds take the imaginary part of a complex power
IMAG_KINDS = (Q_INJ, Q_FROM, Q_TO)


def _ranges(starts: IntArray, counts: IntArray) -> IntArray:
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    out: IntArray = np.repeat(starts, counts) + np.arange(total, dtype=np.int64) - offsets
    return out


class MeasurementModel:
    """Measurement functions ``h(V)`` and their Jacobian for one set of rows.

    Parameters
    ----------
    ybus
        Bus admittance matrix (CSR, diagonal stored).
    adm
        Branch admittances.
    f, t
        From and to bus of each branch (0-based).
    kind, element
        Kind code and 0-based bus or branch row of every row.
    col_va, col_vm
        State column of each bus's angle and magnitude, ``-1`` when it is not
        a state variable (reference angles, buses outside the estimated part).
    """

    def __init__(
        self,
        ybus: sp.csr_matrix,
        adm: BranchAdmittance,
        f: IntArray,
        t: IntArray,
        kind: IntArray,
        element: IntArray,
        col_va: IntArray,
        col_vm: IntArray,
    ) -> None:
        n = ybus.shape[0]
        nl = f.size
        self.n, self.nl = n, nl
        self.m = kind.size
        self.nx = int(max(col_va.max(initial=-1), col_vm.max(initial=-1)) + 1)
        ybus = sp.csr_matrix(ybus)
        ybus.sort_indices()
        self.yr = np.repeat(np.arange(n, dtype=np.int64), np.diff(ybus.indptr))
        self.yc = ybus.indices.astype(np.int64)
        self.ydata = ybus.data.astype(np.complex128)
        self.adm = adm
        self.f, self.t = f, t
        self.kind, self.element = kind, element
        ny = self.ydata.size
        # offsets of the complex sources of h and of H (see values())
        self._h_off = {"inj": 0, "sf": n, "st": n + nl, "vm": n + 2 * nl}
        o_dva, o_dvm = 0, ny
        o_br = 2 * ny  # 8 blocks of nl: dSf/dVa_f, dSf/dVa_t, dSf/dVm_f, dSf/dVm_t, then St
        o_one = o_br + 8 * nl
        rows: list[IntArray] = []
        cols: list[IntArray] = []
        srcs: list[IntArray] = []
        hsrc = np.zeros(self.m, dtype=np.int64)
        r_all = np.arange(self.m, dtype=np.int64)
        # voltage magnitudes
        sel = kind == VM
        hsrc[sel] = self._h_off["vm"] + element[sel]
        rows.append(r_all[sel])
        cols.append(col_vm[element[sel]])
        srcs.append(np.full(int(sel.sum()), o_one, dtype=np.int64))
        # injections: every Ybus entry of the bus's row
        sel = (kind == P_INJ) | (kind == Q_INJ)
        b = element[sel]
        hsrc[sel] = self._h_off["inj"] + b
        starts = ybus.indptr[b].astype(np.int64)
        counts = (ybus.indptr[b + 1] - ybus.indptr[b]).astype(np.int64)
        pos = _ranges(starts, counts)
        rr = np.repeat(r_all[sel], counts)
        cc = self.yc[pos]
        rows += [rr, rr]
        cols += [col_va[cc], col_vm[cc]]
        srcs += [o_dva + pos, o_dvm + pos]
        # flows at either end
        for kinds, side, off in (((P_FROM, Q_FROM), 0, "sf"), ((P_TO, Q_TO), 4, "st")):
            sel = np.isin(kind, kinds)
            k = element[sel]
            hsrc[sel] = self._h_off[off] + k
            r = r_all[sel]
            base = o_br + side * nl
            rows += [r, r, r, r]
            cols += [col_va[f[k]], col_va[t[k]], col_vm[f[k]], col_vm[t[k]]]
            srcs += [base + k, base + nl + k, base + 2 * nl + k, base + 3 * nl + k]
        row = np.concatenate(rows)
        col = np.concatenate(cols)
        src = np.concatenate(srcs)
        keep = col >= 0
        row, col, src = row[keep], col[keep], src[keep]
        # by row, then column (one integer key sorts much faster than lexsort's two)
        order = np.argsort(row * max(self.nx, 1) + col, kind="stable")
        self.h_row, self.h_col, self.h_src = row[order], col[order], src[order]
        self.h_imag = np.isin(kind[self.h_row], IMAG_KINDS)
        self.hsrc = hsrc
        self.row_imag = np.isin(kind, IMAG_KINDS)
        # pairs (a, b) of entries of the same row with col_a <= col_b: the upper triangle of
        # H^T W H, a pattern fixed for this set (the entries of a row have distinct columns)
        counts = np.bincount(self.h_row, minlength=self.m).astype(np.int64)
        starts = (np.cumsum(counts) - counts).astype(np.int64)
        e = np.arange(self.h_row.size, dtype=np.int64)
        # entry e pairs with itself and the later entries of its row (sorted by column)
        after = starts[self.h_row] + counts[self.h_row] - e
        self.pair_a = np.repeat(e, after)
        self.pair_b = _ranges(e, after)
        self.pair_row = self.h_row[self.pair_a]
        #: weight of a pair in diag(H Z H^T): off-diagonal pairs stand for two
        self.pair_twice = np.where(self.pair_a == self.pair_b, 1.0, 2.0)
        nx = self.nx
        # column-major keys give the CSC order directly
        key = self.h_col[self.pair_b] * nx + self.h_col[self.pair_a]
        uniq, inv = np.unique(key, return_inverse=True)
        self.u_inv = inv.astype(np.int64)
        u_rows = (uniq % nx).astype(np.int64)
        u_cols = (uniq // nx).astype(np.int64)
        self.u_rows = u_rows
        self.u_indptr = np.searchsorted(u_cols, np.arange(nx + 1)).astype(np.int64)
        self.u_nnz = uniq.size
        # the full symmetric pattern, and where each of its entries sits in the upper one
        off = u_rows != u_cols
        f_rows = np.concatenate([u_rows, u_cols[off]])
        f_cols = np.concatenate([u_cols, u_rows[off]])
        f_src = np.concatenate([np.arange(uniq.size), np.flatnonzero(off)])
        order = np.argsort(f_cols * nx + f_rows, kind="stable")
        self.g_rows, self.g_cols = f_rows[order], f_cols[order]
        self.g_from_u = f_src[order].astype(np.int64)
        self.g_indptr = np.searchsorted(self.g_cols, np.arange(nx + 1)).astype(np.int64)
        self.g_nnz = self.g_rows.size
        # the upper entries' positions in the full pattern
        self.u_in_g = np.empty(uniq.size, dtype=np.int64)
        upper = self.g_rows <= self.g_cols
        self.u_in_g[self.g_from_u[upper]] = np.flatnonzero(upper)

    # -- evaluation ---------------------------------------------------------------------

    def values(self, v: ComplexArray) -> tuple[FloatArray, FloatArray]:
        """``h(V)`` per row and the Jacobian's entries (aligned with ``h_row, h_col``)."""
        yr, yc, y = self.yr, self.yc, self.ydata
        f, t, a = self.f, self.t, self.adm
        n = self.n
        yv = y * v[yc]
        ibus = np.bincount(yr, weights=yv.real, minlength=n) + 1j * np.bincount(
            yr, weights=yv.imag, minlength=n
        )
        sinj = v * np.conj(ibus)
        vm = np.abs(v)
        vn = np.divide(v, vm, out=np.zeros_like(v), where=vm > 0)
        # MATPOWER's dSbus_dV in polar form, entry by entry
        dvm = v[yr] * np.conj(y * vn[yc])
        dva = -1j * v[yr] * np.conj(yv)
        dg = yr == yc
        dvm[dg] += (np.conj(ibus) * vn)[yr[dg]]
        dva[dg] += (1j * v * np.conj(ibus))[yr[dg]]
        vf, vt = v[f], v[t]
        i_ft = a.yft * vt  # the from end's current due to the to end
        i_tf = a.ytf * vf
        sf = vf * np.conj(a.yff * vf + i_ft)
        st = vt * np.conj(a.ytt * vt + i_tf)
        vmf, vmt = vm[f], vm[t]
        dsf_vaf = 1j * vf * np.conj(i_ft)
        dsf_vat = -dsf_vaf
        dsf_vmf = np.divide(sf, vmf, out=np.zeros_like(sf), where=vmf > 0) + vmf * np.conj(a.yff)
        dsf_vmt = vf * np.conj(a.yft * vn[t])
        dst_vat = 1j * vt * np.conj(i_tf)
        dst_vaf = -dst_vat
        dst_vmt = np.divide(st, vmt, out=np.zeros_like(st), where=vmt > 0) + vmt * np.conj(a.ytt)
        dst_vmf = vt * np.conj(a.ytf * vn[f])
        hs = np.concatenate([sinj, sf, st, vm.astype(np.complex128)])
        h = np.where(self.row_imag, hs[self.hsrc].imag, hs[self.hsrc].real)
        src = np.concatenate(
            [
                dva,
                dvm,
                dsf_vaf,
                dsf_vat,
                dsf_vmf,
                dsf_vmt,
                dst_vaf,
                dst_vat,
                dst_vmf,
                dst_vmt,
                np.ones(1, dtype=np.complex128),
            ]
        )
        g = src[self.h_src]
        hd = np.where(self.h_imag, g.imag, g.real)
        return h, hd

    def jacobian(self, hd: FloatArray, rows: IntArray | None = None) -> sp.csr_matrix:
        """The Jacobian as a sparse matrix (all rows, or ``rows`` in that order)."""
        full = sp.csr_matrix((hd, (self.h_row, self.h_col)), shape=(self.m, self.nx))
        if rows is None:
            return full
        out: sp.csr_matrix = full[rows]
        return out

    def gain_upper_data(self, hd: FloatArray, w: FloatArray) -> FloatArray:
        """Values of ``H^T diag(w) H`` on its fixed upper-triangle pattern (zeros kept)."""
        vals = hd[self.pair_a] * hd[self.pair_b] * w[self.pair_row]
        out = np.bincount(self.u_inv, weights=vals, minlength=self.u_nnz)
        return out.astype(np.float64, copy=False)

    def gain_upper(self, hd: FloatArray, w: FloatArray) -> sp.csc_matrix:
        """The upper triangle of ``H^T diag(w) H`` (CSC, zeros kept)."""
        return sp.csc_matrix(
            (self.gain_upper_data(hd, w), self.u_rows, self.u_indptr),
            shape=(self.nx, self.nx),
            copy=False,
        )

    def gain(self, hd: FloatArray, w: FloatArray) -> sp.csc_matrix:
        """``H^T diag(w) H`` on the fixed pattern of every row's pairs (zeros kept)."""
        data = self.gain_upper_data(hd, w)[self.g_from_u]
        return sp.csc_matrix(
            (data, self.g_rows, self.g_indptr), shape=(self.nx, self.nx), copy=False
        )

    def quadratic_diag(self, hd: FloatArray, zg: FloatArray) -> FloatArray:
        """``diag(H Z H^T)`` given a symmetric ``Z`` on the gain matrix's pattern (aligned)."""
        zu = zg[self.u_in_g]
        vals = hd[self.pair_a] * hd[self.pair_b] * self.pair_twice * zu[self.u_inv]
        out = np.bincount(self.pair_row, weights=vals, minlength=self.m).astype(np.float64)
        return out


# -- observability ----------------------------------------------------------------------


@dataclass(frozen=True)
class Observability:
    """Outcome of the topological-numerical observability analysis.

    ``estimated`` marks the buses whose state the measurements determine
    (angle relative to their island's reference and magnitude); ``island``
    labels every energised bus with its observable island (``-1`` elsewhere);
    ``ref`` lists one reference bus per estimated island.
    """

    estimated: BoolArray
    island: IntArray
    ref: IntArray


def _zero_pivot_null_vector(g: sp.csc_matrix, rng: np.random.Generator) -> FloatArray:
    """Two null-space vectors of ``g`` (integer, positive semi-definite) by Monticelli and Wu.

    The matrix is factorised with a tiny shift so that zero pivots stay
    finite; the buses where a pivot vanished receive a pseudo-measurement of
    a random value, and the solution of the completed system is a vector of
    the null space (as the columns of ``g`` without a zero pivot are
    determined by those with one).
    """
    n = g.shape[0]
    diag = g.diagonal()
    shift = 1e-9
    lu = splu(
        sp.csc_matrix(g + sp.identity(n, format="csc") * shift),
        permc_spec="MMD_AT_PLUS_A",
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )
    pivots = np.asarray(lu.U.diagonal())
    col_at = np.empty(n, dtype=np.int64)
    col_at[np.asarray(lu.perm_c, dtype=np.int64)] = np.arange(n)
    scale = np.maximum(diag[col_at], 1.0)
    zero = col_at[np.abs(pivots) < 1e-7 * scale]
    aug = np.zeros(n)
    aug[zero] = 1.0
    lu2 = splu(
        sp.csc_matrix(g + sp.diags(aug, format="csc")),
        permc_spec="MMD_AT_PLUS_A",
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )
    rhs = np.zeros((n, 2))
    rhs[zero] = rng.uniform(1.0, 2.0, size=(zero.size, 2))
    out: FloatArray = lu2.solve(rhs)
    return out


def _unit_gain(
    n: int, f: IntArray, t: IntArray, flow_measured: BoolArray, inj_measured: BoolArray
) -> sp.csc_matrix:
    """``H^T H`` of the unit-admittance model: flow rows ``e_f - e_t``, injection rows.

    The injection rows are rows of the Laplacian ``L``, so their part is
    ``L D L`` with ``D`` marking the measured injections; the flow rows give
    the Laplacian of the measured branches.
    """

    def laplacian(a: IntArray, b: IntArray) -> sp.csr_matrix:
        one = np.ones(a.size)
        return sp.csr_matrix(
            (
                np.concatenate([one, one, -one, -one]),
                (np.concatenate([a, b, a, b]), np.concatenate([a, b, b, a])),
            ),
            shape=(n, n),
        )

    lap = laplacian(f, t)
    k = np.flatnonzero(flow_measured)
    d = sp.diags(inj_measured.astype(np.float64), format="csr")
    return sp.csc_matrix(laplacian(f[k], t[k]) + lap @ d @ lap)


def fully_observable(
    n: int,
    f: IntArray,
    t: IntArray,
    flow: tuple[BoolArray, BoolArray],
    inj: tuple[BoolArray, BoolArray],
    vm: BoolArray,
    refs: IntArray,
) -> bool:
    """Whether the decoupled unit-admittance model determines every state.

    ``flow`` and ``inj`` hold the active (P) and reactive (Q) readings;
    angles are taken relative to ``refs`` (one bus per island), magnitudes
    need the ``vm`` readings. Both gain matrices must factorise without a
    vanishing pivot (their entries are integers: a true pivot is not tiny).
    """
    anchors = [np.zeros(n), vm.astype(np.float64)]
    anchors[0][refs] = 1.0
    for k in range(2):
        g = _unit_gain(n, f, t, flow[k], inj[k]) + sp.diags(anchors[k], format="csc")
        diag = g.diagonal()
        if np.any(diag <= 0):
            return False
        try:
            lu = splu(
                sp.csc_matrix(g),
                permc_spec="MMD_AT_PLUS_A",
                diag_pivot_thresh=0.0,
                options={"SymmetricMode": True},
            )
        except RuntimeError:
            return False
        col_at = np.empty(n, dtype=np.int64)
        col_at[np.asarray(lu.perm_c, dtype=np.int64)] = np.arange(n)
        if not np.all(np.abs(np.asarray(lu.U.diagonal())) > 1e-7 * diag[col_at]):
            return False
    return True


def flow_islands(
    n: int,
    f: IntArray,
    t: IntArray,
    flow_measured: BoolArray,
    inj_measured: BoolArray,
    rng: np.random.Generator,
) -> tuple[IntArray, BoolArray]:
    """Observable islands of the linearised (unit-admittance) model.

    Parameters
    ----------
    n
        Number of buses.
    f, t
        Ends of the branches of the graph.
    flow_measured
        Per branch: a flow is measured on it.
    inj_measured
        Per bus: its injection is measured (or known to be zero).

    Returns
    -------
    label, used_inj
        The observable island of every bus (a branch whose flow the
        measurements do not determine separates two islands), and which
        injection measurements remain relevant (those at buses not touching
        an unobservable branch).
    """
    active = np.ones(f.size, dtype=bool)
    inj = inj_measured.copy()
    for _ in range(f.size + 1):
        fa, ta = f[active], t[active]
        na = fa.size
        rows_f = np.flatnonzero(flow_measured[active])
        # flow rows: e_f - e_t
        r_f = np.repeat(np.arange(rows_f.size), 2)
        c_f = np.column_stack([fa[rows_f], ta[rows_f]]).ravel()
        v_f = np.tile([1.0, -1.0], rows_f.size)
        # injection rows: the Laplacian row of the bus in the active graph
        lap = sp.csr_matrix(
            (
                np.concatenate([np.ones(na), np.ones(na), -np.ones(na), -np.ones(na)]),
                (np.concatenate([fa, ta, fa, ta]), np.concatenate([fa, ta, ta, fa])),
            ),
            shape=(n, n),
        )
        ib = np.flatnonzero(inj)
        h = sp.vstack(
            [
                sp.csr_matrix((v_f, (r_f, c_f)), shape=(rows_f.size, n)),
                lap[ib],
            ]
        ).tocsc()
        g = sp.csc_matrix(h.T @ h)
        theta = _zero_pivot_null_vector(g, rng)
        spread = np.max(np.abs(theta[fa] - theta[ta]), axis=1) if na else np.zeros(0)
        scale = 1.0 + np.max(np.abs(theta), axis=1)
        unobs_local = spread > 1e-6 * np.maximum(scale[fa], scale[ta])
        if not np.any(unobs_local):
            break
        idx = np.flatnonzero(active)[unobs_local]
        active[idx] = False
        touched = np.zeros(n, dtype=bool)
        touched[f[idx]] = True
        touched[t[idx]] = True
        inj &= ~touched
    fa, ta = f[active], t[active]
    adj = sp.csr_matrix((np.ones(fa.size), (fa, ta)), shape=(n, n))
    _, lab = connected_components(adj, directed=False)
    return lab.astype(np.int64), inj
