"""The recommend handler invoked directly, as API Gateway would: the cases no HTTP test sees."""

from __future__ import annotations

import json
from typing import Any

from tests.functions.conftest import Deployment


def _proxy_event(method: str, path: str, claims: dict[str, str] | None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "resourcePath": path,
        "httpMethod": method,
        "path": f"/dev{path}",
        "stage": "dev",
        "requestId": "test-request",
        "accountId": "123456789012",
        "apiId": "local",
        "identity": {"sourceIp": "127.0.0.1"},
    }
    if claims is not None:
        context["authorizer"] = {"claims": claims}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": None,
        "multiValueHeaders": None,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": context,
        "body": None,
        "isBase64Encoded": False,
    }


def test_health_before_any_model_answers_503(deployment: Deployment) -> None:
    # GIVEN a deployment where nothing was trained yet
    # WHEN health is asked
    response = deployment.invoke("recommend", _proxy_event("GET", "/health", None))

    # THEN it says no model is available, as JSON
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"] == "model_unavailable"


def test_request_that_reached_the_function_without_claims_is_refused(
    deployment: Deployment,
) -> None:
    # GIVEN a guarded route invoked without the authorizer's claims (a deployment mistake)
    event = _proxy_event("GET", "/me/recommendations", None)

    # WHEN the handler runs
    response = deployment.invoke("recommend", event)

    # THEN it serves nobody: 401
    assert response["statusCode"] == 401


def test_caller_deletes_themselves_through_the_handler(deployment: Deployment) -> None:
    # GIVEN claims of user-7 as the Cognito authorizer passes them
    event = _proxy_event("DELETE", "/me", {"sub": "user-7", "token_use": "id"})

    # WHEN the handler runs
    response = deployment.invoke("recommend", event)

    # THEN the receipt names user-7 and a marker is in the template's table
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["user_id"] == "user-7"
    table = deployment.resources.refs["DeletedUsersTable"]
    item = deployment.client("dynamodb").get_item(TableName=table, Key={"user_id": {"S": "user-7"}})
    assert "Item" in item
