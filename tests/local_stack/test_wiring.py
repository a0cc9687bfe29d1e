"""What the local stack reads from template.yaml, and its pure decisions; no servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local_stack.api import ApiRoute, ApiServer, api_routes, parse_proxy_response
from local_stack.kinesis import KinesisEventSettings
from local_stack.stack import function_specs, scheduled_event
from local_stack.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(REPO_ROOT / "template.yaml")


class _NeverInvoked:
    logical_id = "Unused"
    function_name = "unused"
    function_arn = "arn:aws:lambda:us-east-1:123456789012:function:unused"

    def invoke(self, event: Any, timeout_s: float | None = None) -> Any:
        raise AssertionError("route resolution must not invoke anything")


def _resolver(*routes: ApiRoute) -> ApiServer:
    functions = {route.logical_id: _NeverInvoked() for route in routes}
    return ApiServer(list(routes), functions, port=0)


# -------------------------------------------------------------------- template ---


def test_api_routes_are_the_template_api_events(template: dict[str, Any]) -> None:
    # GIVEN the product's template
    # WHEN its API routes are read
    routes = api_routes(template)

    # THEN the recommend function serves them all, behind the Cognito authorizer but /health
    guarded = "CognitoAuthorizer"
    assert routes == [
        ApiRoute("RecommendFunction", "GET", "/me/recommendations", guarded),
        ApiRoute("RecommendFunction", "GET", "/users/{userId}/recommendations", guarded),
        ApiRoute("RecommendFunction", "POST", "/me/rank", guarded),
        ApiRoute("RecommendFunction", "DELETE", "/me", guarded),
        ApiRoute("RecommendFunction", "DELETE", "/users/{userId}", guarded),
        ApiRoute("RecommendFunction", "POST", "/events", guarded),
        ApiRoute("RecommendFunction", "GET", "/items/{itemId}/similar", guarded),
        ApiRoute("RecommendFunction", "GET", "/items/{itemId}", guarded),
        ApiRoute("RecommendFunction", "PUT", "/items/{itemId}", guarded),
        ApiRoute("RecommendFunction", "DELETE", "/items/{itemId}", guarded),
        ApiRoute("RecommendFunction", "GET", "/health", None),
    ]


def test_route_authorizer_none_opens_a_route_of_a_guarded_api() -> None:
    # GIVEN an Api with a default authorizer and two events, one opting out with NONE
    def api_event(path: str, auth: dict[str, str] | None) -> dict[str, Any]:
        properties: dict[str, Any] = {"RestApiId": {"Ref": "Api"}, "Path": path, "Method": "get"}
        if auth is not None:
            properties["Auth"] = auth
        return {"Type": "Api", "Properties": properties}

    template = {
        "Resources": {
            "Api": {
                "Type": "AWS::Serverless::Api",
                "Properties": {"Auth": {"DefaultAuthorizer": "Pool"}},
            },
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "Guarded": api_event("/a", None),
                        "Open": api_event("/b", {"Authorizer": "NONE"}),
                    }
                },
            },
        }
    }

    # WHEN the routes are read
    routes = api_routes(template)

    # THEN the default guards the first, the second is open
    assert [route.authorizer for route in routes] == ["Pool", None]


def test_ingest_mapping_settings_are_the_template_kinesis_event(template: dict[str, Any]) -> None:
    # GIVEN the ingest function's Kinesis event in the template
    properties = template["Resources"]["IngestFunction"]["Properties"]["Events"]["Stream"][
        "Properties"
    ]

    # WHEN the mapping settings are read from it
    settings = KinesisEventSettings.from_event_properties(properties)

    # THEN they are the template's values
    assert settings == KinesisEventSettings(
        batch_size=properties["BatchSize"],
        maximum_batching_window_s=properties["MaximumBatchingWindowInSeconds"],
        maximum_retry_attempts=properties["MaximumRetryAttempts"],
        maximum_record_age_s=properties["MaximumRecordAgeInSeconds"],
        bisect_batch_on_function_error=properties["BisectBatchOnFunctionError"],
        report_batch_item_failures=True,
        starting_position=properties["StartingPosition"],
    )


def test_function_specs_combine_globals_and_function_properties(
    template: dict[str, Any],
) -> None:
    # GIVEN the product's template
    # WHEN the functions' run settings are read
    specs = function_specs(template, REPO_ROOT)

    # THEN each function has its code directory, the shared layer and its own limits
    assert set(specs) == {"IngestFunction", "TrainFunction", "RecommendFunction"}
    ingest = specs["IngestFunction"]
    assert ingest.code_dir == REPO_ROOT / "functions/ingest/"
    assert ingest.handler == "app.lambda_handler"
    assert ingest.layer_dir == REPO_ROOT / "shared/"
    assert ingest.timeout_s == 60
    assert ingest.memory_mb == template["Globals"]["Function"]["MemorySize"]
    assert specs["TrainFunction"].memory_mb == 3008


@pytest.mark.parametrize("field", ["batch_size", "maximum_retry_attempts"])
def test_out_of_range_settings_are_refused(field: str) -> None:
    # GIVEN a setting Lambda would refuse
    # WHEN mapping settings are built with it
    # THEN they are refused
    out_of_range: dict[str, Any] = {field: -5}
    with pytest.raises(ValueError):
        KinesisEventSettings(**out_of_range)


def test_scheduled_event_has_eventbridge_shape() -> None:
    # GIVEN a schedule rule
    # WHEN its event is built
    event = scheduled_event("nightly", account_id="123456789012")

    # THEN it is EventBridge's scheduled event
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/nightly"]


# ------------------------------------------------------------------ API routing ---


def test_literal_segment_beats_a_parameter() -> None:
    # GIVEN a literal route and a parameter route that both match /users/me/recommendations
    literal = ApiRoute("Me", "GET", "/users/me/recommendations")
    parameter = ApiRoute("Any", "GET", "/users/{userId}/recommendations")

    # WHEN the path is resolved, whatever the order the routes were given in
    route, parameters = _resolver(parameter, literal).resolve("GET", "/users/me/recommendations")

    # THEN the literal route serves it
    assert (route, parameters) == (literal, {})


def test_exact_method_beats_any_on_the_same_path() -> None:
    # GIVEN an ANY route and a GET route on one path
    any_method = ApiRoute("Fallback", "ANY", "/items/{id}")
    get = ApiRoute("Reader", "GET", "/items/{id}")

    # WHEN a GET and a PUT are resolved
    server = _resolver(any_method, get)

    # THEN GET goes to its route and PUT to the ANY route
    assert server.resolve("GET", "/items/7")[0] == get
    assert server.resolve("PUT", "/items/7")[0] == any_method


def test_parameter_does_not_match_an_empty_or_extra_segment() -> None:
    # GIVEN a route with one parameter segment
    route = ApiRoute("Reader", "GET", "/items/{id}")

    # WHEN paths with a missing or an extra segment are matched
    # THEN neither matches
    assert route.match("/items") is None
    assert route.match("/items/7/extra") is None


# -------------------------------------------------------------- proxy responses ---


def test_status_code_may_be_a_string_of_digits() -> None:
    # GIVEN a proxy response whose statusCode is "204"
    # WHEN it is parsed
    status, headers, body = parse_proxy_response({"statusCode": "204"})

    # THEN it is the number, with no headers or body
    assert (status, headers, body) == (204, [], b"")


@pytest.mark.parametrize(
    "response",
    [
        None,
        {"body": "no status"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "unexpected": True},
        {"statusCode": 200, "headers": {"X": ["a list"]}},
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
    ],
)
def test_malformed_proxy_responses_are_refused(response: Any) -> None:
    # GIVEN a response API Gateway would call malformed
    # WHEN it is parsed
    # THEN it is refused (the API answers 502)
    with pytest.raises(ValueError):
        parse_proxy_response(response)
