"""The delivery pipeline as code: schema-valid, zizmor-clean, and shaped the way docs/delivery.md says.

Everything here runs offline: check-jsonschema uses its vendored schemas, zizmor runs with
--offline. The structural tests read the workflows as data, so a reviewer's questions (is every
action pinned? does every stack update get fuzzed and canaried? is prod behind an environment?)
are answered by a test that fails when the answer changes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from airline_bootstrap import naming

REPO_ROOT = Path(__file__).resolve().parents[2]
GITHUB = REPO_ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
ACTIONS = sorted((GITHUB / "actions").glob("*/action.yml"))
STACKS = ["dev", "staging", "prod"]
TOOLCHAIN = "./.github/actions/pulumi-toolchain"
PINNED_USES = re.compile(r"^\s*(?:- )?uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+$")


def tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    if True in document:  # YAML 1.1 reads the key `on` as the boolean true
        document["on"] = document.pop(True)
    return document


def workflow(name: str) -> dict[str, Any]:
    return load(GITHUB / "workflows" / f"{name}.yml")


def steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of a workflow's jobs, or of a composite action."""
    if "runs" in document:
        return list(document["runs"]["steps"])
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def uses(step: dict[str, Any]) -> str:
    return str(step.get("uses", "")).split("@")[0]


def index_of(job_steps: list[dict[str, Any]], predicate: Any) -> int:
    (found,) = [i for i, step in enumerate(job_steps) if predicate(step)]
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603


# --- the offline checks -------------------------------------------------------------------


def test_workflows_validate_against_the_github_workflow_schema() -> None:
    assert len(WORKFLOWS) == 6
    result = run(
        tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_composite_actions_and_renovate_config_validate() -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", *map(str, ACTIONS))
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(
        tool("check-jsonschema"), "--builtin-schema", "vendor.renovate", str(GITHUB / "renovate.json")
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_reports_nothing() -> None:
    result = run(tool("zizmor"), "--offline", "--format", "json", ".")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []
    audited = re.findall(r"completed (\S+)", result.stderr)
    assert len(audited) == len(WORKFLOWS) + len(ACTIONS), result.stderr


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    """actionlint with the hash-pinned shellcheck, so every machine checks the `run:` scripts alike."""
    return run(tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), *map(str, paths))


def test_actionlint_reports_nothing() -> None:
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_actionlint_finds_what_it_is_there_for(tmp_path: Path) -> None:
    """A step output nobody defines and an unquoted variable: both must be reported."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\n"
        "permissions: {}\n"
        "jobs:\n"
        "  job:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - run: echo ${{ steps.nowhere.outputs.value }}\n"
        "      - run: rm -rf $TARGET/cache\n"
    )
    result = actionlint(broken)
    assert result.returncode == 1
    assert 'property "nowhere" is not defined' in result.stdout
    assert "SC2086" in result.stdout  # shellcheck ran on the run: script


# --- hygiene of every workflow and composite action ----------------------------------------


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version() -> None:
    pins: dict[str, set[str]] = {}
    for path in [*WORKFLOWS, *ACTIONS]:
        lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(- )?uses: ", line)]
        parsed = [s["uses"] for s in steps(load(path)) if "uses" in s]
        parsed += [job["uses"] for job in load(path).get("jobs", {}).values() if "uses" in job]
        assert len(lines) == len(parsed), path  # every `uses:` is on a line of its own
        for line in lines:
            if line.split("uses: ")[1].startswith(("./", "$/")):
                continue  # this repository's own workflow or action, at the same commit
            match = PINNED_USES.match(line)
            assert match, f"{path.name}: {line.strip()} is not pinned as owner/repo@<sha> # vX.Y.Z"
            pins.setdefault(match[1], set()).add(match[2])
    assert {action for action, shas in pins.items() if len(shas) > 1} == set()  # one version per action
    assert "google-github-actions/auth" in pins


def test_permissions_start_empty_and_each_job_asks_for_what_it_uses() -> None:
    for path in WORKFLOWS:
        document = load(path)
        assert document["permissions"] == {}, path.name
        for name, job in document["jobs"].items():
            permissions = job.get("permissions")
            assert isinstance(permissions, dict), f"{path.name}:{name} declares no permissions"
            assert set(permissions.values()) <= {"read", "write", "none"}
            assert permissions.get("contents") == "read", f"{path.name}:{name}"
            acts_on_the_cloud = (
                any(uses(s) == "google-github-actions/auth" for s in job.get("steps", []))
                or job.get("uses") == "./.github/workflows/deploy-stack.yml"
            )
            assert (permissions.get("id-token") == "write") == acts_on_the_cloud, f"{path.name}:{name}"
            writes = {k for k, v in permissions.items() if v == "write"} - {"id-token"}
            assert writes <= {"pull-requests", "issues"}, f"{path.name}:{name} writes {writes}"


def test_every_job_has_a_timeout() -> None:
    for path in WORKFLOWS:
        for name, job in load(path)["jobs"].items():
            if "uses" in job:
                continue  # a reusable workflow: its own jobs are checked in its file
            # 80 for a stack update: its checks plus the time to roll back (deploy-stack.yml).
            assert 0 < job["timeout-minutes"] <= 80, f"{path.name}:{name}"


def test_checkouts_leave_no_credentials_behind() -> None:
    checkouts = [s for path in WORKFLOWS for s in steps(load(path)) if uses(s) == "actions/checkout"]
    assert checkouts
    assert all(s["with"]["persist-credentials"] is False for s in checkouts)


def test_no_expression_is_interpolated_into_a_shell_script() -> None:
    scripts = [s["run"] for path in [*WORKFLOWS, *ACTIONS] for s in steps(load(path)) if "run" in s]
    assert scripts
    assert not [script for script in scripts if "${{" in script], "pass values through env: instead"


def test_no_trigger_runs_untrusted_code_with_secrets() -> None:
    for path in WORKFLOWS:
        assert not {"pull_request_target", "workflow_run"} & set(load(path)["on"]), path.name


# --- ci ------------------------------------------------------------------------------------


def test_ci_runs_the_readme_test_command_with_java_and_the_emulator() -> None:
    ci = workflow("ci")
    assert {"pull_request", "workflow_call"} <= set(ci["on"])
    test = ci["jobs"]["test"]["steps"]
    java = next(s for s in test if uses(s) == "actions/setup-java")
    assert java["with"]["java-version"] == "17"
    gcloud = next(s for s in test if uses(s) == "google-github-actions/setup-gcloud")
    assert "pubsub-emulator" in gcloud["with"]["install_components"]
    assert next(s for s in test if uses(s) == "actions/setup-python")["with"]["python-version"] == "3.11"
    assert test[-1]["run"] == ".ci/run"
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()


def test_ci_audits_dependencies_publishes_an_sbom_and_scans_the_image() -> None:
    jobs = workflow("ci")["jobs"]
    supply = jobs["supply-chain"]["steps"]
    assert any("pip-audit" in s.get("run", "") and "requirements/*.txt" in s["run"] for s in supply)
    assert any("cyclonedx-py requirements requirements/runtime.txt" in s.get("run", "") for s in supply)
    assert any(uses(s) == "actions/upload-artifact" and s["with"]["name"] == "sbom" for s in supply)
    image = jobs["image"]
    assert image["if"] == "github.event_name == 'pull_request'"  # deploy runs build in deploy.yml instead
    assert [uses(s) for s in image["steps"]].count("docker/build-push-action") == 1
    trivy = next(s for s in image["steps"] if uses(s) == "aquasecurity/trivy-action")
    assert trivy["with"]["exit-code"] == "1"
    assert any("make checkov" in s.get("run", "") for s in jobs["checkov"]["steps"])


# --- preview on pull requests ----------------------------------------------------------------


def test_preview_runs_on_pull_requests_for_every_stack_with_the_policy_pack() -> None:
    preview = workflow("preview")
    assert "pull_request" in preview["on"]
    job = preview["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == STACKS
    assert job["strategy"]["fail-fast"] is False
    assert not [s for s in job["steps"] if uses(s) == "pulumi/actions"]  # it comments on success only
    run_preview = index_of(job["steps"], lambda s: s.get("id") == "preview")
    script = job["steps"][run_preview]["run"]
    assert "pulumi preview" in script
    assert "--policy-pack platform/policy" in script
    assert "--diff" in script
    assert "set -o pipefail" in script
    assert "| tee preview.txt" in script
    sets_image = index_of(job["steps"], lambda s: "pulumi config set" in s.get("run", ""))
    assert sets_image < run_preview


def test_each_stack_comments_itself_on_success_and_on_failure() -> None:
    job = workflow("preview")["jobs"]["preview"]
    job_steps = job["steps"]
    assert job["permissions"]["pull-requests"] == "write"
    comment = index_of(job_steps, lambda s: "preview_comment.py post" in s.get("run", ""))
    step = job_steps[comment]
    # After a failed preview too, but never from a run a newer push cancelled.
    assert step["if"] == "${{ !cancelled() }}"
    assert comment == len(job_steps) - 1
    assert '--stack "$STACK"' in step["run"]
    assert step["env"]["OUTCOME"] == (
        "${{ matrix.stack == 'prod' && 'main-only' "
        "|| steps.guard.outcome == 'failure' && 'failure' || steps.preview.outcome }}"
    )
    # .venv exists before anything can fail for lack of credentials.
    toolchain = index_of(job_steps, lambda s: s.get("uses") == TOOLCHAIN)
    auth = index_of(job_steps, lambda s: uses(s) == "google-github-actions/auth")
    assert toolchain < auth


def test_a_pull_request_never_asks_for_prods_credentials() -> None:
    """Prod's state and key are reached from main only (deploy-stack.yml's preview job)."""
    job = workflow("preview")["jobs"]["preview"]
    cloud = [
        s for s in job["steps"] if uses(s) == "google-github-actions/auth" or "pulumi " in s.get("run", "")
    ]
    assert cloud
    assert all(s["if"] == "matrix.stack != 'prod'" for s in cloud)


def test_each_comment_carries_the_data_path_guard_and_the_cost_delta() -> None:
    preview = workflow("preview")["jobs"]
    offline = preview["offline-plan"]["steps"]
    (cost,) = [s for s in offline if "airline_platform.cost diff" in s.get("run", "")]
    assert "make -C .base plan" in cost["run"]
    assert "--base .base/plans --head plans" in cost["run"]
    (base,) = [s for s in offline if s.get("with", {}).get("path") == ".base"]
    assert base["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    (upload,) = [s for s in offline if uses(s) == "actions/upload-artifact"]
    assert "cost-*.md" in upload["with"]["path"]
    job = preview["preview"]
    assert job["needs"] == "offline-plan"
    assert job["if"].startswith("${{ !cancelled() && ")  # comments even when the offline plan failed
    (guard,) = [s for s in job["steps"] if s.get("id") == "guard"]
    assert 'plan_guard.py "$STACK" plan.json' in guard["run"]
    (comment,) = [s for s in job["steps"] if "preview_comment.py render" in s.get("run", "")]
    for argument in ("--preview preview.txt", "--guard guard.txt", '--cost "offline-plan/cost-$STACK.md"'):
        assert argument in comment["run"]


def test_the_offline_plan_is_an_artifact_and_in_the_job_summary() -> None:
    plan = workflow("preview")["jobs"]["offline-plan"]["steps"]
    (render,) = [s for s in plan if "make plan" in s.get("run", "")]
    assert "GITHUB_STEP_SUMMARY" in render["run"]
    (upload,) = [s for s in plan if uses(s) == "actions/upload-artifact"]
    assert "plans/" in upload["with"]["path"]


# --- deploy --------------------------------------------------------------------------------


def test_gitflow_promotes_one_digest_dev_from_develop_staging_then_prod_from_main() -> None:
    deploy = workflow("deploy")
    assert deploy["on"] == {"push": {"branches": list(naming.DEPLOY_BRANCHES)}}
    jobs = deploy["jobs"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["image"]["needs"] == "ci"
    expected = {
        "dev": ("github.ref == 'refs/heads/develop'", "image"),
        "staging": ("github.ref == 'refs/heads/main'", "image"),
        "prod": ("github.ref == 'refs/heads/main'", ["image", "staging"]),
    }
    for stack, (condition, needs) in expected.items():
        job = jobs[stack]
        assert (job["if"], job["needs"]) == (condition, needs), stack
        assert job["uses"] == "./.github/workflows/deploy-stack.yml"
        assert job["with"]["stack"] == stack
        # The same output of the one image job: every stack of a run deploys the same digest.
        assert job["with"]["image"] == "${{ needs.image.outputs.image }}"


def test_the_image_is_pushed_once_scanned_and_handed_on_by_digest() -> None:
    image = workflow("deploy")["jobs"]["image"]
    assert image["outputs"] == {"image": "${{ steps.digest.outputs.image }}"}
    job_steps = image["steps"]
    (build,) = [s for s in job_steps if uses(s) == "docker/build-push-action"]
    assert build["with"]["push"] is True
    assert build["with"]["provenance"] is False  # one manifest: the pushed digest is the one deployed
    digest = index_of(job_steps, lambda s: s.get("id") == "digest")
    assert "sha256:[0-9a-f]{64}" in job_steps[digest]["run"]
    scan = index_of(job_steps, lambda s: uses(s) == "aquasecurity/trivy-action")
    assert job_steps[scan]["with"]["image-ref"] == "${{ steps.digest.outputs.image }}"
    assert job_steps.index(build) < digest < scan


def deploy_job() -> dict[str, Any]:
    return workflow("deploy-stack")["jobs"]["deploy"]


def step_index(job: dict[str, Any], step_id: str) -> int:
    return index_of(job["steps"], lambda s: s.get("id") == step_id)


def test_the_approver_sees_the_preview_of_this_commit_and_up_applies_that_plan() -> None:
    jobs = workflow("deploy-stack")["jobs"]
    preview, deploy = jobs["preview"], jobs["deploy"]
    # The preview job has no environment, so it runs (and writes its summary) before the gate.
    assert "environment" not in preview
    assert deploy["needs"] == "preview"
    assert deploy["environment"]["name"] == "${{ inputs.stack }}"
    saved = preview["steps"][step_index(preview, "preview")]["run"]
    assert "--save-plan plan.json" in saved
    assert "--policy-pack platform/policy" in saved
    assert preview["outputs"]["plan-sha256"] == "${{ steps.preview.outputs.sha256 }}"
    summary = index_of(preview["steps"], lambda s: "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert "preview.txt" in preview["steps"][summary]["run"]
    assert preview["steps"][summary]["if"] == "always() && steps.preview.outcome != 'skipped'"
    (upload,) = [s for s in preview["steps"] if uses(s) == "actions/upload-artifact"]
    assert upload["with"]["path"] == "plan.json"
    (download,) = [s for s in deploy["steps"] if uses(s) == "actions/download-artifact"]
    assert download["with"]["name"] == upload["with"]["name"]
    assert deploy["env"]["PLAN_SHA256"] == "${{ needs.preview.outputs.plan-sha256 }}"
    check = index_of(deploy["steps"], lambda s: "sha256sum --check" in s.get("run", ""))
    up = step_index(deploy, "up")
    assert "--plan plan.json" in deploy["steps"][up]["run"]
    assert deploy["steps"].index(download) < check < up
    # Both jobs point the stack at the same digest, so the plan's config is the update's config.
    for job in (preview, deploy):
        assert any(s.get("run") == 'pulumi config set --stack "$STACK" image "$IMAGE"' for s in job["steps"])


def test_a_replacement_of_the_data_path_fails_the_preview() -> None:
    for job in (workflow("deploy-stack")["jobs"]["preview"], workflow("preview")["jobs"]["preview"]):
        preview = step_index(job, "preview")
        guard = index_of(job["steps"], lambda s: "plan_guard.py" in s.get("run", ""))
        assert preview < guard
        # Runs, and fails the job, whenever the preview ran and passed.
        assert job["steps"][guard].get("if") == job["steps"][preview].get("if")
        assert "set -o pipefail" in job["steps"][guard]["run"]


def test_after_the_update_schemathesis_the_canary_and_conformance_run_from_the_pinned_environment() -> None:
    job = deploy_job()
    job_steps = job["steps"]
    up = step_index(job, "up")
    token = step_index(job, "token")
    assert job_steps[token]["with"]["token_format"] == "id_token"
    assert job_steps[token]["with"]["id_token_audience"] == "${{ steps.up.outputs.service_url }}"
    fuzz = index_of(job_steps, lambda s: "make fuzz-deployed" in s.get("run", ""))
    canary = index_of(job_steps, lambda s: "make canary" in s.get("run", ""))
    conformance = index_of(job_steps, lambda s: "make conformance" in s.get("run", ""))
    assert up < token < fuzz < canary < conformance
    for check in (fuzz, canary, conformance):
        assert job_steps[check]["env"]["ID_TOKEN"] == "${{ steps.token.outputs.id_token }}"
        assert job_steps[check]["env"]["SERVICE_URL"] == "${{ steps.up.outputs.service_url }}"
        assert "if" not in job_steps[check]  # a failure of any of them fails the deploy
    assert 'STACK="$STACK"' in job_steps[conformance]["run"]
    assert job_steps[fuzz]["env"]["FUZZ_ARGS"] == "${{ inputs.fuzz-args }}"


def test_no_action_installs_tools_by_tag_beside_credentials() -> None:
    for path in [*WORKFLOWS, *ACTIONS]:
        assert "schemathesis/action" not in path.read_text(), path.name


def test_the_post_deploy_make_targets_use_the_hash_pinned_environment() -> None:
    for target, tool_path in (
        ("fuzz-deployed", ".venv/bin/schemathesis run"),
        ("canary", ".venv/bin/pytest tests/e2e"),
    ):
        result = run("make", "-n", target, "URL=https://flight-api.example.run.app")
        assert result.returncode == 0, result.stderr
        assert tool_path in result.stdout
        assert "pip install" not in result.stdout
        assert "uvx" not in result.stdout
    fuzz = run(
        "make", "-n", "fuzz-deployed", "URL=https://x.run.app", "FUZZ_ARGS=--include-method GET"
    ).stdout
    assert '"$URL/schema/openapi.json"' in fuzz
    assert "--include-method GET" in fuzz
    assert "X-Serverless-Authorization: Bearer ${ID_TOKEN:?}" in fuzz  # the token never in make's output
    refused = run("make", "fuzz-deployed", "URL=http://plain.example")
    assert refused.returncode != 0
    assert "usage: make fuzz-deployed" in refused.stdout


def test_rollback_on_failure_cancel_and_timeout_once_the_update_started() -> None:
    job = deploy_job()
    job_steps = job["steps"]
    rollback = index_of(job_steps, lambda s: 'image "$PREVIOUS"' in s.get("run", ""))
    condition = job_steps[rollback]["if"]
    assert condition.startswith("(failure() || cancelled())")
    for outcome in ("success", "failure", "cancelled"):
        assert f"steps.up.outcome == '{outcome}'" in condition
    assert "steps.previous.outputs.image != ''" in condition
    assert "--refresh" in job_steps[rollback]["run"]
    # A timed-out step fails (and rolls back) inside the job's own limit.
    timed = [s.get("timeout-minutes", 0) for s in job_steps[step_index(job, "up") :]]
    assert all(timed), "every step from pulumi up on has its own timeout"
    assert sum(timed) < job["timeout-minutes"]
    unlock = index_of(job_steps, lambda s: "pulumi cancel" in s.get("run", ""))
    # A cancelled run and a step killed by its timeout both leave Pulumi's lock behind.
    assert job_steps[unlock]["if"] == (
        "(failure() || cancelled()) && (steps.up.outcome == 'failure' || steps.up.outcome == 'cancelled')"
    )
    assert unlock < rollback
    assert job_steps[-1]["if"] == "success()"


def test_no_failure_is_hidden_in_the_pulumi_workflows() -> None:
    """A backend, permission or lookup error must fail its step, not turn into an empty value.

    Steps run as `bash -e` without pipefail, so besides `|| true` and silenced errors, a command
    substitution inside `echo` or a pipe without `set -o pipefail` would also swallow a failure.
    """
    for name in ("deploy-stack", "preview", "drift", "rollback"):
        for step in steps(workflow(name)):
            script, where = step.get("run", ""), f"{name}: {step.get('name')}"
            assert not re.search(r"\|\| true|2> ?/dev/null", script), where
            assert not re.search(r"^\s*echo .*\$\(", script, re.M), where
            if re.search(r"\$\([^)]*\||^[^#(]*\w[^|]*\| *(tee|jq|cut)", script, re.M):
                assert "set -o pipefail" in script, where
    previous = deploy_job()["steps"][step_index(deploy_job(), "previous")]["run"]
    assert 'outputs="$(pulumi stack output --stack "$STACK" --json)"' in previous


def test_an_older_run_never_deploys_after_a_newer_one() -> None:
    job = deploy_job()
    head = index_of(job["steps"], lambda s: "git/ref/" in s.get("run", ""))
    assert '"$head" != "$GITHUB_SHA"' in job["steps"][head]["run"]
    assert job["steps"][head]["env"] == {"GH_TOKEN": "${{ github.token }}"}
    assert head < step_index(job, "up")
    assert "if" not in job["steps"][head]


def test_deploy_and_drift_share_one_lock_per_stack() -> None:
    deploy = deploy_job()["concurrency"]
    drift = workflow("drift")["jobs"]["refresh"]["concurrency"]
    assert deploy == {"group": "pulumi-${{ inputs.stack }}", "cancel-in-progress": False}
    assert drift == {"group": "pulumi-${{ matrix.stack }}", "cancel-in-progress": False}
    # Drift only queues when no deploy waits, so it never displaces a pending deploy.
    refresh = workflow("drift")["jobs"]["refresh"]
    assert refresh["needs"] == "quiet"
    assert refresh["if"] == "${{ !cancelled() && needs.quiet.outputs.quiet != 'false' }}"
    quiet = workflow("drift")["jobs"]["quiet"]["steps"][0]["run"]
    assert "deploy.yml rollback.yml" in quiet


def test_a_rollback_redeploys_a_digest_the_stack_ran_without_scanning_it_again() -> None:
    rollback = workflow("rollback")
    assert set(rollback["on"]) == {"workflow_dispatch"}
    (job,) = rollback["jobs"].values()
    assert job["uses"] == "./.github/workflows/deploy-stack.yml"
    assert job["with"]["rollback"] is True
    assert job["with"]["image"] == "${{ inputs.image }}"
    text = (GITHUB / "workflows" / "rollback.yml").read_text()
    assert "trivy" not in text
    assert "build-push-action" not in text
    preview = workflow("deploy-stack")["jobs"]["preview"]
    (history,) = [s for s in preview["steps"] if "pulumi stack history" in s.get("run", "")]
    assert history["if"] == "inputs.rollback"
    assert '"$STACK <- $IMAGE"' in history["run"]
    assert '.result == "succeeded"' in history["run"]
    # The message the history is searched for is the one every update writes.
    assert '--message "$STACK <- $IMAGE"' in deploy_job()["steps"][step_index(deploy_job(), "up")]["run"]


def test_the_pulumi_version_is_the_pinned_one(tmp_path: Path) -> None:
    action = load(GITHUB / "actions" / "pulumi-toolchain" / "action.yml")
    (pins,) = [s for s in action["runs"]["steps"] if s.get("id") == "pins"]
    output = tmp_path / "github_output"
    result = subprocess.run(  # noqa: S603 - the step's own script, run as the runner would
        ["bash", "-e", "-c", pins["run"]],  # noqa: S607
        cwd=REPO_ROOT,
        env={**os.environ, "GITHUB_OUTPUT": str(output)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    dev = (REPO_ROOT / "requirements" / "dev.txt").read_text()
    assert output.read_text().split() == ["pulumi=" + re.search(r"^pulumi==(\S+)", dev, re.M)[1]]  # type: ignore[index]
    (cli,) = [s for s in action["runs"]["steps"] if uses(s) == "pulumi/actions"]
    assert cli["with"]["pulumi-version"] == "${{ steps.pins.outputs.pulumi }}"


# --- drift ---------------------------------------------------------------------------------


def test_drift_refreshes_every_stack_on_a_schedule_and_reports_its_own_failures() -> None:
    drift = workflow("drift")
    assert drift["on"]["schedule"]
    job = drift["jobs"]["refresh"]
    assert job["strategy"]["matrix"]["stack"] == STACKS
    assert job["permissions"]["issues"] == "write"
    (refresh,) = [s for s in job["steps"] if s.get("id") == "refresh"]
    for flag in ("pulumi refresh", "--preview-only", "--expect-no-changes"):
        assert flag in refresh["run"]
    (report,) = [s for s in job["steps"] if "gh issue create" in s.get("run", "")]
    # Any failed step, authentication included, files the issue, not only the refresh.
    assert report["if"] == "failure()"
    assert report["env"]["AUTH"] == "${{ steps.auth.outcome }}"
    assert "gh issue comment" in report["run"]  # an open drift issue is updated, not duplicated


# --- the names CI derives are the names the bootstrap creates ------------------------------


def test_workflows_derive_the_names_the_bootstrap_creates() -> None:
    ops, region = "airline-delivery", "europe-west1"

    def resolve(value: str, stack: str) -> str:
        for expression, replacement in {
            "${{ vars.GCP_OPS_PROJECT }}": ops,
            "${{ vars.GCP_REGION }}": region,
            "${{ matrix.stack }}": stack,
            "${{ inputs.stack }}": stack,
        }.items():
            value = value.replace(expression, replacement)
        assert "${{" not in value, value
        return value

    jobs = {
        "preview": workflow("preview")["jobs"]["preview"],
        "drift": workflow("drift")["jobs"]["refresh"],
        "deploy": workflow("deploy-stack")["jobs"]["deploy"],
    }
    for stack in STACKS:
        for job in jobs.values():
            assert (
                resolve(job["env"]["PULUMI_BACKEND_URL"], stack) == f"gs://{naming.state_bucket(ops, stack)}"
            )
        assert resolve(jobs["deploy"]["env"]["DEPLOYER"], stack) == naming.service_account_email(
            naming.deployer(stack), ops
        )
    jobs["deploy-preview"] = workflow("deploy-stack")["jobs"]["preview"]
    for job in (jobs["preview"], jobs["drift"], jobs["deploy-preview"]):
        auth = next(s for s in job["steps"] if uses(s) == "google-github-actions/auth")
        assert auth["with"]["service_account"] == "${{ env.PREVIEWER }}"
        for stack in STACKS:
            assert resolve(job["env"]["PREVIEWER"], stack) == naming.service_account_email(
                naming.previewer(stack), ops
            )
    image = workflow("deploy")["jobs"]["image"]
    auth = next(s for s in image["steps"] if uses(s) == "google-github-actions/auth")
    assert resolve(auth["with"]["service_account"], "dev") == naming.service_account_email(
        naming.PUBLISHER, ops
    )
    for env in (image["env"], jobs["preview"]["env"]):
        assert resolve(env["IMAGE_REPOSITORY"], "dev") == naming.image_repository(ops, region)


# --- dependency updates --------------------------------------------------------------------


def test_renovate_updates_actions_the_base_image_digest_and_the_python_pins() -> None:
    config = json.loads((GITHUB / "renovate.json").read_text())
    assert set(config["enabledManagers"]) == {"github-actions", "dockerfile", "pip_requirements"}
    patterns = [re.compile(p.strip("/")) for p in config["pip_requirements"]["managerFilePatterns"]]
    pinned = [p for p in REPO_ROOT.glob("requirements/*.txt")] + [
        REPO_ROOT / "platform/policy/requirements.in"
    ]
    for path in pinned:
        assert any(p.search(str(path.relative_to(REPO_ROOT))) for p in patterns), path
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    # Renovate resolves FROM ${BASE_IMAGE} through this ARG and bumps the digest in place.
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim@sha256:[0-9a-f]{64}$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{BASE_IMAGE\} AS base$", dockerfile, re.M)


# --- the deploy job's scripts, run as the runner runs them (bash -e), against stand-in CLIs -------


def run_step(script: str, tmp_path: Path, fakes: dict[str, str], env: dict[str, str]) -> tuple[int, str]:
    """Run one step's script with stand-in commands first on PATH; returns (status, GITHUB_OUTPUT)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in fakes.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    output = tmp_path / "github_output"
    output.write_text("")
    result = subprocess.run(  # noqa: S603 - the workflow's own step script
        ["bash", "-e", "-c", script],  # noqa: S607
        cwd=tmp_path,
        env={**os.environ, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GITHUB_OUTPUT": str(output)},
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, output.read_text()


@pytest.mark.parametrize(
    ("pulumi", "status", "output"),
    [
        ('echo \'{"image": "r/flight-api@sha256:1"}\'', 0, "image=r/flight-api@sha256:1\n"),
        ("echo '{}'", 0, "image=\n"),  # never deployed: nothing to roll back to, said in a warning
        ("echo 'error: failed to load checkpoint: 403 Forbidden' >&2; exit 255", 255, ""),
    ],
)
def test_reading_the_previous_image_fails_loudly(
    tmp_path: Path, pulumi: str, status: int, output: str
) -> None:
    job = deploy_job()
    script = job["steps"][step_index(job, "previous")]["run"]
    assert run_step(script, tmp_path, {"pulumi": pulumi}, {"STACK": "prod"}) == (status, output)


@pytest.mark.parametrize(
    ("gh", "status"),
    [
        ('[ "$*" = "api repos/o/r/git/ref/heads/main --jq .object.sha" ] && echo abc123', 0),
        ('[ "$*" = "api repos/o/r/git/ref/heads/main --jq .object.sha" ] && echo def456', 1),
        ("echo 'HTTP 502: Bad Gateway' >&2; exit 1", 1),  # no answer is no permission to deploy
    ],
)
def test_a_run_that_is_not_the_branch_head_stops_before_deploying(
    tmp_path: Path, gh: str, status: int
) -> None:
    job = deploy_job()
    (check,) = [s for s in job["steps"] if "git/ref/" in s.get("run", "")]
    env = {"GITHUB_REPOSITORY": "o/r", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "abc123"}
    assert run_step(check["run"], tmp_path, {"gh": gh}, env)[0] == status


@pytest.mark.parametrize(
    ("history", "status"),
    [
        ('[{"message": "prod <- IMG", "result": "succeeded"}]', 0),
        ('[{"message": "prod <- IMG", "result": "failed"}]', 1),  # never ran: its update failed
        ('[{"message": "staging <- IMG", "result": "succeeded"}]', 1),  # another stack's history
        ("[]", 1),
    ],
)
def test_a_rollback_takes_only_a_digest_this_stack_ran(tmp_path: Path, history: str, status: int) -> None:
    preview = workflow("deploy-stack")["jobs"]["preview"]
    (check,) = [s for s in preview["steps"] if "pulumi stack history" in s.get("run", "")]
    image = "europe-west1-docker.pkg.dev/ops/airline/flight-api@sha256:" + "a" * 64
    pulumi = f"echo '{history.replace('IMG', image)}'"
    assert (
        run_step(check["run"], tmp_path, {"pulumi": pulumi}, {"STACK": "prod", "IMAGE": image})[0] == status
    )
    # An image that is not an Artifact Registry digest is refused before any lookup.
    assert (
        run_step(check["run"], tmp_path, {"pulumi": "exit 0"}, {"STACK": "prod", "IMAGE": "x:latest"})[0] == 1
    )


@pytest.mark.parametrize(
    ("refresh", "auth", "says"),
    [
        ("failure", "success", "the cloud\ndiffers from the Pulumi state"),
        ("skipped", "failure", "could not run (authentication: failure; refresh: skipped)"),
    ],
)
def test_drift_files_an_issue_for_drift_and_for_its_own_failure(
    tmp_path: Path, refresh: str, auth: str, says: str
) -> None:
    job = workflow("drift")["jobs"]["refresh"]
    (report,) = [s for s in job["steps"] if "gh issue create" in s.get("run", "")]
    calls = tmp_path / "gh-calls"
    # No open drift issue and no label yet: the label and a new issue are created.
    gh = f'echo "$*" >> {calls}'
    env = {"STACK": "prod", "REFRESH": refresh, "AUTH": auth, "RUN_URL": "https://run"}
    assert run_step(report["run"], tmp_path, {"gh": gh}, env)[0] == 0
    made = calls.read_text().splitlines()
    assert made[-1] == "issue create --title Drift in the prod stack --label drift --body-file body.md"
    assert "label create drift --color B60205 --description The cloud differs from Pulumi state" in made
    assert says in (tmp_path / "body.md").read_text()
