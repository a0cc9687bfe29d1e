"""Catalogue administration: create, replace, read and delete entries between trainings.

An admin's entry wins over the bulk catalogue at the next training (categories, attributes
and availability all come from it then). Availability also takes effect at once: a hidden
or deleted item leaves every list on the very next request, and an item shown again comes
back, through the availability aggregate serving reads per request. Category and attribute
edits of an item reach the filters with the next model; until then the filters use what
the serving model was built with.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recsys.catalog import (
    ATTRIBUTE_SEPARATOR,
    MAX_ATTRIBUTES,
    MAX_CATEGORIES,
    AttributeName,
    AttributeValue,
    CatalogItem,
    Category,
)
from recsys.errors import UnknownItemError
from recsys.model import ItemModel
from recsys.ports import Availability, CatalogStore

logger = logging.getLogger(__name__)


class CatalogEntryInput(BaseModel):
    """The whole of an entry; a PUT replaces what was there."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=512, description="Display name.")
    categories: list[Category] = Field(
        default_factory=list, max_length=MAX_CATEGORIES, description="Categories, in order."
    )
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict,
        max_length=MAX_ATTRIBUTES,
        description="Attributes for the attr=name:value filters, e.g. {'brand': 'acme'}.",
    )
    available: bool = Field(
        default=True, description="False hides the item from every list from the next request."
    )


class ItemView(BaseModel):
    """An item as the catalogue and the serving model describe it."""

    item_id: str
    title: str | None
    categories: list[str]
    attributes: dict[str, str]
    available: bool = Field(description="Whether lists may hold the item now.")
    source: Literal["catalog", "model"] = Field(
        description="'catalog' when an admin entry exists, else 'model' (what the serving "
        "model was built with)."
    )
    in_model: bool = Field(
        description="Whether the serving model has factors for the item; an item it lacks "
        "is recommended only after a training that saw events of it."
    )


class ItemDeletion(BaseModel):
    item_id: str
    entry_deleted: bool = Field(description="True if an admin entry existed and was removed.")
    hidden: bool = Field(description="Always true: a deleted item is never recommended again.")


def put_item(
    *, item_id: str, entry: CatalogEntryInput, store: CatalogStore, model: ItemModel | None
) -> ItemView:
    """Create or replace the entry of ``item_id``."""
    item = CatalogItem(
        item_id=item_id,
        title=entry.title,
        categories=tuple(entry.categories),
        attributes=dict(entry.attributes),
        available=entry.available,
    )
    store.put(item)
    logger.info("catalogue entry %s written (available=%s)", item_id, item.available)
    return _view_of_entry(item, model)


def view_item(*, item_id: str, store: CatalogStore, model: ItemModel | None) -> ItemView:
    """The admin entry of ``item_id`` if there is one, else what the model knows of it.

    Raises
    ------
    UnknownItemError
        If neither the catalogue table nor the serving model knows the item.
    """
    entry = store.get(item_id)
    if entry is not None:
        return _view_of_entry(entry, model)

    row = model.item_index.get(item_id) if model is not None else None
    if model is None or row is None:
        raise UnknownItemError(item_id)
    availability = store.availability()
    return ItemView(
        item_id=item_id,
        title=None,
        categories=list(model.categories_of(row)),
        attributes=dict(pair.split(ATTRIBUTE_SEPARATOR, 1) for pair in model.attributes_of(row)),
        available=_available(item_id, bool(model.available[row]), availability),
        source="model",
        in_model=True,
    )


def delete_item(*, item_id: str, store: CatalogStore, model: ItemModel | None) -> ItemDeletion:
    """Remove the entry of ``item_id`` and hide the item.

    Raises
    ------
    UnknownItemError
        If neither the catalogue table nor the serving model knows the item.
    """
    in_model = model is not None and item_id in model.item_index
    if not in_model and store.get(item_id) is None:
        raise UnknownItemError(item_id)
    existed = store.delete(item_id)
    return ItemDeletion(item_id=item_id, entry_deleted=existed, hidden=True)


def _view_of_entry(item: CatalogItem, model: ItemModel | None) -> ItemView:
    return ItemView(
        item_id=item.item_id,
        title=item.title,
        categories=list(item.categories),
        attributes=dict(item.attributes),
        available=item.available,
        source="catalog",
        in_model=model is not None and item.item_id in model.item_index,
    )


def _available(item_id: str, in_model_available: bool, availability: Availability) -> bool:
    if item_id in availability.hidden:
        return False
    return in_model_available or item_id in availability.shown
