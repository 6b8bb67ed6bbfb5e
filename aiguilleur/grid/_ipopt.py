"""IPOPT through its C interface, with numpy callbacks (no automatic differentiation).

The IPOPT library is the one the ``casadi`` wheel ships (IPOPT 3.14 with
MUMPS); its C entry points (``CreateIpoptProblem``, ``IpoptSolve``, ...) are
called through :mod:`ctypes`. Compared with casadi's ``nlpsol`` over
``Callback`` objects this saves casadi's per-evaluation dispatch and its
function construction, about 10-15 % of a small AC-OPF. Where the library
cannot be found or loaded, :func:`available` is false and the caller falls
back to casadi.

Conventions follow casadi's so that both paths return the same values: one
multiplier per variable ``lam_x = z_U - z_L`` (positive at an upper bound),
constraint multipliers as IPOPT reports them, infinite bounds as ``inf``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# IPOPT's ApplicationReturnStatus, by value
RETURN_STATUS: dict[int, str] = {
    0: "Solve_Succeeded",
    1: "Solved_To_Acceptable_Level",
    2: "Infeasible_Problem_Detected",
    3: "Search_Direction_Becomes_Too_Small",
    4: "Diverging_Iterates",
    5: "User_Requested_Stop",
    6: "Feasible_Point_Found",
    -1: "Maximum_Iterations_Exceeded",
    -2: "Restoration_Failed",
    -3: "Error_In_Step_Computation",
    -4: "Maximum_CpuTime_Exceeded",
    -5: "Maximum_WallTime_Exceeded",
    -10: "Not_Enough_Degrees_Of_Freedom",
    -11: "Invalid_Problem_Definition",
    -12: "Invalid_Option",
    -13: "Invalid_Number_Detected",
    -100: "Unrecoverable_Exception",
    -101: "NonIpopt_Exception_Thrown",
    -102: "Insufficient_Memory",
    -199: "Internal_Error",
}

# IPOPT reads bounds at or beyond 1e19 as infinite (nlp_lower/upper_bound_inf)
_INF = 1e20

_p = ctypes.c_void_p
_i = ctypes.c_int
_d = ctypes.c_double
_b = ctypes.c_bool
EVAL_F = ctypes.CFUNCTYPE(_b, _i, _p, _b, _p, _p)
EVAL_GRAD_F = ctypes.CFUNCTYPE(_b, _i, _p, _b, _p, _p)
EVAL_G = ctypes.CFUNCTYPE(_b, _i, _p, _b, _i, _p, _p)
EVAL_JAC_G = ctypes.CFUNCTYPE(_b, _i, _p, _b, _i, _i, _p, _p, _p, _p)
EVAL_H = ctypes.CFUNCTYPE(_b, _i, _p, _b, _d, _i, _p, _b, _i, _p, _p, _p, _p)
INTERMEDIATE = ctypes.CFUNCTYPE(_b, _i, _i, _d, _d, _d, _d, _d, _d, _d, _d, _i, _p)


def _library_names() -> tuple[str, ...]:
    if sys.platform == "darwin":
        return ("libipopt.3.dylib", "libipopt.dylib")
    if sys.platform == "win32":
        return ("libipopt-3.dll", "ipopt-3.dll", "libipopt.dll")
    return ("libipopt.so.3", "libipopt.so")


_LIB: list[Any] = []  # [library] once loaded, [None] when it cannot be


def _load() -> Any:
    if _LIB:
        return _LIB[0]
    lib = None
    try:
        import casadi

        folder = Path(casadi.__file__).resolve().parent
        for name in _library_names():
            if (folder / name).is_file():
                lib = ctypes.CDLL(str(folder / name))
                break
        if lib is not None:
            lib.CreateIpoptProblem.restype = _p
            lib.CreateIpoptProblem.argtypes = [
                _i, _p, _p, _i, _p, _p, _i, _i, _i,
                EVAL_F, EVAL_G, EVAL_GRAD_F, EVAL_JAC_G, EVAL_H,
            ]  # fmt: skip
            lib.FreeIpoptProblem.restype = None
            lib.FreeIpoptProblem.argtypes = [_p]
            lib.AddIpoptStrOption.restype = _b
            lib.AddIpoptStrOption.argtypes = [_p, ctypes.c_char_p, ctypes.c_char_p]
            lib.AddIpoptNumOption.restype = _b
            lib.AddIpoptNumOption.argtypes = [_p, ctypes.c_char_p, _d]
            lib.AddIpoptIntOption.restype = _b
            lib.AddIpoptIntOption.argtypes = [_p, ctypes.c_char_p, _i]
            lib.SetIntermediateCallback.restype = _b
            lib.SetIntermediateCallback.argtypes = [_p, INTERMEDIATE]
            lib.IpoptSolve.restype = _i
            lib.IpoptSolve.argtypes = [_p, _p, _p, _p, _p, _p, _p, _p]
    except (ImportError, OSError, AttributeError):
        lib = None
    _LIB.append(lib)
    return lib


def available() -> bool:
    """Whether IPOPT's C interface could be loaded from the casadi wheel."""
    return _load() is not None


@dataclass
class Problem:
    """An NLP in IPOPT's terms: bounds, sparsity (0-based triplets) and numpy callbacks.

    ``hess_rows``/``hess_cols`` give the lower triangle. The callbacks take
    read-only views of IPOPT's vectors and return arrays: ``f(x) -> float``,
    ``grad(x)``, ``g(x)``, ``jac(x)`` (values in the triplet order),
    ``hess(x, obj_factor, lam)``.
    """

    lbx: FloatArray
    ubx: FloatArray
    lbg: FloatArray
    ubg: FloatArray
    jac_rows: IntArray
    jac_cols: IntArray
    hess_rows: IntArray
    hess_cols: IntArray
    f: Callable[[FloatArray], float]
    grad: Callable[[FloatArray], FloatArray]
    g: Callable[[FloatArray], FloatArray]
    jac: Callable[[FloatArray], FloatArray]
    hess: Callable[[FloatArray, float, FloatArray], FloatArray]


@dataclass
class Solution:
    status: str
    iterations: int
    x: FloatArray
    lam_g: FloatArray
    lam_x: FloatArray
    error: BaseException | None  # raised inside a callback, if any


class OptionError(ValueError):
    """IPOPT refused an option name or value."""


def _set_options(lib: Any, handle: int, options: Mapping[str, str | int | float]) -> None:
    """Set IPOPT options; a refused one raises :class:`OptionError` with IPOPT's reason.

    IPOPT prints its complaint to the process's standard output before any
    print level applies: the file descriptor is pointed at a temporary file
    meanwhile, and the first line of what it wrote becomes the error message.
    """
    sys.stdout.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(1)
        try:
            os.dup2(sink.fileno(), 1)
            refused = None
            for key, value in options.items():
                k = key.encode()
                if isinstance(value, str):
                    ok = lib.AddIpoptStrOption(handle, k, value.encode())
                elif isinstance(value, int):
                    ok = lib.AddIpoptIntOption(handle, k, value)
                else:
                    ok = lib.AddIpoptNumOption(handle, k, float(value))
                if not ok:
                    refused = f"{key}={value!r}"
                    break
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        if refused is not None:
            sink.seek(0)
            said = sink.read(4096).decode(errors="replace").strip().splitlines()
            reason = said[0].strip() if said else "refused"
            raise OptionError(f"{refused}: {reason}")


def _finite(a: FloatArray) -> FloatArray:
    out: FloatArray = np.ascontiguousarray(np.clip(a, -_INF, _INF), dtype=np.float64)
    return out


def solve(
    prob: Problem,
    x0: FloatArray,
    options: Mapping[str, str | int | float],
    lam_g0: FloatArray | None = None,
    lam_x0: FloatArray | None = None,
) -> Solution:
    """Run IPOPT once. Raises :class:`OptionError` for a refused option."""
    lib = _load()
    if lib is None:  # pragma: no cover - callers check available() first
        raise RuntimeError("IPOPT's C interface is not available")
    n, m = int(prob.lbx.size), int(prob.lbg.size)
    vec_n = ctypes.c_double * n
    vec_m = ctypes.c_double * m
    nj, nh = int(prob.jac_rows.size), int(prob.hess_rows.size)
    vec_nj = ctypes.c_double * max(nj, 1)
    vec_nh = ctypes.c_double * max(nh, 1)
    jr = prob.jac_rows.astype(np.int32)
    jc = prob.jac_cols.astype(np.int32)
    hr = prob.hess_rows.astype(np.int32)
    hc = prob.hess_cols.astype(np.int32)
    errors: list[BaseException] = []
    iters = [0]

    def view(addr: int, typ: Any) -> FloatArray:
        return np.frombuffer(typ.from_address(addr), dtype=np.float64)

    def guarded(fn: Callable[..., None]) -> Callable[..., bool]:
        """A callback for IPOPT: True when ``fn`` returns, False (and the error kept)
        when it raises; IPOPT must never see a Python exception."""

        def call(*args: Any) -> bool:
            try:
                fn(*args)
                return True
            except BaseException as e:
                errors.append(e)
                return False

        return call

    def eval_f(_n: int, x: int, _new: bool, out: int, _u: Any) -> None:
        _d.from_address(out).value = float(prob.f(view(x, vec_n)))

    def eval_grad(_n: int, x: int, _new: bool, out: int, _u: Any) -> None:
        view(out, vec_n)[:] = prob.grad(view(x, vec_n))

    def eval_g(_n: int, x: int, _new: bool, _m: int, out: int, _u: Any) -> None:
        if m:
            view(out, vec_m)[:] = prob.g(view(x, vec_n))

    def eval_jac(
        _n: int, x: int, _new: bool, _m: int, _nj: int, rows: int, cols: int, vals: int, _u: Any
    ) -> None:
        if vals is None:  # first call: the structure
            ctypes.memmove(rows, jr.ctypes.data, 4 * nj)
            ctypes.memmove(cols, jc.ctypes.data, 4 * nj)
        elif nj:
            view(vals, vec_nj)[:nj] = prob.jac(view(x, vec_n))

    def eval_h(
        _n: int,
        x: int,
        _new: bool,
        obj_factor: float,
        _m: int,
        lam: int,
        _new_lam: bool,
        _nh: int,
        rows: int,
        cols: int,
        vals: int,
        _u: Any,
    ) -> None:
        if vals is None:
            ctypes.memmove(rows, hr.ctypes.data, 4 * nh)
            ctypes.memmove(cols, hc.ctypes.data, 4 * nh)
        elif nh:
            lam_v = view(lam, vec_m) if m else np.zeros(0)
            view(vals, vec_nh)[:nh] = prob.hess(view(x, vec_n), obj_factor, lam_v)

    def intermediate(
        _mode: int,
        it: int,
        _o: float,
        _p: float,
        _du: float,
        _mu: float,
        _dn: float,
        _r: float,
        _ad: float,
        _ap: float,
        _ls: int,
        _u: Any,
    ) -> bool:
        iters[0] = it
        return True

    # the ctypes wrappers must outlive IpoptSolve
    cbs = (
        EVAL_F(guarded(eval_f)),
        EVAL_G(guarded(eval_g)),
        EVAL_GRAD_F(guarded(eval_grad)),
        EVAL_JAC_G(guarded(eval_jac)),
        EVAL_H(guarded(eval_h)),
    )
    inter = INTERMEDIATE(intermediate)
    lbx, ubx = _finite(prob.lbx), _finite(prob.ubx)
    lbg, ubg = _finite(prob.lbg), _finite(prob.ubg)
    handle = lib.CreateIpoptProblem(
        n,
        lbx.ctypes.data,
        ubx.ctypes.data,
        m,
        lbg.ctypes.data,
        ubg.ctypes.data,
        nj,
        nh,
        0,  # C-style (0-based) indices
        *cbs,
    )
    if not handle:
        raise RuntimeError("IPOPT could not create the problem (inconsistent bounds or sizes)")
    try:
        _set_options(lib, handle, options)
        lib.SetIntermediateCallback(handle, inter)
        x = np.array(x0, dtype=np.float64, copy=True)
        g = np.zeros(m)
        obj = np.zeros(1)
        lam_g = np.zeros(m) if lam_g0 is None else np.array(lam_g0, dtype=np.float64)
        lx = np.zeros(n) if lam_x0 is None else np.asarray(lam_x0, dtype=np.float64)
        z_l = np.ascontiguousarray(np.maximum(-lx, 0.0))
        z_u = np.ascontiguousarray(np.maximum(lx, 0.0))
        code = lib.IpoptSolve(
            handle,
            x.ctypes.data,
            g.ctypes.data if m else None,
            obj.ctypes.data,
            lam_g.ctypes.data if m else None,
            z_l.ctypes.data,
            z_u.ctypes.data,
            None,
        )
    finally:
        lib.FreeIpoptProblem(handle)
    del cbs, inter
    return Solution(
        status=RETURN_STATUS.get(int(code), f"Unknown_Return_Status_{int(code)}"),
        iterations=iters[0],
        x=x,
        lam_g=lam_g,
        lam_x=z_u - z_l,
        error=errors[0] if errors else None,
    )
