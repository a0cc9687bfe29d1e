"""Catalogue entries: what the filters know about an item besides its factors.

Attributes are free-form ``name -> value`` pairs (``brand: acme``, ``colour: red``). A filter
names one as ``name:value``; the name may not hold a colon, so the first colon splits it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from recsys.events import Identifier

CATEGORY_PATTERN = r"^[^\x00-\x1f,]{1,64}$"
ATTRIBUTE_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
ATTRIBUTE_VALUE_PATTERN = r"^[^\x00-\x1f]{1,128}$"
ATTRIBUTE_SEPARATOR = ":"
MAX_CATEGORIES = 32
MAX_ATTRIBUTES = 32

Category = Annotated[
    str,
    StringConstraints(pattern=CATEGORY_PATTERN),
    Field(description="1 to 64 characters, no comma and no control character."),
]
AttributeName = Annotated[
    str,
    StringConstraints(pattern=ATTRIBUTE_NAME_PATTERN),
    Field(description="1 to 64 characters from A-Z, a-z, 0-9 and _ . -"),
]
AttributeValue = Annotated[
    str,
    StringConstraints(pattern=ATTRIBUTE_VALUE_PATTERN),
    Field(description="1 to 128 characters, no control character."),
]


def attribute_pair(name: str, value: str) -> str:
    """The ``name:value`` text under which the model indexes one attribute."""
    return f"{name}{ATTRIBUTE_SEPARATOR}{value}"


class CatalogItem(BaseModel):
    """One item of the catalogue, as the filters see it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: Identifier = Field(description="The item's id, as events name it.")
    title: str | None = Field(default=None, max_length=512, description="Display name.")
    categories: tuple[str, ...] = Field(
        default=(), max_length=MAX_CATEGORIES, description="Categories for include/exclude filters."
    )
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict,
        max_length=MAX_ATTRIBUTES,
        description="Attributes for the 'attr=name:value' filters, e.g. {'brand': 'acme'}.",
    )
    available: bool = Field(default=True, description="False hides the item from every list.")

    @property
    def attribute_pairs(self) -> tuple[str, ...]:
        """The attributes as sorted ``name:value`` texts."""
        return tuple(sorted(attribute_pair(name, value) for name, value in self.attributes.items()))
