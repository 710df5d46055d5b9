"""`python -m app.deadletters`: list dead-lettered flight events and why, re-drive them after a fix.

    python -m app.deadletters list [--limit 100] [--json]
    python -m app.deadletters redrive --message-id ID [--message-id ID ...] [--force]
    python -m app.deadletters redrive --all-fitting
    python -m app.deadletters discard --message-id ID [...]

Target: `--project` (or GOOGLE_CLOUD_PROJECT) with Application Default Credentials, or the
Pub/Sub emulator when PUBSUB_EMULATOR_HOST is set; with neither, the local stack described by
`.local/stack.json`. Resource names default to the pipeline's (`app/contract/pipeline.py`).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path

from app.contract.pipeline import PIPELINE
from app.contract.service_env import ConfigError
from app.contract.stack_file import STACK_FILE, read_stack_file
from app.deadletters.inbox import DeadLetter, DeadLetterInbox, Target

SCAN_LIMIT = 10_000


def _target(args: argparse.Namespace) -> Target:
    names = {
        "topic": args.topic,
        "subscription": args.subscription,
        "source_subscription": args.source_subscription,
    }
    project = args.project or os.environ.get("GOOGLE_CLOUD_PROJECT")
    if project:
        return Target(project=project, pubsub_emulator_host=os.environ.get("PUBSUB_EMULATOR_HOST"), **names)
    try:
        described = read_stack_file(args.stack_file)
    except ConfigError as exc:
        raise SystemExit(f"no --project, no GOOGLE_CLOUD_PROJECT and {exc}; or say which project") from None
    return Target(
        project=described["project_id"], pubsub_emulator_host=described["pubsub_emulator_host"], **names
    )


def _preview(data: bytes, width: int = 50) -> str:
    text = data[:width].decode("utf-8", errors="backslashreplace")
    return repr(text + ("..." if len(data) > width else ""))


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n} B"


def _as_json(letter: DeadLetter) -> dict[str, object]:
    try:
        data: dict[str, str] = {"text": letter.data.decode("utf-8")}
    except UnicodeDecodeError:
        data = {"base64": base64.b64encode(letter.data).decode()}
    return {
        "message_id": letter.message_id,
        "publish_time": letter.publish_time.isoformat(),
        "delivery_attempts": letter.delivery_attempts,
        "attributes": letter.attributes,
        "fits": letter.fits,
        "reason": letter.reason,
        "data": data,
    }


def list_letters(inbox: DeadLetterInbox, args: argparse.Namespace) -> int:
    with inbox.leased(args.limit) as letters:
        if args.json:
            for letter in letters:
                print(json.dumps(_as_json(letter)))
            return 0
        print(f"{'message id':<20} {'published (UTC)':<20} {'attempts':>8} {'size':>9}  reason / data")
        for letter in letters:
            reason = letter.reason or "fits the table now: can be re-driven"
            print(
                f"{letter.message_id:<20} {letter.publish_time:%Y-%m-%d %H:%M:%S} "
                f"{letter.delivery_attempts or '?':>8} {_size(len(letter.data)):>9}  {reason}\n"
                f"{'':>61}{_preview(letter.data)}"
            )
        fitting = sum(letter.fits for letter in letters)
        more = " (more may be waiting: raise --limit)" if len(letters) >= args.limit else ""
        where = inbox.target.subscription_path
        print(f"{len(letters)} dead-lettered message(s) on {where}{more}; {fitting} fit the table now")
    return 0


def _select(letters: list[DeadLetter], args: argparse.Namespace) -> list[DeadLetter]:
    if args.all_fitting:
        return [letter for letter in letters if letter.fits]
    wanted = set(args.message_id)
    chosen = [letter for letter in letters if letter.message_id in wanted]
    if missing := wanted - {letter.message_id for letter in chosen}:
        print(f"not on the dead-letter subscription (or beyond --limit): {', '.join(sorted(missing))}")
    return chosen


def redrive(inbox: DeadLetterInbox, args: argparse.Namespace) -> int:
    with inbox.leased(args.limit) as letters:
        chosen = _select(letters, args)
        unfit = [letter for letter in chosen if not letter.fits]
        if unfit and not args.force:
            for letter in unfit:
                print(f"{letter.message_id} still does not fit ({letter.reason}); fix it first, or --force")
            chosen = [letter for letter in chosen if letter.fits]
        new_ids = inbox.redrive(chosen)
        for letter, new_id in zip(chosen, new_ids, strict=True):
            print(f"re-drove {letter.message_id} to {inbox.target.topic_path} as message {new_id}")
        print(f"re-drove {len(new_ids)} message(s)")
        return 1 if unfit and not args.force else 0


def discard(inbox: DeadLetterInbox, args: argparse.Namespace) -> int:
    with inbox.leased(args.limit) as letters:
        chosen = _select(letters, args)
        inbox.discard(chosen)
        print(f"discarded {len(chosen)} message(s): {', '.join(letter.message_id for letter in chosen)}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.deadletters",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--project", help="project (default: GOOGLE_CLOUD_PROJECT, else the local stack)")
    parser.add_argument("--topic", default=PIPELINE.topic, help="ingest topic to re-drive to")
    parser.add_argument(
        "--subscription",
        default=PIPELINE.dead_letter_subscription,
        help="dead-letter inspection subscription",
    )
    parser.add_argument(
        "--source-subscription",
        default=PIPELINE.subscription,
        help="the warehouse subscription they came from",
    )
    parser.add_argument("--stack-file", type=Path, default=STACK_FILE, help="local stack")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list dead letters and why each does not fit the table")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="one JSON document per line, data included")
    actions = {"redrive": "publish to the topic again, then remove", "discard": "remove for good"}
    for name, text in actions.items():
        sub = commands.add_parser(name, help=text)
        which = sub.add_mutually_exclusive_group(required=True)
        which.add_argument("--message-id", action="append", default=[], help="a dead letter's message id")
        if name == "redrive":
            which.add_argument("--all-fitting", action="store_true", help="every dead letter that fits now")
            sub.add_argument("--force", action="store_true", help="re-drive even what still does not fit")
        sub.add_argument("--limit", type=int, default=SCAN_LIMIT, help=f"scan at most {SCAN_LIMIT:,}")
        sub.set_defaults(all_fitting=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"list": list_letters, "redrive": redrive, "discard": discard}
    with DeadLetterInbox(_target(args)) as inbox:
        return commands[args.command](inbox, args)


if __name__ == "__main__":
    sys.exit(main())
