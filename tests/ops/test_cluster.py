"""The execution seam: every executor gives the same results; lost workers are retried.

The conformance suite runs on the in-process executor, the local process pool
and, where Ray can be imported, a local Ray runtime with two workers; the
day-ahead assessment of case14 is among the work it must reproduce exactly.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aiguilleur.errors import AiguilleurError, ValidationError
from aiguilleur.ops.cluster import (
    Executor,
    LocalExecutor,
    RayExecutor,
    SerialExecutor,
    WorkerLostError,
    batch_size_for,
    make_executor,
)

try:
    import ray  # noqa: F401

    RAY_REASON = ""
except ImportError:  # pragma: no cover - depends on the environment
    RAY_REASON = "Ray is not installed (pip install 'aiguilleur[ray]')"

requires_ray = pytest.mark.skipif(bool(RAY_REASON), reason=RAY_REASON or "Ray present")


# -- work items (module level: shipped to the workers by reference) -------------------------


def weighted_sum(shared: dict[str, Any], item: int) -> tuple[int, float, Any]:
    rng = np.random.default_rng(item)
    x = rng.standard_normal(shared["n"])
    return item, float(x @ shared["w"]), x[:3]


def crash_once(shared: dict[str, Any], item: int) -> int:
    """Kills its worker process the first time it sees the item ``shared['victim']``."""
    flag = Path(shared["dir"]) / f"seen-{item}"
    if item == shared["victim"] and not flag.exists():
        flag.write_text("x")
        os._exit(3)
    return item * 10


def crash_always(shared: None, item: int) -> int:
    if item == 1:
        os._exit(4)
    return item


def nap(shared: float, item: int) -> int:
    time.sleep(shared)
    return item


def refuse(shared: None, item: int) -> int:
    if item == 2:
        raise ValidationError(f"item {item}: refused")
    return item


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local() -> Any:
    ex = LocalExecutor(2)
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def ray_ex() -> Any:
    if RAY_REASON:
        pytest.skip(RAY_REASON)
    ex = RayExecutor("auto", 2)
    yield ex
    ex.close()


def _executors(local: Executor, ray_ex: Executor | None) -> list[Executor]:
    out: list[Executor] = [SerialExecutor(), local]
    if ray_ex is not None:
        out.append(ray_ex)
    return out


SHARED = {"n": 50, "w": np.linspace(-1.0, 1.0, 50)}


def _same(a: Any, b: Any) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x[0] == y[0] and x[1] == y[1]
        np.testing.assert_array_equal(x[2], y[2])


# -- conformance ----------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 3, 20])
def test_local_pool_equals_serial(local: LocalExecutor, batch: int) -> None:
    items = list(range(17))
    ref = SerialExecutor().run(weighted_sum, items, SHARED, batch_size=batch)
    seen: list[int] = []
    got = local.run(
        weighted_sum, items, SHARED, batch_size=batch, on_result=lambda i, r: seen.append(i)
    )
    _same(ref.results, got.results)
    assert sorted(seen) == items  # each result handed back once, as it finished
    assert got.stats.tasks == -(-len(items) // batch)
    assert got.stats.items == len(items) and got.stats.retries == 0
    assert got.stats.workers == 2 and got.stats.max_in_flight == 4


@requires_ray
def test_ray_equals_serial(ray_ex: RayExecutor) -> None:
    items = list(range(11))
    ref = SerialExecutor().run(weighted_sum, items, SHARED, batch_size=2)
    got = ray_ex.run(weighted_sum, items, SHARED, batch_size=2)
    _same(ref.results, got.results)
    assert got.stats.executor == "ray" and got.stats.workers == 2
    # the shared value is put once per version: a second run reuses the object
    again = ray_ex.run(weighted_sum, items, SHARED, batch_size=5)
    _same(ref.results, again.results)
    assert again.stats.ship_s < got.stats.ship_s + 1.0


def test_empty_work(local: LocalExecutor) -> None:
    for ex in (SerialExecutor(), local):
        r = ex.run(weighted_sum, [], SHARED)
        assert r.results == () and r.stats.tasks == 0


def test_a_dead_worker_is_retried_and_reported(local: LocalExecutor, tmp_path: Path) -> None:
    shared = {"dir": str(tmp_path), "victim": 3}
    r = local.run(crash_once, list(range(8)), shared)
    assert r.results == tuple(i * 10 for i in range(8))
    assert r.stats.retries >= 1
    assert any("died" in f for f in r.stats.worker_failures)
    # and the pool works afterwards
    assert local.run(weighted_sum, [1], SHARED).results[0][0] == 1


def test_a_task_that_always_kills_its_worker_gives_up(tmp_path: Path) -> None:
    with LocalExecutor(2, max_retries=1) as ex, pytest.raises(WorkerLostError, match="giving up"):
        ex.run(crash_always, [0, 1, 2], None)


@requires_ray
def test_ray_retries_a_dead_worker(ray_ex: RayExecutor, tmp_path: Path) -> None:
    shared = {"dir": str(tmp_path), "victim": 2}
    r = ray_ex.run(crash_once, list(range(5)), shared)
    assert r.results == tuple(i * 10 for i in range(5))
    assert r.stats.retries == 1 and len(r.stats.worker_failures) == 1


def test_errors_of_the_work_are_raised_not_retried(local: LocalExecutor) -> None:
    for ex in (SerialExecutor(), local):
        with pytest.raises(ValidationError, match="item 2: refused"):
            ex.run(refuse, [0, 1, 2, 3], None)


@requires_ray
def test_ray_raises_the_works_own_error(ray_ex: RayExecutor) -> None:
    with pytest.raises(ValidationError, match="item 2: refused"):
        ray_ex.run(refuse, [0, 1, 2, 3], None)


# -- several jobs on one fan-out ----------------------------------------------------------------


def _fanout_case(ex: Executor) -> tuple[dict[int, Any], list[int], Any]:
    """Job A's even results each start a job B of two items, added while A still runs."""
    fan = ex.fanout()
    a = fan.add(weighted_sum, list(range(6)), SHARED)
    later: dict[int, int] = {}
    got: dict[tuple[int, int], Any] = {}
    for k, i, r in fan.results():
        got[(k, i)] = r
        if k == a and i % 2 == 0:
            later[fan.add(weighted_sum, [100 + i, 101 + i], SHARED)] = i
    assert fan.done(a) and all(fan.done(b) for b in later)
    assert len(got) == 6 + 2 * len(later)
    outs = {i: fan.outputs(b) for b, i in later.items()}
    return outs, sorted(later.values()), fan.stats(a, *later)


def test_jobs_added_while_others_run_match_serial(local: LocalExecutor, request: Any) -> None:
    ray_ex = None if RAY_REASON else request.getfixturevalue("ray_ex")
    ref_outs, ref_keys, ref_stats = _fanout_case(SerialExecutor())
    assert ref_keys == [0, 2, 4]
    assert ref_stats.items == 12 and ref_stats.tasks == 12
    for ex in _executors(local, ray_ex)[1:]:
        outs, keys, stats = _fanout_case(ex)
        assert keys == ref_keys and stats.items == 12 and stats.retries == 0
        for i in keys:
            _same(outs[i], ref_outs[i])
            # each result is the function of its own item only
            _same(outs[i], SerialExecutor().run(weighted_sum, [100 + i, 101 + i], SHARED).results)


def test_batches_sized_from_the_first_results(local: LocalExecutor) -> None:
    fan = local.fanout()
    # 20 ms a item and 100 ms a task asked: single items until one is timed, then batches
    job = fan.add(nap, list(range(40)), 0.02, batch_size=None, min_task_s=0.1)
    fan.run_all()
    st = fan.stats(job)
    assert fan.outputs(job) == tuple(range(40))
    assert 1 < st.batch_size <= 10 and st.tasks < 20


def test_a_dead_worker_in_a_later_job_is_retried(local: LocalExecutor, tmp_path: Path) -> None:
    # job B is added while job A runs; one of B's tasks kills its worker: the broken pool
    # takes A's running tasks down too, and every task lost is submitted again
    fan = local.fanout()
    a = fan.add(weighted_sum, list(range(6)), SHARED)
    b = -1
    for k, _i, _r in fan.results():
        if k == a and b < 0:
            b = fan.add(crash_once, list(range(5)), {"dir": str(tmp_path), "victim": 2})
    assert fan.outputs(b) == tuple(i * 10 for i in range(5))
    _same(fan.outputs(a), SerialExecutor().run(weighted_sum, list(range(6)), SHARED).results)
    st = fan.stats(a, b)
    assert fan.stats(b).retries >= 1 and any("died" in f for f in st.worker_failures)


def test_stats_need_a_job() -> None:
    with pytest.raises(ValidationError, match="at least one job"):
        SerialExecutor().fanout().stats()


# -- settings and addresses --------------------------------------------------------------------


def test_batch_size_for() -> None:
    assert batch_size_for(0.5) == 1
    assert batch_size_for(0.01) == 10
    assert batch_size_for(0.003) == 34
    assert batch_size_for(0.0) == 1
    assert batch_size_for(float("nan")) == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_batch_size(bad: Any) -> None:
    with pytest.raises(ValidationError, match="batch_size"):
        SerialExecutor().run(weighted_sum, [1], SHARED, batch_size=bad)


def test_bad_worker_count() -> None:
    with pytest.raises(ValidationError, match="workers"):
        LocalExecutor(0)


@pytest.mark.parametrize("address", ["nonsense", "http://x:1", "host:", ":80", "a b:1"])
def test_malformed_ray_address(address: str) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        RayExecutor(address)


@requires_ray
def test_unreachable_ray_address_fails_fast() -> None:
    t = time.perf_counter()
    with pytest.raises(AiguilleurError, match="no Ray cluster answers"):
        RayExecutor("127.0.0.1:1")
    assert time.perf_counter() - t < 30.0


def test_make_executor() -> None:
    assert make_executor(None, 1).kind == "serial"
    ex = make_executor(None, 2)
    try:
        assert ex.kind == "local" and ex.workers == 2
    finally:
        ex.close()


# -- the day-ahead assessment on every executor --------------------------------------------------


def _day_ahead(ex: Executor) -> Any:
    from aiguilleur.data import bundled_case_path
    from aiguilleur.forecast import ForecastSettings, sample_series
    from aiguilleur.grid import read_matpower
    from aiguilleur.ops.dayahead import DayAheadOptions, assess_day_ahead

    fs = ForecastSettings(
        n_estimators=20, median_n_estimators=30, num_leaves=7, median_num_leaves=7,
        calibration_days=30,
    )  # fmt: skip
    opts = DayAheadOptions(forecast=fs, samples=8, scenarios=4, residual_days=20, min_task_s=0.05)
    net = read_matpower(bundled_case_path("case14"))
    return assess_day_ahead(net, sample_series(impute=True), "2014-02-20", opts, executor=ex)


def _comparable(d: dict[str, Any]) -> dict[str, Any]:
    out = dict(d)
    for k in ("wall_s", "stage_s", "tasks", "workers", "executor", "stages", "retries"):
        out.pop(k)
    return out


@pytest.mark.slow
def test_day_ahead_identical_on_every_executor(local: LocalExecutor, request: Any) -> None:
    ray_ex = None if RAY_REASON else request.getfixturevalue("ray_ex")
    results = [_day_ahead(ex) for ex in _executors(local, ray_ex)]
    ref = results[0]
    assert ref.ok and ref.scenarios.count == 4
    for r in results[1:]:
        assert _comparable(r.to_dict()) == _comparable(ref.to_dict())
        np.testing.assert_array_equal(r.overload_probability, ref.overload_probability)
        for a, b in zip(r.outcomes, ref.outcomes, strict=True):
            np.testing.assert_array_equal(a.mc_shed_mw, b.mc_shed_mw)
            np.testing.assert_array_equal(a.max_loading, b.max_loading)
    assert results[1].executor == "local" and results[1].workers == 2
    # on two workers a scenario's hours start while the last commitment still runs (4
    # commitments on 2 workers: the 3rd starts only after a first plan is in)
    st = results[1].stage_s
    assert st["first_point_at"] < st["forecast"] + st["commitment"] and st["overlap"] > 0
    # the forecast: the calibration, the 6 final boosters and the copula's residuals
    assert results[1].stages["forecast"].tasks == 8
    if ray_ex is not None:
        assert results[2].executor == "ray"
