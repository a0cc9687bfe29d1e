"""Poison records go to the failure queue with their reason and never block valid ones."""

from __future__ import annotations

import json
import random
from collections import Counter

from recsys.adapters.dynamodb import DynamoDBUserStateStore
from tests.factories import kinesis_event

POISON_KINDS = {
    "not base64": None,  # replaced after encoding, see _poison_record
    "not json": b"{this is not json",
    "wrong schema": json.dumps({"event_id": "p", "user_id": "u", "what": "no"}).encode(),
    "oversized": json.dumps({"event_id": "big", "padding": "x" * 5000}).encode(),
    "unknown event type": json.dumps(
        {
            "event_id": "t",
            "user_id": "u-1",
            "item_id": "i-1",
            "event_type": "teleport",
            "timestamp": "2026-11-30T10:00:00Z",
        }
    ).encode(),
    "10 KB item id": json.dumps(
        {
            "event_id": "l",
            "user_id": "u-1",
            "item_id": "i" * 10_000,
            "event_type": "view",
            "timestamp": "2026-11-30T10:00:00Z",
        }
    ).encode(),
}


def _valid(n: int, rng: random.Random) -> tuple[str, bytes]:
    user = f"u-{rng.randrange(40)}"
    event = {
        "event_id": f"evt-{n:05d}",
        "user_id": user,
        "item_id": f"item-{rng.randrange(300)}",
        "event_type": rng.choice(["view", "click", "purchase", "like"]),
        "timestamp": f"2026-11-{1 + n // 100:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
    }
    return user, json.dumps(event).encode()


def test_thousand_records_with_five_percent_poison_apply_every_valid_one_exactly_once(deployment):
    # GIVEN 1,000 records in order, 50 of them poison of six kinds, spread through the stream
    rng = random.Random(5)
    kinds = list(POISON_KINDS)
    poison_at = set(rng.sample(range(1000), 50))
    payloads, expected, poison_sent = [], {}, Counter()
    for n in range(1000):
        if n in poison_at:
            kind = kinds[sum(poison_sent.values()) % len(kinds)]
            poison_sent[kind] += 1
            payloads.append(("u-poison", POISON_KINDS[kind] or b"\x00"))
        else:
            user, data = _valid(n, rng)
            payloads.append((user, data))
            expected.setdefault(user, set()).add(json.loads(data)["event_id"])
    event = kinesis_event(payloads)
    for record, n in zip(event["Records"], range(1000), strict=True):
        if n in poison_at and payloads[n][1] == b"\x00":
            record["kinesis"]["data"] = "%%% not base64 %%%"

    # WHEN delivered in batches of 100, two of them delivered twice (at least once)
    batches = [event["Records"][start : start + 100] for start in range(0, 1000, 100)]
    responses = [deployment.invoke("ingest", {"Records": b}) for b in batches]
    responses += [deployment.invoke("ingest", {"Records": batches[i]}) for i in (2, 7)]

    # THEN nothing is reported for retry: the valid records are applied, poison is dead-lettered
    assert all(response == {"batchItemFailures": []} for response in responses)
    store = DynamoDBUserStateStore(deployment.client("dynamodb"), deployment.resources.table_name)
    for user, event_ids in expected.items():
        history = store.get(user).state.history
        assert sorted(entry.event_id for entry in history) == sorted(event_ids)

    # AND every poison record reached the failure queue once per delivery, with its reason
    reasons = _drain(deployment)
    poison_in_redelivered = sum(1 for n in poison_at if 200 <= n < 300 or 700 <= n < 800)
    assert len(reasons) == 50 + poison_in_redelivered
    assert {r.split(":")[0] for r in reasons} >= {"record", "event", "event_type", "item_id"}


def _drain(deployment) -> list[str]:
    sqs = deployment.client("sqs")
    reasons = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=deployment.resources.failure_queue_url, MaxNumberOfMessages=10
        ).get("Messages", [])
        if not messages:
            return reasons
        for message in messages:
            body = json.loads(message["Body"])
            assert body["data"] is not None and body["sequence_number"]
            reasons.append(body["reason"])
            sqs.delete_message(
                QueueUrl=deployment.resources.failure_queue_url,
                ReceiptHandle=message["ReceiptHandle"],
            )
