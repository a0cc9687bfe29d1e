"""Catalogue entries: what the filters know about an item besides its factors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from recsys.events import Identifier

Category = str


class CatalogItem(BaseModel):
    """One item of the catalogue, as the filters see it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: Identifier = Field(description="The item's id, as events name it.")
    title: str | None = Field(default=None, max_length=512, description="Display name.")
    categories: tuple[str, ...] = Field(
        default=(), max_length=32, description="Categories for include/exclude filters."
    )
    available: bool = Field(default=True, description="False hides the item from every list.")
