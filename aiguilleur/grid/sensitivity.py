"""Linear sensitivities of the DC model: PTDF and LODF.

``PTDF[l, i]`` is the change of flow on branch ``l`` (MW) for 1 MW injected
at bus ``i`` and withdrawn at the reference bus of its island. ``LODF[l, k]``
is the share of branch ``k``'s pre-outage flow that moves onto branch ``l``
when ``k`` trips. Outages that island the grid (bridges) have no LODF: they
are detected and reported, and their columns are NaN, never a division by
zero.

The DC model is compiled once (:class:`DCModel`: incidence, susceptances and
a sparse LU of the reduced susceptance matrix) and reused for every column
block, so that large grids are handled blockwise without forming the
``n_branch x n_branch`` matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from aiguilleur.errors import ValidationError
from aiguilleur.grid._checks import check_network
from aiguilleur.grid._compile import (
    BridgeTree,
    bridge_tree,
    dc_susceptance,
    find_islands,
    incidence,
)
from aiguilleur.grid._trisolve import LevelLU
from aiguilleur.grid.network import Network

__all__ = ["DCModel", "bridges", "lodf", "ptdf"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: |1 - H_kk| below this (for a branch that is not a bridge) is treated as singular.
SINGULAR_TOL = 1e-10
#: largest dense matrix (entries) that ptdf() and lodf() build in one piece
DENSE_LIMIT = 60_000_000


@dataclass(frozen=True, eq=False)
class DCModel:
    """The DC model of a network, compiled once per topology.

    Attributes
    ----------
    b
        Series susceptance of each branch in per unit (0 when out of service).
    ref
        Reference bus of each energised island.
    free
        Buses whose angle is an unknown (all energised buses but the references).
    bridge
        True for each in-service branch whose outage splits its island (found
        on the graph, not by a numerical threshold: branches with negative
        reactance, such as series capacitors, make ``1 - H_kk`` take any sign).
    tree
        The depth-first search behind ``bridge``, rooted at the references: what
        each bridge cuts off is read from it.
    """

    net: Network
    b: FloatArray
    a: sp.csr_matrix
    ref: IntArray
    free: IntArray
    lu: LevelLU | None
    bridge: BoolArray
    tree: BridgeTree
    _scratch: dict[str, FloatArray] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, net: Network) -> DCModel:
        """Compile the DC model of ``net`` (in-service branches only)."""
        check_network(net, "DCModel.build")
        isl = find_islands(net)
        b = dc_susceptance(net)
        a = incidence(net)
        energised = isl.label >= 0
        energised[energised] = isl.ref[isl.label[energised]] >= 0
        ref = isl.ref[isl.ref >= 0]
        is_free = energised.copy()
        is_free[ref] = False
        free = np.flatnonzero(is_free).astype(np.int64)
        bbus = (a.T @ sp.diags(b) @ a).tocsc()
        red = bbus[free][:, free].tocsc()
        lu = LevelLU(red) if free.size else None
        on = net.branch.in_service == 1
        bt = bridge_tree(net, ref, on)
        return cls(net, b, a.tocsr(), ref.astype(np.int64), free, lu, bt.bridge & on, bt)

    @property
    def n_bus(self) -> int:
        return self.net.n_bus

    @property
    def n_branch(self) -> int:
        return self.net.n_branch

    def _solve(self, rhs: FloatArray) -> FloatArray:
        out = np.zeros((self.n_bus, rhs.shape[1]))
        if self.lu is not None:
            out[self.free] = self.lu.solve(np.ascontiguousarray(rhs[self.free]))
        return out

    @cached_property
    def _bus_in(self) -> IntArray:
        out = np.full(self.n_bus, -1, dtype=np.int64)
        if self.lu is not None:
            out[self.free] = self.lu.in_pos
        return out

    @cached_property
    def bus_row(self) -> IntArray:
        """Row of each bus in the compact angle arrays (references: a zero row)."""
        out = np.full(self.n_bus, self.free.size, dtype=np.int64)
        if self.lu is not None:
            out[self.free] = self.lu.gather_out
        return out

    def angles(self, injections: FloatArray) -> FloatArray:
        """Compact bus angles (rad) for each column of per-unit injections.

        Row ``bus_row[i]`` holds bus ``i`` (references and de-energised buses
        point at a row of zeros).
        """
        y = np.ascontiguousarray(injections[self.free][self._in_order()], dtype=np.float64)
        return self._solve_ordered(y)

    def transfer_angles(self, branches: npt.ArrayLike, reuse: bool = False) -> FloatArray:
        """Compact bus angles (rad) per 1 pu sent from ``f_k`` to ``t_k`` (see :meth:`angles`).

        With ``reuse``, the work arrays of the previous call are recycled: the
        result is then overwritten by the next call with ``reuse`` (for
        blockwise loops that consume each block before asking for the next).
        """
        k = np.asarray(branches, dtype=np.int64)
        if reuse:
            # one extra zero row: references and dead buses point at it
            y = self._buffer("rhs", (self.free.size + 1, k.size))
            y.fill(0.0)
        else:
            y = np.zeros((self.free.size, k.size))
        cols = np.arange(k.size)
        fi = self._bus_in[self.net.branch_from[k]]
        ti = self._bus_in[self.net.branch_to[k]]
        # one entry per (row, column) in each statement, so += is exact
        y[fi[fi >= 0], cols[fi >= 0]] += 1.0
        y[ti[ti >= 0], cols[ti >= 0]] -= 1.0
        if reuse and self.lu is not None:
            out = self._buffer("angles", (self.free.size + 1, k.size))
            res: FloatArray = self.lu.solve_ordered(y, extra_rows=1, out=out)
            return res
        return self._solve_ordered(y)

    def _buffer(self, name: str, shape: tuple[int, int]) -> FloatArray:
        buf = self._scratch.get(name)
        if buf is None or buf.shape != shape:
            buf = np.empty(shape)
            self._scratch[name] = buf
        return buf

    def _in_order(self) -> IntArray:
        assert self.lu is not None
        out: IntArray = self.lu.gather_in
        return out

    def _solve_ordered(self, y: FloatArray) -> FloatArray:
        if self.lu is None:
            return np.zeros((1, y.shape[1]))
        res: FloatArray = self.lu.solve_ordered(y, extra_rows=1)
        return res

    def transfer_columns(self, branches: npt.ArrayLike) -> FloatArray:
        """``H[:, k]``: flow on every branch (pu) per 1 pu sent from ``f_k`` to ``t_k``."""
        k = np.asarray(branches, dtype=np.int64)
        rhs = np.zeros((self.n_bus, k.size))
        cols = np.arange(k.size)
        np.add.at(rhs, (self.net.branch_from[k], cols), 1.0)
        np.add.at(rhs, (self.net.branch_to[k], cols), -1.0)
        theta = self._solve(rhs)
        h: FloatArray = self.b[:, None] * np.asarray(self.a @ theta)
        return h

    def ptdf_columns(self, buses: npt.ArrayLike) -> FloatArray:
        """PTDF columns for the given bus indices (``n_branch x len(buses)``)."""
        i = np.asarray(buses, dtype=np.int64)
        rhs = np.zeros((self.n_bus, i.size))
        rhs[i, np.arange(i.size)] = 1.0
        theta = self._solve(rhs)
        out: FloatArray = self.b[:, None] * np.asarray(self.a @ theta)
        return out

    def lodf_columns(self, branches: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
        """LODF columns for the given outages and a mask of those that island the grid.

        Columns of islanding outages (and of branches already out of service)
        are NaN.
        """
        k = np.asarray(branches, dtype=np.int64)
        h = self.transfer_columns(k)
        hkk = h[k, np.arange(k.size)]
        on = self.b[k] != 0
        bridge = self.bridge[k] | (on & (np.abs(1.0 - hkk) < SINGULAR_TOL))
        denom = np.where(bridge | ~on, np.nan, 1.0 - hkk)
        out = h / denom[None, :]
        out[k, np.arange(k.size)] = np.where(bridge | ~on, np.nan, -1.0)
        return out, bridge

    def blocks(self, branches: npt.ArrayLike, size: int = 512) -> Iterator[IntArray]:
        """Split ``branches`` into blocks of at most ``size`` for blockwise work."""
        k = np.asarray(branches, dtype=np.int64)
        for s in range(0, k.size, size):
            yield k[s : s + size]


def _check_dense(rows: int, cols: int, what: str) -> None:
    if rows * cols > DENSE_LIMIT:
        raise ValidationError(
            f"{what}: a dense {rows} x {cols} matrix is too large; use DCModel.build(net) "
            "and its *_columns() methods blockwise"
        )


def ptdf(net: Network, model: DCModel | None = None) -> FloatArray:
    """The dense PTDF matrix (``n_branch x n_bus``), per unit MW/MW.

    Reference-bus columns are zero; columns of de-energised buses are zero.
    """
    check_network(net, "ptdf")
    if model is not None and not isinstance(model, DCModel):
        raise ValidationError(f"ptdf: model must be a DCModel or None, got {type(model).__name__}")
    m = model or DCModel.build(net)
    _check_dense(net.n_branch, net.n_bus, "ptdf")
    return m.ptdf_columns(np.arange(net.n_bus))


def lodf(net: Network, model: DCModel | None = None) -> FloatArray:
    """The dense LODF matrix (``n_branch x n_branch``).

    Column ``k`` holds the change of flow on every branch per MW of pre-outage
    flow on ``k``; the diagonal is -1. Columns of outages that island the grid
    (see :func:`bridges`) are NaN.
    """
    check_network(net, "lodf")
    if model is not None and not isinstance(model, DCModel):
        raise ValidationError(f"lodf: model must be a DCModel or None, got {type(model).__name__}")
    m = model or DCModel.build(net)
    _check_dense(net.n_branch, net.n_branch, "lodf")
    out, _ = m.lodf_columns(np.arange(net.n_branch))
    return out


def bridges(net: Network, model: DCModel | None = None) -> IntArray:
    """Rows of the in-service branches whose outage splits an island in two."""
    check_network(net, "bridges")
    if model is not None and not isinstance(model, DCModel):
        raise ValidationError(
            f"bridges: model must be a DCModel or None, got {type(model).__name__}"
        )
    m = model or DCModel.build(net)
    return np.flatnonzero(m.bridge).astype(np.int64)
