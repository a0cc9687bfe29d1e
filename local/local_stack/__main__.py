"""Run the local stack until Ctrl-C: ``python -m local_stack [--api-port 3000]``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from local_stack.stack import DEFAULT_PREFIX, TEMPLATE_NAME, LocalStack

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
    if stack.api is not None:
        lines.append(
            '  curl -s -H "Authorization: Bearer $(python -m local_stack.token --user u1)" '
            f"{stack.api_url}/me/recommendations"
        )
    lines += [
        f"  python -m local_stack.put_event --endpoint-url {endpoint} "
        f"--stream {resources.stream_name} --user u1 --item i42 --type click",
        "  python -c \"import boto3; print(boto3.client('s3', endpoint_url="
        f"'{endpoint}', region_name='us-east-1', aws_access_key_id='testing', "
        "aws_secret_access_key='testing').list_objects_v2("
        f"Bucket='{resources.archive_bucket}').get('KeyCount'))\"",
        "",
    ]
    return "\n".join(lines)


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
        print(_banner(stack), flush=True)
        # A bounded wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
    finally:
        print("stopping...", flush=True)
        stack.stop()

    return 0


if __name__ == "__main__":
    sys.exit(main())
