"""The product's API over real HTTP: the local stack from template.yaml, the real handlers.

One stack serves the whole package (starting one costs seconds). It holds a small published
model whose answers are known, so tests can assert on exact lists:

- items ``i0`` to ``i9``; ``i0``-``i4`` point along the first factor axis, ``i5``-``i9``
  along the second, each a little less than the one before, so ``i0`` and ``i5`` lead
  their groups; popularity falls from ``i0`` to ``i9``;
- categories ``a`` (``i0``-``i4``) and ``b`` (``i5``-``i9``), plus ``even`` for even items;
- attribute ``brand:acme`` on even items, ``brand:globex`` on odd ones, ``size:big`` on
  ``i0``, ``i3`` and ``i6``;
- ``i9`` was built unavailable.

Tests that change shared state (users, catalogue entries) use names of their own.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest

from local_stack.auth import ADMIN_GROUP, mint_token
from local_stack.stack import LocalStack
from recsys.adapters.s3 import S3ModelStore
from recsys.catalog import attribute_pair
from recsys.config import ModelConfig
from recsys.model import ItemModel, build_model

REPO = Path(__file__).resolve().parents[2]
CATCH_UP_TIMEOUT_S = 60.0
ITEM_IDS = tuple(f"i{n}" for n in range(10))


def small_model() -> tuple[ItemModel, bytes]:
    """The model described in this module's docstring."""
    factors = np.zeros((10, 2), dtype=np.float32)
    for n in range(10):
        factors[n, 0 if n < 5 else 1] = 1.0 - 0.05 * (n % 5)
        factors[n, 1 if n < 5 else 0] = 0.01 * n
    categories = [("a" if n < 5 else "b",) + (("even",) if n % 2 == 0 else ()) for n in range(10)]
    attributes = [
        tuple(
            sorted(
                [attribute_pair("brand", "acme" if n % 2 == 0 else "globex")]
                + ([attribute_pair("size", "big")] if n in (0, 3, 6) else [])
            )
        )
        for n in range(10)
    ]
    return build_model(
        version=None,
        created_at=datetime.now(UTC),
        parameters=ModelConfig(),
        counts={"users": 3, "items": 10, "events": 30, "nonzeros": 30},
        item_ids=ITEM_IDS,
        item_factors=factors,
        popularity=np.linspace(1.0, 0.1, 10).astype(np.float32),
        available=np.array([n != 9 for n in range(10)]),
        item_categories=categories,
        item_attributes=attributes,
    )


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Api:
    """A client of the running stack's API that can act as any user."""

    stack: LocalStack

    @property
    def url(self) -> str:
        return self.stack.api_url

    def token(self, user: str, *, admin: bool = False) -> str:
        return mint_token(user, (ADMIN_GROUP,) if admin else ())

    def call(
        self,
        method: str,
        path: str,
        *,
        user: str | None = None,
        admin: bool = False,
        query: Mapping[str, Any] | list[tuple[str, str]] | None = None,
        json_body: Any = None,
        raw_body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request; ``user`` signs it with a fresh token, JSON bodies get their type."""
        sent = dict(headers or {})
        if user is not None:
            sent.setdefault("Authorization", f"Bearer {self.token(user, admin=admin)}")
        body = raw_body
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        target = path + (f"?{urlencode(query, doseq=True)}" if query else "")

        host, port = self.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.request(method, target, body=body, headers=sent)
            response = connection.getresponse()
            return Reply(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def send_events(self, user: str, events: list[dict[str, Any]]) -> Reply:
        return self.call("POST", "/events", user=user, json_body={"events": events})

    def wait_for_ingest(self) -> None:
        self.stack.mapping.wait_until_caught_up(CATCH_UP_TIMEOUT_S)


def event(user: str, item: str, *, event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid event of ``user`` on ``item``, stamped now, with a fresh id by default."""
    return {
        "event_id": event_id or f"e-{uuid.uuid4().hex[:16]}",
        "user_id": user,
        "item_id": item,
        "event_type": "click",
        "timestamp": datetime.now(UTC).isoformat(),
        **fields,
    }


def unique_user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The local stack with the small model published; stopped after the package."""
    log = tmp_path_factory.mktemp("api") / "functions.log"
    with LocalStack(REPO, api_port=0, start_firehose=False, function_log=log) as running:
        model, payload = small_model()
        S3ModelStore(running.client("s3"), running.resources.model_bucket).publish(
            model.version, payload, model.manifest.model_dump_json().encode()
        )
        yield running


@pytest.fixture(scope="package")
def api(stack: LocalStack) -> Api:
    return Api(stack)
