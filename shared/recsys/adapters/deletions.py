"""Deletion markers in DynamoDB: one item per deleted user.

============ ==== ===========================================================
attribute    type content
============ ==== ===========================================================
user_id      S    partition key
deleted_at   N    epoch milliseconds of the latest deletion
expires_at   N    epoch seconds; DynamoDB's TTL removes the marker after it
============ ==== ===========================================================

A marker must outlive every archived event it hides, so it expires a retention period after
the deletion; the template sets that period to the archive's own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from botocore.client import BaseClient

logger = logging.getLogger(__name__)

# BatchGetItem reads at most 100 keys per call.
BATCH_GET_LIMIT = 100
MAX_UNPROCESSED_ROUNDS = 8
SECONDS_PER_DAY = 86_400


class DynamoDBDeletionRegistry:
    """A :class:`recsys.ports.DeletionRegistry` on a table keyed by ``user_id`` alone.

    Parameters
    ----------
    client : botocore.client.BaseClient
        A low-level ``boto3.client("dynamodb")``.
    table_name : str
        The table of markers.
    retention_days : float
        How long a marker is kept after the deletion.
    sleep : Callable[[float], None], optional
        Pause between rounds of unprocessed keys; injectable for tests.
    """

    def __init__(
        self,
        client: BaseClient,
        table_name: str,
        *,
        retention_days: float = 400.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._retention_s = int(retention_days * SECONDS_PER_DAY)
        self._sleep = sleep

    def record(self, user_id: str, deleted_at_ms: int) -> None:
        """Write the marker; a later deletion of the same user replaces it."""
        self._client.put_item(
            TableName=self._table_name,
            Item={
                "user_id": {"S": user_id},
                "deleted_at": {"N": str(deleted_at_ms)},
                "expires_at": {"N": str(deleted_at_ms // 1000 + self._retention_s)},
            },
        )

    def deleted_at(self, user_ids: Collection[str]) -> dict[str, int]:
        """Deletion times of the deleted ones among ``user_ids``, read consistently.

        Keys DynamoDB leaves unprocessed (throttling) are asked for again with a growing
        pause, a bounded number of times.

        Raises
        ------
        RuntimeError
            If keys are still unprocessed after every round; the caller must not go on as
            if those users were not deleted.
        """
        found: dict[str, int] = {}
        unique = sorted(set(user_ids))
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            keys = [
                {"user_id": {"S": user_id}} for user_id in unique[start : start + BATCH_GET_LIMIT]
            ]
            found.update(self._batch_get(keys))
        return found

    def all_deletions(self) -> dict[str, int]:
        """Every marker in the table."""
        paginator = self._client.get_paginator("scan")
        markers: dict[str, int] = {}
        for page in paginator.paginate(TableName=self._table_name, ConsistentRead=True):
            for item in page.get("Items", []):
                markers[item["user_id"]["S"]] = int(item["deleted_at"]["N"])
        return markers

    def _batch_get(self, keys: list[dict[str, Any]]) -> dict[str, int]:
        found: dict[str, int] = {}
        request: dict[str, Any] = {self._table_name: {"Keys": keys, "ConsistentRead": True}}
        for round_number in range(MAX_UNPROCESSED_ROUNDS):
            response = self._client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self._table_name, []):
                found[item["user_id"]["S"]] = int(item["deleted_at"]["N"])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            logger.debug("%d deletion keys unprocessed", len(request[self._table_name]["Keys"]))
            self._sleep(min(0.05 * 2**round_number, 1.0))
        raise RuntimeError("deletion markers could not be read: keys stayed unprocessed")
