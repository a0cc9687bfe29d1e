"""The local stack builds its data resources from template.yaml (moto in-process)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.client import BaseClient
from moto import mock_aws

from local_stack.template import (
    LocalResources,
    TemplateError,
    load_template,
    provision,
    table_key_schema,
)

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
REGION = "us-east-1"

Clients = dict[str, BaseClient]


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials, and no profile or config file that could point anywhere real."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def clients() -> Iterator[Clients]:
    with mock_aws():
        yield {
            service: boto3.client(service, region_name=REGION)
            for service in ("kinesis", "dynamodb", "s3", "sqs")
        }


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture
def resources(template: dict[str, Any], clients: Clients) -> LocalResources:
    return provision(template, **clients)


def _queue_name(queue_url: str) -> str:
    return queue_url.rsplit("/", 1)[1]


# ----------------------------------------------------------------------- resources ---


def test_stream_is_active(resources: LocalResources, clients: Clients) -> None:
    # GIVEN the template provisioned locally
    # WHEN the stream is described
    summary = clients["kinesis"].describe_stream_summary(StreamName=resources.stream_name)

    # THEN producers and the poller can use it at once
    assert summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"


def test_stream_has_the_template_default_shard_count(
    template: dict[str, Any], resources: LocalResources, clients: Clients
) -> None:
    # GIVEN the template's default shard count
    default = int(template["Parameters"]["ShardCount"]["Default"])

    # WHEN the local stream's shards are listed
    shards = clients["kinesis"].list_shards(StreamName=resources.stream_name)["Shards"]

    # THEN there are that many
    assert len(shards) == default


def test_table_key_schema_equals_template(
    template: dict[str, Any], resources: LocalResources, clients: Clients
) -> None:
    # GIVEN the template's key schema of the user state table
    key_schema, attribute_definitions = table_key_schema(template, "UserStateTable")

    # WHEN the local table is described
    table = clients["dynamodb"].describe_table(TableName=resources.table_name)["Table"]

    # THEN its keys are the template's
    assert table["KeySchema"] == key_schema
    assert table["AttributeDefinitions"] == attribute_definitions


def test_table_billing_mode_equals_template(
    template: dict[str, Any], resources: LocalResources, clients: Clients
) -> None:
    # GIVEN the template's billing mode of the user state table
    billing_mode = template["Resources"]["UserStateTable"]["Properties"]["BillingMode"]

    # WHEN the local table is described
    table = clients["dynamodb"].describe_table(TableName=resources.table_name)["Table"]

    # THEN it is billed the same way
    assert table["BillingModeSummary"]["BillingMode"] == billing_mode


def test_both_buckets_exist(resources: LocalResources, clients: Clients) -> None:
    # GIVEN the template provisioned locally
    # WHEN the buckets are listed
    names = {bucket["Name"] for bucket in clients["s3"].list_buckets()["Buckets"]}

    # THEN the model and archive buckets are there
    assert names == {resources.model_bucket, resources.archive_bucket}


def test_model_bucket_is_versioned(resources: LocalResources, clients: Clients) -> None:
    # GIVEN the template provisioned locally
    # WHEN the model bucket's versioning is read
    versioning = clients["s3"].get_bucket_versioning(Bucket=resources.model_bucket)

    # THEN it is on, as in the template
    assert versioning["Status"] == "Enabled"


def test_failure_queue_exists(resources: LocalResources, clients: Clients) -> None:
    # GIVEN the template provisioned locally
    queue_name = _queue_name(resources.failure_queue_url)

    # WHEN the queue is looked up by name
    queue_url = clients["sqs"].get_queue_url(QueueName=queue_name)["QueueUrl"]

    # THEN it is the queue provision reported
    assert queue_url == resources.failure_queue_url


def test_failure_queue_keeps_messages_as_long_as_template_says(
    template: dict[str, Any], resources: LocalResources, clients: Clients
) -> None:
    # GIVEN the template's retention of the failure queue
    retention = template["Resources"]["IngestFailureQueue"]["Properties"]["MessageRetentionPeriod"]

    # WHEN the local queue's attributes are read
    attributes = clients["sqs"].get_queue_attributes(
        QueueUrl=resources.failure_queue_url, AttributeNames=["MessageRetentionPeriod"]
    )["Attributes"]

    # THEN they match
    assert attributes["MessageRetentionPeriod"] == str(retention)


def _logical_ids(template: dict[str, Any], resource_type: str) -> list[str]:
    return [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    ]


def test_names_derive_from_prefix_and_logical_id(resources: LocalResources) -> None:
    # GIVEN the template provisioned with the default prefix
    # WHEN the table's name is read
    name = resources.table_name

    # THEN it is the prefix and the lowercased logical id
    assert name == "recsys-local-userstatetable"


def test_resources_of_other_types_are_not_created(
    template: dict[str, Any], resources: LocalResources, clients: Clients
) -> None:
    # GIVEN a template whose only stream is the event stream, and its tables
    table_ids = _logical_ids(template, "AWS::DynamoDB::Table")

    # WHEN everything local is listed
    tables = clients["dynamodb"].list_tables()["TableNames"]
    streams = clients["kinesis"].list_streams()["StreamNames"]

    # THEN nothing else was made (Firehose, functions and roles are not AWS data here)
    assert sorted(tables) == sorted(resources.refs[logical_id] for logical_id in table_ids)
    assert streams == [resources.stream_name]


# --------------------------------------------------------------------- idempotency ---


def test_provisioning_twice_returns_the_same_resources(
    template: dict[str, Any], resources: LocalResources, clients: Clients
) -> None:
    # GIVEN a template provisioned once
    # WHEN it is provisioned again
    again = provision(template, **clients)

    # THEN the same resources are reported
    assert again == resources


def test_provisioning_twice_creates_nothing_new(
    template: dict[str, Any], resources: LocalResources, clients: Clients
) -> None:
    # GIVEN a template provisioned once
    # WHEN it is provisioned again
    provision(template, **clients)

    # THEN there is still one of each
    tables = sorted(resources.refs[i] for i in _logical_ids(template, "AWS::DynamoDB::Table"))
    assert clients["kinesis"].list_streams()["StreamNames"] == [resources.stream_name]
    assert sorted(clients["dynamodb"].list_tables()["TableNames"]) == tables
    assert len(clients["s3"].list_buckets()["Buckets"]) == 2
    assert clients["sqs"].list_queues()["QueueUrls"] == [resources.failure_queue_url]


# --------------------------------------------------------------------- environment ---


def test_ingest_environment_names_local_table_and_bucket(resources: LocalResources) -> None:
    # GIVEN the template provisioned locally
    # WHEN the ingest function's environment is read
    environment = resources.function_environment("IngestFunction")

    # THEN the global !Ref values resolve to the local resources
    assert environment["USER_STATE_TABLE"] == resources.table_name
    assert environment["MODEL_BUCKET"] == resources.model_bucket


def test_train_environment_names_local_archive_bucket(resources: LocalResources) -> None:
    # GIVEN the template provisioned locally
    # WHEN the train function's environment is read
    environment = resources.function_environment("TrainFunction")

    # THEN its own !Ref resolves to the local archive bucket
    assert environment["ARCHIVE_BUCKET"] == resources.archive_bucket


def test_function_environment_merges_globals_with_own_variables(
    resources: LocalResources,
) -> None:
    # GIVEN the template provisioned locally
    # WHEN the recommend function's environment is read
    environment = resources.function_environment("RecommendFunction")

    # THEN it has the global variables and its own
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == "Recsys"
    assert environment["POWERTOOLS_SERVICE_NAME"] == "recommend"


def test_function_environment_uses_parameter_defaults(
    template: dict[str, Any], resources: LocalResources
) -> None:
    # GIVEN the template's default refresh interval
    default = template["Parameters"]["ModelRefreshSeconds"]["Default"]

    # WHEN the recommend function's environment is read
    environment = resources.function_environment("RecommendFunction")

    # THEN the parameter resolves to its default, as text
    assert environment["MODEL_REFRESH_SECONDS"] == str(default)


def test_parameter_override_replaces_default(template: dict[str, Any], clients: Clients) -> None:
    # GIVEN an override of the log level
    overrides = {"LogLevel": "DEBUG"}

    # WHEN the template is provisioned with it
    resources = provision(template, **clients, parameter_overrides=overrides)

    # THEN the functions see the override
    assert resources.function_environment("IngestFunction")["LOG_LEVEL"] == "DEBUG"


def test_function_value_wins_over_global_value(template: dict[str, Any], clients: Clients) -> None:
    # GIVEN a function that sets a variable Globals also sets
    edited = copy.deepcopy(template)
    own = edited["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"]
    own["MODEL_PREFIX"] = "canary-models/"

    # WHEN its environment is resolved
    resources = provision(edited, **clients)

    # THEN the function's own value is used
    assert resources.function_environment("IngestFunction")["MODEL_PREFIX"] == "canary-models/"


def test_sub_resolves_attributes_pseudo_parameters_and_literals(
    template: dict[str, Any], clients: Clients
) -> None:
    # GIVEN a variable that substitutes an attribute, a pseudo-parameter and a literal
    edited = copy.deepcopy(template)
    own = edited["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"]
    own["PROBE"] = {"Fn::Sub": "${IngestFailureQueue.QueueName}|${AWS::Region}|${!Literal}"}

    # WHEN the environment is resolved
    resources = provision(edited, **clients)

    # THEN each part is replaced as CloudFormation would
    queue_name = _queue_name(resources.failure_queue_url)
    expected = f"{queue_name}|{REGION}|${{Literal}}"
    assert resources.function_environment("IngestFunction")["PROBE"] == expected


def test_get_att_arn_resolves_to_the_local_resource_arn(
    template: dict[str, Any], clients: Clients
) -> None:
    # GIVEN a variable holding the stream's ARN
    edited = copy.deepcopy(template)
    own = edited["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"]
    own["STREAM_ARN"] = {"Fn::GetAtt": ["EventStream", "Arn"]}

    # WHEN the environment is resolved
    resources = provision(edited, **clients)

    # THEN it is the ARN the local endpoint reports
    summary = clients["kinesis"].describe_stream_summary(StreamName=resources.stream_name)
    arn = summary["StreamDescriptionSummary"]["StreamARN"]
    assert resources.function_environment("IngestFunction")["STREAM_ARN"] == arn


def test_unknown_function_raises_key_error(resources: LocalResources) -> None:
    # GIVEN the template provisioned locally
    # WHEN the environment of a function the template lacks is asked for
    # THEN a KeyError says so
    with pytest.raises(KeyError, match="NoSuchFunction"):
        resources.function_environment("NoSuchFunction")


# -------------------------------------------------------------------------- inputs ---


def test_override_of_unknown_parameter_is_rejected(
    template: dict[str, Any], clients: Clients
) -> None:
    # GIVEN an override with a misspelt parameter name
    overrides = {"LogLvl": "DEBUG"}

    # WHEN the template is provisioned with it
    # THEN provisioning refuses instead of silently using the default
    with pytest.raises(TemplateError, match="LogLvl"):
        provision(template, **clients, parameter_overrides=overrides)


def test_prefix_that_makes_invalid_bucket_names_is_rejected(
    template: dict[str, Any], clients: Clients
) -> None:
    # GIVEN a prefix with upper case and an underscore, both invalid in bucket names
    prefix = "My_Stack"

    # WHEN the template is provisioned with it
    # THEN provisioning refuses
    with pytest.raises(TemplateError, match="prefix"):
        provision(template, **clients, prefix=prefix)


def test_resource_whose_condition_is_false_is_skipped(
    template: dict[str, Any], clients: Clients
) -> None:
    # GIVEN a bucket created only under a condition that is false
    edited = copy.deepcopy(template)
    edited["Conditions"] = {"IsProduction": {"Fn::Equals": [{"Ref": "StageName"}, "prod"]}}
    edited["Resources"]["ProductionOnlyBucket"] = {
        "Type": "AWS::S3::Bucket",
        "Condition": "IsProduction",
    }

    # WHEN the template is provisioned with the default stage
    resources = provision(edited, **clients)

    # THEN that bucket is not created
    assert "ProductionOnlyBucket" not in resources.refs


def test_table_key_schema_leaves_out_index_attributes(template: dict[str, Any]) -> None:
    # GIVEN a table that also defines an attribute for a secondary index
    edited = copy.deepcopy(template)
    properties = edited["Resources"]["UserStateTable"]["Properties"]
    properties["AttributeDefinitions"].append({"AttributeName": "segment", "AttributeType": "S"})

    # WHEN its key schema is read
    key_schema, attribute_definitions = table_key_schema(edited, "UserStateTable")

    # THEN only the key attributes are defined, so create_table accepts the pair
    assert attribute_definitions == [{"AttributeName": "user_id", "AttributeType": "S"}]


# -------------------------------------------------------------------------- loading ---


def _load(tmp_path: Path, text: str) -> dict[str, Any]:
    path = tmp_path / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return load_template(path)


def test_short_form_tags_become_long_form(tmp_path: Path) -> None:
    # GIVEN a template using short-form Ref, Sub and Join
    text = (
        "Resources:\n"
        "  Q:\n"
        "    Type: AWS::SQS::Queue\n"
        "    Properties:\n"
        "      QueueName: !Join ['-', [!Ref AWS::StackName, !Sub '${AWS::Region}']]\n"
    )

    # WHEN it is loaded
    template = _load(tmp_path, text)

    # THEN each tag is a one-key dict named as in the JSON form
    assert template["Resources"]["Q"]["Properties"]["QueueName"] == {
        "Fn::Join": ["-", [{"Ref": "AWS::StackName"}, {"Fn::Sub": "${AWS::Region}"}]]
    }


def test_get_att_short_form_splits_at_the_first_dot(tmp_path: Path) -> None:
    # GIVEN a GetAtt whose attribute has a dot of its own
    text = "Resources: {}\nOutputs:\n  Host:\n    Value: !GetAtt Db.Endpoint.Address\n"

    # WHEN it is loaded
    template = _load(tmp_path, text)

    # THEN the logical id and the whole attribute are kept apart
    assert template["Outputs"]["Host"]["Value"] == {"Fn::GetAtt": ["Db", "Endpoint.Address"]}


def test_unquoted_format_version_stays_text(tmp_path: Path) -> None:
    # GIVEN a template whose format version is an unquoted date
    text = "AWSTemplateFormatVersion: 2010-09-09\nResources: {}\n"

    # WHEN it is loaded
    template = _load(tmp_path, text)

    # THEN it is the text CloudFormation expects, not a date
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"


def test_tag_cloudformation_does_not_define_is_rejected(tmp_path: Path) -> None:
    # GIVEN a template with a misspelt tag
    text = "Resources:\n  Q:\n    Type: !Reff Something\n"

    # WHEN it is loaded
    # THEN loading fails instead of keeping an unreadable value
    with pytest.raises(yaml.YAMLError, match="Reff"):
        _load(tmp_path, text)


def test_file_without_resources_is_rejected(tmp_path: Path) -> None:
    # GIVEN a YAML file that is not a template
    text = "name: realtime-recsys\n"

    # WHEN it is loaded
    # THEN the loader says it is not a template
    with pytest.raises(TemplateError, match="Resources"):
        _load(tmp_path, text)
