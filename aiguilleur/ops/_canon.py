"""Canonical bytes of plain values: the snapshot format and the input of the state hash.

A plain value is ``None``, ``bool``, ``int``, ``float``, ``str``, a list or
tuple of plain values, a dict with string keys, or a numpy array of a
numeric or boolean dtype. :func:`dumps` writes one JSON header (keys sorted,
floats by ``repr``, arrays replaced by references) followed by the arrays'
raw little-endian bytes, so that equal values give equal bytes on every run;
:func:`loads` reads it back. No pickle: a snapshot from an untrusted store
cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from typing import Any

import numpy as np

from aiguilleur.errors import ValidationError

__all__ = ["digest", "dumps", "json_safe", "loads"]

_MAGIC = b"AGLR1\n"
_ALLOWED = {"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8"}


def _plain(x: Any, arrays: list[bytes], offset: list[int]) -> Any:
    if x is None or isinstance(x, bool | str):
        return x
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        v = float(x)
        if math.isfinite(v):
            return v
        return {"$f": "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")}
    if isinstance(x, np.ndarray):
        a = np.ascontiguousarray(x)
        code = a.dtype.newbyteorder("<").str[1:]
        if code not in _ALLOWED:
            raise ValidationError(f"canonical bytes: unsupported array dtype {a.dtype}")
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        ref = {"$nd": [code, list(a.shape), offset[0], len(data)]}
        arrays.append(data)
        offset[0] += len(data)
        return ref
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if not isinstance(k, str):
                raise ValidationError(f"canonical bytes: dict key {k!r} is not a string")
            if k.startswith("$"):
                raise ValidationError(f"canonical bytes: dict key {k!r} is reserved")
            out[k] = _plain(v, arrays, offset)
        return out
    if isinstance(x, list | tuple):
        return [_plain(v, arrays, offset) for v in x]
    raise ValidationError(f"canonical bytes: cannot encode a {type(x).__name__}")


def dumps(value: Any) -> bytes:
    """The canonical bytes of a plain value."""
    arrays: list[bytes] = []
    head = json.dumps(
        _plain(value, arrays, [0]), sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")
    return b"".join([_MAGIC, struct.pack("<Q", len(head)), head, *arrays])


def _back(x: Any, body: memoryview) -> Any:
    if isinstance(x, dict):
        if "$nd" in x:
            code, shape, off, n = x["$nd"]
            if code not in _ALLOWED:
                raise ValidationError(f"snapshot: unsupported array dtype {code!r}")
            if off < 0 or n < 0 or off + n > len(body):
                raise ValidationError("snapshot: an array lies outside the data")
            a = np.frombuffer(body[off : off + n], dtype=np.dtype("<" + code)).copy()
            return a.reshape(tuple(int(s) for s in shape))
        if "$f" in x:
            return float(x["$f"])
        return {k: _back(v, body) for k, v in x.items()}
    if isinstance(x, list):
        return [_back(v, body) for v in x]
    return x


def loads(data: bytes) -> Any:
    """Read bytes written by :func:`dumps` (arrays come back writable, native order)."""
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 8:
        raise ValidationError("snapshot: not an aiguilleur snapshot (bad header)")
    (n,) = struct.unpack_from("<Q", data, len(_MAGIC))
    start = len(_MAGIC) + 8
    if start + n > len(data):
        raise ValidationError("snapshot: truncated")
    try:
        head = json.loads(data[start : start + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValidationError("snapshot: corrupt header") from None
    return _back(head, memoryview(data)[start + n :])


def digest(data: bytes) -> str:
    """SHA-256 of bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def json_safe(x: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays to Python, NaN and infinities to ``None``."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return [json_safe(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
