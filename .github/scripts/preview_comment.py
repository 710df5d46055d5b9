"""One pull-request comment per stack, written by the preview workflow itself, on success and on failure.

`render` builds the comment from the preview's output (errors and policy violations included), the
data-path guard and the cost delta; `post` finds the stack's earlier comment by its hidden marker,
following every page of the pull request's comments, and updates it (deleting any duplicates), or
creates it. Only comments written by the workflow's own token count, so a quoted marker cannot hijack
the lookup. REST endpoints: https://docs.github.com/en/rest/issues/comments.

Usage:
  preview_comment.py render --stack S --outcome O --sha SHA --run-url URL [--preview F] [--guard F] [--cost F]
  preview_comment.py post --stack S --body F     (GITHUB_TOKEN, GITHUB_REPOSITORY, PR_NUMBER, GITHUB_API_URL)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx

AUTHOR = "github-actions[bot]"
# GitHub refuses a comment body over 65,536 characters; keep room for the frame around the output.
MAX_OUTPUT = 60_000
VERDICT = {
    "success": "preview succeeded",
    "failure": "**preview FAILED** (errors and policy violations below; the job fails too)",
    "skipped": "**preview did not run**: an earlier step failed (authentication, toolchain); see the run",
    "main-only": (
        "not previewed from a pull request (its token reaches neither prod's state nor its key); "
        "prod is previewed on `main` before its approval, and the update applies exactly that preview"
    ),
}


def marker(stack: str) -> str:
    return f"<!-- pulumi-preview:{stack} -->"


def tail(text: str, limit: int) -> str:
    """The end of a long output: the summary, errors and policy violations are printed last."""
    return text if len(text) <= limit else "… (start cut, see the run)\n" + text[-limit:]


def section(title: str, path: str | None, limit: int) -> list[str]:
    text = Path(path).read_text() if path and Path(path).is_file() else ""
    if not text.strip():
        return []
    # A four-backtick fence: the output cannot close it with an ordinary ``` line.
    return [f"#### {title}", "", "````text", tail(text.rstrip(), limit), "````", ""]


def render(args: argparse.Namespace) -> str:
    verdict = VERDICT.get(args.outcome, f"**preview {args.outcome}**")
    lines = [
        marker(args.stack),
        f"### `pulumi preview` of **{args.stack}** at {args.sha[:12]}: {verdict}",
        "",
        f"[Run]({args.run_url}). The image is the one {args.stack} runs; the merge builds the new one.",
        "",
    ]
    cost = Path(args.cost) if args.cost else None
    if cost and cost.is_file():
        lines += [tail(cost.read_text().rstrip(), 8_000), ""]  # markdown from `airline_platform.cost diff`
    else:
        lines += ["_No cost estimate: the offline plan (`make plan`) did not finish; see the run._", ""]
    lines += section("Data path (topics, subscriptions, dataset, table)", args.guard, 4_000)
    lines += section("Preview", args.preview, MAX_OUTPUT - 12_000)
    if args.outcome != "main-only" and not (args.preview and Path(args.preview).is_file()):
        lines += ["_No preview output: the preview step did not run._", ""]
    return "\n".join(lines)


def _comment_ids(client: httpx.Client, url: str, stack: str) -> list[int]:
    """Every page of the pull request's comments, by the Link header's `next`."""
    ids: list[int] = []
    next_url: str | None = url
    params: dict[str, int] | None = {"per_page": 100}
    while next_url:
        response = client.get(next_url, params=params)
        response.raise_for_status()
        ids += [
            c["id"]
            for c in response.json()
            if c["user"]["login"] == AUTHOR and c["body"].startswith(marker(stack))
        ]
        next_url, params = response.links.get("next", {}).get("url"), None
    return ids


def post(args: argparse.Namespace) -> str:
    body = Path(args.body).read_text()
    if not body.startswith(marker(args.stack)):
        raise SystemExit(f"the body does not start with {marker(args.stack)}")
    repo, api = os.environ["GITHUB_REPOSITORY"], os.environ["GITHUB_API_URL"]
    headers = {
        "Authorization": f"Bearer {os.environ['GITHUB_TOKEN']}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    with httpx.Client(base_url=api, headers=headers, timeout=30) as client:
        comments = f"{api}/repos/{repo}/issues/{os.environ['PR_NUMBER']}/comments"
        found = _comment_ids(client, comments, args.stack)
        if not found:
            client.post(comments, json={"body": body}).raise_for_status()
            return "created"
        client.patch(f"/repos/{repo}/issues/comments/{found[0]}", json={"body": body}).raise_for_status()
        for duplicate in found[1:]:
            client.delete(f"/repos/{repo}/issues/comments/{duplicate}").raise_for_status()
        return f"updated {found[0]}" + (f", deleted {len(found) - 1} duplicates" if found[1:] else "")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    render_args = commands.add_parser("render")
    render_args.add_argument("--stack", required=True)
    render_args.add_argument("--outcome", required=True)
    render_args.add_argument("--sha", required=True)
    render_args.add_argument("--run-url", required=True)
    for name in ("--preview", "--guard", "--cost"):
        render_args.add_argument(name)
    post_args = commands.add_parser("post")
    post_args.add_argument("--stack", required=True)
    post_args.add_argument("--body", required=True)
    args = parser.parse_args(argv)
    print(render(args) if args.command == "render" else post(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
