"""Handlers against moto: resources provisioned from template.yaml, env from the template.

Each test gets fresh resources and "new containers": cached clients and models are dropped.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from local_stack.template import LocalResources, load_template, provision
from recsys.adapters.s3 import S3CatalogSource, S3EventArchive
from recsys.catalog import CatalogItem
from recsys.runtime.wiring import reset_containers

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
FUNCTIONS = {"ingest": "IngestFunction", "train": "TrainFunction", "recommend": "RecommendFunction"}


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_handler_module(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` under a unique module name (every one is ``app``)."""
    path = REPO / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"function_{name}_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Deployment:
    resources: LocalResources
    monkeypatch: pytest.MonkeyPatch

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        """Run a function's handler with exactly its template environment."""
        for key, value in self.resources.function_environment(FUNCTIONS[name]).items():
            self.monkeypatch.setenv(key, value)
        self.monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        self.monkeypatch.setenv("POWERTOOLS_DEV", "false")
        module = load_handler_module(name)
        context = LambdaContext(function_name=name, aws_request_id=str(uuid.uuid4()))
        return module.lambda_handler(event, context)

    def client(self, service: str) -> Any:
        return boto3.client(service)


@pytest.fixture
def deployment(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    reset_containers()
    template = load_template(REPO / "template.yaml")
    resources = provision(
        template,
        kinesis=boto3.client("kinesis"),
        dynamodb=boto3.client("dynamodb"),
        s3=boto3.client("s3"),
        sqs=boto3.client("sqs"),
        prefix="recsys-test",
    )
    yield Deployment(resources, monkeypatch)
    reset_containers()


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def seed_archive(deployment: Deployment, day: date) -> None:
    """Two taste groups: users u-0..u-29 each use items of their own parity (1..9).

    Lower-numbered items are used by more users, so no two items tie in any list.
    """
    lines = []
    moment = datetime.combine(day, datetime.min.time(), tzinfo=UTC) - timedelta(hours=6)
    for user in range(30):
        for item in range(1, 10):
            if item % 2 == user % 2 and item <= 3 + user % 7:
                lines.append(
                    json.dumps(
                        {
                            "event_id": f"seed-{user}-{item}",
                            "user_id": f"u-{user}",
                            "item_id": f"item-{item}",
                            "event_type": "view",
                            "timestamp": (moment + timedelta(minutes=user + item)).isoformat(),
                        }
                    ).encode()
                )
    s3 = deployment.client("s3")
    S3EventArchive(s3, deployment.resources.archive_bucket).write_lines(day, lines, "seed-0001")
    S3CatalogSource(s3, deployment.resources.model_bucket).write_catalog(
        CatalogItem(
            item_id=f"item-{n}", title=f"Item {n}", categories=("odd" if n % 2 else "even",)
        )
        for n in range(1, 10)
    )
