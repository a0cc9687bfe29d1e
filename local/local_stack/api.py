"""A local stand-in for API Gateway (REST API, Lambda proxy integration).

Requests are matched against the ``Api`` events of the template's functions and turned
into the proxy (v1) event API Gateway sends; the handler's proxy response becomes the
HTTP response. Where API Gateway's behaviour is a choice rather than a contract, this
server documents the one it makes:

- Paths are served from the root, without the stage (``/users/u1/recommendations``,
  not ``/dev/users/...``), as ``sam local start-api`` serves them; the stage still
  appears in ``requestContext``.
- An unknown path answers 404 and a known path with another method 405, both with a
  JSON ``message``. API Gateway answers 403 ``Missing Authentication Token`` to both,
  which hides the mistake locally.
- A handler that raises, times out or returns a malformed proxy response answers 502
  ``{"message": "Internal server error"}``, exactly as API Gateway does.
- A request body over 10 MB answers 413. A body that is valid UTF-8 reaches the handler
  as text; any other body is base64 with ``isBase64Encoded`` set, as with a binary
  media type.
- A route behind an authorizer (the Api's ``DefaultAuthorizer`` unless the event says
  ``Authorizer: NONE``) needs ``Authorization: Bearer <token>`` with a token of
  :mod:`local_stack.auth`; a missing, malformed, wrongly signed or expired one answers 401
  before the function runs, with the JSON body the template's ``UNAUTHORIZED`` gateway
  response sets. A valid token's claims reach the function in
  ``requestContext.authorizer.claims`` as the Cognito authorizer passes them.

Path parameters and ``path`` are percent-decoded; query values are decoded as forms are.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from local_stack.auth import (
    LOCAL_SECRET,
    InvalidTokenError,
    authorizer_claims,
    bearer_token,
    verify_token,
)
from local_stack.lifecycle import StartStop
from local_stack.runner import FunctionError, Invocable

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 3000
MAX_BODY_BYTES = 10 * 1024 * 1024
ANY_METHOD = "ANY"

_SERVERLESS_FUNCTION = "AWS::Serverless::Function"
_SERVERLESS_API = "AWS::Serverless::Api"
_NO_AUTHORIZER = "NONE"
UNAUTHORIZED_BODY = {"error": "unauthorized", "message": "a valid bearer token is required"}
_PROXY_RESPONSE_KEYS = frozenset(
    {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
)
# Hop-by-hop and framing headers are the server's to set, not the handler's.
_RESERVED_RESPONSE_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
_PARAMETER_SEGMENT = re.compile(r"^\{([^{}+]+)(\+?)\}$")

_LITERAL, _PARAMETER, _GREEDY = 0, 1, 2


@dataclass(frozen=True)
class _Segment:
    kind: int
    text: str  # The literal, or the parameter's name.


@dataclass(frozen=True)
class ApiRoute:
    """One ``Api`` event of a function: a method on a path template.

    Attributes
    ----------
    logical_id : str
        The function serving the route.
    method : str
        Uppercase HTTP method, or ``ANY``.
    path : str
        Path template, e.g. ``/users/{userId}/recommendations`` or ``/files/{proxy+}``.
    authorizer : str or None
        The authorizer that guards the route, or None for an open route.
    """

    logical_id: str
    method: str
    path: str
    authorizer: str | None = None

    @property
    def segments(self) -> tuple[_Segment, ...]:
        """The template's segments, each literal, ``{name}`` or greedy ``{name+}``."""
        segments = []
        for text in _split_path(self.path):
            match = _PARAMETER_SEGMENT.match(text)
            if match is None:
                segments.append(_Segment(_LITERAL, text))
            elif match.group(2):
                segments.append(_Segment(_GREEDY, match.group(1)))
            else:
                segments.append(_Segment(_PARAMETER, match.group(1)))
        return tuple(segments)

    @property
    def rank(self) -> tuple[int, ...]:
        """Sort key: literal segments beat parameters, which beat a greedy parameter."""
        return tuple(segment.kind for segment in self.segments)

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Return the path parameters if ``raw_path`` (still percent-encoded) matches."""
        parts = _split_path(raw_path)
        parameters: dict[str, str] = {}

        for index, segment in enumerate(self.segments):
            if segment.kind == _GREEDY:
                rest = parts[index:]
                if not rest:
                    return None
                parameters[segment.text] = unquote("/".join(rest))
                return parameters

            if index >= len(parts):
                return None
            if segment.kind == _LITERAL and unquote(parts[index]) != segment.text:
                return None
            if segment.kind == _PARAMETER:
                parameters[segment.text] = unquote(parts[index])

        return parameters if len(parts) == len(self.segments) else None


def _split_path(path: str) -> list[str]:
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


def api_routes(template: Mapping[str, Any]) -> list[ApiRoute]:
    """Collect the ``Api`` events of every serverless function of a template.

    Parameters
    ----------
    template : Mapping[str, Any]
        A template from ``local_stack.template.load_template``.

    Returns
    -------
    list of ApiRoute
        In template order, each with its authorizer: the event's ``Auth.Authorizer``, else
        the ``DefaultAuthorizer`` of the Api it names; ``NONE`` means an open route.

    Raises
    ------
    ValueError
        If an ``Api`` event has no literal ``Path`` or ``Method``.
    """
    routes = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != _SERVERLESS_FUNCTION:
            continue

        events = (resource.get("Properties") or {}).get("Events") or {}
        for event_name, event in events.items():
            if event.get("Type") != "Api":
                continue

            properties = event.get("Properties") or {}
            path, method = properties.get("Path"), properties.get("Method")
            if not isinstance(path, str) or not isinstance(method, str):
                raise ValueError(f"{logical_id}.{event_name} needs a literal Path and Method")
            authorizer = _route_authorizer(template, properties)
            routes.append(ApiRoute(logical_id, method.upper(), path, authorizer))

    return routes


def _route_authorizer(template: Mapping[str, Any], properties: Mapping[str, Any]) -> str | None:
    own = (properties.get("Auth") or {}).get("Authorizer")
    if own is None:
        api_id = (properties.get("RestApiId") or {}).get("Ref")
        api = template["Resources"].get(api_id or "") or {}
        if api.get("Type") == _SERVERLESS_API:
            own = ((api.get("Properties") or {}).get("Auth") or {}).get("DefaultAuthorizer")
    if not isinstance(own, str) or own == _NO_AUTHORIZER:
        return None
    return own


class _NoRoute(LookupError):
    def __init__(self, status: int, message: str, allowed: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.allowed = allowed


class _MalformedProxyResponse(ValueError):
    """The handler's return value is not a Lambda proxy response."""


@dataclass(frozen=True)
class _HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


# The API's own error shape ({"error": code, "message": ...}) for what the gateway answers
# itself; a 502 stays exactly API Gateway's {"message": "Internal server error"}.
_ERROR_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    411: "length_required",
    413: "payload_too_large",
}


def _json_response(status: int, message: str) -> _HttpResponse:
    code = _ERROR_CODES.get(status)
    payload = {"error": code, "message": message} if code else {"message": message}
    body = json.dumps(payload).encode("utf-8")
    return _HttpResponse(status, [("Content-Type", "application/json")], body)


def _unauthorized() -> _HttpResponse:
    body = json.dumps(UNAUTHORIZED_BODY).encode("utf-8")
    return _HttpResponse(401, [("Content-Type", "application/json")], body)


def _last_header(headers: Sequence[tuple[str, str]], lower_name: str) -> str | None:
    values = [value for name, value in headers if name.lower() == lower_name]
    return values[-1] if values else None


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise _MalformedProxyResponse(f"header value {value!r} is not a scalar")


def parse_proxy_response(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Turn a Lambda proxy response into a status, headers and body, as API Gateway does.

    Parameters
    ----------
    response : Any
        What the handler returned.

    Returns
    -------
    tuple
        The status code; the headers, every ``multiValueHeaders`` value first, then each
        ``headers`` entry whose name is not among them; the body bytes.

    Raises
    ------
    ValueError
        If the response is not an object, has keys API Gateway does not know, lacks a
        valid ``statusCode``, has a body that is not a string, or a base64 body that
        does not decode. API Gateway answers 502 to each of these.
    """
    if not isinstance(response, dict):
        raise _MalformedProxyResponse(f"expected an object, got {type(response).__name__}")

    unknown = set(response) - _PROXY_RESPONSE_KEYS
    if unknown:
        raise _MalformedProxyResponse(f"unknown keys {sorted(unknown)}")

    status = response.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise _MalformedProxyResponse(f"statusCode {status!r} is not an HTTP status")

    headers: list[tuple[str, str]] = []
    multi_value = response.get("multiValueHeaders") or {}
    single_value = response.get("headers") or {}
    if not isinstance(multi_value, dict) or not isinstance(single_value, dict):
        raise _MalformedProxyResponse("headers and multiValueHeaders must be objects")
    for name, values in multi_value.items():
        if not isinstance(values, list):
            raise _MalformedProxyResponse(f"multiValueHeaders[{name!r}] is not a list")
        headers.extend((name, _header_text(value)) for value in values)
    multi_names = {name.lower() for name in multi_value}
    for name, value in single_value.items():
        if name.lower() not in multi_names:
            headers.append((name, _header_text(value)))

    body = response.get("body")
    if body is None:
        return status, headers, b""
    if not isinstance(body, str):
        raise _MalformedProxyResponse(f"body is a {type(body).__name__}, not a string")
    if response.get("isBase64Encoded") is True:
        try:
            return status, headers, base64.b64decode(body, validate=True)
        except binascii.Error as error:
            raise _MalformedProxyResponse(f"body is not base64: {error}") from None

    return status, headers, body.encode("utf-8")


class ApiServer(StartStop):
    """Serves the template's API routes on 127.0.0.1 by invoking their functions.

    Parameters
    ----------
    routes : Sequence[ApiRoute]
        The routes, e.g. from :func:`api_routes`.
    functions : Mapping[str, Invocable]
        The function of each route's ``logical_id``.
    port : int
        Port to listen on; 0 picks a free one.
    stage : str
        Stage name reported in ``requestContext``.
    max_body_bytes : int
        Larger request bodies answer 413.
    account_id : str
        Account reported in ``requestContext``.
    token_secret : bytes
        Key that signs the tokens guarded routes accept (see :mod:`local_stack.auth`).

    Raises
    ------
    ValueError
        If a route names a function that is not in ``functions``.
    """

    def __init__(
        self,
        routes: Sequence[ApiRoute],
        functions: Mapping[str, Invocable],
        *,
        port: int = DEFAULT_PORT,
        stage: str = "dev",
        max_body_bytes: int = MAX_BODY_BYTES,
        account_id: str = "123456789012",
        token_secret: bytes = LOCAL_SECRET,
    ) -> None:
        missing = sorted({route.logical_id for route in routes} - set(functions))
        if missing:
            raise ValueError(f"routes name functions that are not given: {missing}")

        # The most specific template first, so the first path match is the right one.
        self.routes = sorted(routes, key=lambda route: route.rank)
        self.functions = dict(functions)
        self.stage = stage
        self.max_body_bytes = max_body_bytes
        self.account_id = account_id
        self.token_secret = token_secret
        self.api_id = "local"
        self._requested_port = port
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:3000``.

        Raises
        ------
        RuntimeError
            If the server is not running.
        """
        if self._server is None:
            raise RuntimeError("the API server is not running")

        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        """Start listening and return the base URL.

        Raises
        ------
        OSError
            If the port is taken.
        """
        if self._server is not None:
            raise RuntimeError("the API server is running already")

        self._server = _HttpServer((HOST, self._requested_port), _ApiRequestHandler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="api-server",
            daemon=True,
        )
        self._thread.start()
        logger.info("API listening on %s (%d routes)", self.url, len(self.routes))
        return self.url

    def stop(self) -> None:
        """Stop accepting, wait for requests in flight and close the socket."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return

        server.shutdown()
        server.server_close()  # Joins the request threads: none is left behind.
        if thread is not None:
            thread.join()
        logger.info("API stopped")

    def resolve(self, method: str, raw_path: str) -> tuple[ApiRoute, dict[str, str]]:
        """Find the route of a request, as API Gateway does: path first, then method.

        Raises
        ------
        LookupError
            If no route matches (404) or the path has no route for the method (405).
        """
        for route in self.routes:
            parameters = route.match(raw_path)
            if parameters is None:
                continue

            # Every route on this path template, whatever its method.
            siblings = [other for other in self.routes if other.path == route.path]
            for candidate in siblings:
                if candidate.method == method:
                    return candidate, parameters
            for candidate in siblings:
                if candidate.method == ANY_METHOD:
                    return candidate, parameters
            allowed = sorted({candidate.method for candidate in siblings})
            raise _NoRoute(405, f"Method {method} not allowed on {route.path}", allowed)

        raise _NoRoute(404, f"No route for {method} {unquote(raw_path)}")

    def build_event(
        self,
        route: ApiRoute,
        path_parameters: dict[str, str],
        *,
        method: str,
        raw_path: str,
        query: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        source_ip: str,
        request_id: str,
        received_at: datetime,
        claims: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Build the REST API (v1) Lambda proxy event of a request.

        Empty header, query and path parameter collections are None, as API Gateway
        sends them; ``headers`` and ``queryStringParameters`` hold the last value of a
        repeated name, the ``multiValue`` forms hold all of them in order. ``claims`` of
        an authorized request go to ``requestContext.authorizer.claims``.
        """
        single_headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            single_headers[name] = value
            multi_headers.setdefault(name, []).append(value)

        single_query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            single_query[name] = value
            multi_query.setdefault(name, []).append(value)

        text_body: str | None = None
        is_base64 = False
        if body:
            try:
                text_body = body.decode("utf-8")
            except UnicodeDecodeError:
                text_body = base64.b64encode(body).decode("ascii")
                is_base64 = True

        path = unquote(raw_path)
        event: dict[str, Any] = {
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": single_headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": single_query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": self.account_id,
                "apiId": self.api_id,
                "resourceId": f"{zlib.crc32(route.path.encode()):08x}"[:6],
                "resourcePath": route.path,
                "httpMethod": method,
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "protocol": "HTTP/1.1",
                "requestId": request_id,
                "extendedRequestId": request_id,
                "requestTime": received_at.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(received_at.timestamp() * 1000),
                "domainName": _last_header(headers, "host") or HOST,
                "identity": {
                    "sourceIp": source_ip,
                    "userAgent": _last_header(headers, "user-agent"),
                    "accessKey": None,
                    "accountId": None,
                    "caller": None,
                    "cognitoAuthenticationProvider": None,
                    "cognitoAuthenticationType": None,
                    "cognitoIdentityId": None,
                    "cognitoIdentityPoolId": None,
                    "principalOrgId": None,
                    "user": None,
                    "userArn": None,
                },
            },
            "body": text_body,
            "isBase64Encoded": is_base64,
        }
        if claims is not None:
            event["requestContext"]["authorizer"] = {"claims": dict(claims)}
        return event

    def authorize(
        self, route: ApiRoute, headers: Sequence[tuple[str, str]]
    ) -> dict[str, str] | None:
        """The claims of a guarded route's token; None for an open route.

        Raises
        ------
        local_stack.auth.InvalidTokenError
            If the route is guarded and the request has no valid token.
        """
        if route.authorizer is None:
            return None
        token = bearer_token(_last_header(headers, "authorization"))
        return authorizer_claims(verify_token(token, self.token_secret))

    def handle(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        source_ip: str,
    ) -> tuple[_HttpResponse, str]:
        """Answer one request; also return the logical id that served it, or ``-``."""
        raw_path, _, query = target.partition("?")
        raw_path = raw_path.split("#", 1)[0]
        request_id = str(uuid.uuid4())

        try:
            route, parameters = self.resolve(method, raw_path)
        except _NoRoute as error:
            response = _json_response(error.status, error.message)
            if error.allowed:
                response.headers.append(("Allow", ", ".join(error.allowed)))
            return response, "-"

        try:
            claims = self.authorize(route, headers)
        except InvalidTokenError as error:
            logger.info("refused %s %s: %s", method, route.path, error)
            return _unauthorized(), "-"

        event = self.build_event(
            route,
            parameters,
            method=method,
            raw_path=raw_path,
            query=query,
            headers=list(headers),
            body=body,
            source_ip=source_ip,
            request_id=request_id,
            received_at=datetime.now(UTC),
            claims=claims,
        )

        try:
            result = self.functions[route.logical_id].invoke(event)
            status, response_headers, response_body = parse_proxy_response(result)
        except FunctionError as error:
            logger.error("%s failed: %s\n%s", route.logical_id, error, error.traceback)
            return _json_response(502, "Internal server error"), route.logical_id
        except _MalformedProxyResponse as error:
            logger.error("%s returned a malformed proxy response: %s", route.logical_id, error)
            return _json_response(502, "Internal server error"), route.logical_id

        names = {name.lower() for name, _ in response_headers}
        response_headers = [
            (name, value)
            for name, value in response_headers
            if name.lower() not in _RESERVED_RESPONSE_HEADERS
        ]
        if "content-type" not in names:
            response_headers.append(("Content-Type", "application/json"))
        response_headers.append(("x-amzn-RequestId", request_id))
        return _HttpResponse(status, response_headers, response_body), route.logical_id


class _HttpServer(ThreadingHTTPServer):
    # Request threads are joined on close, so a stopped server leaves none behind.
    daemon_threads = False
    block_on_close = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        api: ApiServer,
    ) -> None:
        super().__init__(address, handler)
        self.api = api


class _ApiRequestHandler(BaseHTTPRequestHandler):
    server: _HttpServer
    # A client that stops sending mid-request frees its thread after this many seconds.
    timeout = 30

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def _serve(self) -> None:
        started = time.perf_counter()
        api = self.server.api
        method = self.command

        response, served_by = self._respond(api, method)
        self._write(response, include_body=method != "HEAD")

        logger.info(
            "%s %s -> %d (%s, %.1f ms)",
            method,
            self.path,
            response.status,
            served_by,
            (time.perf_counter() - started) * 1000,
        )

    def _respond(self, api: ApiServer, method: str) -> tuple[_HttpResponse, str]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return _json_response(411, "Length Required"), "-"

        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return _json_response(400, "Invalid Content-Length"), "-"

        if length > api.max_body_bytes:
            # The body is not read; closing the connection discards it.
            self.close_connection = True
            return _json_response(413, "Request Too Long"), "-"

        body = self.rfile.read(length) if length > 0 else None
        try:
            return api.handle(method, self.path, self.headers.items(), body, self.client_address[0])
        except Exception:
            logger.exception("could not serve %s %s", method, self.path)
            return _json_response(502, "Internal server error"), "-"

    def _write(self, response: _HttpResponse, *, include_body: bool) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if include_body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request is logged by _serve; keep http.server's own lines quiet.
        logger.debug("%s: " + format, self.client_address[0], *args)
