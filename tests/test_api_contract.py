"""Contract first: the committed OpenAPI document (docs/openapi.json) is what the code
serves — a test fails when they drift (``sloengine openapi`` rewrites the file) — and the
running API is fuzzed from that document with schemathesis on a bounded budget: no 5xx,
every answer's status, media type and body as documented."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from api_helpers import Api, api
from conftest import ROOT, run_cli
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from sloengine.api.app import openapi_document

DOC = ROOT / "docs" / "openapi.json"


def test_committed_document_matches_the_code() -> None:
    committed = json.loads(DOC.read_text())
    assert committed == openapi_document(), (
        "docs/openapi.json drifted from the code: run `sloengine openapi` and review the diff")


def test_openapi_command_writes_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    assert run_cli("openapi", "--out", str(out)).returncode == 0
    assert json.loads(out.read_text()) == json.loads(DOC.read_text())
    out.write_text(out.read_text().replace('"1.0.0"', '"0.9.0"'))
    r = run_cli("openapi", "--out", str(out), "--check")
    assert r.returncode == 1 and r.stdout.strip() == f"{out}: DIFFERS from the code"


def test_every_operation_names_its_permission_and_errors() -> None:
    doc = openapi_document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["x-permission"], (method, path)
            assert op["security"] == [{"bearer": []}, {"session": []}]
            for code in ("401", "403", "422", "429", "500"):
                assert "application/problem+json" in op["responses"][code]["content"]


@schemathesis.serializer("application/yaml")
def _yaml(ctx: Any, value: Any) -> bytes:
    return (value if isinstance(value, str) else yaml.safe_dump(value)).encode()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with api(tmp_path_factory.mktemp("fuzz")) as a:
        yield a


@pytest.fixture(scope="module")
def api_schema(fuzzed: Api) -> Any:
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", fuzzed.client.app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=4, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_fuzz_from_the_openapi_document(case: Any, fuzzed: Api) -> None:
    """Every check but the two about 422s: a schema cannot say that ``to`` must follow
    ``from`` or that a query must be SQL (the API answers 422), and FastAPI ignores query
    parameters it does not declare (schemathesis counts that as accepting bad data)."""
    case.call_and_validate(headers=fuzzed.auth("admin"),
                           excluded_checks=[positive_data_acceptance,
                                            negative_data_rejection])
