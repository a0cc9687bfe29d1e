"""A tiny HTTP client for the demo: GET JSON from the local API and time it."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from local_stack.auth import auth_header


def get_json(
    url: str, user_id: str | None = None, timeout_s: float = 30.0
) -> tuple[dict[str, Any], float]:
    """GET ``url`` (a 127.0.0.1 address of the local stack); the JSON body and the seconds.

    With ``user_id`` the request carries a local test token of that user, as the app would
    carry the user's ID token; minting it is not part of the measured time.
    """
    headers = auth_header(user_id) if user_id is not None else {}
    request = urllib.request.Request(url, headers=headers)
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - local
        body = json.loads(response.read())
    return body, time.perf_counter() - started
