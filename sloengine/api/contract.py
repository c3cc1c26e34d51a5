"""The OpenAPI document as the contract says it: FastAPI's generated document, plus what the
code enforces elsewhere and FastAPI cannot see — the security schemes (bearer key or session
cookie), the problem+json error answers of every operation (400, 401, 403, 429, 413, 422,
500, 503; FastAPI would document 422 as its own JSON shape), 304 for ETag reads, Deprecation
headers of retired routes. ``tests/test_api_contract.py`` fails when docs/openapi.json and
this drift apart; ``sloengine openapi`` rewrites it.
"""

from __future__ import annotations

import copy
from typing import Any

from sloengine.api.gate import RETIRED
from sloengine.api.models import Problem

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_ERRORS = {
    "401": "no API key, or one that is malformed, unknown, expired or revoked",
    "403": "the key's role lacks the permission (x-permission), or the address is not "
           "allowed",
    "422": "the request does not validate, or the engine refuses it (detail says why)",
    "429": "the key's rate limit is reached (Retry-After says when to come back)",
    "500": "the server failed (quote request_id)",
    "503": "took longer than http.api_timeout_seconds, or a source is down (Retry-After)",
}
_CACHED = ("/api/v1/replay", "/api/v1/reports")


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": _PROBLEM}}}


def shape_openapi(generated: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(generated)
    # the contract is /api/v1 (the pages are HTML for people; /v1/* is the OTLP spec's)
    doc["paths"] = {k: v for k, v in doc.get("paths", {}).items() if k.startswith("/api/")}
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = Problem.model_json_schema()
    doc["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "an API key slo_<id>_<secret> (sloengine keys create)"},
        "session": {"type": "apiKey", "in": "cookie", "name": "sloengine_session",
                    "description": "the same key, set by the status pages' sign-in form"},
    }
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method.startswith("x-") or not isinstance(op, dict):
                continue
            responses = op.setdefault("responses", {})
            if "x-permission" in op:
                op["security"] = [{"bearer": []}, {"session": []}]
            for code, text in _ERRORS.items():
                responses[code] = _problem(text)
            if "requestBody" in op:
                responses["400"] = _problem("the body cannot be parsed (e.g. broken JSON)")
                responses["413"] = _problem("the body is larger than http.api_max_body_bytes")
                responses["415"] = _problem("the body is not of a media type listed here")
            responses["404"] = _problem("no SLO, request or key by that name or id")
            if path in _CACHED:
                responses["304"] = {"description": "not modified since the ETag sent in "
                                                   "If-None-Match"}
            if (method.upper(), path) in RETIRED:
                successor, sunset = RETIRED[(method.upper(), path)]
                op["deprecated"] = True
                op["description"] = (op.get("description", "") + f"\n\nRetired: use "
                                     f"{successor}; gone after {sunset}.").strip()
            for code, resp in responses.items():
                if code.startswith("2") and "content" in resp:
                    resp["headers"] = {"X-Request-ID": {
                        "description": "the caller's X-Request-ID, or a new one",
                        "schema": {"type": "string"}}}
            op["responses"] = dict(sorted(responses.items()))
    return doc
