"""An embedded moto server: a real AWS wire-protocol endpoint on 127.0.0.1.

Every boto3 client of the local stack, and every function worker through
``AWS_ENDPOINT_URL``, talks to this endpoint with fake credentials, so nothing can reach
AWS. moto keeps its state in process-wide backends: two servers in one process would
share it, and starting the second would empty the first, so a process runs one at a time.
"""

from __future__ import annotations

import bisect
import logging
import os
import socket
import threading
import urllib.request
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from moto.server import ThreadedMotoServer

from local_stack.lifecycle import StartStop

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
REGION = "us-east-1"
FAKE_ACCESS_KEY_ID = "testing"
FAKE_SECRET_ACCESS_KEY = "testing"
FAKE_SESSION_TOKEN = "testing"

_RESET_TIMEOUT_S = 10.0

# A local endpoint answers at once or not at all: short timeouts turn a stopped server
# into a quick error instead of a minute of retries.
_CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=30,
    retries={"max_attempts": 2, "mode": "standard"},
)


def fake_credentials_environment(endpoint_url: str, region: str = REGION) -> dict[str, str]:
    """Return the environment variables that point boto3 at ``endpoint_url`` only.

    Parameters
    ----------
    endpoint_url : str
        The local endpoint, e.g. ``http://127.0.0.1:5000``.
    region : str
        The region every client uses.

    Returns
    -------
    dict[str, str]
        Fake credentials, the region and ``AWS_ENDPOINT_URL``; also settings that keep
        botocore away from the instance metadata service and from the user's AWS config
        files, so that no profile can redirect a client elsewhere.
    """
    return {
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": FAKE_SESSION_TOKEN,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def make_client(service: str, endpoint_url: str, region: str = REGION) -> BaseClient:
    """Create a boto3 client of ``service`` bound to the local endpoint.

    Parameters
    ----------
    service : str
        A boto3 service name, e.g. ``"kinesis"``.
    endpoint_url : str
        The local endpoint; the client never resolves an AWS endpoint.
    region : str
        The region the client signs for.

    Returns
    -------
    botocore.client.BaseClient
        A low-level client with fake credentials. It ignores the caller's environment
        and profiles, so it works the same inside and outside of tests.
    """
    session = boto3.session.Session(
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        aws_session_token=FAKE_SESSION_TOKEN,
        region_name=region,
    )
    client: BaseClient = session.client(service, endpoint_url=endpoint_url, config=_CLIENT_CONFIG)
    return client


def _ensure_port_is_free(port: int) -> None:
    """Raise OSError if ``port`` on 127.0.0.1 is taken.

    ThreadedMotoServer binds in its thread and, when the port is taken, waits forever for
    a server that never starts; checking first turns that hang into an error. Another
    program could still take the port in between, which is unlikely enough locally.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The server reuses addresses too, so a port in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((HOST, port))


# moto's backends are module globals: the running server of this process, if any.
_process_lock = threading.Lock()
_running_in_process: MotoServer | None = None


_KINESIS_LOCK = threading.RLock()


def _serialize_kinesis_shards() -> None:
    """Make moto's shard reads and writes safe and fast under concurrency, once per process.

    moto's threaded server runs every request on its own thread, and its Kinesis shard
    iterates the record dictionary while a concurrent PutRecords inserts into it ("mutated
    during iteration", a 500 that botocore then retries). Its GetRecords also scans every
    record ever put, so a poller falls further behind the longer the stream gets. A lock
    restores the exclusion Kinesis guarantees, and a sorted list of sequence numbers kept
    beside the records lets GetRecords start where the iterator points.
    """
    from moto.kinesis.models import Shard

    if getattr(Shard, "_recsys_serialized", False):
        return
    original_put = Shard.put_record

    def put_record(self: Any, *args: Any, **kwargs: Any) -> str:
        with _KINESIS_LOCK:
            sequence = original_put(self, *args, **kwargs)
            _sequence_index(self).append(int(sequence))
            return str(sequence)

    def get_records(self: Any, last_sequence_id: str, limit: int | None) -> tuple[Any, ...]:
        with _KINESIS_LOCK:
            keys = _sequence_index(self)
            first = bisect.bisect_right(keys, int(last_sequence_id))
            chosen = keys[first : first + limit] if limit else keys[first:]
            if not chosen:
                return [], int(last_sequence_id), 0
            records = [self.records[key] for key in chosen]
            newest = self.records[keys[-1]]
            behind_ms = int((newest.created_at - records[-1].created_at) * 1000)
            return records, chosen[-1], behind_ms

    Shard.put_record = put_record  # type: ignore[method-assign]
    Shard.get_records = get_records  # type: ignore[method-assign]
    Shard._recsys_serialized = True  # type: ignore[attr-defined]


def _sequence_index(shard: Any) -> list[int]:
    """Sorted sequence numbers of a shard's records, rebuilt if moto changed them itself."""
    keys: list[int] | None = getattr(shard, "_recsys_keys", None)
    if keys is None or len(keys) != len(shard.records):
        keys = sorted(shard.records)
        shard._recsys_keys = keys
    return keys


class MotoServer(StartStop):
    """A moto server in a thread of this process, listening on 127.0.0.1.

    Parameters
    ----------
    port : int
        The port to listen on; 0 picks a free one.
    verbose : bool
        Keep moto's start banner and werkzeug's line per request.

    Examples
    --------
    Use it as a context manager; ``endpoint_url`` is known once it has started::

        with MotoServer() as server:
            kinesis = server.client("kinesis")
    """

    def __init__(self, port: int = 0, *, verbose: bool = False) -> None:
        self._requested_port = port
        self._verbose = verbose
        self._server: ThreadedMotoServer | None = None
        self._endpoint_url: str | None = None

    @property
    def endpoint_url(self) -> str:
        """URL of the running server, e.g. ``http://127.0.0.1:5000``.

        Raises
        ------
        RuntimeError
            If the server is not running.
        """
        if self._endpoint_url is None:
            raise RuntimeError("the moto server is not running")

        return self._endpoint_url

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._server is not None

    def start(self) -> str:
        """Start listening, empty moto's backends and return the endpoint URL.

        Raises
        ------
        OSError
            If the port is taken.
        RuntimeError
            If this or another moto server is running in this process.
        """
        global _running_in_process
        with _process_lock:
            if _running_in_process is not None:
                raise RuntimeError(
                    f"{_running_in_process!r} runs in this process already; moto's state is "
                    "process-wide, so a second server would share and reset it"
                )
            _running_in_process = self

        try:
            return self._start()
        except BaseException:
            self.stop()
            with _process_lock:
                _running_in_process = None
            raise

    def _start(self) -> str:

        if not self._verbose:
            # werkzeug logs every request at INFO; the poller alone makes 20 a second.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)

        if self._requested_port:
            _ensure_port_is_free(self._requested_port)
        # NOTE: patches moto's internals (Shard.get_records/put_record) for thread safety and
        # speed; revisit when moto's Kinesis backend is safe for concurrent requests.
        _serialize_kinesis_shards()
        server = ThreadedMotoServer(ip_address=HOST, port=self._requested_port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self._endpoint_url = f"http://{host}:{port}"

        # Backends live as long as the process: without a reset, a second stack in the same
        # process (the next test) would find the last one's tables and records.
        self.reset()
        logger.info("moto server listening on %s", self._endpoint_url)
        return self._endpoint_url

    def reset(self) -> None:
        """Delete every resource moto holds, through its own ``/moto-api/reset`` call."""
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST"
        )
        with urllib.request.urlopen(request, timeout=_RESET_TIMEOUT_S) as response:
            response.read()

    def stop(self) -> None:
        """Stop the server and close its socket; stopping a stopped server does nothing."""
        server = self._server
        if server is None:
            return

        global _running_in_process
        self._server = None
        self._endpoint_url = None
        server.stop()
        with _process_lock:
            _running_in_process = None

        # NOTE: ThreadedMotoServer.stop() shuts the serving loop down but leaves the
        # listening socket open until garbage collection; closing it through the private
        # attribute frees the port now. Without that attribute the socket closes later.
        wsgi_server = getattr(server, "_server", None)
        if wsgi_server is not None:
            wsgi_server.server_close()
        logger.info("moto server stopped")

    def client(self, service: str, region: str = REGION) -> BaseClient:
        """Create a boto3 client of ``service`` for this server (see :func:`make_client`)."""
        return make_client(service, self.endpoint_url, region)

    def __repr__(self) -> str:
        state: Any = self._endpoint_url or "stopped"
        return f"MotoServer({state})"
