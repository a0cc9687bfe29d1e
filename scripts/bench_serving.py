"""Serving: latency inside the recommend handler against a bare matrix-vector floor.

The handler is ``functions/recommend/app.py``'s own ``lambda_handler``, every decorator
included, resolving an API Gateway event as the Cognito authorizer passes it on; only its
dependencies are swapped: the DynamoDB adapter reads from an in-memory client (decoding the
stored item is measured, the round trip is not) and the model cache holds a model already
loaded from an in-memory store (no S3).

The floor is what any top-k over dense factors must do: ``Y @ x`` and an ``argpartition``,
on the same matrix, with no filters, no ids and no response.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import Any

import numpy as np
from bench_common import Report, interleaved_timings, median, percentile
from bench_fixtures import (
    DEVNULL,
    TABLE_NAME,
    DictDynamoDBClient,
    LambdaContext,
    load_function_module,
    npz_arrays,
    synthetic_history,
    synthetic_item_model,
)
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from recsys.adapters.dynamodb import DynamoDBUserStateStore
from recsys.foldin import fold_history
from recsys.model import ItemModel, load_model
from recsys.runtime.api import build_api
from recsys.runtime.settings import RecommendSettings
from recsys.runtime.wiring import RecommendDependencies
from recsys.serving import ModelCache, RecommendationRequest, recommend
from recsys.state import UserState
from tests.fakes import InMemoryModelStore, InMemoryUserStateStore

SECTION = "serving"
SERVING_TARGET_RATIO = 1.5
LIST_LENGTH = 10
HISTORY_LENGTH = 200
EXCLUDED_ITEMS = 20
INCLUDED_CATEGORIES = ("cat-0", "cat-2", "cat-4", "cat-6", "cat-8")
MS_PER_S = 1e3

CURRENT_USER = "user-current"
STALE_USER = "user-stale"


def run(report: Report) -> None:
    """p50/p99 of the handler, the domain call, a re-fold and the floor, per catalogue size."""
    # A p99 rests on its few slowest calls: small catalogues, cheap to call, get more of them.
    repeats_by_size = (
        {10_000: 30} if report.quick else {10_000: 1_000, 100_000: 500, 1_000_000: 200}
    )
    load_repeats = 2 if report.quick else 5

    # The deployed function reads these at import; set them before loading it.
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "recommend")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Recsys")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("LOG_LEVEL", "INFO")
    handler_module = load_function_module("recommend")
    handler_module.logger.registered_handler.setStream(DEVNULL)

    for n_items, repeats in repeats_by_size.items():
        print(f"serving with {n_items:,} items", flush=True)
        model, payload = synthetic_item_model(n_items, seed=5)
        with threadpool_limits(limits=1, user_api="blas"):
            _measure_latency(report, handler_module, model, payload, repeats)
            _measure_load(report, model, payload, load_repeats)
        del model, payload


def _measure_latency(
    report: Report, handler_module: Any, model: ItemModel, payload: bytes, repeats: int
) -> None:
    rng = np.random.default_rng(model.n_items)
    newest_ms = int(time.time() * 1000)
    history = synthetic_history(CURRENT_USER, model.item_ids, HISTORY_LENGTH, newest_ms, rng)
    vector = fold_history(model, history).vector
    current = UserState(CURRENT_USER, history, vector, model.version, "42")
    stale = UserState(STALE_USER, history, vector, "an-older-model", "42")

    client = DictDynamoDBClient()
    store = DynamoDBUserStateStore(client, TABLE_NAME)
    store.put(current, 0)
    store.put(stale, 0)
    handler_module.app = build_api(
        _dependencies_returning(store, model, payload),
        handler_module.logger,
        handler_module.metrics,
    )

    excluded = [str(item) for item in rng.choice(np.asarray(model.item_ids), EXCLUDED_ITEMS)]
    context = LambdaContext(function_name="recommend")
    current_event = _api_event(CURRENT_USER, excluded)
    stale_event = _api_event(STALE_USER, excluded)

    domain_store = InMemoryUserStateStore()
    domain_store.put(current, 0)
    request = RecommendationRequest(
        k=LIST_LENGTH, exclude=tuple(excluded), include_categories=INCLUDED_CATEGORIES
    )

    def handler(event: dict[str, Any]) -> Callable[[], object]:
        def call() -> object:
            with redirect_stdout(DEVNULL):
                response = handler_module.lambda_handler(event, context)
            if response["statusCode"] != 200:
                raise RuntimeError(f"recommend answered {response['statusCode']}")
            return response

        return call

    def domain() -> str:
        response, _ = recommend(
            user_id=CURRENT_USER, request=request, store=domain_store, model=model
        )
        return response.model_dump_json()

    cases: dict[str, Callable[[], object]] = {
        "floor": lambda: _floor(model.item_factors, vector, LIST_LENGTH),
        "handler": handler(current_event),
        "domain": domain,
        "handler_refold": handler(stale_event),
    }
    samples = interleaved_timings(cases, repeats=repeats, warmup=3)
    p50 = {name: percentile(times, 50) * MS_PER_S for name, times in samples.items()}
    p99 = {name: percentile(times, 99) * MS_PER_S for name, times in samples.items()}

    prefix = f"n{_size_label(model.n_items)}"
    report.add(SECTION, f"{prefix}.floor_p50_ms", p50["floor"], "ms")
    report.add(SECTION, f"{prefix}.floor_p99_ms", p99["floor"], "ms")
    report.add(SECTION, f"{prefix}.handler_p50_ms", p50["handler"], "ms", reference=p50["floor"])
    report.add(
        SECTION,
        f"{prefix}.handler_p99_ms",
        p99["handler"],
        "ms",
        reference=p99["floor"],
        target=SERVING_TARGET_RATIO,
    )
    report.add(SECTION, f"{prefix}.domain_p50_ms", p50["domain"], "ms", reference=p50["floor"])
    report.add(SECTION, f"{prefix}.domain_p99_ms", p99["domain"], "ms", reference=p99["floor"])
    report.add(
        SECTION,
        f"{prefix}.handler_refold_p99_ms",
        p99["handler_refold"],
        "ms",
        reference=p99["floor"],
    )


def _measure_load(report: Report, model: ItemModel, payload: bytes, repeats: int) -> None:
    manifest = model.manifest
    samples = interleaved_timings(
        {
            "load_model": lambda: load_model(payload, manifest),
            "npz_floor": lambda: npz_arrays(payload),
        },
        repeats=repeats,
        warmup=0,
    )
    prefix = f"n{_size_label(model.n_items)}"
    report.add(
        SECTION,
        f"{prefix}.model_load_s",
        median(samples["load_model"]),
        "s",
        reference=median(samples["npz_floor"]),
    )


def _floor(
    item_factors: NDArray[np.float32], vector: NDArray[np.float32], k: int
) -> NDArray[np.intp]:
    """The least any dense top-k does: every score, then the k largest unordered."""
    scores = item_factors @ vector
    return np.argpartition(scores, -k)[-k:]


def _dependencies_returning(
    store: DynamoDBUserStateStore, model: ItemModel, payload: bytes
) -> Callable[[], RecommendDependencies]:
    models = InMemoryModelStore()
    models.publish(model.version, payload, model.manifest.model_dump_json().encode())
    cache = ModelCache(models, refresh_seconds=3600.0)
    if cache.require().version != model.version:
        raise RuntimeError("the model cache did not load the published model")
    # NOTE: no catalogue store is wired, so the per-request read of the catalogue's
    # availability edits (and decoding it) is not in the time; DictDynamoDBClient would have
    # to serve that table too.
    deps = RecommendDependencies(
        settings=RecommendSettings.model_validate(
            {"USER_STATE_TABLE": TABLE_NAME, "MODEL_BUCKET": "bench-models"}
        ),
        states=store,
        models=cache,
    )
    return lambda: deps


def _api_event(user_id: str, excluded: list[str]) -> dict[str, Any]:
    """An API Gateway REST proxy event for ``GET /users/{user_id}/recommendations``."""
    query = {
        "k": [str(LIST_LENGTH)],
        "exclude": [",".join(excluded)],
        "category": list(INCLUDED_CATEGORIES),
    }
    return {
        "resource": "/users/{userId}/recommendations",
        "path": f"/users/{user_id}/recommendations",
        "httpMethod": "GET",
        "headers": {"Accept": "application/json"},
        "multiValueHeaders": {"Accept": ["application/json"]},
        "queryStringParameters": {name: values[-1] for name, values in query.items()},
        "multiValueQueryStringParameters": query,
        "pathParameters": {"userId": user_id},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/users/{userId}/recommendations",
            "httpMethod": "GET",
            "path": f"/bench/users/{user_id}/recommendations",
            "accountId": "123456789012",
            "stage": "bench",
            "requestId": "bench-request",
            "identity": {"sourceIp": "127.0.0.1"},
            "apiId": "bench",
            # What API Gateway's Cognito authorizer hands the function once it has verified
            # the caller's token; verifying it happens before the function and is not timed.
            "authorizer": {"claims": {"sub": user_id, "token_use": "id"}},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def _size_label(n_items: int) -> str:
    if n_items >= 1_000_000 and n_items % 1_000_000 == 0:
        return f"{n_items // 1_000_000}M"
    if n_items >= 1_000 and n_items % 1_000 == 0:
        return f"{n_items // 1_000}k"
    return str(n_items)
