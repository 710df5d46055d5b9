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
    assert len(WORKFLOWS) == 5
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
    assert "schemathesis/action" in pins
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
            assert 0 < job["timeout-minutes"] <= 60, f"{path.name}:{name}"


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


# --- preview -------------------------------------------------------------------------------


def test_preview_runs_on_pull_requests_for_every_stack_with_the_policy_pack() -> None:
    preview = workflow("preview")
    assert "pull_request" in preview["on"]
    job = preview["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == STACKS
    assert job["strategy"]["fail-fast"] is False
    (pulumi,) = [s for s in job["steps"] if uses(s) == "pulumi/actions"]
    assert pulumi["with"]["command"] == "preview"
    # Naming the stack keeps one PR comment per stack instead of one overwritten comment.
    assert pulumi["with"]["stack-name"] == "${{ matrix.stack }}"
    assert pulumi["with"]["comment-on-pr"] is True
    assert pulumi["with"]["diff"] is True
    assert pulumi["with"]["policyPacks"] == "platform/policy"
    sets_image = index_of(job["steps"], lambda s: "pulumi config set" in s.get("run", ""))
    assert sets_image < job["steps"].index(pulumi)


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


def test_every_stack_update_is_followed_by_schemathesis_and_the_canary_then_rolls_back_on_failure() -> None:
    job = workflow("deploy-stack")["jobs"]["deploy"]
    job_steps = job["steps"]
    up = index_of(job_steps, lambda s: uses(s) == "pulumi/actions")
    assert job_steps[up]["with"]["command"] == "up"
    assert job_steps[up]["with"]["policyPacks"] == "platform/policy"
    assert job_steps[up]["with"]["stack-name"] == "${{ inputs.stack }}"
    token = index_of(job_steps, lambda s: s.get("with", {}).get("token_format") == "id_token")
    assert job_steps[token]["with"]["id_token_audience"] == "${{ steps.up.outputs.service_url }}"
    assert job_steps[token]["with"]["id_token_include_email"] is True
    fuzz = index_of(job_steps, lambda s: uses(s) == "schemathesis/action")
    fuzz_with = job_steps[fuzz]["with"]
    assert fuzz_with["schema"] == "${{ steps.up.outputs.service_url }}/schema/openapi.json"
    assert fuzz_with["authorization"] == "Bearer ${{ steps.token.outputs.id_token }}"
    assert fuzz_with["version"] == "${{ steps.toolchain.outputs.schemathesis-version }}"
    canary = index_of(job_steps, lambda s: "pytest tests/e2e" in s.get("run", ""))
    assert job_steps[canary]["env"] == {
        "E2E_BASE_URL": "${{ steps.up.outputs.service_url }}",
        "E2E_ID_TOKEN": "${{ steps.token.outputs.id_token }}",
    }
    assert "E2E_PROJECT=" in job_steps[canary]["run"]
    rollback = index_of(job_steps, lambda s: "failure()" in str(s.get("if", "")))
    assert 'image "$PREVIOUS"' in job_steps[rollback]["run"]
    assert "pulumi up" in job_steps[rollback]["run"]
    previous = index_of(job_steps, lambda s: s.get("id") == "previous")
    assert previous < up < token < fuzz < canary < rollback == len(job_steps) - 2


def test_each_stack_is_an_environment_updated_one_run_at_a_time() -> None:
    job = workflow("deploy-stack")["jobs"]["deploy"]
    # GitHub environments dev, staging, prod: prod's required reviewers gate the prod job.
    assert job["environment"]["name"] == "${{ inputs.stack }}"
    assert job["concurrency"] == {"group": "pulumi-${{ inputs.stack }}", "cancel-in-progress": False}
    assert workflow("deploy")["jobs"]["prod"]["with"]["stack"] == "prod"


def test_the_schemathesis_and_pulumi_versions_are_the_pinned_ones(tmp_path: Path) -> None:
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
    pinned = {name: re.search(rf"^{name}==(\S+)", dev, re.M)[1] for name in ("pulumi", "schemathesis")}  # type: ignore[index]
    assert dict(line.split("=", 1) for line in output.read_text().split()) == pinned
    (cli,) = [s for s in action["runs"]["steps"] if uses(s) == "pulumi/actions"]
    assert cli["with"]["pulumi-version"] == "${{ steps.pins.outputs.pulumi }}"
    assert action["outputs"]["schemathesis-version"]["value"] == "${{ steps.pins.outputs.schemathesis }}"


# --- drift ---------------------------------------------------------------------------------


def test_drift_refreshes_every_stack_on_a_schedule_and_files_an_issue() -> None:
    drift = workflow("drift")
    assert drift["on"]["schedule"]
    job = drift["jobs"]["refresh"]
    assert job["strategy"]["matrix"]["stack"] == STACKS
    assert job["permissions"]["issues"] == "write"
    (refresh,) = [s for s in job["steps"] if s.get("id") == "refresh"]
    for flag in ("pulumi refresh", "--preview-only", "--expect-no-changes"):
        assert flag in refresh["run"]
    (report,) = [s for s in job["steps"] if "gh issue create" in s.get("run", "")]
    assert "failure()" in report["if"]
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
    for job in (jobs["preview"], jobs["drift"]):
        auth = next(s for s in job["steps"] if uses(s) == "google-github-actions/auth")
        assert resolve(auth["with"]["service_account"], "dev") == naming.service_account_email(
            naming.PREVIEWER, ops
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
