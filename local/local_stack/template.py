"""Create the data resources of ``template.yaml`` on a local AWS endpoint.

The local stack keeps no list of its own of streams, tables, buckets or queues: it reads
them from the SAM template, so a changed key schema or a new environment variable reaches
local runs and tests from one place. The boto3 clients are passed in; the caller points
them at the embedded moto server (or at ``moto.mock_aws`` in tests).

Only what changes behaviour locally is copied from a resource: key schemas, indexes and
billing mode of tables, shard count of streams, versioning of buckets, and the queue
attributes SQS itself knows. Encryption, retention, lifecycle rules and policies have no
local effect and are left out.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from botocore.client import BaseClient

logger = logging.getLogger(__name__)

Template = dict[str, Any]

STREAM_ID = "EventStream"
TABLE_ID = "UserStateTable"
MODEL_BUCKET_ID = "ModelBucket"
ARCHIVE_BUCKET_ID = "ArchiveBucket"
FAILURE_QUEUE_ID = "IngestFailureQueue"
_HANDLER_RESOURCE_IDS = (STREAM_ID, TABLE_ID, MODEL_BUCKET_ID, ARCHIVE_BUCKET_ID, FAILURE_QUEUE_ID)

STREAM_TYPE = "AWS::Kinesis::Stream"
TABLE_TYPE = "AWS::DynamoDB::Table"
BUCKET_TYPE = "AWS::S3::Bucket"
QUEUE_TYPE = "AWS::SQS::Queue"
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")

# moto's account when MOTO_ACCOUNT_ID is unset; the real one is read from the ARNs moto
# returns as soon as a resource exists.
_DEFAULT_ACCOUNT_ID = "123456789012"

# A prefix that keeps every derived name valid for Kinesis, DynamoDB, S3 and SQS alike.
_PREFIX_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_MAX_BUCKET_NAME_LENGTH = 63

_WAITER_CONFIG = {"Delay": 1, "MaxAttempts": 60}

_TABLE_REQUEST_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
)
_GLOBAL_INDEX_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
_LOCAL_INDEX_KEYS = ("IndexName", "KeySchema", "Projection")
_QUEUE_ATTRIBUTE_KEYS = (
    "ContentBasedDeduplication",
    "DelaySeconds",
    "FifoQueue",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
)

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class TemplateError(ValueError):
    """The template asks for something this module cannot build or resolve locally."""


# --------------------------------------------------------------------------- loading ---


class _CloudFormationLoader(yaml.SafeLoader):
    """A SafeLoader that turns CloudFormation's short-form tags into long-form dicts."""


def _construct_any(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)

    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)

    return loader.construct_mapping(node, deep=True)


def _long_form(key: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {key: _construct_any(loader, node)}

    return construct


def _construct_get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _construct_any(loader, node)

    # The short form is "LogicalId.Attribute"; attributes may hold dots themselves
    # (Endpoint.Address), the logical id never does.
    if isinstance(value, str):
        logical_id, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [logical_id, attribute]}

    return {"Fn::GetAtt": value}


_FUNCTION_TAGS = (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Length",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "ToJsonString",
    "Transform",
)

for _name in _FUNCTION_TAGS:
    _CloudFormationLoader.add_constructor(f"!{_name}", _long_form(f"Fn::{_name}"))
_CloudFormationLoader.add_constructor("!Ref", _long_form("Ref"))
_CloudFormationLoader.add_constructor("!Condition", _long_form("Condition"))
_CloudFormationLoader.add_constructor("!GetAtt", _construct_get_att)

# CloudFormation reads an unquoted 2010-09-09 as text; YAML 1.1 would make it a date.
_CloudFormationLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str
)


def load_template(path: Path) -> Template:
    """Parse a CloudFormation or SAM template written in YAML.

    Parameters
    ----------
    path : Path
        The template file, e.g. ``template.yaml`` at the repository root.

    Returns
    -------
    dict
        The template with short-form intrinsics in long form: ``!Ref X`` becomes
        ``{"Ref": "X"}``, ``!GetAtt X.Arn`` becomes ``{"Fn::GetAtt": ["X", "Arn"]}`` and
        ``!Sub ...`` becomes ``{"Fn::Sub": ...}``.

    Raises
    ------
    TemplateError
        If the file is not a mapping with a ``Resources`` section.
    yaml.YAMLError
        If the file is not YAML or uses a tag CloudFormation does not define.
    """
    with path.open(encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=_CloudFormationLoader)

    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{path} is not a template: it has no Resources mapping")

    return template


# ------------------------------------------------------------------------- resolving ---


class _NoValue:
    """What ``Ref: AWS::NoValue`` resolves to: the enclosing key or item is dropped."""


_NO_VALUE = _NoValue()


def _as_text(value: Any) -> str:
    """Render a resolved scalar the way CloudFormation passes it to a string property."""
    if isinstance(value, bool):
        return "true" if value else "false"

    if isinstance(value, int | float | str):
        return str(value)

    raise TemplateError(f"expected a scalar, got {value!r}")


def local_name(prefix: str, logical_id: str) -> str:
    """Return the deterministic local name of a resource, e.g. ``recsys-local-eventstream``.

    Parameters
    ----------
    prefix : str
        Lowercase letters, digits and hyphens; it stands in for the stack name.
    logical_id : str
        The resource's logical id in the template.

    Raises
    ------
    TemplateError
        If the prefix would make a name some service rejects.
    """
    if not _PREFIX_PATTERN.match(prefix):
        raise TemplateError(f"prefix {prefix!r} must be lowercase letters, digits and hyphens")

    return f"{prefix}-{logical_id.lower()}"


def _parameter_values(template: Template, overrides: Mapping[str, str]) -> dict[str, Any]:
    declared: dict[str, Any] = template.get("Parameters") or {}

    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"overrides name parameters the template lacks: {unknown}")

    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            text = str(overrides[name])
        elif "Default" in spec:
            text = _as_text(spec["Default"])
        else:
            continue  # Resolving a Ref to it raises, naming the parameter.

        is_list = spec.get("Type", "").startswith("List<") or spec.get("Type") == (
            "CommaDelimitedList"
        )
        values[name] = [item.strip() for item in text.split(",")] if is_list else text

    return values


@dataclass
class _Resolver:
    """Evaluates intrinsic functions against local names, parameters and pseudo-parameters.

    ``refs`` and ``attributes`` grow as resources are created, so a value is resolvable
    once what it points at exists.
    """

    template: Template
    parameters: dict[str, Any]
    prefix: str
    region: str
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    account_id: str = _DEFAULT_ACCOUNT_ID

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]

        if not isinstance(value, dict):
            return value

        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key.startswith("Fn::") or key == "Condition":
                return self._function(key, argument)

        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def condition(self, name: str) -> bool:
        conditions: dict[str, Any] = self.template.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"condition {name!r} is not defined")

        return bool(self.resolve(conditions[name]))

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::Region": self.region,
            "AWS::StackName": self.prefix,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.prefix}/local"
            ),
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]

        if name in self.parameters:
            return self.parameters[name]
        if name in (self.template.get("Parameters") or {}):
            raise TemplateError(f"parameter {name!r} has no default and no override")

        if name in self.refs:
            return self.refs[name]
        # A resource this module does not create (a function, the Firehose stream) is
        # known locally by its derived name, which is what the local stack calls it.
        if name in self.template["Resources"]:
            return local_name(self.prefix, name)

        raise TemplateError(f"Ref to {name!r}, which is neither a parameter nor a resource")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self.attributes[(logical_id, attribute)]
        except KeyError:
            raise TemplateError(
                f"cannot resolve {logical_id}.{attribute} locally: only attributes of the "
                "streams, tables, buckets and queues created here are known"
            ) from None

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], argument[1]
        else:
            text, variables = argument, {}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} stands for the text ${Literal}.
            if name in variables:
                return _as_text(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, _, attribute = name.partition(".")
                return self._get_att(logical_id, attribute)
            return _as_text(self._ref(name))

        return _SUB_VARIABLE.sub(substitute, text)

    def _function(self, key: str, argument: Any) -> Any:
        if key == "Fn::GetAtt":
            logical_id, attribute = self.resolve(argument)
            return self._get_att(logical_id, attribute)
        if key == "Fn::Sub":
            return self._sub(argument)
        if key == "Fn::Join":
            delimiter, items = self.resolve(argument)
            return delimiter.join(_as_text(item) for item in items)
        if key == "Fn::Select":
            index, items = self.resolve(argument)
            return items[int(index)]
        if key == "Fn::Split":
            delimiter, text = self.resolve(argument)
            return text.split(delimiter)
        if key == "Fn::Base64":
            return base64.b64encode(_as_text(self.resolve(argument)).encode()).decode()
        if key == "Fn::FindInMap":
            map_name, top_key, second_key = self.resolve(argument)
            return self.template["Mappings"][map_name][top_key][second_key]
        if key == "Fn::If":
            condition_name, if_true, if_false = argument
            chosen = if_true if self.condition(condition_name) else if_false
            return self.resolve(chosen)
        if key == "Fn::Equals":
            left, right = self.resolve(argument)
            return _as_text(left) == _as_text(right)
        if key == "Fn::Not":
            return not self.resolve(argument)[0]
        if key == "Fn::And":
            return all(self.resolve(argument))
        if key == "Fn::Or":
            return any(self.resolve(argument))
        if key == "Condition":
            return self.condition(argument)

        raise TemplateError(f"{key} cannot be resolved locally")


# ---------------------------------------------------------------------- provisioning ---


@dataclass(frozen=True)
class LocalResources:
    """Names of the resources ``provision`` created, and the functions' environments.

    Attributes
    ----------
    stream_name, table_name, model_bucket, archive_bucket : str
        Local names of ``EventStream``, ``UserStateTable``, ``ModelBucket`` and
        ``ArchiveBucket``.
    failure_queue_url : str
        URL of ``IngestFailureQueue`` on the local endpoint.
    refs : Mapping[str, str]
        What ``!Ref`` of each created resource gives locally, by logical id: the name,
        or the URL for a queue.
    """

    stream_name: str
    table_name: str
    model_bucket: str
    archive_bucket: str
    failure_queue_url: str
    refs: Mapping[str, str] = field(default_factory=dict, hash=False)
    environments: Mapping[str, Mapping[str, str]] = field(
        default_factory=dict, repr=False, hash=False
    )

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """Return a function's environment variables as Lambda would set them.

        Parameters
        ----------
        logical_id : str
            The function's logical id, e.g. ``"IngestFunction"``.

        Returns
        -------
        dict[str, str]
            ``Globals.Function`` variables overlaid with the function's own, every
            intrinsic resolved to local names and parameter values.

        Raises
        ------
        KeyError
            If the template has no function with that logical id.
        """
        if logical_id not in self.environments:
            raise KeyError(f"no function {logical_id!r}; known: {sorted(self.environments)}")

        return dict(self.environments[logical_id])


def _create_stream(
    kinesis: BaseClient, name: str, properties: Mapping[str, Any], resolver: _Resolver
) -> str:
    request: dict[str, Any] = {"StreamName": name}
    mode = resolver.resolve(properties.get("StreamModeDetails") or {})
    if mode.get("StreamMode") == "ON_DEMAND":
        request["StreamModeDetails"] = {"StreamMode": "ON_DEMAND"}
    else:
        request["ShardCount"] = int(resolver.resolve(properties.get("ShardCount", 1)))

    try:
        kinesis.create_stream(**request)
    except kinesis.exceptions.ResourceInUseException:
        logger.debug("stream %s exists already", name)

    # Producers and the poller fail on a stream that is still CREATING.
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig=_WAITER_CONFIG)

    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    return str(summary["StreamARN"])


def _table_request(name: str, properties: Mapping[str, Any], resolver: _Resolver) -> dict[str, Any]:
    request: dict[str, Any] = {"TableName": name}
    for key in _TABLE_REQUEST_KEYS:
        if key in properties:
            request[key] = resolver.resolve(properties[key])

    # CloudFormation's index and stream shapes carry extras the API does not accept.
    if "GlobalSecondaryIndexes" in properties:
        request["GlobalSecondaryIndexes"] = [
            {key: index[key] for key in _GLOBAL_INDEX_KEYS if key in index}
            for index in resolver.resolve(properties["GlobalSecondaryIndexes"])
        ]
    if "LocalSecondaryIndexes" in properties:
        request["LocalSecondaryIndexes"] = [
            {key: index[key] for key in _LOCAL_INDEX_KEYS if key in index}
            for index in resolver.resolve(properties["LocalSecondaryIndexes"])
        ]
    if "StreamSpecification" in properties:
        view_type = resolver.resolve(properties["StreamSpecification"])["StreamViewType"]
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}

    return request


def _create_table(
    dynamodb: BaseClient, name: str, properties: Mapping[str, Any], resolver: _Resolver
) -> str:
    try:
        dynamodb.create_table(**_table_request(name, properties, resolver))
    except dynamodb.exceptions.ResourceInUseException:
        logger.debug("table %s exists already", name)

    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig=_WAITER_CONFIG)

    time_to_live = resolver.resolve(properties.get("TimeToLiveSpecification"))
    if time_to_live and time_to_live.get("Enabled"):
        # DynamoDB rejects enabling TTL twice, so only a table without it is updated.
        described = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if described.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={
                    "AttributeName": time_to_live["AttributeName"],
                    "Enabled": True,
                },
            )

    return str(dynamodb.describe_table(TableName=name)["Table"]["TableArn"])


def _create_bucket(
    s3: BaseClient, name: str, properties: Mapping[str, Any], resolver: _Resolver
) -> str:
    if len(name) > _MAX_BUCKET_NAME_LENGTH:
        raise TemplateError(f"bucket name {name!r} is longer than S3 allows; use a shorter prefix")

    request: dict[str, Any] = {"Bucket": name}
    if resolver.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": resolver.region}

    try:
        s3.create_bucket(**request)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        logger.debug("bucket %s exists already", name)

    versioning = resolver.resolve(properties.get("VersioningConfiguration"))
    if versioning:
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": versioning["Status"]}
        )

    return f"arn:aws:s3:::{name}"


def _create_queue(
    sqs: BaseClient, name: str, properties: Mapping[str, Any], resolver: _Resolver
) -> tuple[str, str, str]:
    attributes = {
        key: _as_text(resolver.resolve(properties[key]))
        for key in _QUEUE_ATTRIBUTE_KEYS
        if key in properties
    }
    if attributes.get("FifoQueue") == "true":
        name = f"{name}.fifo"

    # CreateQueue returns the existing queue when its attributes are unchanged.
    url = str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])

    described = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return name, url, str(described["Attributes"]["QueueArn"])


def _account_of(arn: str) -> str:
    return arn.split(":")[4]


def _environment(template: Template, logical_id: str, resolver: _Resolver) -> dict[str, str]:
    resource = template["Resources"][logical_id]

    # Globals apply to SAM functions only; plain Lambda functions carry everything.
    variables: dict[str, Any] = {}
    if resource["Type"] == "AWS::Serverless::Function":
        globals_ = (template.get("Globals") or {}).get("Function") or {}
        variables.update(resolver.resolve(globals_.get("Environment") or {}).get("Variables", {}))

    own = (resource.get("Properties") or {}).get("Environment") or {}
    variables.update(resolver.resolve(own).get("Variables", {}))

    return {name: _as_text(value) for name, value in variables.items()}


def provision(
    template: Template,
    *,
    kinesis: BaseClient,
    dynamodb: BaseClient,
    s3: BaseClient,
    sqs: BaseClient,
    prefix: str = "recsys-local",
    parameter_overrides: Mapping[str, str] | None = None,
) -> LocalResources:
    """Create every stream, table, bucket and queue of the template; skip other resources.

    Calling it again with the same template and prefix finds the resources in place and
    returns the same ``LocalResources``.

    Parameters
    ----------
    template : dict
        A template from ``load_template``.
    kinesis, dynamodb, s3, sqs : botocore.client.BaseClient
        Clients of one region, pointed at the local endpoint.
    prefix : str
        Stands in for the stack name: each resource is called ``<prefix>-<logicalid>``
        in lowercase, e.g. ``recsys-local-userstatetable``.
    parameter_overrides : Mapping[str, str], optional
        Template parameter values that replace the defaults, e.g. ``{"LogLevel": "DEBUG"}``.

    Returns
    -------
    LocalResources
        Local names of the created resources and each function's resolved environment.

    Raises
    ------
    TemplateError
        If an override names no parameter, the prefix is invalid, a value cannot be
        resolved locally, or one of the resources the handlers need is missing.
    botocore.exceptions.WaiterError
        If the stream or table does not become ACTIVE within a minute.
    """
    resources: dict[str, Any] = template["Resources"]
    resolver = _Resolver(
        template=template,
        parameters=_parameter_values(template, parameter_overrides or {}),
        prefix=prefix,
        region=kinesis.meta.region_name,
    )

    for logical_id, resource in resources.items():
        condition = resource.get("Condition")
        if condition is not None and not resolver.condition(condition):
            continue

        name = local_name(prefix, logical_id)
        properties = resource.get("Properties") or {}
        resource_type = resource.get("Type")
        if resource_type == STREAM_TYPE:
            arn = _create_stream(kinesis, name, properties, resolver)
            resolver.refs[logical_id] = name
        elif resource_type == TABLE_TYPE:
            arn = _create_table(dynamodb, name, properties, resolver)
            resolver.refs[logical_id] = name
        elif resource_type == BUCKET_TYPE:
            arn = _create_bucket(s3, name, properties, resolver)
            resolver.refs[logical_id] = name
        elif resource_type == QUEUE_TYPE:
            name, url, arn = _create_queue(sqs, name, properties, resolver)
            resolver.refs[logical_id] = url
            resolver.attributes[(logical_id, "QueueName")] = name
            resolver.attributes[(logical_id, "QueueUrl")] = url
        else:
            continue

        resolver.attributes[(logical_id, "Arn")] = arn
        if resource_type != BUCKET_TYPE:
            resolver.account_id = _account_of(arn)
        logger.info("provisioned %s %s", resource_type, name)

    missing = [
        logical_id for logical_id in _HANDLER_RESOURCE_IDS if logical_id not in resolver.refs
    ]
    if missing:
        raise TemplateError(f"the template lacks resources the handlers need: {missing}")

    environments = {
        logical_id: MappingProxyType(_environment(template, logical_id, resolver))
        for logical_id, resource in resources.items()
        if resource.get("Type") in FUNCTION_TYPES
    }

    return LocalResources(
        stream_name=resolver.refs[STREAM_ID],
        table_name=resolver.refs[TABLE_ID],
        model_bucket=resolver.refs[MODEL_BUCKET_ID],
        archive_bucket=resolver.refs[ARCHIVE_BUCKET_ID],
        failure_queue_url=resolver.refs[FAILURE_QUEUE_ID],
        refs=MappingProxyType(dict(resolver.refs)),
        environments=MappingProxyType(environments),
    )


def table_key_schema(
    template: Template, logical_id: str
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Return a table's key schema and the definitions of its key attributes.

    Parameters
    ----------
    template : dict
        A template from ``load_template``.
    logical_id : str
        The table's logical id, e.g. ``"UserStateTable"``.

    Returns
    -------
    key_schema : list of dict
        ``KeySchema`` as written in the template, ready for ``create_table``.
    attribute_definitions : list of dict
        The ``AttributeDefinitions`` of the key attributes only, so that a table built
        from these two alone is valid even when the template defines index attributes.

    Raises
    ------
    TemplateError
        If ``logical_id`` is not a DynamoDB table of the template.
    """
    resource = template["Resources"].get(logical_id) or {}
    if resource.get("Type") != TABLE_TYPE:
        raise TemplateError(f"{logical_id!r} is not an {TABLE_TYPE} in the template")

    resolver = _Resolver(
        template=template,
        parameters=_parameter_values(template, {}),
        prefix="unused",
        region="us-east-1",
    )
    properties = resource["Properties"]

    key_schema: list[dict[str, str]] = resolver.resolve(properties["KeySchema"])
    key_names = {key["AttributeName"] for key in key_schema}
    definitions = [
        definition
        for definition in resolver.resolve(properties["AttributeDefinitions"])
        if definition["AttributeName"] in key_names
    ]
    return key_schema, definitions
