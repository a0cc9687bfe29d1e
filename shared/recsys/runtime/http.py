"""Maps the domain's errors to HTTP responses, in one place for every endpoint.

Every failure becomes a JSON body ``{"error": code, "message": ..., "fields": [...]}``. 4xx
are the caller's fault and logged at info; anything unexpected is a 500 logged with its
traceback. An exception never escapes the resolver, so API Gateway never answers 502.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from recsys.errors import InvalidEventError, InvalidRequestError, ModelNotFoundError


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
        location = [
            str(part) for part in error.get("loc", ()) if part not in ("query", "path", "body")
        ]
        fields.append(
            {"field": ".".join(location) or "request", "problem": str(error.get("msg", ""))}
        )
    return fields


def install_error_handlers(app: APIGatewayRestResolver, logger: Logger) -> None:
    """Register the mapping on ``app``."""

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response:
        fields = validation_fields(list(error.errors()))
        logger.info("rejected request", status=400, fields=fields)
        return error_response(400, "invalid_request", "the request has invalid fields", fields)

    @app.exception_handler(InvalidRequestError)
    def _invalid_domain_request(error: InvalidRequestError) -> Response:
        logger.info("rejected request", status=400, field=error.field, reason=error.reason)
        fields = [{"field": error.field, "problem": error.reason}]
        return error_response(400, "invalid_request", str(error), fields)

    @app.exception_handler(InvalidEventError)
    def _invalid_event(error: InvalidEventError) -> Response:
        logger.info("rejected event", status=400, reason=error.reason)
        return error_response(400, "invalid_event", error.reason)

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
