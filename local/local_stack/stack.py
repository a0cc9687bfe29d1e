"""The whole local stack, wired from ``template.yaml``: moto, functions, stream, archive, API.

:class:`LocalStack` reads everything it wires from the template: which functions exist
(handler, code, layer, memory, timeout, environment), which function the stream feeds and
with which settings, where its failures go, where the delivery stream archives, and which
routes the API serves. Renaming a logical id or changing a setting in the template changes
the local stack with it.

What AWS would do but the local stack does not: run the ``Schedule`` events (invoke
the function with :meth:`LocalStack.run_schedule`), enforce IAM policies, encryption,
throttling, memory limits, or API Gateway's 29 s integration timeout.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.client import BaseClient

from local_stack.api import ApiServer, api_routes
from local_stack.firehose import FirehoseEmulator
from local_stack.kinesis import EventSourceMapping, KinesisEventSettings, SqsDestination
from local_stack.lifecycle import StartStop
from local_stack.moto_server import REGION, MotoServer
from local_stack.runner import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, FunctionRunner
from local_stack.template import (
    FUNCTION_TYPES,
    QUEUE_TYPE,
    LocalResources,
    Template,
    TemplateError,
    load_template,
    local_name,
    provision,
)

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "template.yaml"
DEFAULT_PREFIX = "recsys-local"

_DELIVERY_STREAM_TYPE = "AWS::KinesisFirehose::DeliveryStream"
_LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
_API_TYPE = "AWS::Serverless::Api"
_DAILY_PREFIX = re.compile(r"^(?P<base>.*)dt=!\{timestamp:yyyy-MM-dd\}/$")


@dataclass(frozen=True)
class FunctionSpec:
    """What the template says about running one function.

    Attributes
    ----------
    logical_id : str
        The function's logical id.
    code_dir : Path
        Its ``CodeUri`` under the repository root.
    handler : str
        Its ``Handler``.
    layer_dir : Path or None
        The ``ContentUri`` of its first layer.
    memory_mb : int
        Its ``MemorySize``.
    timeout_s : float
        Its ``Timeout``.
    """

    logical_id: str
    code_dir: Path
    handler: str
    layer_dir: Path | None
    memory_mb: int
    timeout_s: float


class _Parameters:
    """Resolves ``Ref`` to template parameters, the only intrinsic the wiring needs."""

    def __init__(self, template: Template, overrides: Mapping[str, str]) -> None:
        self._declared: dict[str, Any] = template.get("Parameters") or {}
        self._overrides = dict(overrides)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in self._declared:
            name = value["Ref"]
            if name in self._overrides:
                return self._overrides[name]
            if "Default" not in self._declared[name]:
                raise TemplateError(f"parameter {name!r} has no default and no override")
            return self._declared[name]["Default"]
        return value


def _referenced_id(value: Any) -> str | None:
    """The logical id behind ``!Ref X``, ``!GetAtt X.Attr`` or ``!Sub ${X.Attr}``."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref" and isinstance(argument, str):
            return argument
        if key == "Fn::GetAtt" and isinstance(argument, list) and argument:
            return str(argument[0])
        if key == "Fn::Sub" and isinstance(argument, str):
            match = re.fullmatch(r"\$\{([A-Za-z0-9]+)(\.[A-Za-z.]+)?\}", argument)
            return match.group(1) if match else None
    return None


def function_specs(
    template: Template, repo_root: Path, overrides: Mapping[str, str] | None = None
) -> dict[str, FunctionSpec]:
    """Read every function's handler, code, layer, memory and timeout from a template.

    Parameters
    ----------
    template : Template
        A template from ``load_template``.
    repo_root : Path
        The directory ``CodeUri`` and ``ContentUri`` are relative to.
    overrides : Mapping[str, str], optional
        Template parameter values that replace the defaults.

    Returns
    -------
    dict[str, FunctionSpec]
        By logical id, in template order.

    Raises
    ------
    TemplateError
        If a function has no literal ``Handler`` or ``CodeUri``.
    """
    parameters = _Parameters(template, overrides or {})
    resources: dict[str, Any] = template["Resources"]
    globals_ = (template.get("Globals") or {}).get("Function") or {}

    specs = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") not in FUNCTION_TYPES:
            continue

        properties = resource.get("Properties") or {}
        # Globals apply to SAM functions only; plain Lambda functions carry everything.
        inherited = globals_ if resource["Type"] == "AWS::Serverless::Function" else {}
        settings = {**inherited, **properties}

        def setting(name: str, default: Any, settings: dict[str, Any] = settings) -> Any:
            return parameters.resolve(settings.get(name, default))

        handler, code_uri = setting("Handler", None), setting("CodeUri", None)
        if not isinstance(handler, str) or not isinstance(code_uri, str):
            raise TemplateError(f"{logical_id} needs a literal Handler and a local CodeUri")

        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=repo_root / code_uri,
            handler=handler,
            layer_dir=_layer_dir(logical_id, setting("Layers", []), resources, repo_root),
            memory_mb=int(setting("MemorySize", DEFAULT_MEMORY_MB)),
            timeout_s=float(setting("Timeout", DEFAULT_TIMEOUT_S)),
        )

    return specs


def _layer_dir(
    logical_id: str, layers: list[Any], resources: Mapping[str, Any], repo_root: Path
) -> Path | None:
    directories = []
    for layer in layers:
        layer_id = _referenced_id(layer)
        resource = resources.get(layer_id or "") or {}
        if resource.get("Type") not in _LAYER_TYPES:
            logger.warning("%s: layer %r is not in the template; skipped", logical_id, layer)
            continue

        properties = resource.get("Properties") or {}
        content = properties.get("ContentUri") or properties.get("Content")
        if isinstance(content, str):
            directories.append(repo_root / content)

    if len(directories) > 1:
        # NOTE: a runner puts one layer on sys.path; the template has one layer today.
        logger.warning("%s: only the first of %d layers is used", logical_id, len(directories))
    return directories[0] if directories else None


def scheduled_event(rule_name: str, *, region: str = REGION, account_id: str) -> dict[str, Any]:
    """Build the event EventBridge sends a function when a schedule rule fires.

    Parameters
    ----------
    rule_name : str
        Name of the rule, used in its ARN.
    region, account_id : str
        Where the rule lives.
    """
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account_id}:rule/{rule_name}"],
        "detail": {},
    }


class LocalStack(StartStop):
    """Moto, the template's resources, its functions and the emulations around them.

    Parameters
    ----------
    repo_root : Path
        Holds ``template.yaml``; code and layer paths are relative to it.
    moto_port : int
        Port of the moto server; 0 picks a free one.
    api_port : int
        Port of the API; 0 picks a free one.
    start_api, start_poller, start_firehose : bool
        Whether to serve the API, feed the stream to its function, and archive it.
    prefix : str
        Stands in for the stack name in resource names.
    parameter_overrides : Mapping[str, str], optional
        Template parameter values, e.g. ``{"LogLevel": "DEBUG"}``.
    firehose_interval_s : float
        Local buffering interval of the archive (the template's is 300 s).
    poll_interval_s : float
        Pause between reads of an idle shard, for the mapping and the archive.
    function_log : Path, optional
        File that collects every function's stdout and stderr (their logs and metrics), as
        CloudWatch Logs would; by default they print to this process's terminal.

    Examples
    --------
    ::

        with LocalStack(Path(".")) as stack:
            kinesis = stack.client("kinesis")
            kinesis.put_record(StreamName=stack.resources.stream_name, ...)
            stack.wait_until_caught_up()
    """

    def __init__(
        self,
        repo_root: Path,
        *,
        moto_port: int = 0,
        api_port: int = 3000,
        start_api: bool = True,
        start_poller: bool = True,
        start_firehose: bool = True,
        prefix: str = DEFAULT_PREFIX,
        parameter_overrides: Mapping[str, str] | None = None,
        firehose_interval_s: float = 1.0,
        poll_interval_s: float = 0.05,
        function_log: Path | None = None,
    ) -> None:
        self.repo_root = repo_root.resolve()
        self.prefix = prefix
        self.parameter_overrides = dict(parameter_overrides or {})
        self.firehose_interval_s = firehose_interval_s
        self.poll_interval_s = poll_interval_s
        self.function_log = function_log
        self._options = (start_api, start_poller, start_firehose)
        self._api_port = api_port

        self.template: Template = {}
        self.moto = MotoServer(moto_port)
        self.account_id = ""
        self.runners: dict[str, FunctionRunner] = {}
        self.mappings: dict[str, EventSourceMapping] = {}
        self.firehose: FirehoseEmulator | None = None
        self.api: ApiServer | None = None
        self._resources: LocalResources | None = None
        self._clients: dict[str, BaseClient] = {}
        self._clients_lock = threading.Lock()

    # ----------------------------------------------------------------- accessors ---

    @property
    def endpoint_url(self) -> str:
        """URL of the moto server."""
        return self.moto.endpoint_url

    @property
    def api_url(self) -> str:
        """Base URL of the API, e.g. ``http://127.0.0.1:3000``.

        Raises
        ------
        RuntimeError
            If the API was not started.
        """
        if self.api is None:
            raise RuntimeError("the API was not started")
        return self.api.url

    @property
    def resources(self) -> LocalResources:
        """Names of the provisioned resources and each function's environment."""
        if self._resources is None:
            raise RuntimeError("the stack is not running")
        return self._resources

    @property
    def mapping(self) -> EventSourceMapping:
        """The event source mapping of the event stream.

        Raises
        ------
        RuntimeError
            If the poller was not started or no function reads the stream.
        """
        for mapping in self.mappings.values():
            if mapping.stream_name == self.resources.stream_name:
                return mapping
        raise RuntimeError("no event source mapping reads the event stream")

    def client(self, service: str) -> BaseClient:
        """A boto3 client of ``service`` for the moto server, shared by callers."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self.moto.client(service)
            return self._clients[service]

    def invoke(self, logical_id: str, event: Any, timeout_s: float | None = None) -> Any:
        """Invoke a function directly, as ``sam local invoke`` would.

        Raises
        ------
        KeyError
            If the template has no such function.
        local_stack.runner.FunctionError
            If the function fails.
        """
        return self.runners[logical_id].invoke(event, timeout_s)

    def scheduled_functions(self) -> list[str]:
        """Logical ids of the functions that have a ``Schedule`` event in the template."""
        return [
            logical_id
            for logical_id, resource in self.template.get("Resources", {}).items()
            if any(
                event.get("Type") == "Schedule"
                for event in resource.get("Properties", {}).get("Events", {}).values()
            )
        ]

    def run_schedule(self, logical_id: str) -> Any:
        """Invoke a function with the event its ``Schedule`` rule would send now."""
        rule_name = local_name(self.prefix, f"{logical_id}-schedule")
        event = scheduled_event(rule_name, account_id=self.account_id)
        return self.invoke(logical_id, event)

    def wait_until_caught_up(self, timeout_s: float = 30.0) -> None:
        """Block until the mapping and the archive have handled every record put so far.

        Raises
        ------
        TimeoutError
            If either has not caught up within ``timeout_s`` (each gets the full time).
        """
        for mapping in self.mappings.values():
            mapping.wait_until_caught_up(timeout_s)
        if self.firehose is not None:
            self.firehose.wait_until_caught_up(timeout_s)

    # ------------------------------------------------------------------ lifecycle ---

    def start(self) -> LocalStack:
        """Start moto, provision, and start the functions' runners and emulations.

        Anything started before a failure is stopped again before the error propagates.
        """
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        start_api, start_poller, start_firehose = self._options
        self.template = load_template(self.repo_root / TEMPLATE_NAME)
        self.moto.start()

        self._resources = provision(
            self.template,
            kinesis=self.client("kinesis"),
            dynamodb=self.client("dynamodb"),
            s3=self.client("s3"),
            sqs=self.client("sqs"),
            prefix=self.prefix,
            parameter_overrides=self.parameter_overrides,
        )
        self.account_id = str(self.client("sts").get_caller_identity()["Account"])
        self._create_runners()

        if start_poller:
            self._start_mappings()
        if start_firehose:
            self._start_firehose()
        if start_api:
            self._start_api()

    def _create_runners(self) -> None:
        specs = function_specs(self.template, self.repo_root, self.parameter_overrides)
        for logical_id, spec in specs.items():
            self.runners[logical_id] = FunctionRunner(
                logical_id,
                spec.code_dir,
                spec.handler,
                self.resources.function_environment(logical_id),
                spec.layer_dir,
                endpoint_url=self.endpoint_url,
                function_name=local_name(self.prefix, logical_id),
                memory_mb=spec.memory_mb,
                timeout_s=spec.timeout_s,
                account_id=self.account_id,
                log_path=self.function_log,
            )

    def _start_mappings(self) -> None:
        parameters = _Parameters(self.template, self.parameter_overrides)
        for logical_id, resource in self.template["Resources"].items():
            if logical_id not in self.runners:
                continue

            events = (resource.get("Properties") or {}).get("Events") or {}
            for event_name, event in events.items():
                if event.get("Type") != "Kinesis":
                    continue

                properties = {
                    name: parameters.resolve(value)
                    for name, value in (event.get("Properties") or {}).items()
                }
                stream_id = _referenced_id(properties.get("Stream"))
                stream_name = self.resources.refs.get(stream_id or "")
                if stream_name is None:
                    raise TemplateError(f"{logical_id}.{event_name} reads an unknown stream")

                mapping = EventSourceMapping(
                    self.client("kinesis"),
                    stream_name,
                    self.runners[logical_id],
                    KinesisEventSettings.from_event_properties(properties),
                    on_failure=self._on_failure(logical_id, properties),
                    poll_interval_s=self.poll_interval_s,
                )
                mapping.start()
                self.mappings[f"{logical_id}.{event_name}"] = mapping

    def _on_failure(self, logical_id: str, properties: Mapping[str, Any]) -> SqsDestination | None:
        destination = ((properties.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        if destination is None:
            return None

        queue_id = _referenced_id(destination)
        resource = self.template["Resources"].get(queue_id or "") or {}
        if resource.get("Type") != QUEUE_TYPE or queue_id not in self.resources.refs:
            logger.warning("%s: on-failure destination %r is not emulated", logical_id, destination)
            return None

        return SqsDestination(self.client("sqs"), self.resources.refs[str(queue_id)])

    def _start_firehose(self) -> None:
        for logical_id, resource in self.template["Resources"].items():
            if resource.get("Type") != _DELIVERY_STREAM_TYPE:
                continue

            properties = resource.get("Properties") or {}
            source = properties.get("KinesisStreamSourceConfiguration") or {}
            destination = properties.get("ExtendedS3DestinationConfiguration") or {}
            stream_name = self.resources.refs.get(
                _referenced_id(source.get("KinesisStreamARN")) or ""
            )
            bucket = self.resources.refs.get(_referenced_id(destination.get("BucketARN")) or "")
            match = _DAILY_PREFIX.match(str(destination.get("Prefix", "")))
            if stream_name is None or bucket is None or match is None:
                raise TemplateError(
                    f"{logical_id}: the local archive needs a stream source, a bucket of the "
                    "template and a Prefix ending in dt=!{timestamp:yyyy-MM-dd}/"
                )

            if self.firehose is not None:
                # NOTE: one delivery stream is emulated; the template has one today.
                logger.warning("%s: a second delivery stream is not emulated", logical_id)
                continue

            self.firehose = FirehoseEmulator(
                self.client("kinesis"),
                stream_name,
                self.client("s3"),
                bucket,
                prefix=match.group("base"),
                delivery_stream_name=local_name(self.prefix, logical_id),
                compress=destination.get("CompressionFormat") == "GZIP",
                buffer_interval_s=self.firehose_interval_s,
                poll_interval_s=self.poll_interval_s,
            )
            self.firehose.start()

    def _start_api(self) -> None:
        routes = api_routes(self.template)
        if not routes:
            logger.info("the template has no Api events; the API is not started")
            return

        self.api = ApiServer(
            routes,
            self.runners,
            port=self._api_port,
            stage=self._stage_name(),
            account_id=self.account_id,
        )
        self.api.start()

    def _stage_name(self) -> str:
        parameters = _Parameters(self.template, self.parameter_overrides)
        for resource in self.template["Resources"].values():
            if resource.get("Type") == _API_TYPE:
                stage = parameters.resolve((resource.get("Properties") or {}).get("StageName"))
                if isinstance(stage, str):
                    return stage
        return "Prod"  # What SAM names the stage of its implicit API.

    def stop(self) -> None:
        """Stop everything in the reverse order of starting; stopping twice is harmless.

        Each part is stopped even if an earlier one fails to; failures are logged.
        """
        steps: list[tuple[str, Any]] = []
        if self.api is not None:
            steps.append(("API", self.api.stop))
        if self.firehose is not None:
            steps.append(("archive", self.firehose.stop))
        steps.extend((f"mapping {name}", m.stop) for name, m in self.mappings.items())
        steps.extend((f"runner {name}", r.close) for name, r in self.runners.items())
        steps.append(("clients", self._close_clients))
        steps.append(("moto", self.moto.stop))

        for name, stop in steps:
            try:
                stop()
            except Exception:
                logger.exception("could not stop the %s", name)

        self.api = None
        self.firehose = None
        self.mappings = {}
        self.runners = {}
        self._resources = None

    def _close_clients(self) -> None:
        # Open keep-alive connections would hold moto's request threads after it stops.
        with self._clients_lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
