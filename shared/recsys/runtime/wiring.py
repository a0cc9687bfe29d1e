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

from recsys.adapters.catalog_table import DynamoDBCatalogStore, OverlaidCatalogSource
from recsys.adapters.deletions import DynamoDBDeletionRegistry
from recsys.adapters.dynamodb import DynamoDBUserStateStore
from recsys.adapters.kinesis import KinesisEventPublisher
from recsys.adapters.s3 import S3CatalogSource, S3EventArchive, S3ModelStore
from recsys.adapters.sqs import SqsDeadLetterQueue
from recsys.ports import CatalogSource
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
    deletions: DynamoDBDeletionRegistry | None = None


@dataclass(frozen=True)
class RecommendDependencies:
    """The API's adapters; those left None answer their endpoints with 503."""

    settings: RecommendSettings
    states: DynamoDBUserStateStore
    models: ModelCache
    catalog: DynamoDBCatalogStore | None = None
    deletions: DynamoDBDeletionRegistry | None = None
    events: KinesisEventPublisher | None = None


@dataclass(frozen=True)
class TrainDependencies:
    settings: TrainSettings
    models: S3ModelStore
    archive: S3EventArchive
    catalog: CatalogSource
    deletions: DynamoDBDeletionRegistry | None = None


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
        deletions=(
            DynamoDBDeletionRegistry(client("dynamodb"), settings.DELETED_USERS_TABLE)
            if settings.DELETED_USERS_TABLE
            else None
        ),
    )


@cache
def recommend_dependencies(settings: RecommendSettings) -> RecommendDependencies:
    """The recommend function's adapters; the model cache lives as long as the container."""
    dynamodb = client("dynamodb")
    return RecommendDependencies(
        settings=settings,
        states=DynamoDBUserStateStore(dynamodb, settings.USER_STATE_TABLE),
        models=ModelCache(
            S3ModelStore(client("s3"), settings.MODEL_BUCKET, settings.MODEL_PREFIX),
            refresh_seconds=settings.MODEL_REFRESH_SECONDS,
        ),
        catalog=(
            DynamoDBCatalogStore(dynamodb, settings.CATALOG_TABLE)
            if settings.CATALOG_TABLE
            else None
        ),
        deletions=(
            DynamoDBDeletionRegistry(
                dynamodb,
                settings.DELETED_USERS_TABLE,
                retention_days=settings.DELETION_RETENTION_DAYS,
            )
            if settings.DELETED_USERS_TABLE
            else None
        ),
        events=(
            KinesisEventPublisher(client("kinesis"), settings.STREAM_NAME)
            if settings.STREAM_NAME
            else None
        ),
    )


@cache
def train_dependencies(settings: TrainSettings) -> TrainDependencies:
    """The trainer's adapters: the catalogue is the S3 object overlaid by the admins' edits."""
    s3 = client("s3")
    catalog: CatalogSource = S3CatalogSource(s3, settings.MODEL_BUCKET, settings.CATALOG_KEY)
    if settings.CATALOG_TABLE:
        edits = DynamoDBCatalogStore(client("dynamodb"), settings.CATALOG_TABLE)
        catalog = OverlaidCatalogSource(base=catalog, overlay=edits)
    return TrainDependencies(
        settings=settings,
        models=S3ModelStore(s3, settings.MODEL_BUCKET, settings.MODEL_PREFIX),
        archive=S3EventArchive(s3, settings.ARCHIVE_BUCKET, settings.ARCHIVE_PREFIX),
        catalog=catalog,
        deletions=(
            DynamoDBDeletionRegistry(client("dynamodb"), settings.DELETED_USERS_TABLE)
            if settings.DELETED_USERS_TABLE
            else None
        ),
    )


def reset_containers() -> None:
    """Forget every cached client, store and model, as a brand-new container would.

    For tests and the local stack: a warm Lambda container never calls it.
    """
    ingest_dependencies.cache_clear()
    recommend_dependencies.cache_clear()
    train_dependencies.cache_clear()
