"""`python -m airline_platform.cost`: the cost delta of two sets of plans, and the price refresh.

    diff --base <plans dir> --head <plans dir> [stack...]   markdown for the pull request comment
    scaled --plans <dir> --factor 10 [--same-queries] [stack...]
                                                 the estimates of `make plan` at 10x the traffic
    refresh-prices                                           prices.json from the Cloud Billing Catalog API

`make plan` writes what these read: `plans/<stack>.json` (resources) and `plans/<stack>.cost.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from google.auth.exceptions import DefaultCredentialsError

from airline_platform.cost import model, prices, report
from airline_platform.cost.model import Estimate

STACKS = ("dev", "staging", "prod")


def _load(directory: Path, stack: str) -> Estimate | None:
    path = directory / f"{stack}.cost.json"
    return Estimate.from_json(json.loads(path.read_text())) if path.exists() else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m airline_platform.cost")
    commands = parser.add_subparsers(dest="command", required=True)
    diff = commands.add_parser("diff", help="markdown: each stack's estimate before and after, and why")
    diff.add_argument("--base", type=Path, required=True, help="plans/ of the base branch (make plan)")
    diff.add_argument("--head", type=Path, required=True, help="plans/ of the pull request (make plan)")
    diff.add_argument("stacks", nargs="*", default=list(STACKS))
    scaled = commands.add_parser("scaled", help="each stack's estimate at a multiple of its declared traffic")
    scaled.add_argument("--plans", type=Path, required=True, help="plans/ written by make plan")
    scaled.add_argument("--factor", type=float, required=True)
    scaled.add_argument("--same-queries", action="store_true", help="the cache absorbs the extra reads")
    scaled.add_argument("stacks", nargs="*", default=list(STACKS))
    commands.add_parser("refresh-prices", help="rewrite prices.json from the Cloud Billing Catalog API")
    args = parser.parse_args(argv)
    if args.command == "diff":
        print("### Monthly cost estimate (`make plan`), before and after this change\n")
        for stack in args.stacks:
            print(report.diff(stack, _load(args.base, stack), _load(args.head, stack)))
        return 0
    if args.command == "scaled":
        table = prices.PriceTable.load()
        for stack in args.stacks:
            declared = _load(args.plans, stack)
            if declared is None:
                raise SystemExit(f"no {stack}.cost.json in {args.plans}: run make plan first")
            resources = json.loads((args.plans / f"{stack}.json").read_text())
            traffic = declared.traffic.scaled(args.factor, args.same_queries)
            print(f"\n{stack} at {args.factor:g}x its declared traffic:")
            print("\n".join(report.table(model.estimate(stack, resources, traffic, table))))
        return 0
    table = json.loads(prices.PRICES_PATH.read_text())
    try:
        fetch = prices.google_fetch()
    except DefaultCredentialsError as error:
        raise SystemExit(f"prices.json left as it was: no Google credentials ({error})") from None
    updated, unmatched = prices.refresh(table, fetch, datetime.now(UTC).date())
    prices.PRICES_PATH.write_text(json.dumps(updated, indent=2) + "\n")
    print(f"prices.json checked {updated['checked']}; left as they were: {', '.join(unmatched) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
