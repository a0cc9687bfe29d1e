"""The interaction event: what a mobile app says a user did with an item.

Events arrive as JSON (one per Kinesis record, or in a REST batch). :func:`parse_event` is
the only door into the domain: anything it returns is valid, anything else raises
:class:`~recsys.errors.InvalidEventError` naming the field and the reason.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from recsys.errors import InvalidEventError

ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"
MAX_ID_LENGTH = 64
MAX_EVENT_BYTES = 4096
MAX_FUTURE_SKEW = timedelta(minutes=5)

# Epoch milliseconds below this (early 1973) are almost surely epoch seconds sent by mistake.
MIN_EPOCH_MS = 100_000_000_000

Identifier = Annotated[
    str,
    Field(
        pattern=ID_PATTERN,
        description="1 to 64 characters from A-Z, a-z, 0-9 and _ . : @ -",
    ),
]


class EventType(StrEnum):
    """What the user did. Each type's weight is configuration (:class:`WeightConfig`)."""

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    RATING = "rating"
    LIKE = "like"
    DISLIKE = "dislike"


class Event(BaseModel):
    """One interaction, validated and normalised (timestamps in UTC)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    schema_version: Literal[1] = Field(default=1, description="Version of this event schema.")
    event_id: Identifier = Field(description="Unique id chosen by the sender; used to dedupe.")
    user_id: Identifier = Field(description="Who acted.")
    item_id: Identifier = Field(description="What they acted on.")
    event_type: EventType = Field(description="What they did.")
    value: float | None = Field(
        default=None, description="A rating, a watch fraction or a quantity, if the type has one."
    )
    timestamp: datetime = Field(description="When, as ISO 8601 or epoch milliseconds.")
    session_id: Identifier | None = Field(default=None, description="App session, if known.")

    @field_validator("value")
    @classmethod
    def _value_is_finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp_from_epoch_ms(cls, raw: Any) -> Any:
        if isinstance(raw, bool):
            raise ValueError("must be ISO 8601 or epoch milliseconds, not a boolean")
        if isinstance(raw, int | float):
            if not math.isfinite(raw):
                raise ValueError("must be a finite number of epoch milliseconds")
            if raw < MIN_EPOCH_MS:
                raise ValueError("epoch milliseconds expected; this looks like seconds")
            return datetime.fromtimestamp(raw / 1000.0, tz=UTC)
        return raw

    @field_validator("timestamp")
    @classmethod
    def _timestamp_in_utc_and_not_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone (for example a trailing Z)")
        value = value.astimezone(UTC)
        now = (info.context or {}).get("now") or datetime.now(UTC)
        if value > now + MAX_FUTURE_SKEW:
            raise ValueError("is more than 5 minutes in the future")
        return value

    @property
    def timestamp_ms(self) -> int:
        """The timestamp as integer epoch milliseconds."""
        return round(self.timestamp.timestamp() * 1000)


def parse_event(raw: bytes | str | dict[str, Any], now: datetime | None = None) -> Event:
    """Validate one event from its JSON text or decoded mapping.

    Parameters
    ----------
    raw
        The record's payload: UTF-8 JSON bytes, a JSON string, or an already decoded dict.
    now
        The clock against which "in the future" is judged; the current time by default.

    Raises
    ------
    InvalidEventError
        With a reason naming the offending field, for oversized, undecodable or invalid input.
    """
    if not isinstance(raw, dict) and _size(raw) <= MAX_EVENT_BYTES:
        # Fast path, three times quicker (the nightly job parses millions of lines): pydantic
        # parses the JSON itself. Anything it refuses takes the path below, which names the
        # problem the same way whatever the input.
        try:
            return Event.model_validate_json(raw, context={"now": now})
        except ValidationError:
            pass

    data = _decode(raw)
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    try:
        return Event.model_validate(data, context={"now": now})
    except ValidationError as error:
        raise InvalidEventError(describe_validation_error(error), event_id=event_id) from None


def describe_validation_error(error: ValidationError) -> str:
    """One line naming every failing field and why, without echoing the raw input."""
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in detail["loc"]) or "event"
        problems.append(f"{field}: {_short_message(detail)}")
    return "; ".join(problems)


def _short_message(detail: Any) -> str:
    if detail["type"] == "string_pattern_mismatch":
        return "must be 1 to 64 characters from A-Z, a-z, 0-9 and _ . : @ -"
    if detail["type"] == "extra_forbidden":
        return "is not a known field"
    message = str(detail["msg"])
    return message.removeprefix("Value error, ")


def _size(raw: bytes | str) -> int:
    return len(raw.encode("utf-8") if isinstance(raw, str) else raw)


def _decode(raw: bytes | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    size = _size(raw)
    if size > MAX_EVENT_BYTES:
        raise InvalidEventError(f"event: {size} bytes exceeds the limit of {MAX_EVENT_BYTES}")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidEventError(
            f"event: not valid UTF-8 JSON ({error.__class__.__name__})"
        ) from None
    if not isinstance(data, dict):
        raise InvalidEventError("event: must be a JSON object")
    return data
