"""Benchmarks of the recommender; writes ``build/bench.json`` and ``build/bench.md``.

Usage: ``python scripts/bench.py [--quick] [--only SECTION ...] [--out-dir build]``.
Sections: training, ingest, serving, coldstart, quality, e2e (see docs/benchmarks.md).
``--quick`` runs tiny sizes with few repeats (about a minute), as a smoke test. MovieLens is
read from ``$RECSYS_DATA_DIR/movielens-100k``; the figures that need it are skipped, with
the reason, when it is not there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The sections import the test fakes (tests.fakes) next to the product's package.
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from bench_common import Figure, Report, machine_info  # noqa: E402

SECTIONS = ("training", "ingest", "serving", "coldstart", "quality", "e2e")

# Why a target can be missed, and what would close the gap, by the figure family it bounds.
# The numbers that go with them are the run's own; these sentences are the analysis.
MISS_EXPLANATIONS = {
    "training": (
        "a profile of train_model on MovieLens puts our own code (confidence matrix, "
        "popularity, packaging, the validating reload, threadpoolctl's library scan) at about "
        "30 ms; the rest is implicit's fit itself, whose OpenMP threads vary run to run by "
        "2-4x on a shared two-core machine, more than that overhead. A quiet machine or more "
        "repeats close a miss of this kind; a miss on the large sets would be real overhead "
        "and would show in the profile."
    ),
    "serving": (
        "a request pays a fixed cost of one to two milliseconds here that the floor does "
        "not: decoding the stored history in pure Python (about 4 us per event), Powertools "
        "routing, query validation, logging and metrics, and the pydantic response with its "
        "JSON; its tail is also wider than the floor's. It dominates small catalogues and "
        "vanishes at 1M items, where the top-k over eligible rows costs less than the "
        "floor's argpartition over all of them. Decoding the history with one numpy "
        "frombuffer and keeping decoded states per warm container would close most of it; "
        "p99 on a shared machine also carries scheduler noise that repeats only partly "
        "average out."
    ),
    "coldstart": (
        "the import dominates: the X-Ray SDK that Powertools' Tracer pulls in, numpy, boto3 "
        "and pydantic, and recsys compiled from source (Lambda's code folder is read-only, "
        "so without shipped bytecode every cold start compiles it). The first invocation "
        "then spends most of its time creating the two boto3 clients (botocore parsing its "
        "JSON service models) before loading the model. Importing the tracer lazily (or not "
        "tracing recommend), shipping .pyc files, and SnapStart or provisioned concurrency "
        "would close it."
    ),
    "ingest": (
        "a user was written more than once per batch (or again on redelivery), which the "
        "grouping by user and the idempotent merge are there to prevent."
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, metavar="SECTION", help="sections to run"
    )
    parser.add_argument("--out-dir", type=Path, default=Path("build"), help="default build/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="implicit")

    report = Report(quick=args.quick)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    load_before = list(os.getloadavg())
    for section in args.only or SECTIONS:
        print(f"== {section}", flush=True)
        section_started = time.perf_counter()
        _section_runner(section)(report)
        print(f"   ({time.perf_counter() - section_started:.1f}s)", flush=True)

    machine = machine_info()
    machine["load_average_before"] = load_before
    run = {
        "mode": "quick" if args.quick else "full",
        "sections": list(args.only or SECTIONS),
        "started_at": started_at.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": machine,
        "figures": [figure.as_dict() for figure in report.figures],
        "skipped": [vars(skip) for skip in report.skipped],
        "run": run,
    }
    (args.out_dir / "bench.json").write_text(json.dumps(document, indent=2) + "\n")
    (args.out_dir / "bench.md").write_text(render_markdown(document, report.figures))
    print(f"wrote {args.out_dir / 'bench.json'} and {args.out_dir / 'bench.md'}")
    return 0


def _section_runner(section: str) -> Callable[[Report], None]:
    """Import a section only when it runs: each pulls in different heavy libraries."""
    if section == "training":
        import bench_training

        return bench_training.run
    if section == "ingest":
        import bench_ingest

        return bench_ingest.run
    if section == "serving":
        import bench_serving

        return bench_serving.run
    if section == "coldstart":
        import bench_coldstart

        return bench_coldstart.run
    if section == "quality":
        import bench_quality

        return bench_quality.run
    import bench_e2e

    return bench_e2e.run


def render_markdown(document: dict[str, Any], figures: list[Figure]) -> str:
    """The run as a readable page: machine, one table per section, skips, closing note."""
    machine, run = document["machine"], document["run"]
    blas = machine.get("numpy_blas") or {}
    lines = [
        "# Benchmarks",
        "",
        f"Run {run['started_at']} ({run['mode']} mode, {run['seconds']} s), "
        f"sections: {', '.join(run['sections'])}. What each figure means: "
        "[docs/benchmarks.md](../docs/benchmarks.md).",
        "",
        f"Machine: {machine['cpu_model']}, {machine['usable_cores']} usable of "
        f"{machine['logical_cores']} logical cores, {machine['memory_gb']} GB; Python "
        f"{machine['python']}, numpy {machine['numpy']} with {blas.get('internal_api')} "
        f"{blas.get('version')} ({blas.get('architecture')}, {blas.get('num_threads')} "
        f"threads), implicit {machine['implicit']}. Load average before "
        f"{_loads(machine['load_average_before'])}, after {_loads(machine['load_average'])}.",
        "",
        "A target is an upper bound on the ratio when the figure has a reference, on the "
        "value otherwise. Times are medians over repeats unless the name says p50 or p99.",
    ]

    for section in run["sections"]:
        rows = [f for f in figures if f.name.split(".")[0] == section]
        if not rows:
            continue
        lines += ["", f"## {section}", ""]
        lines += [
            "| figure | value | unit | reference | ratio | target | met? |",
            "| --- | ---: | --- | ---: | ---: | ---: | --- |",
        ]
        for figure in rows:
            met = {True: "yes", False: "**no**", None: ""}[figure.met]
            lines.append(
                f"| `{figure.name.split('.', 1)[1]}` | {_number(figure.value)} | "
                f"{figure.unit} | {_number(figure.reference)} | {_number(figure.ratio)} | "
                f"{_number(figure.target)} | {met} |"
            )
        lines += ["", f"Command: `{rows[0].command}`"]

    if document["skipped"]:
        lines += ["", "## Skipped", ""]
        lines += [f"- `{skip['name']}`: {skip['reason']}" for skip in document["skipped"]]

    lines += ["", "## Closing note", ""] + _closing_note(figures)
    return "\n".join(lines) + "\n"


def _closing_note(figures: list[Figure]) -> list[str]:
    targeted = [figure for figure in figures if figure.target is not None]
    missed = [figure for figure in targeted if figure.met is False]
    if not targeted:
        return ["No figure of this run has a target."]
    if not missed:
        return [f"Every target of this run is met ({len(targeted)} figures with a target)."]

    lines = [f"{len(missed)} of {len(targeted)} targets missed:", ""]
    for figure in missed:
        compared = figure.ratio if figure.reference is not None else figure.value
        what = "ratio" if figure.reference is not None else "value"
        over = (
            f"{compared / figure.target:.2f}x the target"
            if figure.target and compared is not None
            else f"{compared} against a target of 0"
        )
        lines.append(
            f"- `{figure.name}`: {what} {_number(compared)} against at most "
            f"{_number(figure.target)}, {over}."
        )
    sections = sorted({figure.name.split(".")[0] for figure in missed})
    lines += ["", "Why, and what would close it:", ""]
    lines += [f"- {section}: {MISS_EXPLANATIONS.get(section, '')}" for section in sections]
    return lines


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"


def _loads(loads: list[float]) -> str:
    return " / ".join(f"{load:.2f}" for load in loads)


if __name__ == "__main__":
    sys.exit(main())
