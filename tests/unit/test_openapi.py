"""The committed OpenAPI document is the one the code generates, and describes the API."""

from __future__ import annotations

import json
from pathlib import Path

from recsys.runtime.api import render_openapi

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_document_matches_the_code() -> None:
    # GIVEN the document committed in docs/
    committed = COMMITTED.read_text(encoding="utf-8")

    # WHEN the code generates it again
    generated = render_openapi()

    # THEN they are the same: run `make openapi` after changing a route
    assert committed == generated


def test_every_route_but_health_requires_the_bearer_token() -> None:
    # GIVEN the generated document
    document = json.loads(render_openapi())

    # WHEN the security of each operation is collected
    security = {
        f"{method.upper()} {path}": operation.get("security")
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }

    # THEN only /health is open
    assert {name for name, value in security.items() if not value} == {"GET /health"}


def test_validation_errors_are_documented_as_400_not_422() -> None:
    # GIVEN the generated document
    text = render_openapi()

    # WHEN its responses are read
    document = json.loads(text)
    statuses = {
        status
        for item in document["paths"].values()
        for operation in item.values()
        for status in operation["responses"]
    }

    # THEN the API's own 400 is documented and Powertools' default 422 is not
    assert "400" in statuses
    assert "422" not in statuses
    assert "HTTPValidationError" not in text
