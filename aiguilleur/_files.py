"""Writing files so that a failure never leaves a half-written one behind (private)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = [
    "MAX_INPUT_BYTES",
    "atomic_write_bytes",
    "check_input_file",
    "check_output_dir",
    "check_output_file",
    "read_input_bytes",
    "read_input_text",
]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place.

    Raises :class:`OSError` as the file system reports it; the temporary file is
    removed on any failure. A folder, device or pipe at ``path`` is never replaced
    (:class:`~aiguilleur.errors.ValidationError`).
    """
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        # renaming over a device, pipe or folder would replace it (as root: /dev/full)
        from aiguilleur.errors import ValidationError

        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise ValidationError(f"{path}: is {kind}; refusing to replace it")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report or case is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- reading input files with a bound ---------------------------------------------------

#: Default ceiling on an input file's size. The largest bundled or benchmark input
#: (PGLib-OPF case13659, 9 MB; a road extract of a region) is far below it; a device
#: such as /dev/zero or a mistaken multi-gigabyte file is refused before it is read.
MAX_INPUT_BYTES = 512 * 1024 * 1024


def check_input_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int | None = MAX_INPUT_BYTES,
    folder_ok: bool = False,
) -> int:
    """Check that ``path`` is a regular file of at most ``max_bytes``; returns its size.

    Refuses what is not a regular file (a folder unless ``folder_ok``, a device, a
    pipe named as a file) and a file larger than the bound (``None``: no bound, for
    inputs read as a stream); a missing or unreadable file is a
    :class:`~aiguilleur.errors.CaseFormatError` naming the path.
    """
    import stat

    from aiguilleur.errors import CaseFormatError

    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise CaseFormatError("no such file", str(p)) from None
    except OSError as e:
        raise CaseFormatError(f"cannot read ({e.strerror or e})", str(p)) from None
    if stat.S_ISDIR(st.st_mode):
        if folder_ok:
            return 0
        raise CaseFormatError("is a folder, not a regular file", str(p))
    if not stat.S_ISREG(st.st_mode):
        raise CaseFormatError("is not a regular file (a device, pipe or socket)", str(p))
    if max_bytes is not None and st.st_size > max_bytes:
        raise CaseFormatError(
            f"{st.st_size:,} bytes, more than the {max_bytes:,} allowed for this input", str(p)
        )
    return int(st.st_size)


def read_input_bytes(path: str | os.PathLike[str], *, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """Read a regular file of at most ``max_bytes``, or raise a one-line error.

    The checks of :func:`check_input_file`, then the bound again while reading (the
    size of a growing file can change).
    """
    from aiguilleur.errors import CaseFormatError

    p = Path(path)
    check_input_file(p, max_bytes=max_bytes)
    try:
        with open(p, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as e:
        raise CaseFormatError(f"cannot read ({e.strerror or e})", str(p)) from None
    if len(data) > max_bytes:
        raise CaseFormatError(f"more than the {max_bytes:,} bytes allowed for this input", str(p))
    return data


def read_input_text(
    path: str | os.PathLike[str],
    *,
    encoding: str = "utf-8",
    max_bytes: int = MAX_INPUT_BYTES,
) -> str:
    """:func:`read_input_bytes` decoded as text; a binary file is one error naming its line."""
    from aiguilleur.errors import CaseFormatError

    data = read_input_bytes(path, max_bytes=max_bytes)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CaseFormatError(
            f"not {encoding} text (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "is this a binary or compressed file?",
            str(path),
            line,
        ) from None


# -- output locations, checked before any work starts ------------------------------------


def check_output_file(path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Check that ``path`` can receive an output file, before the work that makes it.

    The folder must exist; ``path`` must not be a folder; an existing file is
    replaced only with ``force``. Raises :class:`~aiguilleur.errors.ValidationError`
    with one line saying what to do.
    """
    from aiguilleur.errors import ValidationError

    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ValidationError(f"{p}: the folder {parent} does not exist")
    if p.is_dir():
        raise ValidationError(f"{p}: is a folder; give a file name")
    if p.exists() and not p.is_file():
        raise ValidationError(f"{p}: is not a regular file (a device, pipe or socket)")
    if p.exists() and not force:
        raise ValidationError(f"{p}: already exists; pass --force to replace it")
    if not os.access(parent, os.W_OK):
        raise ValidationError(f"{p}: the folder {parent} is not writable")
    return p


def check_output_dir(path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Check that ``path`` can receive an output folder (created if missing).

    An existing, non-empty folder is written into only with ``force``; a file of
    that name is refused. Raises :class:`~aiguilleur.errors.ValidationError`.
    """
    from aiguilleur.errors import ValidationError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValidationError(f"{p}: is a file, not a folder; give another name")
    parent = p.parent if str(p.parent) else Path(".")
    if not p.exists() and not parent.is_dir():
        raise ValidationError(f"{p}: the folder {parent} does not exist")
    if p.is_dir() and any(p.iterdir()) and not force:
        raise ValidationError(f"{p}: folder is not empty; pass --force to write into it")
    return p
