"""Run the local stack until Ctrl-C: ``python -m local_stack [--api-port 3000]``.

``--seed-movielens`` gives the API a model to serve within seconds, and
``--schedule-every SECONDS`` retrains on the archive as the nightly schedule would.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from local_stack.producer import put_events
from local_stack.stack import DEFAULT_PREFIX, TEMPLATE_NAME, LocalStack
from recsys.adapters.s3 import S3CatalogSource, S3EventArchive
from recsys.datasets import load_movielens
from recsys.errors import DatasetNotFoundError

# local/local_stack/__main__.py sits two folders below the repository root.
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _parameter(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected Name=Value, got {text!r}")
    return name, value


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack",
        description="Run template.yaml locally on moto: API, stream poller and archive.",
    )
    parser.add_argument("--api-port", type=int, default=3000, help="API port (3000)")
    parser.add_argument("--moto-port", type=int, default=5000, help="AWS endpoint port (5000)")
    parser.add_argument("--repo-root", type=Path, default=_REPO_ROOT, help="holds template.yaml")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="resource name prefix")
    parser.add_argument(
        "--parameter",
        type=_parameter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter override, e.g. LogLevel=DEBUG; repeatable",
    )
    parser.add_argument("--no-api", action="store_true", help="do not serve the API")
    parser.add_argument("--no-poller", action="store_true", help="do not feed the stream")
    parser.add_argument("--no-firehose", action="store_true", help="do not archive the stream")
    parser.add_argument("--log-level", default="INFO", help="log level (INFO)")
    parser.add_argument(
        "--seed-movielens",
        action="store_true",
        help="archive MovieLens 100K (from $RECSYS_DATA_DIR), train a model on it at start, "
        "then stream the ratings through Kinesis so users' histories fill in",
    )
    parser.add_argument(
        "--schedule-every",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="run the Schedule events (nightly training) every SECONDS, as EventBridge would "
        "(default: never; training then runs only with --seed-movielens)",
    )
    return parser.parse_args(argv)


def _banner(stack: LocalStack) -> str:
    resources = stack.resources
    endpoint = stack.endpoint_url
    lines = [
        "",
        "Local stack running; Ctrl-C stops it.",
        f"  AWS endpoint (moto)  {endpoint}",
    ]
    if stack.api is not None:
        lines.append(f"  API                  {stack.api_url}")
        lines.extend(
            f"    {route.method} {route.path} -> {route.logical_id}" for route in stack.api.routes
        )
    lines += [
        f"  stream               {resources.stream_name}",
        f"  user state table     {resources.table_name}",
        f"  model bucket         {resources.model_bucket}",
        f"  archive bucket       {resources.archive_bucket}",
        f"  failure queue        {resources.failure_queue_url}",
        "",
        "Try:",
    ]
    python = sys.executable
    if stack.api is not None:
        lines.append(
            f'  curl -s -H "Authorization: Bearer $({python} -m local_stack.token --user u1)" '
            f"{stack.api_url}/me/recommendations"
        )
    lines += [
        f"  {python} -m local_stack.put_event --endpoint-url {endpoint} "
        f"--stream {resources.stream_name} --user u1 --item i42 --type click",
        f"  {python} -c \"import boto3; print(boto3.client('s3', endpoint_url="
        f"'{endpoint}', region_name='us-east-1', aws_access_key_id='testing', "
        "aws_secret_access_key='testing').list_objects_v2("
        f"Bucket='{resources.archive_bucket}').get('KeyCount'))\"",
        "",
    ]
    return "\n".join(lines)


def run_schedules(stack: LocalStack) -> None:
    """Fire every function's Schedule event once, as EventBridge would on its cron."""
    for logical_id in stack.scheduled_functions():
        try:
            result = stack.run_schedule(logical_id)
            print(f"schedule ran {logical_id}: {json.dumps(result)[:300]}", flush=True)
        except Exception as error:  # noqa: BLE001 - a failed run is reported, the stack goes on
            print(f"schedule run of {logical_id} failed: {error}", flush=True)


def seed_movielens(stack: LocalStack, stop: threading.Event) -> bool:
    """Archive MovieLens as Firehose would, train on it, then stream it into ingest.

    Training comes first so that the API has a model within seconds; the ratings then go
    through Kinesis in a background thread, building every user's history as they would
    have been built live.
    """
    try:
        movielens = load_movielens()
    except DatasetNotFoundError as error:
        print(f"cannot seed: {error}", file=sys.stderr)
        return False

    s3 = stack.client("s3")
    S3CatalogSource(s3, stack.resources.model_bucket).write_catalog(movielens.catalog)
    lines = [event.model_dump_json().encode() for event in movielens.events]
    today = datetime.now(UTC).date()
    S3EventArchive(s3, stack.resources.archive_bucket).write_lines(today, lines, "movielens-seed")
    print(f"archived {len(lines):,} MovieLens ratings; training...", flush=True)
    run_schedules(stack)

    def stream() -> None:
        kinesis = stack.client("kinesis")
        for start in range(0, len(movielens.events), 5000):
            if stop.is_set():
                return
            put_events(kinesis, stack.resources.stream_name, movielens.events[start : start + 5000])
        print("all MovieLens ratings are on the stream", flush=True)

    threading.Thread(target=stream, name="movielens-seed", daemon=True).start()
    print(
        "streaming the ratings through Kinesis in the background: users 1-943 get "
        "popular lists until their history arrives (a few minutes)",
        flush=True,
    )
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Start the stack, print how to reach it, and stop it cleanly on SIGINT or SIGTERM."""
    arguments = _parse(argv)
    logging.basicConfig(
        level=arguments.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not (arguments.repo_root / TEMPLATE_NAME).is_file():
        print(f"no {TEMPLATE_NAME} in {arguments.repo_root}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    stack = LocalStack(
        arguments.repo_root,
        moto_port=arguments.moto_port,
        api_port=arguments.api_port,
        start_api=not arguments.no_api,
        start_poller=not arguments.no_poller,
        start_firehose=not arguments.no_firehose,
        prefix=arguments.prefix,
        parameter_overrides=dict(arguments.parameter),
    )
    try:
        stack.start()
    except OSError as error:
        print(f"could not start: {error}; try other ports (--moto-port 0)", file=sys.stderr)
        return 1

    try:
        if arguments.seed_movielens and not seed_movielens(stack, stop):
            return 2
        print(_banner(stack), flush=True)
        # A bounded wait keeps the main thread responsive to signals on every platform.
        next_schedule = time.monotonic() + arguments.schedule_every
        while not stop.wait(0.5):
            if arguments.schedule_every and time.monotonic() >= next_schedule:
                run_schedules(stack)
                next_schedule = time.monotonic() + arguments.schedule_every
    finally:
        print("stopping...", flush=True)
        stack.stop()

    return 0


if __name__ == "__main__":
    sys.exit(main())
