"""Each function's settings: validated pydantic models whose fields are the env variables.

Handlers read them when an invocation starts, never at import time, so a test (or the local
stack) can set the environment first and import afterwards in any order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys.config import ALSConfig, HistoryLimits, ModelConfig, WeightConfig
from recsys.errors import RecsysError


class SettingsError(RecsysError):
    """The function's environment is missing a variable or holds an invalid value."""


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Validate the settings from ``environ`` (the process environment by default).

        Raises
        ------
        SettingsError
            Naming every missing or invalid variable.
        """
        source = os.environ if environ is None else environ
        try:
            return cls.model_validate(
                {name: source[name] for name in cls.model_fields if name in source}
            )
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in error.errors(include_url=False)
            )
            raise SettingsError(f"invalid environment for {cls.__name__}: {problems}") from None


class StateSettings(_Settings):
    """What every function that touches user state and the serving model needs."""

    USER_STATE_TABLE: str = Field(min_length=3, description="DynamoDB table of user states.")
    MODEL_BUCKET: str = Field(min_length=3, description="S3 bucket of model artifacts.")
    MODEL_PREFIX: str = Field(default="models/", description="Key prefix of model artifacts.")
    MODEL_REFRESH_SECONDS: float = Field(
        default=60.0, ge=0, description="Minimum seconds between two checks of the pointer."
    )
    HISTORY_MAX_EVENTS: int = Field(default=500, ge=1, le=500, description="Events kept per user.")
    HISTORY_MAX_AGE_DAYS: float = Field(default=365.0, gt=0, description="Oldest event kept.")

    @property
    def history_limits(self) -> HistoryLimits:
        return HistoryLimits(
            max_events=self.HISTORY_MAX_EVENTS, max_age_days=self.HISTORY_MAX_AGE_DAYS
        )


class IngestSettings(StateSettings):
    FAILURE_QUEUE_URL: str | None = Field(
        default=None,
        description="SQS queue for records that can never succeed; unset: report them failed.",
    )
    DELETED_USERS_TABLE: str | None = Field(
        default=None,
        min_length=3,
        description="DynamoDB table of deletion markers; unset: no event is dropped for them.",
    )


class RecommendSettings(StateSettings):
    """The API's settings. A feature whose resource is not configured answers 503."""

    CATALOG_TABLE: str | None = Field(
        default=None, min_length=3, description="DynamoDB table of catalogue edits."
    )
    DELETED_USERS_TABLE: str | None = Field(
        default=None, min_length=3, description="DynamoDB table of deletion markers."
    )
    DELETION_RETENTION_DAYS: float = Field(
        default=400.0, gt=0, description="Days a deletion marker is kept (the archive's)."
    )
    STREAM_NAME: str | None = Field(
        default=None, min_length=1, description="Kinesis stream the events endpoint puts on."
    )


class TrainSettings(_Settings):
    MODEL_BUCKET: str = Field(min_length=3)
    MODEL_PREFIX: str = Field(default="models/")
    ARCHIVE_BUCKET: str = Field(min_length=3, description="S3 bucket Firehose archives into.")
    ARCHIVE_PREFIX: str = Field(default="events/")
    CATALOG_KEY: str = Field(default="catalog/items.jsonl", description="Catalogue object key.")
    CATALOG_TABLE: str | None = Field(
        default=None, min_length=3, description="Catalogue edits; they win over the object."
    )
    DELETED_USERS_TABLE: str | None = Field(
        default=None, min_length=3, description="Deletion markers; their events are left out."
    )
    TRAIN_WINDOW_DAYS: int = Field(default=180, ge=1, le=3650, description="Days of archive.")
    ALS_FACTORS: int = Field(default=64, ge=1, le=256)
    ALS_REGULARIZATION: float = Field(default=0.05, ge=0)
    ALS_ALPHA: float = Field(default=2.0, gt=0)
    ALS_ITERATIONS: int = Field(default=15, ge=1, le=100)
    HALF_LIFE_DAYS: float = Field(default=30.0, gt=0)
    QUALITY_MAX_RELATIVE_DROP: float = Field(
        default=0.1, ge=0, le=1, description="Largest holdout hit-rate drop a new model may show."
    )

    @property
    def model_config_(self) -> ModelConfig:
        return ModelConfig(
            weights=WeightConfig(half_life_days=self.HALF_LIFE_DAYS),
            als=ALSConfig(
                factors=self.ALS_FACTORS,
                regularization=self.ALS_REGULARIZATION,
                alpha=self.ALS_ALPHA,
                iterations=self.ALS_ITERATIONS,
            ),
        )
