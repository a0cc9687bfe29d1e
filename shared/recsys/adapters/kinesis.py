"""Producing events to the Kinesis stream, as the REST events endpoint does.

Every record's partition key is its user id, so all events of one user land on one shard, in
order, and one ingest invocation at a time updates that user's state. PutRecords can accept
some records of a call and refuse others (a shard over its write limit); only the refused
ones are sent again, after a pause that doubles each round.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence

from botocore.client import BaseClient

from recsys.events import Event
from recsys.ports import PublishOutcome

logger = logging.getLogger(__name__)

MAX_RECORDS_PER_CALL = 500


class KinesisEventPublisher:
    """A :class:`recsys.ports.EventPublisher` on one stream.

    Parameters
    ----------
    client : botocore.client.BaseClient
        A low-level ``boto3.client("kinesis")``; errors of a whole call (throttling of the
        API itself, timeouts) are retried by its retry configuration.
    stream_name : str
        The event stream.
    max_attempts : int
        PutRecords calls per record at most, the first included.
    base_delay_s : float
        Upper bound of the first pause; each later one doubles, with full jitter.
    sleep : Callable[[float], None], optional
        Injectable for tests.
    rng : random.Random, optional
        Source of the jitter; injectable for tests.
    """

    def __init__(
        self,
        client: BaseClient,
        stream_name: str,
        *,
        max_attempts: int = 4,
        base_delay_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self._client = client
        self._stream_name = stream_name
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._sleep = sleep
        self._rng = rng or random.Random()

    def publish(self, events: Sequence[Event]) -> list[PublishOutcome]:
        """Put ``events`` on the stream; one outcome per event, in the order given.

        Raises
        ------
        ValueError
            If more than 500 events are given (PutRecords' limit).
        botocore.exceptions.ClientError
            When a whole call fails after the client's own retries.
        """
        if len(events) > MAX_RECORDS_PER_CALL:
            raise ValueError(f"at most {MAX_RECORDS_PER_CALL} events per call, got {len(events)}")

        outcomes: list[PublishOutcome | None] = [None] * len(events)
        pending = list(range(len(events)))
        last_error: dict[int, str] = {}
        for attempt in range(1, self._max_attempts + 1):
            response = self._client.put_records(
                StreamName=self._stream_name,
                Records=[
                    {
                        "Data": events[index].model_dump_json(exclude_none=True).encode(),
                        "PartitionKey": events[index].user_id,
                    }
                    for index in pending
                ],
            )

            refused = []
            for index, result in zip(pending, response["Records"], strict=True):
                if "SequenceNumber" in result and not result.get("ErrorCode"):
                    outcomes[index] = PublishOutcome(sequence_number=str(result["SequenceNumber"]))
                else:
                    refused.append(index)
                    last_error[index] = str(result.get("ErrorCode") or "refused")
            pending = refused
            if not pending:
                break

            logger.warning("stream refused %d of the records on attempt %d", len(pending), attempt)
            if attempt < self._max_attempts:
                ceiling = self._base_delay_s * 2 ** (attempt - 1)
                self._sleep(self._rng.uniform(0.0, ceiling))

        return [
            outcome if outcome is not None else PublishOutcome(error=last_error[index])
            for index, outcome in enumerate(outcomes)
        ]
