"""Configuration of the model: event weights, recency decay, history bounds, ALS parameters.

Every number that shapes the model lives here, validated by pydantic, so that handlers can
build it from environment variables and tests can build it from literals.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recsys.events import EventType

DEFAULT_TYPE_WEIGHTS: dict[EventType, float] = {
    EventType.VIEW: 1.0,
    EventType.CLICK: 2.0,
    EventType.ADD_TO_CART: 4.0,
    EventType.PURCHASE: 8.0,
    EventType.RATING: 1.0,
    EventType.LIKE: 4.0,
    EventType.DISLIKE: -4.0,
}


class WeightConfig(BaseModel):
    """How much one event says about a user's taste, and how fast that fades.

    The weight of one event is ``type_weights[type]``; a rating event is scaled by its value
    divided by ``rating_scale`` when it has one. It then halves every ``half_life_days``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type_weights: dict[EventType, float] = Field(
        default_factory=lambda: dict(DEFAULT_TYPE_WEIGHTS),
        description="Weight of each event type; negative for an explicit dislike.",
    )
    rating_scale: float = Field(
        default=3.0, gt=0, description="A rating's value is divided by this before weighting."
    )
    half_life_days: float = Field(
        default=30.0, gt=0, description="Age at which an event counts half as much."
    )

    @model_validator(mode="after")
    def _every_type_has_a_weight(self) -> WeightConfig:
        missing = [t.value for t in EventType if t not in self.type_weights]
        if missing:
            raise ValueError(f"type_weights has no weight for {', '.join(missing)}")
        return self


class HistoryLimits(BaseModel):
    """Bounds on the history kept per user; they also bound the stored state's size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_events: int = Field(default=500, ge=1, le=500, description="Newest events kept.")
    max_age_days: float = Field(default=365.0, gt=0, description="Older events are dropped.")


class ALSConfig(BaseModel):
    """Parameters of implicit-feedback ALS (Hu, Koren and Volinsky 2008)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    factors: int = Field(default=64, ge=1, le=256, description="Latent dimension k.")
    regularization: float = Field(default=0.05, ge=0, description="L2 penalty on factors.")
    alpha: float = Field(default=2.0, gt=0, description="Confidence c = 1 + alpha * w.")
    iterations: int = Field(default=15, ge=1, le=100, description="ALS sweeps.")
    seed: int = Field(default=42, description="Seed of the factor initialisation.")


class ModelConfig(BaseModel):
    """Everything needed to turn events into a model and a history into a user vector."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weights: WeightConfig = Field(default_factory=WeightConfig)
    history: HistoryLimits = Field(default_factory=HistoryLimits)
    als: ALSConfig = Field(default_factory=ALSConfig)
