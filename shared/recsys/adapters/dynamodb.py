"""User state in DynamoDB: one item per user, replaced whole under an optimistic lock.

Item layout (schema 1):

============== ==== =====================================================
attribute      type content
============== ==== =====================================================
user_id        S    partition key
history        B    :func:`recsys.state.encode_history`
vector         B    :func:`recsys.state.encode_vector`, only when folded
model_version  S    only when set
last_sequence  S    only when set
version        N    optimistic-lock counter, 1 after the first write
updated_at     N    epoch milliseconds of the write
schema         N    layout version, 1
============== ==== =====================================================
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from recsys.errors import StateCorruptError
from recsys.ports import StoredState, VersionConflict
from recsys.state import UserState, decode_history, decode_vector, encode_history, encode_vector

logger = logging.getLogger(__name__)

ITEM_SCHEMA = 1

_CONDITION_FAILED = "ConditionalCheckFailedException"

Item = dict[str, dict[str, Any]]


class DynamoDBUserStateStore:
    """A :class:`recsys.ports.UserStateStore` on a table keyed by ``user_id`` alone.

    Parameters
    ----------
    client : botocore.client.BaseClient
        A low-level ``boto3.client("dynamodb")``. Throttling and transient errors are
        retried by its retry configuration, not here.
    table_name : str
        The table's physical name.
    clock : Callable[[], float], optional
        Seconds since the epoch, for ``updated_at``; ``time.time`` unless a test pins it.
    """

    def __init__(
        self,
        client: BaseClient,
        table_name: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._clock = clock

    def get(self, user_id: str) -> StoredState | None:
        """Read a user's state with a strongly consistent read.

        The read must be consistent: a put conditioned on the version it returns would
        otherwise keep failing against a write the read has not seen yet.

        Returns
        -------
        StoredState or None
            The state and the version it was read at, or None for a user never written.

        Raises
        ------
        StateCorruptError
            If the stored item cannot be decoded; the message names the user.
        """
        response = self._client.get_item(
            TableName=self._table_name,
            Key={"user_id": {"S": user_id}},
            ConsistentRead=True,
        )

        item = response.get("Item")
        if item is None:
            return None

        return _decode_item(user_id, item)

    def put(self, state: UserState, expected_version: int) -> int:
        """Replace a user's state if nobody wrote since it was read at ``expected_version``.

        Parameters
        ----------
        state : UserState
            The whole new state; the stored item is replaced, not patched.
        expected_version : int
            The version the caller read, 0 when :meth:`get` found no state.

        Returns
        -------
        int
            The new version, ``expected_version + 1``.

        Raises
        ------
        VersionConflict
            If the stored version is not ``expected_version`` (for 0: the user exists).
            Nothing is written; the caller re-reads and merges again.
        ValueError
            If ``expected_version`` is negative.
        botocore.exceptions.ClientError
            Any other service error, unchanged.
        """
        if expected_version < 0:
            raise ValueError(f"expected_version must be >= 0, got {expected_version}")

        new_version = expected_version + 1
        condition: dict[str, Any]
        if expected_version == 0:
            condition = {"ConditionExpression": "attribute_not_exists(user_id)"}
        else:
            condition = {
                "ConditionExpression": "#v = :expected",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }

        try:
            self._client.put_item(
                TableName=self._table_name,
                Item=self._encode_item(state, new_version),
                **condition,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != _CONDITION_FAILED:
                raise
            logger.debug(
                "version conflict on user %s expecting version %d",
                state.user_id,
                expected_version,
            )
            raise VersionConflict(
                f"state of user {state.user_id!r} is no longer at version {expected_version}"
            ) from None

        return new_version

    def delete(self, user_id: str) -> bool:
        """Remove a user's state; True if there was one to remove."""
        response = self._client.delete_item(
            TableName=self._table_name,
            Key={"user_id": {"S": user_id}},
            ReturnValues="ALL_OLD",
        )
        return bool(response.get("Attributes"))

    def _encode_item(self, state: UserState, version: int) -> Item:
        item: Item = {
            "user_id": {"S": state.user_id},
            "history": {"B": encode_history(state.history)},
            "version": {"N": str(version)},
            "updated_at": {"N": str(int(self._clock() * 1000))},
            "schema": {"N": str(ITEM_SCHEMA)},
        }

        # Unset fields are left out rather than stored as NULL, so that presence alone tells
        # a reader whether the user was ever folded against a model.
        if state.vector is not None:
            item["vector"] = {"B": encode_vector(state.vector)}
        if state.model_version is not None:
            item["model_version"] = {"S": state.model_version}
        if state.last_sequence is not None:
            item["last_sequence"] = {"S": state.last_sequence}

        return item


def _decode_item(user_id: str, item: Item) -> StoredState:
    """Turn a raw item into a stored state, or say which user's item is unreadable."""
    try:
        schema = int(item["schema"]["N"])
        if schema != ITEM_SCHEMA:
            raise StateCorruptError(f"unknown item schema {schema}")

        state = UserState(
            user_id=item["user_id"]["S"],
            history=decode_history(item["history"]["B"]),
            vector=decode_vector(item["vector"]["B"]) if "vector" in item else None,
            model_version=item["model_version"]["S"] if "model_version" in item else None,
            last_sequence=item["last_sequence"]["S"] if "last_sequence" in item else None,
        )
        version = int(item["version"]["N"])
    except StateCorruptError as error:
        raise StateCorruptError(f"state of user {user_id!r}: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        raise StateCorruptError(
            f"state of user {user_id!r}: malformed attribute ({error!r})"
        ) from None

    return StoredState(state=state, version=version)
