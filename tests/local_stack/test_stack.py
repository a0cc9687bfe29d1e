"""The whole stack, wired from the product's template.yaml, running fake handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from local_stack.stack import LocalStack
from tests.local_stack.fake_repository import get_json, make_repository, put_interaction

pytestmark = pytest.mark.integration

CATCH_UP_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    repository = make_repository(tmp_path_factory.mktemp("repository"))
    with LocalStack(repository, api_port=0, firehose_interval_s=0.2) as running:
        yield running


def test_event_on_the_stream_is_served_by_the_api(stack: LocalStack) -> None:
    # GIVEN a user the API does not know yet
    url = f"{stack.api_url}/users/alice/recommendations"
    assert get_json(url, "alice")[0] == 404

    # WHEN an event of theirs is put on the stream and ingested
    put_interaction(stack, "alice", "item-7")
    stack.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN the API serves a list built from it
    assert get_json(url, "alice") == (200, {"user_id": "alice", "items": ["item-7"]})


def test_guarded_route_refuses_a_request_without_a_token(stack: LocalStack) -> None:
    # GIVEN a route the template puts behind its Cognito authorizer
    url = f"{stack.api_url}/users/alice/recommendations"

    # WHEN it is called without a token
    status, body = get_json(url)

    # THEN the API answers 401 itself, as API Gateway would
    assert status == 401
    assert body["error"] == "unauthorized"


def test_event_on_the_stream_is_archived_as_ndjson(stack: LocalStack) -> None:
    # GIVEN an event put on the stream
    put_interaction(stack, "bob", "item-3")

    # WHEN the archive catches up
    stack.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN the template's archive bucket holds it as a JSON line under events/dt=.../
    s3 = stack.client("s3")
    bucket = stack.resources.archive_bucket
    keys = [entry["Key"] for entry in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    lines = [
        json.loads(line)
        for key in keys
        for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()
    ]
    assert all(key.startswith("events/dt=") for key in keys)
    assert {"event_id": "bob-item-3", "user_id": "bob", "item_id": "item-3"} in lines


def test_event_the_handler_cannot_ingest_ends_in_the_failure_queue(stack: LocalStack) -> None:
    # GIVEN an event that makes the ingest handler raise every time
    put_interaction(stack, "carol", "poison")

    # WHEN the mapping has retried it as often as the template allows
    stack.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN the template's failure queue holds a record of it
    sqs = stack.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=stack.resources.failure_queue_url, MaxNumberOfMessages=10
    ).get("Messages", [])
    bodies = [json.loads(message["Body"]) for message in messages]
    assert [body["KinesisBatchInfo"]["batchSize"] for body in bodies] == [1]
    assert bodies[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"


def test_function_runs_with_its_template_environment_and_layer(stack: LocalStack) -> None:
    # GIVEN the stack's train function
    # WHEN it runs as its schedule would run it
    result = stack.run_schedule("TrainFunction")

    # THEN it got a scheduled event, its resolved environment, the endpoint and the layer
    assert result == {
        "detail_type": "Scheduled Event",
        "archive_bucket": stack.resources.archive_bucket,
        "endpoint_url": stack.endpoint_url,
        "function_name": "recsys-local-trainfunction",
        "layer": "fake layer",
    }
