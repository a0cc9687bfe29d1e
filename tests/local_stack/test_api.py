"""The local API turns HTTP requests into API Gateway proxy events, and answers like it."""

from __future__ import annotations

import base64
import http.client
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_stack.api import ApiRoute, ApiServer
from local_stack.auth import ADMIN_GROUP, mint_token
from local_stack.runner import FunctionRunner
from tests.local_stack.helpers import write_function

pytestmark = pytest.mark.integration

# Echoes the event; the query parameter "mode" picks a failure or a special response.
ECHO = """
    import base64
    import json


    def lambda_handler(event, context):
        mode = (event["queryStringParameters"] or {}).get("mode")
        if mode == "raise":
            raise RuntimeError("the handler was asked to fail")
        if mode == "malformed":
            return {"statusCode": 200, "body": {"a body": "that is not a string"}}
        if mode == "extra-key":
            return {"statusCode": 200, "body": "", "cookies": ["a=b"]}
        if mode == "binary":
            body = base64.b64encode(bytes(range(256))).decode()
            headers = {"Content-Type": "application/octet-stream"}
            return {"statusCode": 200, "headers": headers, "body": body, "isBase64Encoded": True}
        if mode == "multi":
            return {
                "statusCode": 201,
                "headers": {"X-Single": "one"},
                "multiValueHeaders": {"X-Multi": ["a", "b"]},
                "body": "",
            }
        return {"statusCode": 200, "headers": {"X-Echo": "yes"}, "body": json.dumps(event)}
"""

ROUTES = [
    ApiRoute("EchoFunction", "GET", "/users/{userId}/recommendations"),
    ApiRoute("EchoFunction", "ANY", "/files/{proxy+}"),
    ApiRoute("EchoFunction", "POST", "/echo"),
    ApiRoute("EchoFunction", "GET", "/guarded", "Pool"),
]
MAX_BODY_BYTES = 4096


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    code_dir = write_function(tmp_path_factory.mktemp("echo"), ECHO)
    with (
        FunctionRunner(
            "EchoFunction",
            code_dir,
            "app.lambda_handler",
            {},
            endpoint_url="http://127.0.0.1:9",
            timeout_s=10,
        ) as runner,
        ApiServer(
            ROUTES, {"EchoFunction": runner}, port=0, stage="test", max_body_bytes=MAX_BODY_BYTES
        ) as api,
    ):
        yield api


def request(
    server: ApiServer,
    method: str,
    target: str,
    *,
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
) -> Reply:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest(method, target)
        for name, value in headers or []:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def echoed(server: ApiServer, method: str, target: str, **options: Any) -> dict[str, Any]:
    reply = request(server, method, target, **options)
    assert reply.status == 200, reply.body
    event: dict[str, Any] = reply.json()
    return event


# --------------------------------------------------------------------- the event ---


def test_path_parameters_are_decoded_into_the_event(server: ApiServer) -> None:
    # GIVEN a route with a {userId} parameter
    # WHEN a user id with an encoded space is requested
    event = echoed(server, "GET", "/users/u%201/recommendations")

    # THEN the event names the resource template and carries the decoded parameter
    assert event["resource"] == "/users/{userId}/recommendations"
    assert event["path"] == "/users/u 1/recommendations"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"userId": "u 1"}


def test_greedy_proxy_parameter_takes_the_rest_of_the_path(server: ApiServer) -> None:
    # GIVEN a route ending in {proxy+} for any method
    # WHEN a nested path is deleted
    event = echoed(server, "DELETE", "/files/a/b/c.txt")

    # THEN the parameter holds every remaining segment
    assert event["resource"] == "/files/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b/c.txt"}
    assert event["httpMethod"] == "DELETE"


def test_query_parameters_keep_the_last_value_and_all_values(server: ApiServer) -> None:
    # GIVEN a query with a repeated name
    # WHEN it is requested
    event = echoed(server, "GET", "/users/u1/recommendations?k=10&tag=a&tag=b")

    # THEN single-value parameters hold the last value, multi-value ones all in order
    assert event["queryStringParameters"] == {"k": "10", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"k": ["10"], "tag": ["a", "b"]}


def test_absent_query_and_body_are_none(server: ApiServer) -> None:
    # GIVEN a request without a query string or body
    # WHEN it is requested
    event = echoed(server, "GET", "/users/u1/recommendations")

    # THEN both query forms, stage variables and the body are None, as API Gateway sends them
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["stageVariables"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False


def test_repeated_header_keeps_the_last_value_and_all_values(server: ApiServer) -> None:
    # GIVEN a request sending a header twice
    headers = [("X-Tag", "first"), ("X-Tag", "second"), ("X-Client", "app")]

    # WHEN it is requested
    event = echoed(server, "GET", "/users/u1/recommendations", headers=headers)

    # THEN headers holds the last value, multiValueHeaders both
    assert event["headers"]["X-Tag"] == "second"
    assert event["headers"]["X-Client"] == "app"
    assert event["multiValueHeaders"]["X-Tag"] == ["first", "second"]


def test_request_context_describes_the_request(server: ApiServer) -> None:
    # GIVEN a request made now
    before_ms = int(time.time() * 1000)

    # WHEN it is requested
    context = echoed(server, "GET", "/users/u1/recommendations")["requestContext"]

    # THEN the context names the stage, resource, method, caller and time
    assert uuid.UUID(context["requestId"])
    assert context["stage"] == "test"
    assert context["resourcePath"] == "/users/{userId}/recommendations"
    assert context["httpMethod"] == "GET"
    assert context["path"] == "/test/users/u1/recommendations"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestTimeEpoch"] >= before_ms - 1000


def test_text_body_reaches_the_handler_as_text(server: ApiServer) -> None:
    # GIVEN a JSON request body
    # WHEN it is posted
    event = echoed(server, "POST", "/echo", body=b'{"hello": "world"}')

    # THEN the handler gets it as a string, not base64
    assert event["body"] == '{"hello": "world"}'
    assert event["isBase64Encoded"] is False


def test_binary_body_reaches_the_handler_as_base64(server: ApiServer) -> None:
    # GIVEN a body that is not UTF-8
    payload = bytes([0xFF, 0x00, 0xFE])

    # WHEN it is posted
    event = echoed(server, "POST", "/echo", body=payload)

    # THEN the handler gets base64 and the flag that says so
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


# ------------------------------------------------------------------ the response ---


def test_handler_headers_and_body_are_the_http_response(server: ApiServer) -> None:
    # GIVEN a handler answering with a header and a JSON body
    # WHEN it is requested
    reply = request(server, "GET", "/users/u1/recommendations")

    # THEN the response carries them, a JSON content type and a request id
    assert reply.header_values("X-Echo") == ["yes"]
    assert reply.header_values("Content-Type") == ["application/json"]
    assert len(reply.header_values("x-amzn-RequestId")) == 1
    assert reply.json()["path"] == "/users/u1/recommendations"


def test_multi_value_headers_are_all_sent(server: ApiServer) -> None:
    # GIVEN a handler answering with multiValueHeaders and headers
    # WHEN it is requested
    reply = request(server, "GET", "/users/u1/recommendations?mode=multi")

    # THEN every value of both is sent with the handler's status
    assert reply.status == 201
    assert reply.header_values("X-Multi") == ["a", "b"]
    assert reply.header_values("X-Single") == ["one"]


def test_base64_response_body_is_sent_as_bytes(server: ApiServer) -> None:
    # GIVEN a handler answering a base64-encoded binary body
    # WHEN it is requested
    reply = request(server, "GET", "/users/u1/recommendations?mode=binary")

    # THEN the client receives the decoded bytes
    assert reply.status == 200
    assert reply.body == bytes(range(256))


# -------------------------------------------------------------------- the errors ---


def test_unknown_route_answers_404_with_a_json_message(server: ApiServer) -> None:
    # GIVEN no route for /nowhere
    # WHEN it is requested
    reply = request(server, "GET", "/nowhere")

    # THEN the answer is 404 with a message
    assert reply.status == 404
    assert "message" in reply.json()


def test_known_path_with_another_method_answers_405(server: ApiServer) -> None:
    # GIVEN a path served for GET only
    # WHEN it is posted to
    reply = request(server, "POST", "/users/u1/recommendations", body=b"{}")

    # THEN the answer is 405 naming the allowed method
    assert reply.status == 405
    assert reply.header_values("Allow") == ["GET"]
    assert "message" in reply.json()


def test_raising_handler_answers_502_internal_server_error(server: ApiServer) -> None:
    # GIVEN a handler that raises
    # WHEN it is requested
    reply = request(server, "GET", "/users/u1/recommendations?mode=raise")

    # THEN the answer is API Gateway's 502
    assert reply.status == 502
    assert reply.json() == {"message": "Internal server error"}


@pytest.mark.parametrize("mode", ["malformed", "extra-key"])
def test_malformed_proxy_response_answers_502_internal_server_error(
    server: ApiServer, mode: str
) -> None:
    # GIVEN a handler whose response is not a valid proxy response
    # WHEN it is requested
    reply = request(server, "GET", f"/users/u1/recommendations?mode={mode}")

    # THEN the answer is API Gateway's 502
    assert reply.status == 502
    assert reply.json() == {"message": "Internal server error"}


def test_body_over_the_limit_answers_413(server: ApiServer) -> None:
    # GIVEN a server limiting bodies to 4 KiB
    # WHEN a larger body is posted
    reply = request(server, "POST", "/echo", body=b"x" * (MAX_BODY_BYTES + 1))

    # THEN the answer is 413 and the handler is not invoked
    assert reply.status == 413
    assert "message" in reply.json()


def test_stopped_server_refuses_connections(tmp_path: Path) -> None:
    # GIVEN a server that was started and stopped
    runner = FunctionRunner(
        "EchoFunction",
        write_function(tmp_path / "echo", ECHO),
        "app.lambda_handler",
        {},
        endpoint_url="http://127.0.0.1:9",
    )
    api = ApiServer(ROUTES, {"EchoFunction": runner}, port=0)
    url = api.start()
    api.stop()
    runner.close()

    # WHEN a client connects
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)

    # THEN the connection is refused: the socket is closed
    with pytest.raises(ConnectionRefusedError):
        connection.request("GET", "/users/u1/recommendations")
    connection.close()


# ------------------------------------------------------------------ authorizer ---


def test_guarded_route_without_a_token_answers_401_without_invoking(
    server: ApiServer,
) -> None:
    # GIVEN a route behind an authorizer, whose function would echo the event
    # WHEN it is called without an Authorization header
    reply = request(server, "GET", "/guarded")

    # THEN the server refuses it with the JSON body of the UNAUTHORIZED gateway response
    assert reply.status == 401
    assert reply.json() == {"error": "unauthorized", "message": "a valid bearer token is required"}


@pytest.mark.parametrize(
    "token",
    [
        mint_token("u1", ttl_s=-1),
        mint_token("u1", secret=b"another secret"),
        "not-a-token",
        mint_token("u1")[:-2] + "xx",
    ],
    ids=["expired", "other-secret", "malformed", "tampered"],
)
def test_guarded_route_with_a_bad_token_answers_401(server: ApiServer, token: str) -> None:
    # GIVEN a token that API Gateway would refuse
    headers = [("Authorization", f"Bearer {token}")]

    # WHEN a guarded route is called with it
    reply = request(server, "GET", "/guarded", headers=headers)

    # THEN it answers 401
    assert reply.status == 401


def test_valid_token_claims_reach_the_function_as_cognito_strings(server: ApiServer) -> None:
    # GIVEN a valid token of an admin
    headers = [("Authorization", f"Bearer {mint_token('u1', (ADMIN_GROUP, 'editors'))}")]

    # WHEN a guarded route is called with it
    event = echoed(server, "GET", "/guarded", headers=headers)

    # THEN the claims are in requestContext.authorizer, every one a string
    claims = event["requestContext"]["authorizer"]["claims"]
    assert claims["sub"] == "u1"
    assert claims["cognito:groups"] == "admin,editors"
    assert all(isinstance(value, str) for value in claims.values())


def test_open_route_carries_no_authorizer_claims(server: ApiServer) -> None:
    # GIVEN a route without an authorizer, called with a token
    headers = [("Authorization", f"Bearer {mint_token('u1')}")]

    # WHEN it is called
    event = echoed(server, "POST", "/echo", headers=headers, body=b"{}")

    # THEN the event has no authorizer context, as API Gateway sends for an open route
    assert "authorizer" not in event["requestContext"]
