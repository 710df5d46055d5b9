"""The preview's own scripts: the data-path guard over saved plans, and the one comment per stack.

The guard reads Pulumi's DeploymentPlanV1 (resourcePlans -> steps, as pulumi/pulumi's
sdk/go/common/apitype/plan.go serialises it). The comment is posted to a local stand-in of GitHub's
REST API that pages the pull request's comments with Link headers, as GitHub does
(https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / ".github" / "scripts"
PREFIX = "urn:pulumi:{stack}::airline-data-platform::"
SUBSCRIPTION = (
    "airline:platform:Ingestion$gcp:pubsub/subscription:Subscription::ingestion-bigquery-subscription"
)
VIEW = "airline:platform:Warehouse$gcp:bigquery/table:Table::warehouse-latest-view"
SERVICE = "airline:platform:Api$gcp:cloudrunv2/service:Service::api-service"
REPLACE = ["create-replacement", "replace", "delete-replaced"]


def script(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the repository's own script
        [sys.executable, str(SCRIPTS / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def guard(tmp_path: Path, stack: str, plans: dict[str, dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "plan.json"
    resource_plans = {PREFIX.format(stack=stack) + urn: plan for urn, plan in plans.items()}
    path.write_text(json.dumps({"manifest": {}, "resourcePlans": resource_plans}))
    return script("plan_guard.py", stack, str(path))


def test_prod_refuses_a_plan_that_replaces_the_bigquery_subscription(tmp_path: Path) -> None:
    result = guard(tmp_path, "prod", {SUBSCRIPTION: {"steps": REPLACE}, SERVICE: {"steps": REPLACE}})
    assert result.returncode == 1
    assert "refused: this stack keeps its data" in result.stdout
    assert "ingestion-bigquery-subscription" in result.stdout
    assert "api-service" not in result.stdout  # a Cloud Run revision holds no data


def test_prod_refuses_a_plan_that_deletes_the_dataset(tmp_path: Path) -> None:
    dataset = "airline:platform:Warehouse$gcp:bigquery/dataset:Dataset::warehouse-dataset"
    result = guard(tmp_path, "prod", {dataset: {"steps": ["delete"]}})
    assert result.returncode == 1
    assert "delete: " in result.stdout


def test_updates_in_place_and_a_replaced_view_pass_in_prod(tmp_path: Path) -> None:
    plans = {
        SUBSCRIPTION: {"steps": ["update"]},
        VIEW: {"steps": REPLACE, "goal": {"inputDiff": {"adds": {"view": {"query": "SELECT 1"}}}}},
    }
    result = guard(tmp_path, "prod", plans)
    assert result.returncode == 0, result.stdout
    assert "deletes or replaces no topic" in result.stdout


def test_stacks_that_do_not_keep_data_are_warned_not_failed(tmp_path: Path) -> None:
    result = guard(tmp_path, "dev", {SUBSCRIPTION: {"steps": REPLACE}})
    assert result.returncode == 0
    assert "allowed outside protected stacks" in result.stdout


# --- the comment ---------------------------------------------------------------------------

MARKER = "<!-- pulumi-preview:prod -->"


def render(tmp_path: Path, outcome: str, preview: str | None) -> str:
    args = ["render", "--stack", "prod", "--outcome", outcome, "--sha", "a" * 40, "--run-url", "https://r"]
    if preview is not None:
        (tmp_path / "preview.txt").write_text(preview)
        args += ["--preview", str(tmp_path / "preview.txt")]
    (tmp_path / "cost.md").write_text("#### prod: $812.40 -> $1,020.10 a month (+$207.70)\n")
    result = script("preview_comment.py", *args, "--cost", str(tmp_path / "cost.md"))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_failed_preview_shows_its_errors_and_policy_violations(tmp_path: Path) -> None:
    output = (
        "Previewing update (prod):\n"
        "Policy Violations:\n"
        "    [mandatory]  airline-platform-baseline v0.0.1  deletion-protection-in-prod\n"
        "    Table 'flight_events' needs deletionProtection: true.\n"
        "error: preview failed\n"
    )
    body = render(tmp_path, "failure", output)
    assert body.startswith(MARKER)
    assert "preview FAILED" in body
    assert "deletion-protection-in-prod" in body
    assert "error: preview failed" in body
    assert "$812.40 -> $1,020.10" in body


def test_a_preview_that_never_ran_still_says_so(tmp_path: Path) -> None:
    body = render(tmp_path, "skipped", None)
    assert "preview did not run" in body
    assert "_No preview output" in body


def test_prods_comment_on_a_pull_request_says_where_prod_is_previewed(tmp_path: Path) -> None:
    body = render(tmp_path, "main-only", None)
    assert "prod is previewed on `main` before its approval" in body
    assert "_No preview output" not in body
    assert "$812.40 -> $1,020.10" in body


def test_a_missing_cost_delta_is_said_not_skipped(tmp_path: Path) -> None:
    args = ["render", "--stack", "prod", "--outcome", "success", "--sha", "b" * 40, "--run-url", "https://r"]
    result = script("preview_comment.py", *args, "--cost", str(tmp_path / "absent.md"))
    assert "_No cost estimate: the offline plan" in result.stdout


def test_a_huge_preview_keeps_its_end_within_githubs_limit(tmp_path: Path) -> None:
    body = render(tmp_path, "success", "x\n" * 100_000 + "Resources: 3 to update\n")
    assert len(body) < 65_536
    assert body.rstrip().endswith("Resources: 3 to update\n````".rstrip())


class FakeGitHub(BaseHTTPRequestHandler):
    """Issue comments of one pull request, 100 per page, plus create, update and delete."""

    comments: list[dict[str, Any]]
    calls: list[tuple[str, str]]

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.calls.append(("GET", self.path))
        page = int(parse_qs(url.query).get("page", ["1"])[0])
        per_page = 100
        chunk = self.comments[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(self.comments):
            host = self.headers["Host"]
            headers["Link"] = f'<http://{host}{url.path}?per_page={per_page}&page={page + 1}>; rel="next"'
        self._reply(200, chunk, headers)

    def _body(self) -> dict[str, Any]:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_POST(self) -> None:
        self.calls.append(("POST", self.path))
        self.comments.append({"id": 9999, "user": {"login": "github-actions[bot]"}, **self._body()})
        self._reply(201, {})

    def do_PATCH(self) -> None:
        self.calls.append(("PATCH", self.path))
        comment_id = int(self.path.rsplit("/", 1)[1])
        next(c for c in self.comments if c["id"] == comment_id).update(self._body())
        self._reply(200, {})

    def do_DELETE(self) -> None:
        self.calls.append(("DELETE", self.path))
        comment_id = int(self.path.rsplit("/", 1)[1])
        self.comments[:] = [c for c in self.comments if c["id"] != comment_id]
        self._reply(204)


@pytest.fixture
def github() -> Iterator[tuple[str, type[FakeGitHub]]]:
    handler = type("Handler", (FakeGitHub,), {"comments": [], "calls": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def post(api: str, body: Path) -> subprocess.CompletedProcess[str]:
    env = {"GITHUB_API_URL": api, "GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "o/r", "PR_NUMBER": "7"}
    return script("preview_comment.py", "post", "--stack", "prod", "--body", str(body), env=env)


def chatter(count: int) -> list[dict[str, Any]]:
    """Review comments, one quoting the marker: only the workflow's own comments count."""
    comments = [{"id": i, "user": {"login": "reviewer"}, "body": f"comment {i}"} for i in range(count)]
    comments[3]["body"] = MARKER + " quoted by a reviewer"
    return comments


def test_the_stack_comment_on_page_three_is_updated_and_its_duplicate_deleted(
    tmp_path: Path, github: tuple[str, type[FakeGitHub]]
) -> None:
    api, state = github
    state.comments += chatter(250)
    state.comments.insert(
        230, {"id": 1001, "user": {"login": "github-actions[bot]"}, "body": MARKER + " old"}
    )
    state.comments.append({"id": 1002, "user": {"login": "github-actions[bot]"}, "body": MARKER + " dup"})
    body = tmp_path / "comment.md"
    body.write_text(MARKER + "\nnew preview")
    result = post(api, body)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "updated 1001, deleted 1 duplicates"
    assert [method for method, _ in state.calls] == ["GET", "GET", "GET", "PATCH", "DELETE"]
    mine = [c for c in state.comments if c["user"]["login"] == "github-actions[bot]"]
    assert [(c["id"], c["body"]) for c in mine] == [(1001, MARKER + "\nnew preview")]
    assert state.comments[3]["body"] == MARKER + " quoted by a reviewer"  # a reviewer's comment is untouched


def test_without_an_earlier_comment_one_is_created(
    tmp_path: Path, github: tuple[str, type[FakeGitHub]]
) -> None:
    api, state = github
    state.comments += chatter(120)
    body = tmp_path / "comment.md"
    body.write_text(MARKER + "\nfirst preview")
    assert post(api, body).stdout.strip() == "created"
    assert [method for method, _ in state.calls] == ["GET", "GET", "POST"]
    assert state.comments[-1]["body"] == MARKER + "\nfirst preview"


def test_a_body_without_its_stack_marker_is_refused(
    tmp_path: Path, github: tuple[str, type[FakeGitHub]]
) -> None:
    api, state = github
    body = tmp_path / "comment.md"
    body.write_text("<!-- pulumi-preview:dev -->\nwrong stack")
    result = post(api, body)
    assert result.returncode != 0
    assert state.calls == []
