"""Smoke test of the benchmark suite: its quick mode runs and writes the promised shape.

Only the shape is checked, never a timing: the machines that run tests are shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIGURE_KEYS = {"name", "value", "unit", "reference", "ratio", "target", "command"}
SECTIONS = ("ingest", "serving")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the quick mode of two cheap sections once, into a temporary folder."""
    out_dir = tmp_path_factory.mktemp("bench")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "bench.py"),
            "--quick",
            "--only",
            *SECTIONS,
            "--out-dir",
            str(out_dir),
        ],
        cwd=REPO,
        env=environment,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out_dir


@pytest.fixture(scope="module")
def document(quick_run: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((quick_run / "bench.json").read_text())
    return result


def test_json_has_machine_and_figures(document: dict[str, Any]) -> None:
    # GIVEN a quick run WHEN its JSON is read THEN it describes the machine and the figures
    assert {"machine", "figures"} <= set(document)
    assert document["machine"]["logical_cores"] >= 1
    assert document["machine"]["numpy"]
    assert document["machine"]["threadpools"]


def test_every_figure_has_exactly_the_documented_keys(document: dict[str, Any]) -> None:
    # GIVEN a quick run WHEN its figures are read THEN each has the seven documented keys
    assert document["figures"]
    for figure in document["figures"]:
        assert set(figure) == FIGURE_KEYS, figure["name"]


def test_figures_are_numbers_with_a_unit_and_a_command(document: dict[str, Any]) -> None:
    # GIVEN a quick run WHEN its figures are read THEN values are numbers with unit and command
    for figure in document["figures"]:
        assert isinstance(figure["value"], int | float)
        assert figure["unit"]
        assert figure["command"].startswith("python scripts/bench.py --quick --only ")
        for optional in ("reference", "ratio", "target"):
            assert figure[optional] is None or isinstance(figure[optional], int | float)


def test_a_ratio_comes_with_its_reference(document: dict[str, Any]) -> None:
    # GIVEN a quick run WHEN a figure has a ratio THEN it also has the reference it divides by
    for figure in document["figures"]:
        assert (figure["ratio"] is None) == (figure["reference"] is None), figure["name"]


def test_only_the_requested_sections_ran(document: dict[str, Any]) -> None:
    # GIVEN --only ingest serving WHEN the figures are listed THEN they come from those sections
    sections = {figure["name"].split(".")[0] for figure in document["figures"]}
    assert sections == set(SECTIONS)


def test_markdown_has_a_table_per_section_and_a_closing_note(quick_run: Path) -> None:
    # GIVEN a quick run WHEN bench.md is read THEN it has one table per section and a note
    markdown = (quick_run / "bench.md").read_text()
    for section in SECTIONS:
        assert f"## {section}" in markdown
    assert "| figure | value | unit | reference | ratio | target | met? |" in markdown
    assert "## Closing note" in markdown
