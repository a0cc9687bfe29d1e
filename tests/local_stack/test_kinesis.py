"""The event source mapping delivers, retries and gives up on records as Lambda's does.

Records are put before the mapping starts (from TRIM_HORIZON), so the batches each test
expects do not depend on timing. The fake ingest handler appends every batch it receives
to a file and fails records by their data:

- ``poison``: always reported in ``batchItemFailures``;
- ``flaky``: reported the first time it is seen only;
- ``bogus``: the first time, the response names a sequence number not in the batch;
- ``raise``: the handler raises, failing the whole batch.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from local_stack.kinesis import (
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    EventSourceMapping,
    KinesisEventSettings,
    SqsDestination,
)
from local_stack.moto_server import MotoServer
from local_stack.runner import FunctionRunner
from tests.local_stack.helpers import threads_other_than, wait_for, write_function

pytestmark = pytest.mark.integration

INGEST = """
    import base64
    import json
    import os
    from pathlib import Path


    def lambda_handler(event, context):
        seen = Path(os.environ["SEEN_DIR"])
        records = event["Records"]
        with open(os.environ["LOG_FILE"], "a", encoding="utf-8") as log:
            log.write(json.dumps(event) + "\\n")

        failures = []
        for record in records:
            data = base64.b64decode(record["kinesis"]["data"]).decode()
            sequence_number = record["kinesis"]["sequenceNumber"]
            first_time = not (seen / sequence_number).exists()
            (seen / sequence_number).touch()
            if data == "raise":
                raise RuntimeError("the batch holds a record that makes the handler raise")
            if data == "bogus" and first_time:
                return {"batchItemFailures": [{"itemIdentifier": "999999999"}]}
            if data == "poison" or (data == "flaky" and first_time):
                failures.append({"itemIdentifier": sequence_number})

        # Reported highest first: the mapping must still restart from the lowest.
        return {"batchItemFailures": list(reversed(failures))}
"""

CATCH_UP_TIMEOUT_S = 20.0


class Harness:
    """A fresh stream, queue and ingest runner per test, with the batches it received."""

    def __init__(self, moto: MotoServer, kinesis: BaseClient, sqs: BaseClient, tmp: Path):
        self.kinesis = kinesis
        self.sqs = sqs
        self.stream_name = f"stream-{uuid.uuid4().hex[:12]}"
        kinesis.create_stream(StreamName=self.stream_name, ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(
            StreamName=self.stream_name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
        )
        self.queue_url = sqs.create_queue(QueueName=f"failures-{uuid.uuid4().hex[:12]}")["QueueUrl"]

        self.log_file = tmp / "batches.jsonl"
        seen_dir = tmp / "seen"
        seen_dir.mkdir()
        self.runner = FunctionRunner(
            "IngestFunction",
            write_function(tmp / "ingest", INGEST),
            "app.lambda_handler",
            {"LOG_FILE": str(self.log_file), "SEEN_DIR": str(seen_dir)},
            endpoint_url=moto.endpoint_url,
            timeout_s=10,
        )
        self.mappings: list[EventSourceMapping] = []

    def put(self, *datas: str) -> list[str]:
        """Put each string as one record; return their sequence numbers."""
        return [
            self.kinesis.put_record(
                StreamName=self.stream_name, Data=data.encode(), PartitionKey="u1"
            )["SequenceNumber"]
            for data in datas
        ]

    def start(self, *, with_destination: bool = True, **settings: Any) -> EventSourceMapping:
        options: dict[str, Any] = {
            "starting_position": "TRIM_HORIZON",
            "report_batch_item_failures": True,
        }
        options.update(settings)
        mapping = EventSourceMapping(
            self.kinesis,
            self.stream_name,
            self.runner,
            KinesisEventSettings(**options),
            on_failure=SqsDestination(self.sqs, self.queue_url) if with_destination else None,
            retry_delay_s=0.01,
            max_retry_delay_s=0.05,
        )
        mapping.start()
        self.mappings.append(mapping)
        return mapping

    def events(self) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]

    def batches(self) -> list[list[str]]:
        """The data of every delivered batch, in delivery order."""
        return [
            [base64.b64decode(r["kinesis"]["data"]).decode() for r in event["Records"]]
            for event in self.events()
        ]

    def failure_messages(self) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(message["Body"]) for message in response.get("Messages", [])]

    def close(self) -> None:
        for mapping in self.mappings:
            mapping.stop()
        self.runner.close()


@pytest.fixture
def harness(
    moto: MotoServer, kinesis: BaseClient, sqs: BaseClient, tmp_path: Path
) -> Iterator[Harness]:
    harness = Harness(moto, kinesis, sqs, tmp_path)
    yield harness
    harness.close()


# -------------------------------------------------------------------- event shape ---


def test_record_reaches_the_handler_shaped_as_lambda_delivers_it(harness: Harness) -> None:
    # GIVEN a JSON record put with a partition key
    before = time.time()
    (sequence_number,) = harness.put('{"user_id": "u1"}')

    # WHEN the mapping delivers it
    mapping = harness.start()
    mapping.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN the handler got Lambda's Kinesis event shape
    (event,) = harness.events()
    (record,) = event["Records"]
    assert set(event) == {"Records"}
    assert record["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert record["kinesis"]["partitionKey"] == "u1"
    assert record["kinesis"]["sequenceNumber"] == sequence_number
    assert base64.b64decode(record["kinesis"]["data"]) == b'{"user_id": "u1"}'
    assert isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)
    assert record["kinesis"]["approximateArrivalTimestamp"] >= round(before, 3) - 1
    assert record["eventSource"] == "aws:kinesis"
    assert record["eventVersion"] == "1.0"
    assert record["eventName"] == "aws:kinesis:record"
    assert record["eventID"] == f"shardId-000000000000:{sequence_number}"
    assert record["eventSourceARN"] == mapping.stream_arn
    assert record["eventSourceARN"].endswith(f":stream/{harness.stream_name}")
    assert record["awsRegion"] == "us-east-1"
    assert record["invokeIdentityArn"].startswith("arn:aws:iam::")


def test_records_are_delivered_in_batches_of_batch_size(harness: Harness) -> None:
    # GIVEN seven records in the stream
    harness.put(*[f"r{index}" for index in range(7)])

    # WHEN a mapping with BatchSize 3 delivers them
    harness.start(batch_size=3).wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN they arrive in order, three at a time, each once
    assert harness.batches() == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]


def test_batching_window_gathers_records_put_after_the_first(harness: Harness) -> None:
    # GIVEN a mapping that waits up to 30 s for a batch of 3 to fill
    mapping = harness.start(batch_size=3, maximum_batching_window_s=30)

    # WHEN three records arrive one by one
    harness.put("a")
    harness.put("b")
    harness.put("c")
    mapping.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN they are delivered together as soon as the batch is full
    assert harness.batches() == [["a", "b", "c"]]


# ------------------------------------------------------------- partial failures ---


def test_reported_failure_redelivers_from_the_lowest_failed_record(harness: Harness) -> None:
    # GIVEN a batch whose third and fourth records fail once, reported highest first
    harness.put("a", "b", "flaky", "flaky", "e")

    # WHEN the mapping delivers it
    harness.start().wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN it retries from the third record, with the records after it, not those before
    assert harness.batches() == [["a", "b", "flaky", "flaky", "e"], ["flaky", "flaky", "e"]]


def test_response_naming_an_unknown_sequence_number_fails_the_whole_batch(
    harness: Harness,
) -> None:
    # GIVEN a batch whose response once names a record that is not in it
    harness.put("a", "bogus", "c")

    # WHEN the mapping delivers it without bisecting
    harness.start().wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN the whole batch is delivered again
    assert harness.batches() == [["a", "bogus", "c"], ["a", "bogus", "c"]]


def test_exhausted_retries_send_the_batch_record_to_the_destination(harness: Harness) -> None:
    # GIVEN a record that always fails between two good ones
    sequence_numbers = harness.put("a", "poison", "c")

    # WHEN a mapping allowed 2 retries delivers them
    mapping = harness.start(maximum_retry_attempts=2)
    mapping.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN after the first try and two retries the rest of the batch is given up
    assert harness.batches() == [["a", "poison", "c"], ["poison", "c"], ["poison", "c"]]
    (message,) = harness.failure_messages()
    assert message["version"] == "1.0"
    assert message["requestContext"]["condition"] == RETRY_ATTEMPTS_EXHAUSTED
    assert message["requestContext"]["functionArn"] == harness.runner.function_arn
    assert message["requestContext"]["approximateInvokeCount"] == 3
    assert message["responseContext"]["statusCode"] == 200
    info = message["KinesisBatchInfo"]
    assert info["shardId"] == "shardId-000000000000"
    assert info["startSequenceNumber"] == sequence_numbers[1]
    assert info["endSequenceNumber"] == sequence_numbers[2]
    assert info["batchSize"] == 2
    assert info["streamArn"] == mapping.stream_arn
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert info["approximateArrivalOfLastRecord"].endswith("Z")


def test_shard_moves_on_after_giving_a_batch_up(harness: Harness) -> None:
    # GIVEN a mapping that gave up a poison record
    harness.put("poison")
    mapping = harness.start(maximum_retry_attempts=1)
    mapping.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # WHEN a new record arrives
    harness.put("after")
    mapping.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN it is delivered, alone
    assert harness.batches()[-1] == ["after"]
    assert mapping.stats.failures_sent == 1


# -------------------------------------------------------------- function errors ---


def test_raising_handler_with_bisect_splits_until_the_bad_record_is_alone(
    harness: Harness,
) -> None:
    # GIVEN a batch with one record that makes the handler raise
    harness.put("a", "b", "raise", "d")

    # WHEN a bisecting mapping allowed 1 retry delivers it
    mapping = harness.start(bisect_batch_on_function_error=True, maximum_retry_attempts=1)
    mapping.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN halves are retried until the bad record fails alone, and only it is given up
    assert harness.batches() == [
        ["a", "b", "raise", "d"],
        ["a", "b"],
        ["raise", "d"],
        ["raise"],
        ["raise"],
        ["d"],
    ]
    (message,) = harness.failure_messages()
    assert message["KinesisBatchInfo"]["batchSize"] == 1
    assert message["responseContext"]["functionError"] == "Unhandled"


def test_raising_handler_without_bisect_retries_the_whole_batch(harness: Harness) -> None:
    # GIVEN a batch with one record that makes the handler raise
    harness.put("a", "raise")

    # WHEN a mapping without bisect, allowed 1 retry and no destination, delivers it
    mapping = harness.start(maximum_retry_attempts=1, with_destination=False)
    mapping.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN the whole batch is tried twice, then dropped
    assert harness.batches() == [["a", "raise"], ["a", "raise"]]
    assert mapping.stats.records_discarded == 2


def test_records_older_than_maximum_age_are_given_up_without_an_invocation(
    harness: Harness,
) -> None:
    # GIVEN a record in the stream
    harness.put("old")

    # WHEN a mapping that accepts no record age delivers it
    mapping = harness.start(maximum_record_age_s=0)
    mapping.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN the handler never sees it and the destination learns why
    assert harness.batches() == []
    (message,) = harness.failure_messages()
    assert message["requestContext"]["condition"] == RECORD_AGE_EXCEEDED
    assert message["requestContext"]["approximateInvokeCount"] == 0


def test_waiting_times_out_while_a_batch_keeps_failing(harness: Harness) -> None:
    # GIVEN a mapping retrying a raising batch forever
    harness.put("raise")
    mapping = harness.start(maximum_retry_attempts=-1)

    # WHEN one waits for it to catch up
    # THEN the wait ends with an error instead of hanging
    with pytest.raises(TimeoutError):
        mapping.wait_until_caught_up(0.5)


# --------------------------------------------------------------------- lifecycle ---


def test_starting_at_latest_skips_records_put_before_start(harness: Harness) -> None:
    # GIVEN a record put before the mapping starts at LATEST
    harness.put("before")
    mapping = harness.start(starting_position="LATEST")

    # WHEN another record is put
    harness.put("after")
    mapping.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN only the later record is delivered
    assert harness.batches() == [["after"]]


def test_stop_leaves_no_poller_thread(harness: Harness) -> None:
    # GIVEN a running mapping
    before = set(threading.enumerate())
    mapping = harness.start()

    # WHEN it is stopped
    mapping.stop()

    # THEN none of its threads is alive (moto's connection threads are not its own)
    assert not mapping.running
    assert [thread for thread in threads_other_than(before) if thread.name.startswith("esm-")] == []


def test_counters_add_up_over_a_partial_failure(harness: Harness) -> None:
    # GIVEN a batch with one record that fails once
    harness.put("a", "flaky", "c")

    # WHEN the mapping delivers it
    mapping = harness.start()
    mapping.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN two invocations carried five records, one of them a retry
    stats = mapping.stats
    assert (stats.batches, stats.records, stats.retries) == (2, 5, 1)
    assert stats.records_succeeded == 3
    assert stats.failures_sent == 0


def _wait_for_batches(harness: Harness, count: int) -> Callable[[], bool]:
    return lambda: len(harness.batches()) >= count


def test_records_put_while_running_are_delivered_without_waiting_for_catch_up(
    harness: Harness,
) -> None:
    # GIVEN a running mapping
    harness.start()

    # WHEN a record is put
    harness.put("live")

    # THEN the handler receives it soon, by itself
    assert wait_for(_wait_for_batches(harness, 1))
    assert harness.batches() == [["live"]]
