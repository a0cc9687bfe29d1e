"""Dead letters: records that can never succeed, sent to SQS with the reason."""

from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger(__name__)

# SQS accepts 256 KiB per message; leave room for the envelope around the record's data.
MAX_DATA_CHARS = 200_000


class SqsDeadLetterQueue:
    """Sends one JSON message per rejected record to an SQS queue.

    Parameters
    ----------
    client
        A boto3 SQS client.
    queue_url
        The queue, e.g. the ingest function's on-failure destination.
    """

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, rejection: dict[str, Any]) -> None:
        """Send one rejection; errors propagate so the record is retried, never dropped."""
        body = dict(rejection)
        data = body.get("data")
        if isinstance(data, str) and len(data) > MAX_DATA_CHARS:
            body["data"] = data[:MAX_DATA_CHARS]
            body["data_truncated"] = True
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(body))
