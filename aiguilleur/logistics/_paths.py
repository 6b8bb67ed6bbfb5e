"""Shortest-path trees on a road graph, and their repair after edges get slower (private).

The travel matrices of :mod:`aiguilleur.logistics.roads` are read off
shortest-path trees, one per distinct stop, computed together by
:func:`scipy.sparse.csgraph.dijkstra`. When edges become slower or close, only
the nodes below a changed tree edge can change; :func:`repair` re-searches
exactly those (tree, node) labels, for all trees in one Dijkstra call on a
block-diagonal graph of the affected parts, each block fed by a super-source
whose edges carry the exact distances of the unaffected nodes around it.

Everything works on arrays: edge arrays of the graph (``tail``, ``head``,
``length_m``, ``travel_time_s``, ``closed``) and ``(trees, nodes)`` arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse import csgraph

__all__ = ["Compiled", "Trees", "compile_graph", "grow", "repair", "tree_use", "use_matrix"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_MIN_WEIGHT_S = 1e-6  # csgraph would read a zero weight as "no edge"
# Share of a tree's labels below changed edges above which it is grown anew
# rather than repaired (the repair's set-up costs more per label than Dijkstra).
_REGROW_SHARE = 0.4


@dataclass(frozen=True)
class Compiled:
    """The open edges as an ``n x n`` CSR matrix of travel times.

    Parallel edges keep the fastest; ``keys`` (``u * n + v``, sorted, in the
    matrix's storage order) and ``edge`` map each entry back to its edge.
    """

    matrix: sp.csr_array
    keys: IntArray
    edge: IntArray

    def edge_of(self, u: IntArray, v: IntArray) -> IntArray:
        """The edge used between ``u`` and ``v`` (entries that exist)."""
        n = self.matrix.shape[0]
        out: IntArray = self.edge[np.searchsorted(self.keys, u * n + v)]
        return out

    def transposed(self) -> sp.csr_array:
        """The matrix of the reversed graph (row ``v`` lists the edges into ``v``)."""
        return sp.csr_array(self.matrix.T)


def compile_graph(
    n: int, tail: IntArray, head: IntArray, travel_time_s: FloatArray, closed: BoolArray
) -> Compiled:
    """Compile the open edges of a graph of ``n`` nodes."""
    open_ = np.flatnonzero(~closed)
    u, v = tail[open_], head[open_]
    t = np.maximum(travel_time_s[open_], _MIN_WEIGHT_S)
    keys = u * n + v
    order = np.lexsort((t, keys))
    keys, u, v, t, edge = keys[order], u[order], v[order], t[order], open_[order]
    first = np.ones(keys.shape[0], dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    keys, u, v, t, edge = keys[first], u[first], v[first], t[first], edge[first]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(u, minlength=n))])
    matrix = sp.csr_array((t, v, indptr), shape=(n, n))
    return Compiled(matrix=matrix, keys=keys, edge=edge)


@dataclass(frozen=True)
class Trees:
    """Shortest-path trees from ``roots``: one row per tree, one column per node.

    ``dist`` is the travel time from the root (``inf`` where unreachable),
    ``pred`` the parent node and ``pe`` the edge from it (-1 at the root and
    where unreachable), ``length`` the metres along the tree path.
    """

    roots: IntArray
    dist: FloatArray
    pred: npt.NDArray[np.int32]
    pe: npt.NDArray[np.int32]
    length: FloatArray


def grow(comp: Compiled, roots: IntArray, length_m: FloatArray) -> Trees:
    """The shortest-path trees from ``roots``, all in one Dijkstra call."""
    dist, pred32 = csgraph.dijkstra(
        comp.matrix, directed=True, indices=roots, return_predecessors=True
    )
    pred = np.where(pred32 < 0, -1, pred32).astype(np.int32)
    pe = np.full(pred.shape, -1, dtype=np.int32)
    t, v = np.nonzero(pred >= 0)
    pe[t, v] = comp.edge_of(pred[t, v].astype(np.int64), v.astype(np.int64))
    return Trees(
        roots=roots.astype(np.int64),
        dist=dist,
        pred=pred,
        pe=pe,
        length=_lengths(pred, pe, length_m),
    )


def _up_pointers(pred: npt.NDArray[np.int32]) -> tuple[IntArray, IntArray]:
    """Flat parent pointers (a root or an unreachable node points to itself)."""
    k, n = pred.shape
    flat = np.arange(k * n, dtype=np.int64)
    p = pred.ravel().astype(np.int64)
    up = np.where(p >= 0, (flat // n) * n + p, flat)
    return flat, up


def _lengths(
    pred: npt.NDArray[np.int32], pe: npt.NDArray[np.int32], length_m: FloatArray
) -> FloatArray:
    """Metres along the tree path from the root to every node, by pointer doubling."""
    _, up = _up_pointers(pred)
    e = pe.ravel()
    acc = np.where(e >= 0, length_m[np.maximum(e, 0)], 0.0)
    return _sum_up(up, acc).reshape(pred.shape)


def _sum_up(up: IntArray, acc: FloatArray) -> FloatArray:
    """Sum of ``acc`` over each element and all its ancestors (roots point to themselves).

    Pointer doubling: after round r each element has summed the 2^r values
    above it; a root holds 0, so reaching it early adds nothing.
    """
    while True:
        acc = acc + acc[up]
        nxt = up[up]
        if np.array_equal(nxt, up):
            return acc
        up = nxt


def _below(pred: npt.NDArray[np.int32], cut: BoolArray) -> BoolArray:
    """Nodes whose tree path from the root runs through a ``cut`` node (cut ones included)."""
    _, up = _up_pointers(pred)
    acc = cut.ravel().copy()
    while True:
        acc |= acc[up]
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt
    out: BoolArray = acc.reshape(pred.shape)
    return out


def repair(
    trees: Trees, comp: Compiled, changed: BoolArray, head: IntArray, length_m: FloatArray
) -> tuple[Trees, IntArray, int]:
    """The trees after the ``changed`` edges became slower or closed (``comp``: new graph).

    ``head`` is the head node of every edge, ``length_m`` its length.

    A node whose tree path avoids every changed edge keeps its distance (a
    path can only have become slower). Every other node hangs below a
    changed tree edge; its new distance is the best way into its affected
    part from an unaffected node, then through the part: one multi-source
    Dijkstra on the affected parts of all trees, kept apart as the blocks of
    one block-diagonal graph, each block with its own super-source.

    Returns the new trees, the indices of the trees that changed, and how
    many (tree, node) labels were searched.
    """
    n = trees.pred.shape[1]
    # A changed edge is in a tree when it is the edge into its head there.
    ce = np.flatnonzero(changed)
    heads = head[ce]
    on = trees.pe[:, heads] == ce[None, :]
    hit = np.flatnonzero(on.any(axis=1))
    if hit.size == 0:
        return trees, hit, 0
    cut = np.zeros((hit.size, n), dtype=bool)
    t_on, k_on = np.nonzero(on[hit])
    cut[t_on, heads[k_on]] = True
    pred_h = trees.pred[hit]
    dist_h = trees.dist[hit]
    aff = _below(pred_h, cut)
    flat_aff = np.flatnonzero(aff.ravel())
    m = flat_aff.shape[0]
    if m > _REGROW_SHARE * hit.size * n:
        # Most of these trees hang below a changed edge: growing them anew is cheaper.
        fresh = grow(comp, trees.roots[hit], length_m)
        dist, pred, pe_new, length = (
            trees.dist.copy(),
            trees.pred.copy(),
            trees.pe.copy(),
            trees.length.copy(),
        )
        dist[hit], pred[hit], pe_new[hit], length[hit] = (
            fresh.dist,
            fresh.pred,
            fresh.pe,
            fresh.length,
        )
        regrown = Trees(roots=trees.roots, dist=dist, pred=pred, pe=pe_new, length=length)
        return regrown, hit, hit.size * n
    tree_of = flat_aff // n
    node_of = flat_aff % n
    label = np.full(hit.size * n, -1, dtype=np.int64)
    label[flat_aff] = np.arange(m)

    # Every edge into an affected node, from the new graph.
    back = comp.transposed()
    start = back.indptr[node_of]
    count = back.indptr[node_of + 1] - start
    owner = np.repeat(np.arange(m), count)
    offset = np.arange(owner.shape[0]) - np.repeat(np.cumsum(count) - count, count)
    pos = start[owner] + offset
    src = back.indices[pos].astype(np.int64)
    w = back.data[pos]
    src_label = label[tree_of[owner] * n + src]
    inside = src_label >= 0
    # Edges within the affected part of the same tree.
    r_in, c_in, w_in = src_label[inside], owner[inside], w[inside]
    # Ways in from an unaffected node of the same tree: distance there plus the edge.
    outside = ~inside
    entry = dist_h[tree_of[owner[outside]], src[outside]] + w[outside]
    finite = np.isfinite(entry)
    o_node, o_src, entry = owner[outside][finite], src[outside][finite], entry[finite]
    best = np.lexsort((entry, o_node))
    first = np.ones(best.shape[0], dtype=bool)
    first[1:] = o_node[best][1:] != o_node[best][:-1]
    best = best[first]
    b_node, b_src, b_entry = o_node[best], o_src[best], entry[best]
    super_of = m + tree_of[b_node]
    size = m + hit.size
    g = sp.csr_array(
        (
            np.concatenate([w_in, b_entry]),
            (np.concatenate([r_in, super_of]), np.concatenate([c_in, b_node])),
        ),
        shape=(size, size),
    )
    d, p, _ = csgraph.dijkstra(
        g, directed=True, indices=np.arange(m, size), min_only=True, return_predecessors=True
    )

    dist = trees.dist.copy()
    pred = trees.pred.copy()
    pe_new = trees.pe.copy()
    rows = hit[tree_of]
    dist[rows, node_of] = d[:m]
    parent = np.full(m, -1, dtype=np.int64)
    pp = p[:m].astype(np.int64)
    from_inside = (pp >= 0) & (pp < m)
    parent[from_inside] = node_of[pp[from_inside]]
    entry_src = np.full(m, -1, dtype=np.int64)
    entry_src[b_node] = b_src
    from_super = pp >= m
    parent[from_super] = entry_src[from_super]
    reached = parent >= 0
    edge = np.full(m, -1, dtype=np.int64)
    edge[reached] = comp.edge_of(parent[reached], node_of[reached])
    pred[rows, node_of] = parent
    pe_new[rows, node_of] = edge
    # Metres along the new paths: doubling over the affected labels only, each
    # chain ending on the unaffected node it entered from (whose length holds).
    seg = np.where(reached, length_m[np.maximum(edge, 0)], 0.0)
    base = np.zeros(m + 1)
    up = np.full(m + 1, m, dtype=np.int64)  # label m: a zero sink
    up[:m][from_inside] = pp[from_inside]
    enter = from_super & reached
    seg[enter] += trees.length[rows[enter], parent[enter]]
    base[:m] = seg
    length = trees.length.copy()
    length[rows, node_of] = np.where(reached, _sum_up(up, base)[:m], np.inf)
    new = Trees(roots=trees.roots, dist=dist, pred=pred, pe=pe_new, length=length)
    return new, hit, m


def tree_use(
    pred: npt.NDArray[np.int32], pe: npt.NDArray[np.int32], ends: IntArray
) -> tuple[IntArray, IntArray]:
    """(tree, edge) pairs of the edges on the tree paths from each root to ``ends``.

    Walks up from all ends of all trees at once and stops where another walk
    has already been, so each tree edge is visited once.
    """
    k, n = pred.shape
    seen = np.zeros(k * n, dtype=bool)
    owner = np.zeros(k * n, dtype=np.int64)  # scratch: drops repeats without sorting
    cur = (np.arange(k)[:, None] * n + ends[None, :]).ravel()
    seen[cur] = True
    flat_pred = pred.ravel().astype(np.int64)
    flat_pe = pe.ravel().astype(np.int64)
    rec_t: list[IntArray] = []
    rec_e: list[IntArray] = []
    while cur.size:
        e = flat_pe[cur]
        ok = e >= 0
        cur, e = cur[ok], e[ok]
        rec_t.append(cur // n)
        rec_e.append(e)
        nxt = (cur // n) * n + flat_pred[cur]
        nxt = nxt[~seen[nxt]]
        owner[nxt] = np.arange(nxt.shape[0])
        nxt = nxt[owner[nxt] == np.arange(nxt.shape[0])]
        seen[nxt] = True
        cur = nxt
    if not rec_t:
        z = np.zeros(0, dtype=np.int64)
        return z, z
    return np.concatenate(rec_t), np.concatenate(rec_e)


def use_matrix(rows: IntArray, edges: IntArray, n_rows: int, n_edges: int) -> sp.csr_array:
    """The 0/1 matrix with a 1 at each (row, edge), duplicates merged."""
    keys = np.unique(rows * n_edges + edges)
    r, e = np.divmod(keys, n_edges)
    data = np.ones(keys.shape[0], dtype=np.float32)
    return sp.csr_array((data, (r, e)), shape=(n_rows, n_edges))
