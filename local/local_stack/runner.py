"""Lambda execution environments emulated as worker processes.

Each :class:`FunctionRunner` owns at most one worker process, started with the ``spawn``
method so that it shares no module state with the caller: its ``os.environ`` is the
function's environment and nothing else of the caller's, its ``sys.path`` starts with the
function's code directory and the layer, and its working directory is the code directory,
as ``/var/task`` is in Lambda. The handler module is imported on the first invocation and
stays loaded for the next ones (a warm container) until the worker dies or times out.

Events and results cross the process boundary as JSON text, as they do in Lambda: a handler
receives only JSON types, and a result that is not JSON-serializable is an error.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback as traceback_module
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

logger = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"

# Lambda's defaults when a template sets neither MemorySize nor Timeout.
DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3.0

# Lambda allows 10 s for the init phase; spawning an interpreter and importing numpy on a
# slow laptop can take longer, and a local run should not fail for it.
DEFAULT_INIT_TIMEOUT_S = 60.0

# How often a waiting invoke checks whether the runner is being closed.
_WAIT_SLICE_S = 0.1
_STOP_GRACE_S = 2.0

_FUNCTION_VERSION = "$LATEST"

# Set before the function's own variables, so a template may override them. Tracing is
# off because no X-Ray daemon runs locally; UTC mirrors Lambda's TZ.
_DEFAULT_VARIABLES = {
    "LANG": "C.UTF-8",
    "TZ": "UTC",
    "PYTHONUNBUFFERED": "1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "AWS_XRAY_SDK_ENABLED": "false",
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
}

_FAKE_SECRET = "testing"


class FunctionError(Exception):
    """The function failed: its handler raised, timed out, crashed or could not load.

    Parameters
    ----------
    error_type : str
        Lambda's ``errorType``: the exception class name for a raised error, or one of
        ``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``, ``Runtime.MarshalError``,
        ``Runtime.ExitError`` and ``Sandbox.Timedout``.
    message : str
        Lambda's ``errorMessage``.
    traceback : str
        The formatted stack trace from the worker; empty when there is none.
    """

    def __init__(self, error_type: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.traceback = traceback


class Invocable(Protocol):
    """What the event source mapping and the API need of a function: a way to invoke it."""

    logical_id: str
    function_name: str
    function_arn: str

    def invoke(self, event: Any, timeout_s: float | None = None) -> Any:
        """Run the function on ``event``; raise :class:`FunctionError` if it fails."""
        ...


@dataclass(frozen=True)
class ColdStart:
    """Timings of one cold start.

    Attributes
    ----------
    init_s : float
        Seconds the worker spent importing the handler module (Lambda's Init Duration).
    first_invoke_s : float
        Seconds from starting the worker process to the first result: process start,
        import and the first invocation together.
    """

    init_s: float
    first_invoke_s: float


@dataclass(frozen=True)
class _WorkerSpec:
    """What a worker needs to become the function; sent to it when it is spawned."""

    logical_id: str
    code_dir: str
    layer_dir: str | None
    handler: str
    environment: dict[str, str]
    log_path: str | None = None


# ------------------------------------------------------------- inside the worker ---


class LambdaContext:
    """The context object a handler receives, with the attributes Lambda's runtime sets.

    ``memory_limit_in_mb`` is a string, as in the Python runtime, which copies it from
    ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``.
    """

    def __init__(
        self, aws_request_id: str, deadline_epoch_ms: int, invoked_function_arn: str
    ) -> None:
        self.aws_request_id = aws_request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", _FUNCTION_VERSION)
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline_epoch_ms = deadline_epoch_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation times out; never negative."""
        return max(0, self._deadline_epoch_ms - int(time.time() * 1000))


def _load_handler(handler: str) -> Callable[[Any, LambdaContext], Any]:
    """Import ``module.function`` (``dir/module.function`` also works, as in Lambda)."""
    module_path, _, function_name = handler.rpartition(".")
    module_name = module_path.replace("/", ".")
    if not module_name or not function_name:
        raise FunctionError("Runtime.MalformedHandlerName", f"Bad handler '{handler}'")

    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise FunctionError(
            "Runtime.ImportModuleError",
            f"Unable to import module '{module_name}': {error}",
            traceback_module.format_exc(),
        ) from None

    function = getattr(module, function_name, None)
    if not callable(function):
        raise FunctionError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )

    return function


def _become_function(spec: _WorkerSpec) -> None:
    """Give this process the function's environment, import path and working directory."""
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    os.environ.clear()
    os.environ.update(spec.environment)
    time.tzset()

    leading = [spec.code_dir] + ([spec.layer_dir] if spec.layer_dir else [])
    sys.path[:] = leading + [entry for entry in sys.path if entry and entry not in leading]
    os.chdir(spec.code_dir)

    if spec.log_path:
        # Like CloudWatch Logs: the function's stdout and stderr (Powertools' JSON lines, EMF
        # metrics) go to a log of their own instead of the caller's terminal.
        log = open(spec.log_path, "a", buffering=1)  # noqa: SIM115 - open until the worker ends
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log

    # Lambda's runtime gives the root logger a handler; without one, warnings from
    # handler code would be lost.
    logging.basicConfig(
        level=logging.WARNING,
        format=f"[{spec.logical_id}] %(levelname)s %(name)s: %(message)s",
    )


def _worker_main(connection: Connection, spec: _WorkerSpec) -> None:
    """Serve invocations until told to stop or until the parent goes away."""
    _become_function(spec)
    handler: Callable[[Any, LambdaContext], Any] | None = None

    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return  # The parent closed its end or died: nobody is left to serve.

        if message[0] == "stop":
            return

        _, event_json, request = message
        init_s: float | None = None
        if handler is None:
            started = time.perf_counter()
            try:
                handler = _load_handler(spec.handler)
            except FunctionError as error:
                connection.send(("error", error.error_type, error.message, error.traceback))
                continue
            init_s = time.perf_counter() - started

        # The handler's time starts now, after the init phase, as in Lambda.
        deadline_ms = int(time.time() * 1000 + request["timeout_s"] * 1000)
        context = LambdaContext(request["aws_request_id"], deadline_ms, request["function_arn"])
        connection.send(("running", init_s))

        try:
            result = handler(json.loads(event_json), context)
        except SystemExit as error:
            # "fatal" tells the parent to reap this process before it invokes again.
            message = f"Runtime exited with error: exit status {error}"
            connection.send(("fatal", "Runtime.ExitError", message, ""))
            return
        except Exception as error:
            connection.send(
                ("error", type(error).__name__, str(error), traceback_module.format_exc())
            )
            continue

        try:
            payload = json.dumps(result)
        except (TypeError, ValueError) as error:
            connection.send(("error", "Runtime.MarshalError", f"Unable to marshal: {error}", ""))
            continue

        connection.send(("ok", payload))


# -------------------------------------------------------------- in the caller ---


class FunctionRunner:
    """One function's execution environment: a warm worker process, one invoke at a time.

    Parameters
    ----------
    logical_id : str
        The function's logical id in the template, e.g. ``"IngestFunction"``.
    code_dir : Path
        The function's code (its ``CodeUri``); first on the worker's ``sys.path``.
    handler : str
        ``module.function``, e.g. ``"app.lambda_handler"``.
    environment : Mapping[str, str]
        The function's environment variables, e.g. from
        ``LocalResources.function_environment``.
    layer_dir : Path, optional
        The layer's content (``shared/``), second on ``sys.path``.
    endpoint_url : str, optional
        The local AWS endpoint, set as ``AWS_ENDPOINT_URL``; defaults to that variable in
        ``environment``. One of the two is required, so that boto3 in the worker can
        never reach AWS.
    function_name : str, optional
        ``AWS_LAMBDA_FUNCTION_NAME``; defaults to ``logical_id``.
    memory_mb : int
        ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``. Not enforced.
    timeout_s : float
        Default invocation timeout, the function's ``Timeout``.
    init_timeout_s : float
        Time allowed to start the worker and import the handler.
    region, account_id : str
        Used in the worker's region variables and the function ARN.
    log_path : Path, optional
        File that receives the worker's stdout and stderr; the caller's terminal otherwise.

    Raises
    ------
    ValueError
        If no endpoint URL is given, or ``code_dir`` is not a directory.

    Notes
    -----
    Lambda would run concurrent invocations in separate environments; a runner serializes
    them, which is enough locally and keeps per-user ordering obvious.
    """

    def __init__(
        self,
        logical_id: str,
        code_dir: Path,
        handler: str,
        environment: Mapping[str, str],
        layer_dir: Path | None = None,
        *,
        endpoint_url: str | None = None,
        function_name: str | None = None,
        memory_mb: int = DEFAULT_MEMORY_MB,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        init_timeout_s: float = DEFAULT_INIT_TIMEOUT_S,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        log_path: Path | None = None,
    ) -> None:
        endpoint = endpoint_url or environment.get("AWS_ENDPOINT_URL")
        if not endpoint:
            raise ValueError(f"{logical_id}: an endpoint URL is required so boto3 stays local")
        if not code_dir.is_dir():
            raise ValueError(f"{logical_id}: code directory {code_dir} does not exist")

        self.logical_id = logical_id
        self.function_name = function_name or logical_id
        self.function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{self.function_name}"
        self.timeout_s = timeout_s
        self.init_timeout_s = init_timeout_s
        self.cold_start: ColdStart | None = None
        self.invocations = 0
        self.cold_starts = 0

        self._spec = _WorkerSpec(
            logical_id=logical_id,
            code_dir=str(code_dir.resolve()),
            layer_dir=str(layer_dir.resolve()) if layer_dir is not None else None,
            handler=handler,
            environment=self._worker_environment(
                environment, endpoint, region, memory_mb, handler, code_dir
            ),
            log_path=str(log_path.resolve()) if log_path is not None else None,
        )
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._closed = False

    @property
    def environment(self) -> dict[str, str]:
        """The worker's complete ``os.environ``."""
        return dict(self._spec.environment)

    @property
    def warm(self) -> bool:
        """Whether a worker process is alive and would serve the next invoke."""
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        """Process id of the current worker, if one is alive."""
        return self._process.pid if self.warm and self._process is not None else None

    def _worker_environment(
        self,
        environment: Mapping[str, str],
        endpoint_url: str,
        region: str,
        memory_mb: int,
        handler: str,
        code_dir: Path,
    ) -> dict[str, str]:
        started = datetime.now(UTC)
        python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
        variables = {"PATH": os.environ.get("PATH", os.defpath), **_DEFAULT_VARIABLES}
        variables.update(environment)

        # What Lambda sets itself comes last: a template cannot override it.
        variables.update(
            {
                "AWS_ACCESS_KEY_ID": _FAKE_SECRET,
                "AWS_SECRET_ACCESS_KEY": _FAKE_SECRET,
                "AWS_SESSION_TOKEN": _FAKE_SECRET,
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                "AWS_ENDPOINT_URL": endpoint_url,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_python{python_version}",
                "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": _FUNCTION_VERSION,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": (
                    f"{started:%Y/%m/%d}/[{_FUNCTION_VERSION}]{uuid.uuid4().hex}"
                ),
                "LAMBDA_TASK_ROOT": str(code_dir.resolve()),
                "_HANDLER": handler,
            }
        )
        return variables

    def invoke(self, event: Any, timeout_s: float | None = None) -> Any:
        """Run the handler on ``event`` and return what it returned.

        Parameters
        ----------
        event : Any
            A JSON-serializable event.
        timeout_s : float, optional
            Seconds the handler may run; defaults to the function's timeout. The worker is
            killed when it runs over, as Lambda does, and the next invoke is a cold start.

        Returns
        -------
        Any
            The handler's return value after a JSON round trip.

        Raises
        ------
        FunctionError
            If the handler raised, timed out, crashed, returned something that is not JSON,
            or could not be imported.
        RuntimeError
            If the runner is closed.
        TypeError
            If ``event`` is not JSON-serializable.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        event_json = json.dumps(event)
        request_id = str(uuid.uuid4())

        with self._lock:
            if self._closed:
                raise RuntimeError(f"runner of {self.logical_id} is closed")

            started = time.perf_counter()
            cold = not self.warm
            if cold:
                self._start_worker()
            assert self._connection is not None
            self.invocations += 1

            request = {
                "aws_request_id": request_id,
                "timeout_s": timeout,
                "function_arn": self.function_arn,
            }
            try:
                self._connection.send(("invoke", event_json, request))
            except OSError:
                self._stop_worker(graceful=False)
                message = "the worker died before the invoke"
                raise FunctionError("Runtime.ExitError", message) from None

            first = self._receive(self.init_timeout_s, "init")
            if first[0] == "error":
                raise FunctionError(*first[1:])
            init_s = first[1]

            outcome = self._receive(timeout, "task")
            elapsed = time.perf_counter() - started
            if init_s is not None:
                self.cold_starts += 1
                self.cold_start = ColdStart(init_s=init_s, first_invoke_s=elapsed)
                logger.info(
                    "cold start of %s: init %.0f ms, first invoke %.0f ms",
                    self.logical_id,
                    init_s * 1000,
                    elapsed * 1000,
                )
            logger.debug(
                "invoked %s request %s in %.1f ms", self.logical_id, request_id, elapsed * 1000
            )

            if outcome[0] == "fatal":
                self._stop_worker(graceful=False)
            if outcome[0] in ("error", "fatal"):
                raise FunctionError(*outcome[1:])

            return json.loads(outcome[1])

    def _receive(self, timeout_s: float, phase: str) -> tuple[Any, ...]:
        """Wait for the worker's next message; kill it on timeout, closing or death."""
        connection = self._connection
        assert connection is not None
        deadline = time.monotonic() + timeout_s

        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._stop_worker(graceful=False)
                if phase == "init":
                    raise FunctionError(
                        "Sandbox.Timedout", f"Init timed out after {timeout_s:.2f} seconds"
                    )
                raise FunctionError(
                    "Sandbox.Timedout", f"Task timed out after {timeout_s:.2f} seconds"
                )

            if self._closed:
                self._stop_worker(graceful=False)
                raise FunctionError("Runtime.ExitError", "the runner was closed mid-invocation")

            try:
                if connection.poll(min(remaining, _WAIT_SLICE_S)):
                    message: tuple[Any, ...] = connection.recv()
                    return message
            except (EOFError, OSError):
                exit_code = None
                if self._process is not None:
                    self._process.join(_STOP_GRACE_S)  # Reaped, it tells its exit status.
                    exit_code = self._process.exitcode
                self._stop_worker(graceful=False)
                raise FunctionError(
                    "Runtime.ExitError", f"Runtime exited with error: exit status {exit_code}"
                ) from None

    def _start_worker(self) -> None:
        self._stop_worker(graceful=False)  # Reap a dead worker before replacing it.

        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main,
            args=(child_end, self._spec),
            name=f"lambda-{self.logical_id}",
            daemon=True,
        )
        process.start()

        # With the child's end closed here, the parent sees EOF as soon as the worker dies.
        child_end.close()
        self._process = process
        self._connection = parent_end
        logger.debug("started worker %s for %s", process.pid, self.logical_id)

    def _stop_worker(self, *, graceful: bool) -> None:
        process, connection = self._process, self._connection
        self._process, self._connection = None, None

        if process is not None:
            if graceful and process.is_alive() and connection is not None:
                # A worker that is already gone cannot take the message; terminate below
                # makes sure either way.
                with contextlib.suppress(OSError):
                    connection.send(("stop",))
                process.join(_STOP_GRACE_S)
            if process.is_alive():
                process.terminate()
                process.join(_STOP_GRACE_S)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()

        if connection is not None:
            connection.close()

    def close(self) -> None:
        """Stop the worker; an invoke in flight fails with :class:`FunctionError`.

        Closing twice does nothing. No process of this runner is left afterwards.
        """
        self._closed = True
        with self._lock:
            self._stop_worker(graceful=True)

    def __enter__(self) -> FunctionRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FunctionRunner({self.logical_id!r}, warm={self.warm})"
