"""The train handler honours the API's edits: deletion markers and catalogue entries."""

from __future__ import annotations

from datetime import date

from recsys.adapters.catalog_table import DynamoDBCatalogStore
from recsys.adapters.deletions import DynamoDBDeletionRegistry
from recsys.adapters.s3 import S3ModelStore
from recsys.catalog import CatalogItem
from recsys.serving import load_published_model
from tests.functions.conftest import Deployment, load_event, seed_archive

SCHEDULE_DAY = date(2026, 12, 1)
FAR_FUTURE_MS = 4_000_000_000_000


def test_training_leaves_out_deleted_users_and_takes_the_admins_catalogue(
    deployment: Deployment,
) -> None:
    # GIVEN the seeded archive, user u-1 deleted after all their events, and an admin's
    # entry that hides item-3 and gives it an attribute
    seed_archive(deployment, SCHEDULE_DAY)
    dynamodb = deployment.client("dynamodb")
    refs = deployment.resources.refs
    DynamoDBDeletionRegistry(dynamodb, refs["DeletedUsersTable"]).record("u-1", FAR_FUTURE_MS)
    DynamoDBCatalogStore(dynamodb, refs["CatalogTable"]).put(
        CatalogItem(item_id="item-3", attributes={"brand": "acme"}, available=False)
    )

    # WHEN the nightly schedule runs
    report = deployment.invoke("train", load_event("train_schedule.json"))

    # THEN u-1's events (items 1 and 3) were not trained on, and the model carries the entry
    assert report["deleted_user_events"] == 2
    model = load_published_model(
        S3ModelStore(deployment.client("s3"), deployment.resources.model_bucket)
    )
    assert model is not None
    row = model.item_index["item-3"]
    assert not model.available[row]
    assert model.attributes_of(row) == ("brand:acme",)
