"""`make chaos` on a slice of MovieLens: the faulted run must end equal to the clean one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("RECSYS_DATA_DIR", "/nonexistent")) / "movielens-100k"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.movielens,
    pytest.mark.skipif(not DATA.is_dir(), reason="needs MovieLens 100K under $RECSYS_DATA_DIR"),
]


def test_chaos_on_a_slice_ends_with_states_equal_to_a_clean_run(tmp_path):
    out = tmp_path / "chaos.json"
    completed = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "chaos.py"), "--events", "2000", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(out.read_text())
    assert result["states_equal"] is True
    assert result["lost"] == 0 and result["double_counted"] == 0
    assert result["duplicates"] == 200 and result["poison"] == 40
    assert result["dead_lettered"] >= result["poison"]
    assert result["throttled"] > 0
