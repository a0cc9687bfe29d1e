"""Maps the domain's errors to HTTP responses, in one place for every endpoint.

Every failure becomes a JSON body ``{"error": code, "message": ..., "fields": [...]}``, where
each field names what is wrong (``k``, ``item_ids.3``, ``body``, ``Content-Type``) and the
problem, never echoing the input. 4xx are the caller's fault and logged at info; anything
unexpected is a 500 logged with its traceback. An exception never escapes the resolver, so
API Gateway never answers 502.

Checks of the request as a whole run before its fields are reported on, in this order:
a body over :data:`MAX_BODY_BYTES` is 413, a body that is not ``application/json`` is 415, a
query parameter the route does not declare is 400; then the field errors of Powertools'
validation are 400 (not its default 422), broken JSON included.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Route
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from pydantic import BaseModel, Field

from recsys.errors import (
    InvalidEventError,
    InvalidRequestError,
    ModelNotFoundError,
    UnknownItemError,
)

MAX_BODY_BYTES = 512 * 1024
JSON_MEDIA_TYPE = "application/json"


class ErrorField(BaseModel):
    field: str = Field(description="The parameter, body field or header at fault.")
    problem: str = Field(description="What is wrong with it.")


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str = Field(description="A stable code, e.g. invalid_request, forbidden.")
    message: str = Field(description="A sentence for humans.")
    fields: list[ErrorField] | None = Field(
        default=None, description="Each field at fault, when there are any."
    )


class HttpError(Exception):
    """An answer other than success that a handler decides on: 401, 403, 404, 503..."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields


def error_response(
    status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
) -> Response:
    """A JSON error response."""
    body: dict[str, Any] = {"error": code, "message": message}
    if fields:
        body["fields"] = fields
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body)
    )


def validation_fields(errors: list[Any]) -> list[dict[str, str]]:
    """Pydantic-style errors as ``[{"field": ..., "problem": ...}]``, without echoing input."""
    fields = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if error.get("type") == "json_invalid":
            fields.append({"field": "body", "problem": "is not valid JSON"})
            continue
        where = location[0] if location else "request"
        named = [part for part in location if part not in ("query", "path", "body", "header")]
        field = ".".join(named) or (where if where in ("body", "request") else "request")
        fields.append({"field": field, "problem": _problem(error)})
    return fields


def _problem(error: Any) -> str:
    kind = str(error.get("type", ""))
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "string_pattern_mismatch":
        return "does not have the allowed form"
    return str(error.get("msg", "is invalid")).removeprefix("Value error, ")


def request_problem(app: APIGatewayRestResolver, route: Route) -> HttpError | None:
    """What is wrong with the request as a whole, in the order the module describes."""
    event = app.current_event
    body = event.body or ""
    if len(body) > MAX_BODY_BYTES:
        return HttpError(413, "payload_too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")

    if route.dependant.body_params:
        content_type = (event.headers or {}).get("content-type") or ""
        media_type = content_type.split(";")[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE:
            return HttpError(
                415,
                "unsupported_media_type",
                "the body must be application/json",
                [{"field": "Content-Type", "problem": "must be application/json"}],
            )

    declared = {param.alias for param in route.dependant.query_params}
    given = set(event.multi_value_query_string_parameters or {})
    unknown = sorted(given - declared)
    if unknown:
        return HttpError(
            400,
            "invalid_request",
            "the request has unknown query parameters",
            [{"field": name[:64], "problem": "is not a known query parameter"} for name in unknown],
        )
    return None


def install_error_handlers(
    app: APIGatewayRestResolver, logger: Logger, is_own_route: Callable[[Route], bool]
) -> None:
    """Register the mapping on ``app``, and the whole-request checks on its own routes."""

    def _answer(error: HttpError) -> Response:
        logger.info("rejected request", status=error.status, error=error.code)
        return error_response(error.status, error.code, error.message, error.fields)

    def _whole_request_problem() -> HttpError | None:
        route = app.context.get("_route")
        return request_problem(app, route) if route and is_own_route(route) else None

    def check_request(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
        problem = _whole_request_problem()
        return _answer(problem) if problem else next_middleware(app)

    app.use([check_request])

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response:
        problem = _whole_request_problem()
        if problem:
            return _answer(problem)
        fields = validation_fields(list(error.errors()))
        logger.info("rejected request", status=400, fields=fields)
        return error_response(400, "invalid_request", "the request has invalid fields", fields)

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported_content_type(error: RequestUnsupportedContentType) -> Response:
        problem = _whole_request_problem() or HttpError(
            415, "unsupported_media_type", "the body must be application/json"
        )
        return _answer(problem)

    @app.exception_handler(HttpError)
    def _http_error(error: HttpError) -> Response:
        return _answer(error)

    @app.exception_handler(UnicodeDecodeError)
    def _undecodable(error: UnicodeDecodeError) -> Response:
        # Powertools decodes a base64 body (bytes that were not UTF-8) while validating; only
        # that is the caller's fault, any other decoding failure is ours.
        if not app.current_event.is_base64_encoded:
            return _unexpected(error)
        problem = _whole_request_problem() or HttpError(
            400,
            "invalid_request",
            "the request has invalid fields",
            [{"field": "body", "problem": "is not UTF-8 JSON"}],
        )
        return _answer(problem)

    @app.exception_handler(InvalidRequestError)
    def _invalid_domain_request(error: InvalidRequestError) -> Response:
        logger.info("rejected request", status=400, field=error.field, reason=error.reason)
        fields = [{"field": error.field, "problem": error.reason}]
        return error_response(400, "invalid_request", str(error), fields)

    @app.exception_handler(InvalidEventError)
    def _invalid_event(error: InvalidEventError) -> Response:
        logger.info("rejected event", status=400, reason=error.reason)
        return error_response(400, "invalid_event", error.reason)

    @app.exception_handler(UnknownItemError)
    def _unknown_item(error: UnknownItemError) -> Response:
        logger.info("unknown item", status=404, item_id=error.item_id)
        return error_response(404, "unknown_item", "the item is not known")

    @app.exception_handler(ModelNotFoundError)
    def _no_model(error: ModelNotFoundError) -> Response:
        logger.warning("no model to serve", status=503, reason=str(error))
        return error_response(503, "model_unavailable", "no model is available yet; retry later")

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("request failed", status=500)
        return error_response(500, "internal_error", "the request could not be served")

    @app.not_found
    def _not_found(_: Exception) -> Response:
        return error_response(404, "not_found", "no such resource")
