"""Write the API's OpenAPI document, generated from the code, to docs/openapi.json.

Usage: ``python scripts/openapi.py`` (``make openapi``) rewrites the file;
``python scripts/openapi.py --check`` exits 1 when the committed file differs from what the
code generates, which is what CI runs (and ``tests/unit/test_openapi.py`` asserts).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recsys.runtime.api import render_openapi

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the document goes")
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 if the file is stale"
    )
    args = parser.parse_args()

    generated = render_openapi()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != generated:
            print(f"{args.out} is stale: run make openapi", file=sys.stderr)
            return 1
        print(f"{args.out} matches the code")
        return 0

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(generated, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
