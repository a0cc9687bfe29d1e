"""The package's own errors. Every failure the domain reports is one of these."""


class RecsysError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidEventError(RecsysError, ValueError):
    """An interaction event failed validation; ``reason`` names the field and the problem."""

    def __init__(self, reason: str, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


class InvalidRequestError(RecsysError, ValueError):
    """A recommendation request is malformed; maps to HTTP 400."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ModelIntegrityError(RecsysError):
    """A model artifact is unusable: missing, corrupt, wrong shape or non-finite factors."""


class ModelNotFoundError(ModelIntegrityError):
    """No model has been published yet, or the pointer names an artifact that is gone."""


class StateCorruptError(RecsysError):
    """A stored user state cannot be decoded."""


class ConcurrentUpdateError(RecsysError):
    """A conditional write lost the race too many times; the caller should retry later."""


class TrainingError(RecsysError):
    """The nightly training cannot produce a model from the data it was given."""


class DatasetNotFoundError(RecsysError):
    """A dataset's files are not where the configuration says; the message says what to set."""


class CatalogError(RecsysError, ValueError):
    """The catalogue object holds a line that is not a valid catalogue entry."""


class UnknownItemError(RecsysError, LookupError):
    """An item id that neither the serving model nor the catalogue knows; maps to HTTP 404."""

    def __init__(self, item_id: str) -> None:
        super().__init__(f"item {item_id!r} is not known")
        self.item_id = item_id
