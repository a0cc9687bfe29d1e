"""A fake repository for the stack tests: the real template, small fake handlers.

The repository holds a copy of the product's template.yaml and handlers written here, so
the wiring (which function reads the stream, where failures go, which route the API
serves, what each function's environment is) is the template's, and the handlers' logic
is not under test.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from local_stack.auth import auth_header
from local_stack.stack import LocalStack
from tests.local_stack.helpers import write_function

REPO_ROOT = Path(__file__).resolve().parents[2]

INGEST = """
    import base64
    import json
    import os

    import boto3


    def lambda_handler(event, context):
        table = boto3.resource("dynamodb").Table(os.environ["USER_STATE_TABLE"])
        for record in event["Records"]:
            interaction = json.loads(base64.b64decode(record["kinesis"]["data"]))
            if interaction["item_id"] == "poison":
                raise ValueError("poison event")
            item = {"user_id": interaction["user_id"], "last_item": interaction["item_id"]}
            table.put_item(Item=item)
        return {"batchItemFailures": []}
"""

RECOMMEND = """
    import json
    import os

    import boto3


    def lambda_handler(event, context):
        table = boto3.resource("dynamodb").Table(os.environ["USER_STATE_TABLE"])
        user_id = event["pathParameters"]["userId"]
        state = table.get_item(Key={"user_id": user_id}).get("Item")
        if state is None:
            return {"statusCode": 404, "body": json.dumps({"message": "unknown user"})}
        body = {"user_id": user_id, "items": [state["last_item"]]}
        return {"statusCode": 200, "body": json.dumps(body)}
"""

TRAIN = """
    import os

    import fake_layer


    def lambda_handler(event, context):
        return {
            "detail_type": event["detail-type"],
            "archive_bucket": os.environ["ARCHIVE_BUCKET"],
            "endpoint_url": os.environ["AWS_ENDPOINT_URL"],
            "function_name": context.function_name,
            "layer": fake_layer.NAME,
        }
"""


def make_repository(root: Path) -> Path:
    """A repository with the real template and fake functions and layer."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "template.yaml", root / "template.yaml")
    write_function(root / "functions" / "ingest", INGEST)
    write_function(root / "functions" / "recommend", RECOMMEND)
    write_function(root / "functions" / "train", TRAIN)
    (root / "shared").mkdir()
    (root / "shared" / "fake_layer.py").write_text('NAME = "fake layer"\n', encoding="utf-8")
    return root


def put_interaction(stack: LocalStack, user_id: str, item_id: str) -> None:
    body = {"event_id": f"{user_id}-{item_id}", "user_id": user_id, "item_id": item_id}
    stack.client("kinesis").put_record(
        StreamName=stack.resources.stream_name,
        Data=json.dumps(body).encode(),
        PartitionKey=user_id,
    )


def get_json(url: str, user: str | None = None) -> tuple[int, Any]:
    """GET a URL of the local API, as ``user`` (with a local test token) when given."""
    request = urllib.request.Request(url, headers=auth_header(user) if user else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
