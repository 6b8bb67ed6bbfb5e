"""Structures compiled once per topology: admittance and incidence matrices.

Everything here is per unit and radians; the public modules convert to MW,
MVAr and degrees at their edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from aiguilleur.grid.network import BUS_ISOLATED, BUS_REF, Network

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ComplexArray = npt.NDArray[np.complex128]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class BranchAdmittance:
    """The 2x2 admittance of every branch (zero for branches out of service)."""

    yff: ComplexArray
    yft: ComplexArray
    ytf: ComplexArray
    ytt: ComplexArray


def branch_admittance(net: Network, in_service: BoolArray | None = None) -> BranchAdmittance:
    """MATPOWER's branch model: pi section with an ideal transformer at the from end."""
    br = net.branch
    on = (br.in_service == 1) if in_service is None else in_service
    stat = on.astype(np.float64)
    ys = stat / (br.r_pu + 1j * br.x_pu)
    bc = stat * br.b_pu
    tap = np.where(br.tap_ratio != 0.0, br.tap_ratio, 1.0) * np.exp(1j * np.deg2rad(br.shift_deg))
    ytt = ys + 1j * bc / 2.0
    yff = ytt / (tap * np.conj(tap))
    yft = -ys / np.conj(tap)
    ytf = -ys / tap
    return BranchAdmittance(yff, yft, ytf, ytt)


def make_ybus(
    net: Network, adm: BranchAdmittance | None = None
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Bus admittance matrix ``Ybus`` and branch matrices ``Yf``, ``Yt`` (per unit)."""
    n, nl = net.n_bus, net.n_branch
    a = branch_admittance(net) if adm is None else adm
    f, t = net.branch_from, net.branch_to
    rows = np.arange(nl)
    yf = sp.csr_matrix(
        (np.concatenate([a.yff, a.yft]), (np.concatenate([rows, rows]), np.concatenate([f, t]))),
        shape=(nl, n),
    )
    yt = sp.csr_matrix(
        (np.concatenate([a.ytf, a.ytt]), (np.concatenate([rows, rows]), np.concatenate([f, t]))),
        shape=(nl, n),
    )
    ysh = (net.bus.gs_mw + 1j * net.bus.bs_mvar) / net.base_mva
    # The diagonal is always stored so that the Jacobian pattern never changes.
    ybus = sp.csr_matrix(
        (
            np.concatenate([a.yff, a.yft, a.ytf, a.ytt, ysh]),
            (
                np.concatenate([f, f, t, t, np.arange(n)]),
                np.concatenate([f, t, f, t, np.arange(n)]),
            ),
        ),
        shape=(n, n),
    )
    ybus.sum_duplicates()
    return ybus, yf, yt


def dc_susceptance(net: Network, in_service: BoolArray | None = None) -> FloatArray:
    """Series susceptance 1/(x * tap) of each branch, as MATPOWER's DC model uses it.

    A branch with zero reactance (a pure resistance) carries no DC flow: its
    susceptance is taken as x / (r^2 + x^2) = 0, PowerModels' convention,
    rather than MATPOWER's division by zero.
    """
    br = net.branch
    on = (br.in_service == 1) if in_service is None else in_service
    tap = np.where(br.tap_ratio != 0.0, br.tap_ratio, 1.0)
    x = np.where(br.x_pu != 0.0, br.x_pu, np.inf)
    out: FloatArray = on.astype(np.float64) / (x * tap)
    return out


def incidence(net: Network) -> sp.csr_matrix:
    """Branch-bus incidence matrix: +1 at the from bus, -1 at the to bus."""
    nl, n = net.n_branch, net.n_bus
    rows = np.concatenate([np.arange(nl), np.arange(nl)])
    cols = np.concatenate([net.branch_from, net.branch_to])
    vals = np.concatenate([np.ones(nl), -np.ones(nl)])
    return sp.csr_matrix((vals, (rows, cols)), shape=(nl, n))


@dataclass(frozen=True)
class Islands:
    """Connected components of the energised network.

    ``label[i]`` is the island of bus ``i`` (``-1`` for isolated buses of
    type 4); ``ref[k]`` is the reference bus of island ``k`` or ``-1`` when the
    island has no generator in service (it is then de-energised).
    """

    label: IntArray
    ref: IntArray
    ref_chosen: BoolArray


def find_islands(
    net: Network, branch_on: BoolArray | None = None, gen_on: BoolArray | None = None
) -> Islands:
    """Label islands and pick one reference bus per island with generation."""
    n = net.n_bus
    bon = (net.branch.in_service == 1) if branch_on is None else branch_on
    gon = (net.gen.in_service == 1) if gen_on is None else gen_on
    isolated = net.bus.bus_type == BUS_ISOLATED
    f, t = net.branch_from[bon], net.branch_to[bon]
    keep = ~isolated[f] & ~isolated[t]
    f, t = f[keep], t[keep]
    adj = sp.csr_matrix((np.ones(f.size), (f, t)), shape=(n, n))
    _, lab = connected_components(adj, directed=False)
    lab = lab.astype(np.int64)
    lab[isolated] = -1
    # renumber islands 0..k-1 in order of first bus
    uniq, first = np.unique(lab[lab >= 0], return_index=True)
    order = np.argsort(first)
    remap = np.full(int(lab.max()) + 1 if lab.size and lab.max() >= 0 else 1, -1, dtype=np.int64)
    remap[uniq[order]] = np.arange(uniq.size)
    label = np.where(lab >= 0, remap[np.maximum(lab, 0)], -1).astype(np.int64)
    k = uniq.size
    ref = np.full(k, -1, dtype=np.int64)
    chosen = np.zeros(k, dtype=bool)
    has_gen = np.zeros(n, dtype=bool)
    gb = net.gen_bus[gon]
    has_gen[gb] = True
    is_ref = (net.bus.bus_type == BUS_REF) & has_gen & (label >= 0)
    # a file reference bus with a generator in service keeps its role
    r_idx = np.flatnonzero(is_ref)
    ref_isl = label[r_idx]
    _, first_ref = np.unique(ref_isl, return_index=True)
    ref[ref_isl[first_ref]] = r_idx[first_ref]
    # islands without one: the bus of the largest generator (by Pmax) takes over
    missing = np.flatnonzero(ref < 0)
    if missing.size and gb.size:
        gidx = np.flatnonzero(gon)
        gl = label[net.gen_bus[gidx]]
        ok = gl >= 0
        gidx, gl = gidx[ok], gl[ok]
        order = np.lexsort((-net.gen.pmax_mw[gidx], gl))
        gl_sorted = gl[order]
        _, first_g = np.unique(gl_sorted, return_index=True)
        best = gidx[order[first_g]]
        best_isl = gl_sorted[first_g]
        sel = np.isin(best_isl, missing)
        ref[best_isl[sel]] = net.gen_bus[best[sel]]
        chosen[best_isl[sel]] = True
    return Islands(label=label, ref=ref, ref_chosen=chosen)


def island_references(
    net: Network, br_on: BoolArray, gen_on: BoolArray
) -> tuple[IntArray, IntArray]:
    """Angle reference of each island and of each bus (-1 for isolated buses).

    An island's reference is its reference bus when it has generation, else
    its first bus (its load then cannot be served without shedding).
    """
    isl = find_islands(net, branch_on=br_on, gen_on=gen_on)
    lab = isl.label
    first = np.full(isl.ref.size, -1, dtype=np.int64)
    energised = np.flatnonzero(lab >= 0)
    if energised.size:
        _, pos = np.unique(lab[energised], return_index=True)
        first[lab[energised[pos]]] = energised[pos]
    island_ref = np.where(isl.ref >= 0, isl.ref, first).astype(np.int64)
    ref_of_bus = np.where(lab >= 0, island_ref[np.maximum(lab, 0)], -1).astype(np.int64)
    return island_ref, ref_of_bus


@dataclass(frozen=True)
class BridgeTree:
    """Bridges of the in-service graph found by one depth-first search.

    ``bridge[k]`` is True for a branch whose outage splits its island.
    ``child[k]`` is the bus on the far side of bridge ``k`` from the island's
    reference bus: the cut-off part is the DFS subtree of ``child[k]``, i.e.
    the buses ``i`` with ``tin[child] <= tin[i] <= tout[child]``; ``order``
    lists buses by ``tin`` so that subtree sums are prefix-sum differences.
    """

    bridge: BoolArray
    child: IntArray
    tin: IntArray
    tout: IntArray
    order: IntArray


def bridge_tree(net: Network, roots: IntArray, branch_on: BoolArray | None = None) -> BridgeTree:
    """Find bridges with an iterative Tarjan depth-first search (O(n + m), once per topology)."""
    n, nl = net.n_bus, net.n_branch
    on = (net.branch.in_service == 1) if branch_on is None else branch_on
    idx = np.flatnonzero(on)
    f, t = net.branch_from[idx], net.branch_to[idx]
    # adjacency in CSR form: for each bus, (neighbour, branch) pairs
    heads = np.concatenate([f, t])
    tails = np.concatenate([t, f])
    edges = np.concatenate([idx, idx])
    order = np.argsort(heads, kind="stable")
    nbr = tails[order].tolist()
    eid = edges[order].tolist()
    ptr = np.searchsorted(heads[order], np.arange(n + 1)).tolist()
    tin = [-1] * n
    low = [0] * n
    tout = [-1] * n
    bridge = [False] * nl
    child = [-1] * nl
    timer = 0
    visit_order: list[int] = []
    for r in [int(x) for x in roots] + list(range(n)):
        if tin[r] >= 0:
            continue
        tin[r] = low[r] = timer
        timer += 1
        visit_order.append(r)
        stack = [(r, -1, ptr[r])]
        while stack:
            u, pe, it = stack[-1]
            if it < ptr[u + 1]:
                stack[-1] = (u, pe, it + 1)
                v, e = nbr[it], eid[it]
                if e == pe:
                    continue
                if tin[v] < 0:
                    tin[v] = low[v] = timer
                    timer += 1
                    visit_order.append(v)
                    stack.append((v, e, ptr[v]))
                elif tin[v] < low[u]:
                    low[u] = tin[v]
            else:
                stack.pop()
                tout[u] = timer - 1
                if stack:
                    p = stack[-1][0]
                    if low[u] < low[p]:
                        low[p] = low[u]
                    if low[u] > tin[p]:
                        bridge[pe] = True
                        child[pe] = u
    return BridgeTree(
        bridge=np.array(bridge, dtype=bool),
        child=np.array(child, dtype=np.int64),
        tin=np.array(tin, dtype=np.int64),
        tout=np.array(tout, dtype=np.int64),
        order=np.array(visit_order, dtype=np.int64),
    )
