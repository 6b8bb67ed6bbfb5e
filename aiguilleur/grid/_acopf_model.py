"""The polar AC-OPF as arrays: index sets, sparsity patterns and exact derivatives.

Everything here is per unit and radians. The problem is PowerModels'
``ACPPowerModel`` (the formulation behind PGLib-OPF's reference values) with
the branch flows substituted into the constraints::

    x = [va (n_bus) | vm (n_bus) | pg (gens in service) | qg (gens in service)]

    min   sum_g c2 (base pg)^2 + c1 base pg + c0
    s.t.  P_i(V) + gs_i vm_i^2 - sum_{g at i} pg_g + pd_i = 0      (every energised bus)
          Q_i(V) - bs_i vm_i^2 - sum_{g at i} qg_g + qd_i = 0
          pf_k^2 + qf_k^2 <= rate_k^2,  pt_k^2 + qt_k^2 <= rate_k^2  (rated branches)
          angmin_k <= va_f - va_t <= angmax_k                       (branches in service)
          vmin <= vm <= vmax, pmin <= pg <= pmax, qmin <= qg <= qmax, va_ref = 0

Each branch end quantity (pf, qf, pt, qt) has the form
``a v_e^2 + v_f v_t (alpha cos d + beta sin d)`` with ``d = va_f - va_t``, a
function of four variables only. Its gradient and its 4x4 Hessian are written
out per branch as arrays, and scattered into fixed sparse patterns with a
``bincount`` over a precomputed map: no per-element Python loop, no
automatic-differentiation graph, and patterns that never change between
evaluations (what IPOPT requires).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from aiguilleur.grid._compile import branch_admittance, island_references
from aiguilleur.grid.network import BUS_ISOLATED, Network

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
# values (4, m), gradients (4, 4, m), T and T' (4, m) of pf, qf, pt, qt of each branch
Terms = tuple[FloatArray, FloatArray, FloatArray, FloatArray]
# voltage magnitude at the from and to end, cos and sin of the angle difference (m,)
Trig = tuple[FloatArray, FloatArray, FloatArray, FloatArray]

# PowerModels' replacement for angle-difference limits outside (-90, 90) degrees
# (and for a pair of zero limits): +-60 degrees.
_PM_ANGLE_PAD_RAD = 1.0472

# Local variable order of a branch: va_f, va_t, vm_f, vm_t. Upper-triangular
# entries of its 4x4 Hessian, in a fixed order.
_HI = np.array([0, 1, 0, 0, 0, 1, 1, 2, 3, 2])
_HJ = np.array([0, 1, 1, 2, 3, 2, 3, 2, 3, 3])
# end (0 from, 1 to) of pf, qf, pt, qt
_FFTT = np.array([0, 0, 1, 1])


@dataclass(frozen=True)
class Pattern:
    """A fixed sparse pattern in compressed-column form and the scatter map onto it."""

    n_row: int
    n_col: int
    indptr: IntArray
    indices: IntArray
    scatter: IntArray  # for each triplet of the evaluation order, its non-zero slot

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    def values(self, triplets: FloatArray) -> FloatArray:
        """Sum the triplet values into the non-zero slots."""
        out: FloatArray = np.bincount(self.scatter, weights=triplets, minlength=self.nnz).astype(
            np.float64, copy=False
        )
        return out

    def to_scipy(self, values: FloatArray) -> sp.csc_matrix:
        return sp.csc_matrix((values, self.indices, self.indptr), shape=(self.n_row, self.n_col))


def _pattern(rows: IntArray, cols: IntArray, n_row: int, n_col: int) -> Pattern:
    key = cols.astype(np.int64) * n_row + rows.astype(np.int64)
    uniq, inverse = np.unique(key, return_inverse=True)
    ucols = uniq // n_row
    urows = uniq - ucols * n_row
    indptr = np.searchsorted(ucols, np.arange(n_col + 1)).astype(np.int64)
    return Pattern(n_row, n_col, indptr, urows.astype(np.int64), inverse.astype(np.int64).ravel())


@dataclass(frozen=True)
class _Work:
    """What the evaluations of one model reuse: index maps, bus constants, a buffer."""

    bal2: IntArray  # P and Q balance rows' buses in a stacked (P, Q) bus vector
    end_rows: IntArray  # (4, m): the end bus of pf, qf, pt, qt in that stacked vector
    balance: sp.csr_matrix  # [pf, qf, pt, qt (4 m, row-major) | pg | qg] -> balance rows
    pd_bal: FloatArray
    qd_bal: FloatArray
    gs_bal: FloatArray
    bs_bal: FloatArray
    jac_shunt_p: FloatArray  # d(P balance)/d(vm) of the shunts is jac_shunt_p * vm
    jac_shunt_q: FloatArray
    jac_buf: FloatArray  # Jacobian triplets; the constant entries are written once

    @staticmethod
    def build(model: ACModel) -> _Work:
        nb, nbal, m, ng = model.n_bus, model.n_bal, model.f.size, model.n_gen
        nl, na = model.lim.size, model.ang.size
        bal = model.bal_bus
        end_rows = np.vstack([model.f, nb + model.f, model.t, nb + model.t])
        # balance row of each stacked (P, Q) bus; isolated buses have none (-1)
        on = model.row_of_bus >= 0
        rows_pq = np.concatenate([model.row_of_bus, np.where(on, nbal + model.row_of_bus, -1)])
        gen_pq = np.concatenate([model.gen_bus, nb + model.gen_bus])
        r = np.concatenate([rows_pq[end_rows.ravel()], rows_pq[gen_pq]])
        c = np.arange(4 * m + 2 * ng)
        v = np.concatenate([np.ones(4 * m), -np.ones(2 * ng)])
        keep = r >= 0
        balance = sp.csr_matrix((v[keep], (r[keep], c[keep])), shape=(2 * nbal, 4 * m + 2 * ng))
        buf = np.zeros(16 * m + 2 * nbal + 2 * ng + 8 * nl + 2 * na)
        o = 16 * m + 2 * nbal
        buf[o : o + 2 * ng] = -1.0  # d(balance)/d(pg, qg)
        o += 2 * ng + 8 * nl
        buf[o : o + na] = 1.0  # d(angle difference)/d(va_f, va_t)
        buf[o + na :] = -1.0
        return _Work(
            bal2=np.concatenate([bal, nb + bal]),
            end_rows=end_rows,
            balance=balance,
            pd_bal=model.pd[bal],
            qd_bal=model.qd[bal],
            gs_bal=model.gs[bal],
            bs_bal=model.bs[bal],
            jac_shunt_p=2.0 * model.gs[bal],
            jac_shunt_q=-2.0 * model.bs[bal],
            jac_buf=buf,
        )


@dataclass(frozen=True)
class ACModel:
    """The compiled AC-OPF of one network (one topology and one set of limits)."""

    base: float
    n_bus: int
    n_gen: int  # generators in service (columns of pg and qg)
    gens: IntArray  # their rows in the network
    gen_bus: IntArray  # their bus (internal index)
    bus_on: BoolArray
    ref: IntArray  # reference bus of each island (angle fixed at 0)
    # branches in service: ends, admittance coefficients of pf, qf, pt, qt
    br: IntArray
    f: IntArray
    t: IntArray
    coef_a: FloatArray  # (4, m)
    coef_alpha: FloatArray  # (4, m)
    coef_beta: FloatArray  # (4, m)
    # rated branches (positions among ``br``) and their limit squared, pu^2
    lim: IntArray
    rate2: FloatArray
    # angle-difference rows (positions among ``br``) and their bounds, rad
    ang: IntArray
    ang_lo: FloatArray
    ang_hi: FloatArray
    # every finite angle-difference limit (positions among ``br``), rad; those not in
    # ``ang`` were left out as implied by the flow and voltage limits (checked after)
    ang_all: IntArray
    ang_all_lo: FloatArray
    ang_all_hi: FloatArray
    # bus data, pu
    pd: FloatArray
    qd: FloatArray
    gs: FloatArray
    bs: FloatArray
    # costs of the generators in service, $/h with pg in pu
    c2: FloatArray
    c1: FloatArray
    c0: FloatArray
    # variable bounds
    lbx: FloatArray
    ubx: FloatArray
    # rows: P balance, Q balance (energised buses), Sf, St (rated), angle
    bal_bus: IntArray  # bus of each balance row (same for P and Q)
    row_of_bus: IntArray  # balance row of each bus (-1 when isolated)
    lbg: FloatArray
    ubg: FloatArray
    jac: Pattern
    hess: Pattern
    # index maps, constants and buffers of the evaluation, built on first use
    _work: list[_Work] = field(default_factory=list, repr=False, compare=False)

    @property
    def work(self) -> _Work:
        if not self._work:
            self._work.append(_Work.build(self))
        return self._work[0]

    @property
    def n_x(self) -> int:
        return 2 * self.n_bus + 2 * self.n_gen

    @property
    def n_g(self) -> int:
        return int(self.lbg.size)

    @property
    def n_bal(self) -> int:
        return int(self.bal_bus.size)

    # -- offsets -----------------------------------------------------------------------
    @property
    def off_vm(self) -> int:
        return self.n_bus

    @property
    def off_pg(self) -> int:
        return 2 * self.n_bus

    @property
    def off_qg(self) -> int:
        return 2 * self.n_bus + self.n_gen

    @property
    def row_sf(self) -> int:
        return 2 * self.n_bal

    @property
    def row_st(self) -> int:
        return 2 * self.n_bal + int(self.lim.size)

    @property
    def row_ang(self) -> int:
        return 2 * self.n_bal + 2 * int(self.lim.size)

    def angle_excess(self, x: FloatArray) -> FloatArray:
        """How far each finite angle-difference limit (``ang_all``) is exceeded, rad."""
        va = x[: self.n_bus]
        rows = self.ang_all
        d = va[self.f[rows]] - va[self.t[rows]]
        out: FloatArray = np.maximum(np.maximum(self.ang_all_lo - d, d - self.ang_all_hi), 0.0)
        return out

    # -- evaluation --------------------------------------------------------------------
    def split(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        nb, ng = self.n_bus, self.n_gen
        return x[:nb], x[nb : 2 * nb], x[2 * nb : 2 * nb + ng], x[2 * nb + ng :]

    def branch_trig(self, x: FloatArray) -> Trig:
        """End voltages and the cosine and sine of the angle difference of each branch."""
        nb = self.n_bus
        va, vm = x[:nb], x[nb : 2 * nb]
        d = va[self.f] - va[self.t]
        return vm[self.f], vm[self.t], np.cos(d), np.sin(d)

    def branch_terms(self, x: FloatArray, trig: Trig | None = None) -> Terms:
        """Values (4, m), gradients (4, 4, m), and the T, T' terms (4, m) of pf, qf, pt, qt."""
        vf, vt, c, s = self.branch_trig(x) if trig is None else trig
        w = vf * vt
        tt = self.coef_alpha * c + self.coef_beta * s
        tp = self.coef_beta * c - self.coef_alpha * s
        a = self.coef_a
        # end magnitude: vf for pf, qf; vt for pt, qt
        val = w * tt
        val[:2] += a[:2] * (vf * vf)
        val[2:] += a[2:] * (vt * vt)
        grad = np.empty((4, 4, vf.size))
        np.multiply(w, tp, out=grad[:, 0])
        np.negative(grad[:, 0], out=grad[:, 1])
        np.multiply(vt, tt, out=grad[:, 2])
        np.multiply(vf, tt, out=grad[:, 3])
        grad[:2, 2] += (2.0 * vf) * a[:2]
        grad[2:, 3] += (2.0 * vt) * a[2:]
        return val, grad, tt, tp

    def branch_values(self, x: FloatArray, trig: Trig | None = None) -> FloatArray:
        """Values (4, m) of pf, qf, pt, qt only (what the constraints need)."""
        vf, vt, c, s = self.branch_trig(x) if trig is None else trig
        out: FloatArray = (self.coef_alpha * c + self.coef_beta * s) * (vf * vt)
        out[:2] += self.coef_a[:2] * (vf * vf)
        out[2:] += self.coef_a[2:] * (vt * vt)
        return out

    def objective(self, x: FloatArray) -> float:
        pg = x[self.off_pg : self.off_qg]
        return float(np.sum((self.c2 * pg + self.c1) * pg + self.c0))

    def objective_grad(self, x: FloatArray) -> FloatArray:
        g = np.zeros(self.n_x)
        pg = x[self.off_pg : self.off_qg]
        g[self.off_pg : self.off_qg] = 2.0 * self.c2 * pg + self.c1
        return g

    def constraints(self, x: FloatArray, terms: Terms | None = None) -> FloatArray:
        val = self.branch_values(x) if terms is None else terms[0]
        return self._constraints(x, val)

    def _constraints(self, x: FloatArray, val: FloatArray) -> FloatArray:
        nb, nbal, nl, m = self.n_bus, self.n_bal, self.lim.size, self.f.size
        out = np.empty(self.n_g)
        # balance rows: branch end flows and generator outputs summed per bus by one
        # sparse product, plus loads and shunts
        vm_bal = x[nb : 2 * nb][self.bal_bus]
        sq = vm_bal * vm_bal
        bal = out[: 2 * nbal]
        w = self.work
        bal[:] = w.balance @ np.concatenate([val.ravel(), x[2 * nb :]])
        bal[:nbal] += w.pd_bal + w.gs_bal * sq
        bal[nbal:] += w.qd_bal - w.bs_bal * sq
        if nl:
            vl = val if nl == m else val[:, self.lim]
            v2 = vl * vl
            np.add(v2[0], v2[1], out=out[2 * nbal : 2 * nbal + nl])
            np.add(v2[2], v2[3], out=out[2 * nbal + nl : 2 * nbal + 2 * nl])
        if self.ang.size:
            va = x[:nb]
            out[self.row_ang :] = va[self.f[self.ang]] - va[self.t[self.ang]]
        return out

    def _jac_triplets(self, x: FloatArray, val: FloatArray, grad: FloatArray) -> FloatArray:
        """Jacobian entries in the triplet order of the pattern (a buffer reused per call)."""
        w = self.work
        buf = w.jac_buf
        vm = x[self.n_bus : 2 * self.n_bus]
        m, nbal, nl = self.f.size, self.n_bal, self.lim.size
        o = 16 * m
        buf[:o] = grad.ravel()
        vm_bal = vm[self.bal_bus]
        np.multiply(w.jac_shunt_p, vm_bal, out=buf[o : o + nbal])
        np.multiply(w.jac_shunt_q, vm_bal, out=buf[o + nbal : o + 2 * nbal])
        o += 2 * nbal + 2 * self.n_gen  # generator entries (-1) are constant
        if nl:
            if nl == m:  # every branch rated: no gathering
                gl, vl = grad, val
            else:
                gl, vl = grad[:, :, self.lim], val[:, self.lim]
            two_v = 2.0 * vl
            jsf = buf[o : o + 4 * nl].reshape(4, nl)
            np.multiply(two_v[0], gl[0], out=jsf)
            jsf += two_v[1] * gl[1]
            jst = buf[o + 4 * nl : o + 8 * nl].reshape(4, nl)
            np.multiply(two_v[2], gl[2], out=jst)
            jst += two_v[3] * gl[3]
        # angle-difference entries (+1, -1) are constant
        return buf

    def jacobian_values(self, x: FloatArray, terms: Terms | None = None) -> FloatArray:
        val, grad, _, _ = terms or self.branch_terms(x)
        return self.jac.values(self._jac_triplets(x, val, grad))

    def constraints_and_jacobian(
        self, x: FloatArray, terms: Terms | None = None
    ) -> tuple[FloatArray, FloatArray]:
        val, grad, _, _ = terms or self.branch_terms(x)
        return self._constraints(x, val), self.jac.values(self._jac_triplets(x, val, grad))

    def hessian_values(
        self, x: FloatArray, sigma: float, lam: FloatArray, terms: Terms | None = None
    ) -> FloatArray:
        """Upper triangle of the Hessian of ``sigma f + lam' g`` on the fixed pattern."""
        nb = self.n_bus
        vm = x[nb : 2 * nb]
        val, grad, tt, tp = terms or self.branch_terms(x)
        f, t = self.f, self.t
        m = f.size
        nbal = self.n_bal
        nl = self.lim.size
        lam_pq = np.zeros(2 * nb)
        lam_pq[self.work.bal2] = lam[: 2 * nbal]
        mu = np.zeros((2, m))
        mu[:, self.lim] = lam[2 * nbal : 2 * nbal + 2 * nl].reshape(2, nl)
        w2 = 2.0 * mu[_FFTT]  # (4, m): 2 mu of the end of pf, qf, pt, qt
        # weight of each quantity's own Hessian: balance multiplier + 2 mu * value
        wq = lam_pq[self.work.end_rows] + w2 * val
        vf, vt = vm[f], vm[t]
        w = vf * vt
        a = self.coef_a
        # sum over the four quantities of weight * Hessian entry, entry by entry
        wt = np.sum(wq * tt, axis=0)
        wtp = np.sum(wq * tp, axis=0)
        h = np.empty((10, m))
        h[0] = -w * wt
        h[1] = -w * wt
        h[2] = w * wt
        h[3] = vt * wtp
        h[4] = vf * wtp
        h[5] = -vt * wtp
        h[6] = -vf * wtp
        h[7] = 2.0 * (wq[0] * a[0] + wq[1] * a[1])
        h[8] = 2.0 * (wq[2] * a[2] + wq[3] * a[3])
        h[9] = wt
        # Gauss-Newton-like terms of the squared flows: 2 mu (gP gP' + gQ gQ')
        h += ((grad * w2[:, None, :])[:, _HI] * grad[:, _HJ]).sum(axis=0)
        shunt = 2.0 * (self.gs * lam_pq[:nb] - self.bs * lam_pq[nb:])
        cost = 2.0 * sigma * self.c2
        return self.hess.values(np.concatenate([h.ravel(), shunt, cost]))


def _angle_limits(net: Network) -> tuple[FloatArray, FloatArray]:
    """Angle-difference bounds after PowerModels' data correction, radians."""
    amin, amax = np.deg2rad(net.branch.angmin_deg), np.deg2rad(net.branch.angmax_deg)
    both0 = (amin == 0.0) & (amax == 0.0)
    lo = np.where((amin <= -np.pi / 2) | both0, -_PM_ANGLE_PAD_RAD, amin)
    hi = np.where((amax >= np.pi / 2) | both0, _PM_ANGLE_PAD_RAD, amax)
    return lo, hi


def implied_angle_limits(net: Network, rate_mva: FloatArray) -> BoolArray:
    """Branches whose angle-difference limits are implied by their flow and voltage limits.

    With MATPOWER's branch (series admittance ``ys``, charging ``bc``, tap
    ``tau`` and shift ``phi``) the from-end current is
    ``I_f = (ys/tau) (V_f/tau - e^{j phi} V_t) + j bc/(2 tau^2) V_f``, so
    ``|S_f| <= rate`` bounds ``|V_f/tau - e^{j phi} V_t|``, and since
    ``|u - w e^{j d}|^2 >= 2 u w (1 - cos d)`` it bounds
    ``1 - cos(va_f - va_t - phi)`` over the voltage box; the to end gives a
    second bound of the same form. Where the resulting interval
    ``phi +- delta`` lies inside ``[angmin, angmax]``, the angle row cannot
    bind at any point that meets the other limits (up to whole turns, which
    the solve checks afterwards).
    """
    b = net.branch
    f, t = net.branch_from, net.branch_to
    vmin, vmax = net.bus.vmin_pu, net.bus.vmax_pu
    tau = np.where(b.tap_ratio != 0.0, b.tap_ratio, 1.0)
    phi = np.deg2rad(b.shift_deg)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ys = np.abs(1.0 / (b.r_pu + 1j * b.x_pu))
        rate = rate_mva / net.base_mva
        bc = np.abs(b.b_pu)
        n_from = (tau / ys * (rate / vmin[f] + bc * vmax[f] / (2.0 * tau * tau))) ** 2
        n_to = (1.0 / ys * (rate / vmin[t] + bc * vmax[t] / 2.0)) ** 2
        c = 1.0 - np.minimum(n_from, n_to) * tau / (2.0 * vmin[f] * vmin[t])
        usable = (
            (rate > 0)
            & np.isfinite(c)
            & (c > -1.0)
            & np.isfinite(ys)
            & (ys > 0)
            & (vmin[f] > 0)
            & (vmin[t] > 0)
            & (tau > 0)
        )
        delta = np.arccos(np.clip(c, -1.0, 1.0))
    lo, hi = _angle_limits(net)
    out: BoolArray = usable & (phi - delta >= lo) & (phi + delta <= hi)
    return out


def compile_model(
    net: Network,
    c2: FloatArray,
    c1: FloatArray,
    c0: FloatArray,
    *,
    rate_mva: FloatArray | None = None,
    angle_limits: bool = True,
    screen_angle_limits: bool = True,
) -> ACModel:
    """Compile ``net``.

    ``c2, c1, c0`` are the costs of its generators in service ($/h per MW^k);
    ``rate_mva`` the flow limit of each branch (default ``rate_a``; 0 means
    unlimited); ``angle_limits=False`` drops the angle-difference rows;
    ``screen_angle_limits`` leaves out the rows that the flow and voltage
    limits imply (:func:`implied_angle_limits`).
    """
    base = net.base_mva
    nb = net.n_bus
    bus_on = net.bus.bus_type != BUS_ISOLATED
    f_all, t_all = net.branch_from, net.branch_to
    br_on = (net.branch.in_service == 1) & bus_on[f_all] & bus_on[t_all]
    gen_on = (net.gen.in_service == 1) & bus_on[net.gen_bus]
    gens = np.flatnonzero(gen_on).astype(np.int64)
    ng = gens.size
    gen_bus = net.gen_bus[gens].astype(np.int64)

    br = np.flatnonzero(br_on).astype(np.int64)
    f, t = f_all[br].astype(np.int64), t_all[br].astype(np.int64)
    adm = branch_admittance(net, br_on)
    yff, yft, ytf, ytt = adm.yff[br], adm.yft[br], adm.ytf[br], adm.ytt[br]
    coef_a = np.vstack([yff.real, -yff.imag, ytt.real, -ytt.imag])
    coef_alpha = np.vstack([yft.real, -yft.imag, ytf.real, -ytf.imag])
    coef_beta = np.vstack([yft.imag, yft.real, -ytf.imag, -ytf.real])

    rate_all = net.branch.rate_a_mva if rate_mva is None else rate_mva
    rate = rate_all[br]
    lim = np.flatnonzero(rate > 0).astype(np.int64)
    rate2 = (rate[lim] / base) ** 2
    lo, hi = _angle_limits(net)
    lo, hi = lo[br], hi[br]
    if angle_limits:
        ang_all = np.flatnonzero(np.isfinite(lo) | np.isfinite(hi)).astype(np.int64)
    else:
        ang_all = np.zeros(0, dtype=np.int64)
    if screen_angle_limits:
        ang = ang_all[~implied_angle_limits(net, rate_all)[br[ang_all]]]
    else:
        ang = ang_all

    # one reference angle per island; an island without generation keeps its first bus
    ref, _ = island_references(net, br_on, gen_on)

    bus = net.bus
    inf = np.inf
    va_lo = np.full(nb, -inf)
    va_hi = np.full(nb, inf)
    va_lo[ref] = va_hi[ref] = 0.0
    vm_lo = np.array(bus.vmin_pu, dtype=np.float64)
    vm_hi = np.array(bus.vmax_pu, dtype=np.float64)
    iso = ~bus_on
    va_lo[iso] = va_hi[iso] = 0.0
    vm_lo[iso] = vm_hi[iso] = 1.0
    g = net.gen
    lbx = np.concatenate([va_lo, vm_lo, g.pmin_mw[gens] / base, g.qmin_mvar[gens] / base]).astype(
        np.float64
    )
    ubx = np.concatenate([va_hi, vm_hi, g.pmax_mw[gens] / base, g.qmax_mvar[gens] / base]).astype(
        np.float64
    )

    bal_bus = np.flatnonzero(bus_on).astype(np.int64)
    nbal = bal_bus.size
    row_of_bus = np.full(nb, -1, dtype=np.int64)
    row_of_bus[bal_bus] = np.arange(nbal)
    nl = lim.size
    na = ang.size
    lbg = np.concatenate([np.zeros(2 * nbal), np.full(2 * nl, -inf), lo[ang]])
    ubg = np.concatenate([np.zeros(2 * nbal), np.tile(rate2, 2), hi[ang]])
    n_g = lbg.size
    n_x = 2 * nb + 2 * ng

    # -- Jacobian pattern, in the triplet order of ``_jac_triplets`` --------------------
    m = br.size
    loc_cols = np.vstack([f, t, nb + f, nb + t])  # (4, m): columns of the local variables
    end_row = np.vstack(
        [row_of_bus[f], nbal + row_of_bus[f], row_of_bus[t], nbal + row_of_bus[t]]
    )  # (4, m): balance row of pf, qf, pt, qt
    rows_br = np.broadcast_to(end_row[:, None, :], (4, 4, m))
    cols_br = np.broadcast_to(loc_cols[None, :, :], (4, 4, m))
    lim_rows = np.arange(nl)
    r_sf = np.broadcast_to((2 * nbal + lim_rows)[None, :], (4, nl))
    r_st = np.broadcast_to((2 * nbal + nl + lim_rows)[None, :], (4, nl))
    c_lim = loc_cols[:, lim]
    gcols = np.arange(ng)
    ang_rows = 2 * nbal + 2 * nl + np.arange(na)
    j_rows = np.concatenate(
        [
            rows_br.ravel(),
            np.arange(nbal),
            nbal + np.arange(nbal),
            row_of_bus[gen_bus],
            nbal + row_of_bus[gen_bus],
            r_sf.ravel(),
            r_st.ravel(),
            ang_rows,
            ang_rows,
        ]
    )
    j_cols = np.concatenate(
        [
            cols_br.ravel(),
            nb + bal_bus,
            nb + bal_bus,
            2 * nb + gcols,
            2 * nb + ng + gcols,
            c_lim.ravel(),
            c_lim.ravel(),
            f[ang],
            t[ang],
        ]
    )
    jac = _pattern(j_rows, j_cols, n_g, n_x)

    # -- Hessian pattern (upper triangle), in the order of ``hessian_values`` ----------
    gi = loc_cols[_HI]  # (10, m)
    gj = loc_cols[_HJ]
    h_rows = np.concatenate([np.minimum(gi, gj).ravel(), nb + np.arange(nb), 2 * nb + gcols])
    h_cols = np.concatenate([np.maximum(gi, gj).ravel(), nb + np.arange(nb), 2 * nb + gcols])
    hess = _pattern(h_rows, h_cols, n_x, n_x)

    return ACModel(
        base=base,
        n_bus=nb,
        n_gen=ng,
        gens=gens,
        gen_bus=gen_bus,
        bus_on=bus_on,
        ref=ref,
        br=br,
        f=f,
        t=t,
        coef_a=coef_a,
        coef_alpha=coef_alpha,
        coef_beta=coef_beta,
        lim=lim,
        rate2=rate2,
        ang=ang,
        ang_lo=lo[ang],
        ang_hi=hi[ang],
        ang_all=ang_all,
        ang_all_lo=lo[ang_all],
        ang_all_hi=hi[ang_all],
        pd=np.where(bus_on, bus.pd_mw / base, 0.0),
        qd=np.where(bus_on, bus.qd_mvar / base, 0.0),
        gs=np.where(bus_on, bus.gs_mw / base, 0.0),
        bs=np.where(bus_on, bus.bs_mvar / base, 0.0),
        c2=c2 * base * base,
        c1=c1 * base,
        c0=np.asarray(c0, dtype=np.float64),
        lbx=lbx,
        ubx=ubx,
        bal_bus=bal_bus,
        row_of_bus=row_of_bus,
        lbg=lbg,
        ubg=ubg,
        jac=jac,
        hess=hess,
    )
