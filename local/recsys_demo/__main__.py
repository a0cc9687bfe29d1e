"""`make demo`: MovieLens 100K through the whole product on the local stack.

1. the first 80% of ratings stream through Kinesis: ingest builds every user's history, the
   Firehose emulation archives them;
2. the nightly job runs through the train handler, on the archive;
3. one user's list, over HTTP, before and after a burst of that user's events;
4. the remaining 20% replay live: before each event, that user's list is fetched over HTTP
   and scored; then the event goes through Kinesis and ingest (prequential, end to end);
5. the same split replayed in-process for the three variants (real-time, no update,
   popularity), events per second ingested, freshness and latency percentiles.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from local_stack.producer import put_events
from local_stack.stack import LocalStack
from recsys.adapters.s3 import S3CatalogSource
from recsys.config import ModelConfig
from recsys.datasets import MovieLens, load_movielens
from recsys.evaluation import prequential_replay, split_by_time
from recsys.events import Event
from recsys.metrics import RankingAccumulator
from recsys_demo.data import DataUnavailableError, resolve_data_dir
from recsys_demo.http import get_json

REPO = Path(__file__).resolve().parents[2]
PUT_BATCH = 500
K = 10


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the recommender end to end locally.")
    parser.add_argument("--api-port", type=int, default=0, help="API port (default: any free)")
    parser.add_argument(
        "--live-events",
        type=int,
        default=5_000,
        help="test events replayed live over HTTP (default 5000; all 20000 take longer)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "build" / "demo.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    try:
        data_dir = resolve_data_dir()
    except DataUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    movielens = load_movielens(data_dir)
    say(
        1,
        f"loaded MovieLens 100K from {data_dir}: {len(movielens.events):,} ratings, "
        f"{len(movielens.log.user_ids):,} users, {len(movielens.catalog):,} movies",
    )

    figures: dict[str, Any] = {"dataset": "movielens-100k", "k": K}
    # The functions' logs and metrics go to a file, as they would go to CloudWatch.
    function_log = args.out.parent / "demo-functions.log"
    function_log.parent.mkdir(parents=True, exist_ok=True)
    function_log.write_text("")
    with LocalStack(REPO, api_port=args.api_port, function_log=function_log) as stack:
        say(
            2,
            f"local stack up: moto at {stack.endpoint_url}, API at {stack.api_url}; "
            f"function logs in {function_log}",
        )
        run(stack, movielens, args.live_events, figures)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def run(stack: LocalStack, movielens: MovieLens, live_events: int, figures: dict[str, Any]) -> None:
    train_events, test_events = split_by_time(movielens.events, 0.8)
    titles = {item.item_id: item.title or item.item_id for item in movielens.catalog}
    S3CatalogSource(stack.client("s3"), stack.resources.model_bucket).write_catalog(
        movielens.catalog
    )

    seconds = stream(stack, train_events, label="history")
    figures["ingest_events_per_second"] = round(len(train_events) / seconds, 1)
    say(
        3,
        f"streamed {len(train_events):,} events through Kinesis into ingest in "
        f"{seconds:.1f}s: {len(train_events) / seconds:,.0f} events/s "
        "(archived by the Firehose emulation)",
    )

    started = time.perf_counter()
    report = stack.run_schedule("TrainFunction")
    say(
        4,
        f"nightly training via the train handler: model {report['model_version']}, "
        f"{report['events_trained']:,} events, {report['users']} users, {report['items']} "
        f"items, {time.perf_counter() - started:.1f}s ({report['verdict']})",
    )
    figures["model"] = report

    burst_user, burst = pick_burst(test_events)
    before, after, freshness = show_burst(stack, burst_user, burst, titles)
    figures["burst"] = {"user_id": burst_user, "before": before, "after": after}

    burst_ids = {event.event_id for event in burst}
    remaining = [event for event in test_events if event.event_id not in burst_ids]
    live = live_replay(stack, remaining[:live_events], movielens, freshness)
    figures["live"] = live

    say(7, "in-process prequential replay of the same split (the handlers' own code)")
    replay = prequential_replay(
        movielens.events, movielens.catalog, ModelConfig(), k=K, dataset="movielens-100k"
    )
    figures["replay"] = replay.as_dict()
    print_summary(replay.variants, live, figures["ingest_events_per_second"])


def say(step: int, text: str) -> None:
    print(f"[{step}/7] {text}", flush=True)


def stream(stack: LocalStack, events: Sequence[Event], label: str) -> float:
    """Put events on the stream in order, wait until ingest caught up; return the seconds."""
    kinesis = stack.client("kinesis")
    started = time.perf_counter()
    for start in range(0, len(events), PUT_BATCH):
        chunk = events[start : start + PUT_BATCH]
        put_records(kinesis, stack.resources.stream_name, chunk)
        if (start // PUT_BATCH) % 20 == 0:
            print(f"      {label}: put {start + len(chunk):,}/{len(events):,}", flush=True)
    stack.wait_until_caught_up(timeout_s=600)
    return time.perf_counter() - started


def put_records(kinesis: Any, stream_name: str, events: Iterable[Event]) -> list[str]:
    """Put events on the stream as a producer should (see :mod:`local_stack.producer`)."""
    return put_events(kinesis, stream_name, events)


def pick_burst(test_events: Sequence[Event]) -> tuple[str, list[Event]]:
    """The test period's most active user, and that user's first ten test events."""
    counts: dict[str, int] = {}
    for event in test_events:
        counts[event.user_id] = counts.get(event.user_id, 0) + 1
    user = max(counts, key=lambda u: (counts[u], u))
    return user, [event for event in test_events if event.user_id == user][:10]


def show_burst(
    stack: LocalStack, user_id: str, burst: list[Event], titles: dict[str, str]
) -> tuple[list[str], list[str], list[float]]:
    url = f"{stack.api_url}/users/{user_id}/recommendations?k=5"
    before, _ = get_json(url, user_id)
    sequence = put_records(stack.client("kinesis"), stack.resources.stream_name, burst)[-1]
    sent = time.perf_counter()
    after = before
    while time.perf_counter() - sent < 30:
        after, _ = get_json(url, user_id)
        if after["last_sequence"] == sequence:
            break
        time.sleep(0.01)
    visible_after = time.perf_counter() - sent

    say(
        5,
        f"user {user_id}: list before and after a burst of {len(burst)} of their ratings "
        f"(visible {visible_after:.2f}s after PutRecords)",
    )
    print("      burst: " + "; ".join(titles.get(e.item_id, e.item_id) for e in burst[:5]) + " ...")
    for label, response in (("before", before), ("after", after)):
        print(f"      {label} ({response['source']}):")
        for item in response["items"]:
            print(f"        {item['score']:+.3f}  {titles.get(item['item_id'], item['item_id'])}")
    return (
        [item["item_id"] for item in before["items"]],
        [item["item_id"] for item in after["items"]],
        [visible_after],
    )


def live_replay(
    stack: LocalStack, events: Sequence[Event], movielens: MovieLens, freshness: list[float]
) -> dict[str, Any]:
    """Prequential replay through the running stack, in rounds of one event per user.

    A user's list depends only on that user's history and the model, so the k-th test event
    of every user can be scored in the same round: fetch all their lists over HTTP, put the
    round's events on the stream, wait until ingest has applied them, next round.
    """
    queues: dict[str, list[Event]] = {}
    for event in events:
        queues.setdefault(event.user_id, []).append(event)
    rounds = max((len(q) for q in queues.values()), default=0)
    say(6, f"live replay of {len(events):,} events over HTTP + Kinesis in {rounds} rounds")

    scores = RankingAccumulator(K)
    kinesis = stack.client("kinesis")
    with ThreadPoolExecutor(max_workers=4) as pool:
        for round_index in range(rounds):
            batch = [queue[round_index] for queue in queues.values() if len(queue) > round_index]
            responses = pool.map(
                lambda e: get_json(
                    f"{stack.api_url}/users/{e.user_id}/recommendations?k={K}", e.user_id
                ),
                batch,
            )
            for event, (body, _) in zip(batch, responses, strict=True):
                scores.add([item["item_id"] for item in body["items"]], event.item_id)
            for start in range(0, len(batch), PUT_BATCH):
                put_records(kinesis, stack.resources.stream_name, batch[start : start + PUT_BATCH])
            put_at = time.perf_counter()
            stack.mapping.wait_until_caught_up(timeout_s=120)
            freshness.append(time.perf_counter() - put_at)
            if round_index % 25 == 0:
                done = scores.summary(1)["events"]
                print(
                    f"      round {round_index + 1}/{rounds}: {done:,.0f} events scored", flush=True
                )

    summary = scores.summary(len(movielens.catalog))
    latencies = sequential_latencies(stack, sorted(queues), samples=500)
    return {
        "events": int(summary["events"]),
        "hit_rate": summary["hit_rate"],
        "ndcg": summary["ndcg"],
        "mrr": summary["mrr"],
        "latency_ms_p50": round(1000 * float(np.percentile(latencies, 50)), 2),
        "latency_ms_p99": round(1000 * float(np.percentile(latencies, 99)), 2),
        "freshness_s_p50": round(float(np.percentile(freshness, 50)), 3),
        "freshness_s_p99": round(float(np.percentile(freshness, 99)), 3),
        "requests": len(latencies),
    }


def sequential_latencies(stack: LocalStack, user_ids: list[str], samples: int) -> list[float]:
    """One request at a time, so the figures are service times, not queueing behind others."""
    rng = np.random.default_rng(0)
    chosen = rng.choice(user_ids, size=samples)
    return [
        get_json(f"{stack.api_url}/users/{user_id}/recommendations?k={K}", user_id)[1]
        for user_id in chosen
    ]


def print_summary(
    variants: dict[str, dict[str, float]], live: dict[str, Any], events_per_second: float
) -> None:
    print(f"\nreplay metrics, k={K} (prequential on the last 20% of MovieLens 100K):")
    print(f"  {'variant':<28}{'hit_rate':>10}{'ndcg':>10}{'mrr':>10}{'coverage':>10}")
    for name, values in variants.items():
        print(
            f"  {name + ' (in-process)':<28}{values['hit_rate']:>10.4f}{values['ndcg']:>10.4f}"
            f"{values['mrr']:>10.4f}{values['coverage']:>10.4f}"
        )
    label = f"realtime (live, {live['events']:,} ev)"
    print(f"  {label:<28}{live['hit_rate']:>10.4f}{live['ndcg']:>10.4f}{live['mrr']:>10.4f}")
    lift = variants["realtime"]["hit_rate"] / variants["no_update"]["hit_rate"]
    print(f"  real-time / no-update hit rate: {lift:.2f}x")
    print(f"\ningest: {events_per_second:,.0f} events/s through Kinesis into DynamoDB")
    print(
        f"freshness (PutRecords -> user state updated): p50 {live['freshness_s_p50']:.3f}s, "
        f"p99 {live['freshness_s_p99']:.3f}s"
    )
    print(
        f"recommend over HTTP, one request at a time: p50 {live['latency_ms_p50']:.1f} ms, "
        f"p99 {live['latency_ms_p99']:.1f} ms ({live['requests']:,} requests)"
    )


if __name__ == "__main__":
    sys.exit(main())
