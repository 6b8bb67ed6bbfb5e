"""Hostile and edge inputs to ``aiguilleur routes``: one line, the truth, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "aiguilleur" / "data" / "routing"


# -- no orphans ------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (a /proc scan: no psutil)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie is dead


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_killed_solve_leaves_no_search_worker_behind(sig: signal.Signals) -> None:
    if not sys.platform.startswith("linux"):  # pragma: no cover
        pytest.skip("reads /proc")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiguilleur.cli",
            "routes",
            "solve",
            str(EXAMPLES / "monaco_fuel.json"),
            "--workers",
            "2",
            "--time-limit",
            "60",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        workers: list[int] = []
        t_end = time.monotonic() + 20
        while time.monotonic() < t_end and len(workers) < 2:
            time.sleep(0.1)
            assert proc.poll() is None, "routes solve ended before its workers started"
            workers = _children(proc.pid)
        assert len(workers) >= 2, workers
        time.sleep(0.3)  # the workers are searching
        workers = _children(proc.pid)
        proc.send_signal(sig)
        code = proc.wait(timeout=5)
        if sig == signal.SIGINT:
            assert code == 130
        t_end = time.monotonic() + 3.0
        while time.monotonic() < t_end and any(_alive(w) for w in workers):
            time.sleep(0.05)
        survivors = [w for w in workers if _alive(w)]
        assert not survivors, f"search workers outlived their parent: {survivors}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
