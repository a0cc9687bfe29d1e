"""Prequential replay on MovieLens 100K: real-time fold-in vs no update vs popularity.

Usage: ``python scripts/replay.py [--k 10] [--out build/replay.json]``. Reads the data from
``$RECSYS_DATA_DIR/movielens-100k``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from recsys.config import ModelConfig
from recsys.datasets import load_movielens
from recsys.errors import DatasetNotFoundError
from recsys.evaluation import VARIANTS, prequential_replay

COLUMNS = ("hit_rate", "ndcg", "mrr", "coverage")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10, help="list length (default 10)")
    parser.add_argument("--out", type=Path, default=Path("build/replay.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    started = time.perf_counter()
    try:
        movielens = load_movielens()
    except DatasetNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"replaying MovieLens 100K ({len(movielens.events):,} events), k={args.k} ...")
    report = prequential_replay(
        movielens.events, movielens.catalog, ModelConfig(), k=args.k, dataset="movielens-100k"
    )
    wall = time.perf_counter() - started

    print(format_table(report.variants, args.k))
    lift = report.variants["realtime"]["hit_rate"] / report.variants["no_update"]["hit_rate"]
    print(f"\nreal-time / no-update hit rate: {lift:.2f}x")
    print(
        f"train events {report.train_events:,}, replayed {report.events:,} events of "
        f"{report.users:,} users; wall time {wall:.1f}s"
    )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def format_table(variants: dict[str, dict[str, float]], k: int) -> str:
    """A fixed-width table of the variants' metrics."""
    header = f"{'variant':<12}" + "".join(f"{f'{name}@{k}':>14}" for name in COLUMNS)
    rows = [header, "-" * len(header)]
    for variant in VARIANTS:
        values = variants[variant]
        rows.append(f"{variant:<12}" + "".join(f"{values[name]:>14.4f}" for name in COLUMNS))
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
