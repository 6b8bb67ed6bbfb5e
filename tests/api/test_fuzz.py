"""Property-based fuzzing of the published OpenAPI schema (schemathesis): no 5xx, and every
response (status code, content type, body) conforms to what the schema declares."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (dev extra)"
)

from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import OP, make_app  # noqa: E402

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _fuzz(centre: Any, headers: dict[str, str] | None, examples: int) -> list[str]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", make_app(centre, rate_per_s=0))
    done = []
    for result in schema.get_all_operations():
        op = result.ok()

        @given(case=op.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            r = case.call_and_validate(headers=headers, checks=CHECKS)
            if headers is None and case.path != "/healthz":
                assert r.status_code == 401

        run()
        done.append(op.label)
    return done


@pytest.mark.slow
def test_schema_fuzz_as_operator(centre: Any) -> None:
    done = _fuzz(centre, OP, 40)
    assert "POST /events" in done and "POST /proposals/{pid}/approve" in done and len(done) >= 17


@pytest.mark.slow
def test_schema_fuzz_without_a_token(centre: Any) -> None:
    assert len(_fuzz(centre, None, 5)) >= 17
