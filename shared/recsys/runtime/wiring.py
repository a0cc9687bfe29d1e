"""Builds each function's adapters once per container, from its settings.

boto3 clients are created on first use, with botocore's standard retry mode: throttling and
transient errors are retried with exponential backoff before they reach the domain. They
honour ``AWS_ENDPOINT_URL``, which is how the local stack points them at its moto server.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from recsys.adapters.dynamodb import DynamoDBUserStateStore
from recsys.adapters.s3 import S3CatalogSource, S3EventArchive, S3ModelStore
from recsys.adapters.sqs import SqsDeadLetterQueue
from recsys.runtime.settings import IngestSettings, RecommendSettings, TrainSettings
from recsys.serving import ModelCache

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=2,
    read_timeout=10,
)


def client(service: str) -> Any:
    """A boto3 client with the project's retry and timeout settings."""
    return boto3.client(service, config=CLIENT_CONFIG)


@dataclass(frozen=True)
class IngestDependencies:
    settings: IngestSettings
    states: DynamoDBUserStateStore
    models: ModelCache
    dead_letters: SqsDeadLetterQueue | None


@dataclass(frozen=True)
class RecommendDependencies:
    settings: RecommendSettings
    states: DynamoDBUserStateStore
    models: ModelCache


@dataclass(frozen=True)
class TrainDependencies:
    settings: TrainSettings
    models: S3ModelStore
    archive: S3EventArchive
    catalog: S3CatalogSource


@cache
def ingest_dependencies(settings: IngestSettings) -> IngestDependencies:
    """The ingest function's adapters; cached, so a warm container reuses them."""
    s3 = client("s3")
    return IngestDependencies(
        settings=settings,
        states=DynamoDBUserStateStore(client("dynamodb"), settings.USER_STATE_TABLE),
        models=ModelCache(
            S3ModelStore(s3, settings.MODEL_BUCKET, settings.MODEL_PREFIX),
            refresh_seconds=settings.MODEL_REFRESH_SECONDS,
        ),
        dead_letters=(
            SqsDeadLetterQueue(client("sqs"), settings.FAILURE_QUEUE_URL)
            if settings.FAILURE_QUEUE_URL
            else None
        ),
    )


@cache
def recommend_dependencies(settings: RecommendSettings) -> RecommendDependencies:
    """The recommend function's adapters; the model cache lives as long as the container."""
    return RecommendDependencies(
        settings=settings,
        states=DynamoDBUserStateStore(client("dynamodb"), settings.USER_STATE_TABLE),
        models=ModelCache(
            S3ModelStore(client("s3"), settings.MODEL_BUCKET, settings.MODEL_PREFIX),
            refresh_seconds=settings.MODEL_REFRESH_SECONDS,
        ),
    )


@cache
def train_dependencies(settings: TrainSettings) -> TrainDependencies:
    s3 = client("s3")
    return TrainDependencies(
        settings=settings,
        models=S3ModelStore(s3, settings.MODEL_BUCKET, settings.MODEL_PREFIX),
        archive=S3EventArchive(s3, settings.ARCHIVE_BUCKET, settings.ARCHIVE_PREFIX),
        catalog=S3CatalogSource(s3, settings.MODEL_BUCKET, settings.CATALOG_KEY),
    )


def reset_containers() -> None:
    """Forget every cached client, store and model, as a brand-new container would.

    For tests and the local stack: a warm Lambda container never calls it.
    """
    ingest_dependencies.cache_clear()
    recommend_dependencies.cache_clear()
    train_dependencies.cache_clear()
