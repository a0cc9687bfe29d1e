"""moto fixtures for the adapter tests: fake credentials, one mock per test, clients inside it.

The user-state table is built from the key schema in ``template.yaml``, so a change to the
infrastructure's keys breaks these tests instead of drifting past them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient

from local_stack.template import TABLE_ID, load_template, table_key_schema

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
REGION = "us-east-1"
TABLE_NAME = "recsys-test-user-state"
BUCKET_NAME = "recsys-test-bucket"


class RecordingClient:
    """Passes every call through to a boto3 client and records its name and arguments."""

    def __init__(self, client: BaseClient) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return method(*args, **kwargs)

        return record


@pytest.fixture
def dynamodb_client(mocked_aws: None) -> BaseClient:
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def s3_client(mocked_aws: None) -> BaseClient:
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def state_table(dynamodb_client: BaseClient) -> str:
    """The user-state table, keyed as ``template.yaml`` keys it; returns its name."""
    key_schema, attribute_definitions = table_key_schema(load_template(TEMPLATE_PATH), TABLE_ID)
    dynamodb_client.create_table(
        TableName=TABLE_NAME,
        KeySchema=key_schema,
        AttributeDefinitions=attribute_definitions,
        BillingMode="PAY_PER_REQUEST",
    )
    return TABLE_NAME


@pytest.fixture
def bucket(s3_client: BaseClient) -> str:
    s3_client.create_bucket(Bucket=BUCKET_NAME)
    return BUCKET_NAME
