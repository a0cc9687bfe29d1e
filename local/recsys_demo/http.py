"""A tiny HTTP client for the demo: GET JSON from the local API and time it."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any


def get_json(url: str, timeout_s: float = 30.0) -> tuple[dict[str, Any], float]:
    """GET ``url`` (a 127.0.0.1 address of the local stack); the JSON body and the seconds."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - local
        body = json.loads(response.read())
    return body, time.perf_counter() - started
