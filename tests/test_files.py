"""The shared input and output checks of aiguilleur._files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aiguilleur._files import (
    atomic_write_bytes,
    check_output_dir,
    check_output_file,
    read_input_bytes,
    read_input_text,
)
from aiguilleur.errors import CaseFormatError, ValidationError


def test_reading_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(CaseFormatError, match="is a folder"):
        read_input_bytes(tmp_path)
    with pytest.raises(CaseFormatError, match="no such file"):
        read_input_bytes(tmp_path / "none")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # a reader that opened it would wait for ever
    with pytest.raises(CaseFormatError, match="not a regular file"):
        read_input_bytes(fifo)


def test_reading_is_bounded_and_binary_is_named(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    p.write_bytes(b"a\nb\n\xff\x00")
    with pytest.raises(CaseFormatError, match="more than the 4 "):
        read_input_bytes(p, max_bytes=4)
    assert read_input_bytes(p, max_bytes=6) == b"a\nb\n\xff\x00"
    with pytest.raises(CaseFormatError, match=r"f\.txt:3: not utf-8 text \(byte 0xff"):
        read_input_text(p)


def test_output_file_checks_come_before_the_work(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        check_output_file(tmp_path / "no" / "x.json")
    with pytest.raises(ValidationError, match="is a folder"):
        check_output_file(tmp_path)
    f = tmp_path / "x.json"
    assert check_output_file(f) == f
    f.write_text("old")
    with pytest.raises(ValidationError, match="pass --force"):
        check_output_file(f)
    assert check_output_file(f, force=True) == f
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for force in (False, True):
        with pytest.raises(ValidationError, match="not a regular file"):
            check_output_file(fifo, force=force)


def test_output_dir_checks(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path / "new") == tmp_path / "new"
    with pytest.raises(ValidationError, match="does not exist"):
        check_output_dir(tmp_path / "a" / "b")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "index.html").write_text("x")
    with pytest.raises(ValidationError, match="not empty"):
        check_output_dir(tmp_path / "full")
    assert check_output_dir(tmp_path / "full", force=True) == tmp_path / "full"
    with pytest.raises(ValidationError, match="is a file"):
        check_output_dir(tmp_path / "full" / "index.html")


def test_atomic_write_never_replaces_a_pipe_or_folder(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValidationError, match="not a regular file"):
        atomic_write_bytes(fifo, b"x")
    assert fifo.is_fifo()
    with pytest.raises(ValidationError, match="a folder"):
        atomic_write_bytes(tmp_path, b"x")
    f = tmp_path / "ok.txt"
    atomic_write_bytes(f, b"one")
    atomic_write_bytes(f, b"two")
    assert f.read_bytes() == b"two"
    assert not list(tmp_path.glob(".*.tmp"))
