"""Small helpers of the local stack tests: fake function code, bounded waits, threads."""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

_SETTLE_TIMEOUT_S = 30.0


def write_function(directory: Path, source: str) -> Path:
    """Write ``source`` as ``app.py`` of a new code directory and return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return directory


def wait_for(condition: Callable[[], bool], timeout_s: float = _SETTLE_TIMEOUT_S) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; return its last value."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def threads_other_than(before: set[threading.Thread]) -> list[threading.Thread]:
    """Threads alive now that were not in ``before``."""
    return [thread for thread in threading.enumerate() if thread not in before]
