"""Fuzzing the API from its committed OpenAPI document: no request may get a 5xx.

Schemathesis turns docs/openapi.json into Hypothesis strategies of requests, valid ones
(positive) and ones that break the schema (negative: wrong types, out-of-range numbers,
missing fields, bodies of the wrong shape). Each request goes over HTTP to the local stack
with one of several credentials (a user, an admin, an expired token, a forged one, none).
The run is derandomized, so it is the same sequence of requests every time.

Admin requests may edit the catalogue at random; the catalogue table is emptied afterwards,
so the other tests of the package see the model's catalogue whatever order they run in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from local_stack.auth import mint_token
from tests.api.conftest import Api, unique_user

pytestmark = pytest.mark.integration

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
MIN_REQUESTS = 1000
# Generated cases the HTTP client cannot send at all (a header value it refuses) are not
# requests; the margin keeps the count of sent ones above the minimum.
MAX_EXAMPLES = 1150


def _empty_catalogue(api: Api) -> None:
    dynamodb = api.stack.client("dynamodb")
    table = api.stack.resources.refs["CatalogTable"]
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page.get("Items", []):
            dynamodb.delete_item(TableName=table, Key={"item_id": item["item_id"]})


@pytest.fixture
def catalogue_restored(api: Api) -> Iterator[None]:
    yield
    _empty_catalogue(api)


def test_no_generated_request_gets_a_server_error(api: Api, catalogue_restored: None) -> None:
    # GIVEN the committed document, and credentials from valid to forged
    schema = schemathesis.openapi.from_path(str(OPENAPI))
    user = unique_user("fuzz")
    credentials = [
        f"Bearer {mint_token(user)}",
        f"Bearer {mint_token(user, ('admin',))}",
        f"Bearer {mint_token(user, ttl_s=-1)}",
        f"Bearer {mint_token(user, secret=b'forged')}",
        None,
    ]
    cases = st.one_of(
        schema.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        schema.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    )
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []
    session = requests.Session()

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, credential=st.sampled_from(credentials))
    def send(case: Any, credential: str | None) -> None:
        headers = {"Authorization": credential} if credential else {}
        try:
            response = case.call(base_url=api.url, session=session, headers=headers, timeout=30)
        except (requests.exceptions.InvalidHeader, UnicodeError, ValueError):
            statuses[0] += 1
            return
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            server_errors.append(
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:300]}"
            )

    # WHEN at least a thousand generated requests are sent
    send()
    session.close()

    # THEN none got a 5xx
    sent = sum(count for status, count in statuses.items() if status)
    print(f"fuzz: {sent} requests, statuses {dict(sorted(statuses.items()))}")
    assert sent >= MIN_REQUESTS
    assert server_errors == []
