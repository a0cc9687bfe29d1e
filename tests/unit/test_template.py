"""Checks of template.yaml that need no AWS: lint, least privilege and the ingest contract."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local_stack.api import UNAUTHORIZED_BODY
from local_stack.template import load_template
from recsys.runtime.api import ADMIN_GROUP, render_openapi

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"

# cfn-lint's exit code is a bit set: 2 errors, 4 warnings, 8 informational findings.
CFN_LINT_INFORMATIONAL = 8

FUNCTION_IDS = ("IngestFunction", "TrainFunction", "RecommendFunction")

# Actions for which IAM offers no resource narrower than "*"; any other action must name
# a resource of this template.
WILDCARD_RESOURCE_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    }
)

# What the ingest event source mapping calls on the stream with the function's role.
INGEST_STREAM_READS = frozenset(
    {
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
        "kinesis:SubscribeToShard",
    }
)

# Resources that grant permissions outside a role's own Policies, where the checks below
# would not see them.
DETACHED_POLICY_TYPES = frozenset(
    {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"}
)

_SUB_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)[.}]")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def _properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return properties


def _ingest_mapping(template: dict[str, Any]) -> dict[str, Any]:
    events = _properties(template, "IngestFunction")["Events"]
    (mapping,) = [event["Properties"] for event in events.values() if event["Type"] == "Kinesis"]
    return mapping


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_ids(template: dict[str, Any]) -> list[str]:
    return [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
    ]


def _function_role_id(template: dict[str, Any], function_id: str) -> str:
    """The role a function runs as, which it names with ``!GetAtt <Role>.Arn``."""
    role_id: str = _properties(template, function_id)["Role"]["Fn::GetAtt"][0]
    return role_id


def _function_statements(template: dict[str, Any], function_id: str) -> list[dict[str, Any]]:
    return _role_statements(template, _function_role_id(template, function_id))


def _statements_with_prefix(statements: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Statements granting at least one action of a service, e.g. ``prefix="logs:"``."""
    return [s for s in statements if any(a.startswith(prefix) for a in _as_list(s["Action"]))]


def _role_statements(template: dict[str, Any], logical_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in _properties(template, logical_id)["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def _referenced_resources(resource: Any) -> set[str]:
    """Logical ids that one IAM ``Resource`` entry points at; empty for literal strings."""
    if not isinstance(resource, dict):
        return set()

    ((function, argument),) = resource.items()
    if function == "Ref":
        return {argument}
    if function == "Fn::GetAtt":
        return {argument[0]}
    if function == "Fn::Sub":
        text = argument[0] if isinstance(argument, list) else argument
        return set(_SUB_REFERENCE.findall(text))
    return set()


def _statements_naming_other_resources(
    template: dict[str, Any], statements: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Statements that grant on "*", a literal ARN, or anything not in this template."""
    resource_ids = set(template["Resources"])
    offending = []
    for statement in statements:
        actions = set(_as_list(statement["Action"]))
        for resource in _as_list(statement["Resource"]):
            if resource == "*" and actions <= WILDCARD_RESOURCE_ACTIONS:
                continue
            referenced = _referenced_resources(resource)
            if not referenced or not referenced <= resource_ids:
                offending.append(statement)
    return offending


def test_template_passes_cfn_lint() -> None:
    # GIVEN the template and the cfn-lint installed beside this interpreter
    command = [str(CFN_LINT), "--", str(TEMPLATE_PATH)]

    # WHEN the template is linted
    result = subprocess.run(command, capture_output=True, text=True, check=False)

    # THEN nothing worse than an informational finding is reported
    assert result.returncode & ~CFN_LINT_INFORMATIONAL == 0, result.stdout + result.stderr


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_functions_run_as_their_own_role_instead_of_a_generated_one(
    template: dict[str, Any], function_id: str
) -> None:
    # GIVEN a function's properties
    properties = _properties(template, function_id)

    # WHEN the role it runs as is looked up
    role_id = f"{function_id}Role"
    role = template["Resources"].get(role_id, {})

    # THEN it is this template's Lambda role for it, so SAM generates no role and attaches
    # none of its managed policies, and it has no Policies of its own to spread grants over
    assert properties.get("Role") == {"Fn::GetAtt": [role_id, "Arn"]}
    assert "Policies" not in properties
    assert role.get("Type") == "AWS::IAM::Role"
    assert [
        s["Principal"] for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    ] == [{"Service": "lambda.amazonaws.com"}]


def test_no_role_attaches_managed_policies(template: dict[str, Any]) -> None:
    # GIVEN every IAM role of the template
    role_ids = _role_ids(template)

    # WHEN the ones that attach managed policies are collected
    attaching = [
        role_id for role_id in role_ids if "ManagedPolicyArns" in _properties(template, role_id)
    ]

    # THEN none does: each role's whole grant is written out, statement by statement
    assert role_ids
    assert attaching == []


def test_grants_live_only_in_the_roles_own_policies(template: dict[str, Any]) -> None:
    # GIVEN the template's resources
    resources = template["Resources"]

    # WHEN the policy resources that stand apart from a role are collected
    detached = [
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] in DETACHED_POLICY_TYPES
    ]

    # THEN there are none, so the statement checks here read every grant
    assert detached == []


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_statements_name_only_template_resources(
    template: dict[str, Any], function_id: str
) -> None:
    # GIVEN a function's IAM statements
    statements = _function_statements(template, function_id)

    # WHEN their resources are checked
    offending = _statements_naming_other_resources(template, statements)

    # THEN each names a resource of this stack, or "*" only for actions that require it
    assert statements
    assert offending == []


def test_every_role_names_only_template_resources(template: dict[str, Any]) -> None:
    # GIVEN the statements of every IAM role, including any added after these tests
    statements = {role_id: _role_statements(template, role_id) for role_id in _role_ids(template)}

    # WHEN their resources are checked
    offending = {
        role_id: _statements_naming_other_resources(template, role_statements)
        for role_id, role_statements in statements.items()
    }

    # THEN no role grants on a resource outside this stack, or on "*" beyond X-Ray's actions
    assert all(statements.values())
    assert offending == {role_id: [] for role_id in statements}


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_functions_write_logs_only_to_their_own_log_group(
    template: dict[str, Any], function_id: str
) -> None:
    # GIVEN the log group a function logs to and its role's statements
    log_group_id = _properties(template, function_id)["LoggingConfig"]["LogGroup"]["Ref"]
    statements = _function_statements(template, function_id)

    # WHEN the CloudWatch Logs grants are collected
    logs = _statements_with_prefix(statements, "logs:")

    # THEN one statement lets it open streams and put events in that group, and no other
    assert [(set(_as_list(s["Action"])), s["Resource"]) for s in logs] == [
        ({"logs:CreateLogStream", "logs:PutLogEvents"}, {"Fn::GetAtt": [log_group_id, "Arn"]})
    ]


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_traced_functions_may_upload_traces(template: dict[str, Any], function_id: str) -> None:
    # GIVEN a function's effective tracing mode and its role's statements
    global_tracing = template["Globals"]["Function"].get("Tracing")
    tracing = _properties(template, function_id).get("Tracing", global_tracing)
    statements = _function_statements(template, function_id)

    # WHEN the X-Ray actions it is granted are collected
    granted = {
        action
        for statement in _statements_with_prefix(statements, "xray:")
        for action in _as_list(statement["Action"])
    }

    # THEN an active tracer may send segments and telemetry (SAM no longer adds them), and
    # an untraced function gets no X-Ray rights at all
    expected = (
        {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} if tracing == "Active" else set()
    )
    assert granted == expected


def test_ingest_role_reads_only_the_event_stream(template: dict[str, Any]) -> None:
    # GIVEN the ingest role's statements and the stream its event source mapping polls
    statements = _function_statements(template, "IngestFunction")
    event_stream = {"Fn::GetAtt": ["EventStream", "Arn"]}

    # WHEN its Kinesis grants are collected
    kinesis = _statements_with_prefix(statements, "kinesis:")
    granted = {action for statement in kinesis for action in _as_list(statement["Action"])}

    # THEN the mapping may read the stream it polls, that stream only, and never write to it
    assert _ingest_mapping(template)["Stream"] == event_stream
    assert [statement["Resource"] for statement in kinesis] == [event_stream]
    assert granted == INGEST_STREAM_READS


def test_archive_delivery_role_names_only_template_resources(template: dict[str, Any]) -> None:
    # GIVEN the role Firehose assumes to copy the stream into the archive
    statements = _role_statements(template, "ArchiveDeliveryRole")

    # WHEN its resources are checked
    offending = _statements_naming_other_resources(template, statements)

    # THEN it reaches only the event stream, the archive bucket and its own log group
    assert offending == []


def test_wildcard_check_rejects_a_statement_on_every_resource(template: dict[str, Any]) -> None:
    # GIVEN a statement that grants DynamoDB reads on every table
    statement = {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}

    # WHEN it is checked like the template's statements
    offending = _statements_naming_other_resources(template, [statement])

    # THEN it is reported, so the checks above can fail
    assert offending == [statement]


def test_ingest_reports_batch_item_failures(template: dict[str, Any]) -> None:
    # GIVEN the ingest function's Kinesis event source mapping
    mapping = _ingest_mapping(template)

    # WHEN its response types are read
    response_types = mapping.get("FunctionResponseTypes", [])

    # THEN a failed record is retried on its own, not with the whole batch
    assert "ReportBatchItemFailures" in response_types


def test_ingest_bisects_failing_batches(template: dict[str, Any]) -> None:
    # GIVEN the ingest function's Kinesis event source mapping
    mapping = _ingest_mapping(template)

    # WHEN its error handling is read
    bisects = mapping.get("BisectBatchOnFunctionError")

    # THEN a batch whose invocation fails is split to isolate the bad record
    assert bisects is True


def test_ingest_retries_are_bounded(template: dict[str, Any]) -> None:
    # GIVEN the ingest function's Kinesis event source mapping
    mapping = _ingest_mapping(template)

    # WHEN its retry limit is read (-1 or absent means retry until the record expires)
    retries = mapping.get("MaximumRetryAttempts", -1)

    # THEN a poison record stops blocking its shard after a few attempts
    assert 0 <= retries <= 10


def test_ingest_skips_records_older_than_an_hour(template: dict[str, Any]) -> None:
    # GIVEN the ingest function's Kinesis event source mapping
    mapping = _ingest_mapping(template)

    # WHEN its maximum record age is read (-1 or absent means the stream's retention)
    max_age = mapping.get("MaximumRecordAgeInSeconds", -1)

    # THEN a shard that fell behind catches up instead of replaying stale events
    assert 60 <= max_age <= 3600


def test_ingest_sends_exhausted_batches_to_failure_queue(template: dict[str, Any]) -> None:
    # GIVEN the ingest function's Kinesis event source mapping
    mapping = _ingest_mapping(template)

    # WHEN its on-failure destination is read
    destination = mapping["DestinationConfig"]["OnFailure"]["Destination"]

    # THEN batches that ran out of retries are recorded in the failure queue
    assert destination == {"Fn::GetAtt": ["IngestFailureQueue", "Arn"]}


def test_ingest_may_send_to_failure_queue(template: dict[str, Any]) -> None:
    # GIVEN the ingest function's statements
    statements = _function_statements(template, "IngestFunction")

    # WHEN the ones allowing sqs:SendMessage are collected
    send_targets = [
        statement["Resource"]
        for statement in statements
        if "sqs:SendMessage" in _as_list(statement["Action"])
    ]

    # THEN the failure queue is one of them, or Lambda could not record a failed batch
    assert {"Fn::GetAtt": ["IngestFailureQueue", "Arn"]} in send_targets


def test_user_state_table_is_keyed_by_user_id_only(template: dict[str, Any]) -> None:
    # GIVEN the user state table
    properties = _properties(template, "UserStateTable")

    # WHEN its key schema is read
    key_schema = properties["KeySchema"]

    # THEN one string partition key, user_id, addresses a user's state
    assert key_schema == [{"AttributeName": "user_id", "KeyType": "HASH"}]
    assert {"AttributeName": "user_id", "AttributeType": "S"} in properties["AttributeDefinitions"]


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_functions_run_python_312(template: dict[str, Any], function_id: str) -> None:
    # GIVEN the global runtime and the function's own properties
    global_runtime = template["Globals"]["Function"]["Runtime"]

    # WHEN the function's effective runtime is read
    runtime = _properties(template, function_id).get("Runtime", global_runtime)

    # THEN it is the runtime the layer is built for
    assert runtime == "python3.12"
    assert runtime in _properties(template, "RecsysLayer")["CompatibleRuntimes"]


def test_archive_objects_are_newline_delimited(template: dict[str, Any]) -> None:
    # GIVEN the Firehose stream that copies events into the archive
    destination = _properties(template, "ArchiveDeliveryStream")[
        "ExtendedS3DestinationConfiguration"
    ]

    # WHEN its record processors are read
    processors = destination["ProcessingConfiguration"]["Processors"]

    # THEN each record gets a newline, so archived objects are JSON lines
    assert "AppendDelimiterToRecord" in [processor["Type"] for processor in processors]


def test_archive_prefix_is_where_training_reads(template: dict[str, Any]) -> None:
    # GIVEN the Firehose prefix and the trainer's archive prefix
    prefix = _properties(template, "ArchiveDeliveryStream")["ExtendedS3DestinationConfiguration"][
        "Prefix"
    ]
    train_prefix = _properties(template, "TrainFunction")["Environment"]["Variables"][
        "ARCHIVE_PREFIX"
    ]

    # WHEN they are compared
    lands_under_train_prefix = prefix.startswith(train_prefix)

    # THEN the trainer lists the objects Firehose writes
    assert lands_under_train_prefix


def test_ingest_and_recommend_agree_on_history_settings(template: dict[str, Any]) -> None:
    # GIVEN the settings both functions use to bound a user's history (the weights and the
    # half-life travel inside the model's manifest, so both fold with the same ones)
    names = ("HISTORY_MAX_EVENTS", "HISTORY_MAX_AGE_DAYS", "MODEL_REFRESH_SECONDS")

    # WHEN each function's values are read
    ingest, recommend = (
        {
            name: _properties(template, function_id)["Environment"]["Variables"][name]
            for name in names
        }
        for function_id in ("IngestFunction", "RecommendFunction")
    )

    # THEN a vector folded at ingest is the one recommend would fold from the same history
    assert ingest == recommend


# ------------------------------------------------------------------------ the API ---


def _api_events(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    events = _properties(template, "RecommendFunction")["Events"]
    return {name: event["Properties"] for name, event in events.items() if event["Type"] == "Api"}


def test_template_routes_are_the_routes_the_code_serves(template: dict[str, Any]) -> None:
    # GIVEN the recommend function's Api events and the OpenAPI document of the code
    document = json.loads(render_openapi())

    # WHEN both are reduced to method and path
    in_template = {
        (event["Method"].upper(), event["Path"]) for event in _api_events(template).values()
    }
    in_code = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }

    # THEN API Gateway routes exactly what the function answers
    assert in_template == in_code


def test_api_requires_a_user_pool_token_by_default(template: dict[str, Any]) -> None:
    # GIVEN the API's auth settings
    auth = _properties(template, "RecommendApi")["Auth"]

    # WHEN its default authorizer is looked up
    authorizer = auth["Authorizers"][auth["DefaultAuthorizer"]]

    # THEN it is a Cognito authorizer on this template's user pool
    assert authorizer["UserPoolArn"] == {"Fn::GetAtt": ["UserPool", "Arn"]}


def test_only_health_opts_out_of_the_authorizer(template: dict[str, Any]) -> None:
    # GIVEN the API events
    events = _api_events(template)

    # WHEN the ones that set their own authorizer are collected
    overrides = {
        event["Path"]: event["Auth"]["Authorizer"] for event in events.values() if "Auth" in event
    }

    # THEN /health alone is open
    assert overrides == {"/health": "NONE"}


def test_user_pool_has_an_app_client_and_an_admin_group(template: dict[str, Any]) -> None:
    # GIVEN the identity resources
    client = _properties(template, "UserPoolClient")
    group = _properties(template, "UserPoolAdminGroup")

    # WHEN they are read
    # THEN the apps' client is public and the admin group is the one the code checks
    assert client["UserPoolId"] == {"Ref": "UserPool"}
    assert client["GenerateSecret"] is False
    assert group["GroupName"] == ADMIN_GROUP
    assert group["UserPoolId"] == {"Ref": "UserPool"}


def test_api_is_throttled_and_has_a_usage_plan(template: dict[str, Any]) -> None:
    # GIVEN the stage's method settings and the usage plan
    (settings,) = _properties(template, "RecommendApi")["MethodSettings"]
    plan = _properties(template, "RecommendApiUsagePlan")

    # WHEN their limits are read
    # THEN every method is rate-limited and the plan caps the stage with a quota
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0
    assert plan["ApiStages"] == [
        {"ApiId": {"Ref": "RecommendApi"}, "Stage": {"Ref": "RecommendApi.Stage"}}
    ]
    assert plan["Throttle"]["RateLimit"] > 0
    assert plan["Quota"]["Limit"] > 0


def test_unauthorized_answer_is_the_one_the_local_api_gives(template: dict[str, Any]) -> None:
    # GIVEN API Gateway's UNAUTHORIZED response
    response = _properties(template, "RecommendApi")["GatewayResponses"]["UNAUTHORIZED"]

    # WHEN its body is parsed
    body = json.loads(response["ResponseTemplates"]["application/json"])

    # THEN it is what the local stack answers, so tests of 401 hold in AWS
    assert response["StatusCode"] == 401
    assert body == UNAUTHORIZED_BODY


def test_deletion_markers_expire_by_ttl(template: dict[str, Any]) -> None:
    # GIVEN the deletion marker table
    properties = _properties(template, "DeletedUsersTable")

    # WHEN its TTL is read
    ttl = properties["TimeToLiveSpecification"]

    # THEN markers expire on the attribute the adapter writes
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}


def test_recommend_function_puts_events_on_the_event_stream_only(template: dict[str, Any]) -> None:
    # GIVEN the recommend function's statements and environment
    statements = _function_statements(template, "RecommendFunction")
    variables = _properties(template, "RecommendFunction")["Environment"]["Variables"]

    # WHEN the Kinesis grants are collected
    kinesis = _statements_with_prefix(statements, "kinesis:")

    # THEN it may PutRecords on the event stream it is configured with, nothing else
    assert [(s["Action"], s["Resource"]) for s in kinesis] == [
        ("kinesis:PutRecords", {"Fn::GetAtt": ["EventStream", "Arn"]})
    ]
    assert variables["STREAM_NAME"] == {"Ref": "EventStream"}


@pytest.mark.parametrize(
    ("function_id", "table_id", "actions"),
    [
        ("RecommendFunction", "DeletedUsersTable", {"dynamodb:PutItem"}),
        ("IngestFunction", "DeletedUsersTable", {"dynamodb:BatchGetItem"}),
        ("TrainFunction", "DeletedUsersTable", {"dynamodb:Scan"}),
        ("TrainFunction", "CatalogTable", {"dynamodb:Scan"}),
        (
            "RecommendFunction",
            "CatalogTable",
            {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        ),
    ],
)
def test_functions_reach_the_new_tables_with_just_the_actions_they_use(
    template: dict[str, Any], function_id: str, table_id: str, actions: set[str]
) -> None:
    # GIVEN a function's statements
    statements = _function_statements(template, function_id)

    # WHEN the actions granted on the table are collected
    granted = {
        action
        for statement in statements
        for resource in _as_list(statement["Resource"])
        if resource == {"Fn::GetAtt": [table_id, "Arn"]}
        for action in _as_list(statement["Action"])
    }

    # THEN they are exactly the ones its adapters call
    assert granted == actions
