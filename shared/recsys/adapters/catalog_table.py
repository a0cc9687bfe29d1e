"""Catalogue edits in DynamoDB: one item per edited entry, plus one availability aggregate.

Item layout of an entry (key ``item_id``):

============ ==== ==========================================================
attribute    type content
============ ==== ==========================================================
item_id      S    partition key, a valid item id (never starts with ``#``)
title        S    only when set
categories   L    list of S, in the order given
attributes   M    name -> S
available    BOOL
updated_at   N    epoch milliseconds of the write
============ ==== ==========================================================

The aggregate ``#availability`` holds two string sets, ``hidden`` and ``shown`` (absent when
empty: DynamoDB has no empty sets). Every write of an entry updates the aggregate in the same
transaction, so serving reads the whole of what is hidden with one consistent GetItem per
request, and a hide is visible on the very next request.

NOTE: a deleted item stays in ``hidden`` for good, and one DynamoDB item holds at most 400 KB
(about 5,000 ids of 64 characters); pruning ids the catalogue and the model have both
forgotten belongs in the nightly job once deletions come in such numbers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from botocore.client import BaseClient
from pydantic import ValidationError

from recsys.catalog import CatalogItem
from recsys.errors import CatalogError
from recsys.ports import Availability, CatalogSource

logger = logging.getLogger(__name__)

AVAILABILITY_KEY = "#availability"

Item = dict[str, dict[str, Any]]


class DynamoDBCatalogStore:
    """A :class:`recsys.ports.CatalogStore` and :class:`recsys.ports.CatalogSource`.

    Parameters
    ----------
    client : botocore.client.BaseClient
        A low-level ``boto3.client("dynamodb")``.
    table_name : str
        The catalogue table, keyed by ``item_id`` alone.
    clock : Callable[[], float], optional
        Seconds since the epoch, for ``updated_at``.
    """

    def __init__(
        self, client: BaseClient, table_name: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._clock = clock

    def get(self, item_id: str) -> CatalogItem | None:
        """The entry of ``item_id``, read consistently; None when there is none.

        Raises
        ------
        CatalogError
            If the stored item is not a valid entry.
        """
        response = self._client.get_item(
            TableName=self._table_name, Key={"item_id": {"S": item_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else _decode_entry(item)

    def put(self, item: CatalogItem) -> None:
        """Create or replace an entry and move it to ``hidden`` or ``shown``, atomically."""
        hide = not item.available
        self._client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": self._table_name, "Item": self._encode_entry(item)}},
                self._availability_update(item.item_id, hide=hide),
            ]
        )
        logger.info("stored catalogue entry %s (available=%s)", item.item_id, item.available)

    def delete(self, item_id: str) -> bool:
        """Remove an entry and hide the item, atomically; True if there was an entry.

        The item stays hidden after its entry is gone: the model may still have factors for
        it until the next training, and a deleted item must not be recommended meanwhile.
        """
        existed = self.get(item_id) is not None
        self._client.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": self._table_name, "Key": {"item_id": {"S": item_id}}}},
                self._availability_update(item_id, hide=True),
            ]
        )
        logger.info("deleted catalogue entry %s (existed=%s)", item_id, existed)
        return existed

    def availability(self) -> Availability:
        """The hidden and shown sets, with one strongly consistent read."""
        response = self._client.get_item(
            TableName=self._table_name,
            Key={"item_id": {"S": AVAILABILITY_KEY}},
            ConsistentRead=True,
        )
        item = response.get("Item") or {}
        return Availability(
            hidden=frozenset(item.get("hidden", {}).get("SS", ())),
            shown=frozenset(item.get("shown", {}).get("SS", ())),
        )

    def read_catalog(self) -> list[CatalogItem]:
        """Every entry, plus an unavailable entry for each hidden item that has none.

        Raises
        ------
        CatalogError
            If a stored entry is not valid.
        """
        entries: dict[str, CatalogItem] = {}
        availability = Availability()
        for item in self._scan():
            item_id = item["item_id"]["S"]
            if item_id == AVAILABILITY_KEY:
                availability = Availability(
                    hidden=frozenset(item.get("hidden", {}).get("SS", ())),
                    shown=frozenset(item.get("shown", {}).get("SS", ())),
                )
            elif not item_id.startswith("#"):
                entries[item_id] = _decode_entry(item)

        for item_id in sorted(availability.hidden - set(entries)):
            entries[item_id] = CatalogItem(item_id=item_id, available=False)
        return [entries[item_id] for item_id in sorted(entries)]

    def _scan(self) -> Iterator[Item]:
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(TableName=self._table_name, ConsistentRead=True):
            yield from page.get("Items", [])

    def _availability_update(self, item_id: str, *, hide: bool) -> dict[str, Any]:
        added, removed = ("hidden", "shown") if hide else ("shown", "hidden")
        return {
            "Update": {
                "TableName": self._table_name,
                "Key": {"item_id": {"S": AVAILABILITY_KEY}},
                "UpdateExpression": "ADD #added :ids DELETE #removed :ids",
                "ExpressionAttributeNames": {"#added": added, "#removed": removed},
                "ExpressionAttributeValues": {":ids": {"SS": [item_id]}},
            }
        }

    def _encode_entry(self, item: CatalogItem) -> Item:
        encoded: Item = {
            "item_id": {"S": item.item_id},
            "categories": {"L": [{"S": category} for category in item.categories]},
            "attributes": {"M": {name: {"S": value} for name, value in item.attributes.items()}},
            "available": {"BOOL": item.available},
            "updated_at": {"N": str(int(self._clock() * 1000))},
        }
        if item.title is not None:
            encoded["title"] = {"S": item.title}
        return encoded


def _decode_entry(item: Item) -> CatalogItem:
    try:
        return CatalogItem(
            item_id=item["item_id"]["S"],
            title=item["title"]["S"] if "title" in item else None,
            categories=tuple(value["S"] for value in item.get("categories", {}).get("L", [])),
            attributes={
                name: value["S"] for name, value in item.get("attributes", {}).get("M", {}).items()
            },
            available=item.get("available", {}).get("BOOL", True),
        )
    except (KeyError, TypeError, ValidationError) as error:
        raise CatalogError(f"catalogue entry is malformed: {error}") from None


class OverlaidCatalogSource:
    """A :class:`recsys.ports.CatalogSource` whose overlay entries replace the base's whole.

    The nightly job reads the S3 catalogue as the base and the admins' table as the overlay:
    an entry an admin wrote wins over the bulk catalogue.
    """

    def __init__(self, base: CatalogSource, overlay: CatalogSource) -> None:
        self._base = base
        self._overlay = overlay

    def read_catalog(self) -> list[CatalogItem]:
        """The base's entries with the overlay's replacing them, then the overlay's new ones."""
        overrides = {item.item_id: item for item in self._overlay.read_catalog()}
        merged = [overrides.pop(item.item_id, item) for item in self._base.read_catalog()]
        return merged + list(overrides.values())
