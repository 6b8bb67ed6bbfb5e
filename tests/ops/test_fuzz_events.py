"""Fuzzing every event type through the centre and through ``POST /events``.

Valid events of every type are mutated (a field dropped, replaced by any JSON
value or a hostile one, an unknown field added) and sent to a centre holding
the case14 grid. Each is either stored or refused with one line naming the
field; a refused event never changes the state (its hash), and the API never
answers 5xx.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguilleur.ops import events as ev
from tests.ops.conftest import case14_genesis
from tests.ops.test_events import BASE, EXAMPLES

HOSTILE: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    -1,
    0,
    1e308,
    10**30,
    "",
    "x" * 200_000,
    "\x00",
    "bus:0",
    "branch:99999",
    "gen:-1",
    "2026-01-15T06:00:00",  # a naive time
    "1969-12-31T23:59:59+00:00",
    [1.0] * 200_001,
    {"nested": {"deeper": [{}]}},
    [[[[[[[[[[]]]]]]]]]],
    None,
    True,
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4),
    max_leaves=12,
)
any_value = st.sampled_from(HOSTILE) | json_values


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event of any type, then one to three mutations."""
    t = draw(st.sampled_from(ev.EVENT_TYPES))
    d: dict[str, Any] = {"id": f"f-{draw(st.integers(0, 10**9))}", "type": t, **BASE}
    d.update(json.loads(json.dumps(EXAMPLES[t])))
    for _ in range(draw(st.integers(1, 3))):
        keys = sorted(d)
        how = draw(st.sampled_from(["drop", "set", "add", "nest"]))
        if how == "drop":
            d.pop(draw(st.sampled_from(keys)), None)
        elif how == "set":
            d[draw(st.sampled_from(keys))] = draw(any_value)
        elif how == "add":
            d[draw(st.sampled_from(["extra", "p_mw", "unit", "value_mw", "Id"]))] = draw(any_value)
        else:  # inside a list or mapping field (readings, actions, area, sensors)
            k = draw(st.sampled_from(keys))
            v = d[k]
            if isinstance(v, list) and v and isinstance(v[0], dict):
                inner = dict(v[0])
                inner[draw(st.sampled_from([*sorted(inner), "extra"]))] = draw(any_value)
                d[k] = [inner, *v[1:]]
            elif isinstance(v, dict) and v:
                d[k] = {**v, draw(st.sampled_from([*sorted(v), "extra"])): draw(any_value)}
    return d


@pytest.fixture(scope="module")
def centre() -> Iterator[Any]:
    from aiguilleur.ops.centre import OpsCentre
    from aiguilleur.ops.store import open_store

    c = OpsCentre(open_store("memory://"))
    assert all(r.ok for r in c.ingest([case14_genesis()]))
    yield c
    c.close()


FUZZ = settings(
    max_examples=100,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(mutated())
def test_mutated_events_are_stored_or_refused_naming_the_field(
    centre: Any, doc: dict[str, Any]
) -> None:
    before = centre.state().state_hash
    r = centre.ingest([doc])[0]
    if r.ok:
        return
    err = r.error or ""
    assert err and "\n" not in err and len(err) < 700, err
    assert ":" in err  # "field: what is wrong"
    for leak in ("Traceback", "positional argument", "setting an array element"):
        assert leak not in err
    assert centre.state().state_hash == before


@FUZZ
@given(json_values)
def test_any_json_value_is_refused_in_one_line(centre: Any, value: Any) -> None:
    before = centre.state().state_hash
    for item in (value, json.dumps(value)):
        r = centre.ingest([item])[0]
        if isinstance(value, dict) and r.ok:  # a random mapping is never a whole event
            pytest.fail(f"stored {value!r}")
        assert not r.ok and r.error and "\n" not in r.error
    assert centre.state().state_hash == before


API_MISSING = [m for m in ("fastapi", "httpx2") if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="module")
def client(centre: Any) -> Iterator[Any]:
    if API_MISSING:
        pytest.skip(f"{', '.join(API_MISSING)} not installed (api extra)")
    from fastapi.testclient import TestClient

    from tests.api.conftest import OP, make_app

    with TestClient(make_app(centre, rate_per_s=0), raise_server_exceptions=False) as c:
        c.headers.update(OP)
        yield c


@FUZZ
@given(st.lists(mutated(), min_size=1, max_size=3) | mutated())
def test_post_events_is_2xx_or_4xx_naming_the_field(client: Any, centre: Any, body: Any) -> None:
    before = centre.state().state_hash
    text = json.dumps(body)  # NaN and Infinity as JavaScript writes them
    r = client.post("/events", content=text, headers={"Content-Type": "application/json"})
    assert r.status_code in (202, 413, 422), (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    out = r.json()
    if r.status_code == 202:
        return
    assert out["error"] and "\n" not in out["error"] and out["field"]
    results = out.get("results")
    if results is None or not any(x["seq"] and not x["duplicate"] for x in results):
        assert centre.state().state_hash == before  # nothing stored, nothing changed
