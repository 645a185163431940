"""Schemathesis fuzzes a real `ferkit serve` from the app's own OpenAPI document: whatever it sends (valid and
invalid query values, random multipart and raw bodies), no answer is a 5xx, every status is a documented one,
and every answer matches its documented JSON shape. Examples are bounded so this stays quick."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'ferkit[serve]'")
schemathesis = pytest.importorskip("schemathesis", reason="needs schemathesis (dev extra)")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

sys.path.insert(0, str(Path(__file__).parent))
from serve_helpers import running  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with running(["--model", "fast", "--max-upload-mb", "1"], log) as srv:
        yield srv
        assert "Traceback" not in srv.log(), srv.log()


def _operations(url: str):
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    return [r.ok() for r in schema.get_all_operations()]


# positive (valid per the schema) and negative (invalid) cases;
# schemathesis' own pytest plugin (from_fixture) does not run under pytest 9, so each operation's strategy is
# driven by Hypothesis directly: the same cases, the same checks
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
RUNS = [("/v1/emotions", POSITIVE), ("/v1/emotions", NEGATIVE), ("/v1/emotions/batch", POSITIVE),
        ("/v1/emotions/batch", NEGATIVE), ("/healthz", POSITIVE), ("/v1/model", POSITIVE)]  # GETs take no input


@pytest.mark.parametrize("path,mode", RUNS, ids=[f"{p}-{m.value}" for p, m in RUNS])
def test_no_5xx_and_documented_answers(server, path, mode):
    ops = [op for op in _operations(server.url) if op.path == path]
    assert ops, f"{path} is not in the OpenAPI document"
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    if mode is NEGATIVE:
        checks.append(negative_data_rejection)  # invalid input must get a 4xx, not a 2xx
    for op in ops:
        n = 30 if op.method.upper() == "POST" else 5

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=n, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def fuzz(case):
            case.call_and_validate(base_url=server.url, checks=checks, timeout=60)

        fuzz()
