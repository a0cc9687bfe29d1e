"""Every file in events/ (what `sam local invoke -e` takes) gives its stored expected response.

Volatile fields (ids, versions, timings) are replaced before comparing; scores are compared
to three decimals, since BLAS builds differ in the last bits. Set UPDATE_EXPECTED=1 to
rewrite the expected files after a deliberate change, then review the diff.
"""

from __future__ import annotations

import json
import os
from datetime import date
from typing import Any

import pytest

from tests.functions.conftest import EVENTS, Deployment, load_event, seed_archive

VOLATILE = {"recommendation_id", "model_version", "train_seconds"}
SCHEDULE_DAY = date(2026, 12, 1)


def normalized(value: Any) -> Any:
    """Replace volatile fields and round floats, recursively; parse JSON bodies."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if key == "body" and isinstance(item, str):
                item = json.loads(item)
            result[key] = "<volatile>" if key in VOLATILE else normalized(item)
        return result
    if isinstance(value, list):
        return [normalized(item) for item in value]
    if isinstance(value, float):
        return round(value, 3)
    return value


def check_against_expected(name: str, actual: Any) -> None:
    path = EVENTS / "expected" / name
    if os.environ.get("UPDATE_EXPECTED") == "1":
        path.write_text(json.dumps(normalized(actual), indent=2, sort_keys=True) + "\n")
    assert normalized(actual) == json.loads(path.read_text())


@pytest.fixture
def trained(deployment: Deployment) -> Deployment:
    seed_archive(deployment, SCHEDULE_DAY)
    deployment.invoke("train", load_event("train_schedule.json"))
    return deployment


def test_train_schedule_event_publishes_a_model(deployment: Deployment):
    seed_archive(deployment, SCHEDULE_DAY)
    response = deployment.invoke("train", load_event("train_schedule.json"))
    check_against_expected("train_schedule.json", response)


def test_ingest_kinesis_event_applies_valid_records_and_dead_letters_the_bad_one(trained):
    response = trained.invoke("ingest", load_event("ingest_kinesis.json"))

    check_against_expected("ingest_kinesis.json", response)
    sqs = trained.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=trained.resources.failure_queue_url, MaxNumberOfMessages=10
    ).get("Messages", [])
    assert [json.loads(m["Body"])["reason"] for m in messages] == [
        "event: not valid UTF-8 JSON (JSONDecodeError)"
    ]


def test_recommend_api_event_returns_the_users_list(trained):
    trained.invoke("ingest", load_event("ingest_kinesis.json"))
    response = trained.invoke("recommend", load_event("recommend_api.json"))
    check_against_expected("recommend_api.json", response)
