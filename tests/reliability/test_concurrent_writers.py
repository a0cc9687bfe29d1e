"""Two writers updating one user at the same moment, over HTTP against a moto server."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from local_stack.moto_server import MotoServer
from local_stack.template import load_template, provision
from recsys.adapters.dynamodb import DynamoDBUserStateStore
from recsys.config import HistoryLimits
from recsys.ingestion import RetryPolicy, apply_user_events
from tests.factories import make_event

REPO = Path(__file__).resolve().parents[2]
EVENTS_PER_WRITER = 40


@pytest.fixture
def server(aws_credentials):
    with MotoServer() as running:
        yield running


@pytest.mark.integration
def test_two_writers_racing_on_one_user_lose_no_event(server):
    # GIVEN the user-state table from template.yaml on a real HTTP endpoint
    resources = provision(
        load_template(REPO / "template.yaml"),
        kinesis=server.client("kinesis"),
        dynamodb=server.client("dynamodb"),
        s3=server.client("s3"),
        sqs=server.client("sqs"),
    )
    start = threading.Barrier(2)
    attempts: list[int] = []

    def writer(name: str) -> None:
        # Each thread has its own client, as two Lambda containers would.
        store = DynamoDBUserStateStore(server.client("dynamodb"), resources.table_name)
        start.wait()
        for n in range(EVENTS_PER_WRITER):
            event = make_event(f"{name}-{n}", item_id=f"i{n}", minutes=n)
            outcome = apply_user_events(
                user_id="u1",
                events=[event],
                last_sequence=None,
                store=store,
                model=None,
                limits=HistoryLimits(),
                retry=RetryPolicy(max_attempts=50, base_delay_s=0.002),
            )
            attempts.append(outcome.attempts)

    # WHEN both write the same user as fast as they can
    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # THEN every event of both is in the history, and the races did happen
    store = DynamoDBUserStateStore(server.client("dynamodb"), resources.table_name)
    stored = store.get("u1")
    ids = {entry.event_id for entry in stored.state.history}
    assert ids == {f"{name}-{n}" for name in ("a", "b") for n in range(EVENTS_PER_WRITER)}
    assert stored.version == 2 * EVENTS_PER_WRITER
    assert max(attempts) > 1, "the writers never collided; the test proved nothing"
