"""Write the JSON Schemas of the descriptors to ``schemas/*.json`` (``--check``: fail when stale)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bioimageio_core.spec.json_schema import all_schemas

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


def render(schema: dict[str, object]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale or missing files")
    parser.add_argument("--out", type=Path, default=SCHEMA_DIR)
    args = parser.parse_args(argv)
    stale = []
    for stem, schema in all_schemas().items():
        path = args.out / f"{stem}.json"
        text = render(schema)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("stale schemas (run `nox -s schemas`):", *map(str, stale), sep="\n  ")
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
