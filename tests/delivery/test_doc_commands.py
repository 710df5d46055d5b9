"""Every `gcloud`, `bq` and `pulumi` command in the docs works as pasted, for every stack.

A responder pastes these at 3 a.m. Each command is taken from the Markdown (fenced shell blocks
and inline code), its shell variables expanded for each stack, and then:

- `gcloud` parses it for real: with an empty `CLOUDSDK_CONFIG` and prompts off, a wrong flag or
  value answers "unrecognized arguments" (or names the argument), a right one reaches "You do not
  currently have an active account" - gcloud parses before it looks for credentials.
- `bq` parses its flags only once it has a token: with `CLOUDSDK_AUTH_ACCESS_TOKEN` a dummy and
  `https_proxy` a closed port on 127.0.0.1, a wrong flag answers "Flags parsing error" and a right
  one fails to reach the server.
- `pulumi` (its CLI cannot be installed here) is checked against the subcommands and flags of
  Pulumi's CLI reference, https://www.pulumi.com/docs/iac/cli/commands/ (one page per command).
- Resource names must be the ones the plan creates for the stack, and runbooks may only use
  Pulumi commands that compare with the cloud (`pulumi refresh --preview-only`, `pulumi up --refresh`):
  `pulumi preview` and a plain `pulumi up` compare with the saved state.

Skipped, with the reason, only where `gcloud` or `bq` is not installed (CI machines have both).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from airline_platform.plan import STACKS, Plan, render, stack_config

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted(
    [REPO_ROOT / "README.md", REPO_ROOT / "platform" / "README.md", *(REPO_ROOT / "docs").rglob("*.md")]
)
CLIS = ("gcloud", "bq", "pulumi")
SHELL_FENCES = ("", "bash", "sh", "shell", "console")
FENCE = re.compile(r"^[ \t]*```([\w-]*)[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)
INLINE = re.compile(r"`([^`]+?)`")  # may wrap onto the next line of its paragraph
START = re.compile(r"(?:^|(?<=[\s|;&(]))(gcloud|bq|pulumi)(?=\s)")
# `<revision>`-style placeholders a responder fills in; `<n>` is a number.
PLACEHOLDER = re.compile(r"<([a-z][a-z0-9 _-]*)>")
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")

# https://www.pulumi.com/docs/iac/cli/commands/ (pulumi_up, pulumi_preview, pulumi_refresh, ...).
PULUMI_GLOBAL_FLAGS = {"--stack", "-s", "--cwd", "-C", "--non-interactive", "--color", "--help", "-h"}
PULUMI_UPDATE_FLAGS = {"--diff", "--policy-pack", "--message", "-m", "--expect-no-changes", "--json", "-j"}
PULUMI_COMMANDS: dict[tuple[str, ...], set[str]] = {
    ("up",): PULUMI_UPDATE_FLAGS | {"--refresh", "-r", "--plan", "--yes", "-y", "--skip-preview", "-f"},
    ("preview",): PULUMI_UPDATE_FLAGS | {"--refresh", "-r", "--save-plan"},
    ("refresh",): PULUMI_UPDATE_FLAGS | {"--preview-only", "--yes", "-y", "--skip-preview", "-f"},
    ("destroy",): {"--yes", "-y", "--skip-preview", "-f", "--message", "-m"},
    ("cancel",): {"--yes", "-y"},
    ("login",): {"--local", "-l", "--cloud-url", "-c"},
    ("config", "set"): {"--secret", "--plaintext", "--path"},
    ("config", "get"): {"--json", "-j", "--path"},
    ("stack", "select"): {"--create", "-c", "--secrets-provider"},
    ("stack", "init"): {"--secrets-provider", "--copy-config-from"},
    ("stack", "output"): {"--json", "-j", "--show-secrets", "--shell"},
    ("stack", "export"): {"--file", "--show-secrets", "--version"},
    ("stack", "import"): {"--file", "--force"},
    ("stack", "history"): {"--json", "-j", "--show-secrets", "--page", "--page-size"},
    ("import",): {
        "--yes",
        "-y",
        "--skip-preview",
        "--file",
        "-f",
        "--protect",
        "--parent",
        "--provider",
        "--out",
        "-o",
    },
    ("state", "delete"): {"--force", "--yes", "-y", "--target-dependents"},
}
# Runbooks repair a cloud that may have drifted: only commands that compare with it.
RUNBOOK_PULUMI = {("refresh", "--preview-only"), ("up", "--refresh")}

GCLOUD_PARSED = (
    "You do not currently have an active account",
    "The required property [project] is not currently set",
    "component manager is disabled",  # a system package's gcloud: `components` parsed, then refused
    "Go to the following link in your browser",  # an interactive login, parsed, waits for the user
)
GCLOUD_REFUSED = ("unrecognized arguments", "Invalid choice", "argument ", "is not an integer", "must be")
BQ_PARSED = ("Cannot contact server", "ProxyConnectionError", "Connection refused")
BQ_REFUSED = ("Flags parsing error", "Unknown command", "Too many positional", "Invalid")


@dataclass(frozen=True)
class Command:
    doc: str
    text: str

    @property
    def cli(self) -> str:
        return self.text.split()[0]

    def argv(self, variables: dict[str, str]) -> list[str]:
        """The words the shell would pass, for one stack; command substitutions stand for one word."""
        text = PLACEHOLDER.sub(
            lambda m: "2" if m[1] == "n" else f"placeholder-{m[1].replace(' ', '-')}", self.text
        )
        # The shell expands `$VAR` and `$(...)` outside single quotes only.
        parts = re.split(r"('[^']*')", text)
        parts[::2] = [
            VARIABLE.sub(lambda m: variables.get(m[1], "x"), _substitutions_replaced(p)) for p in parts[::2]
        ]
        return shlex.split("".join(parts).replace("…", "x"))


def _substitutions_replaced(text: str) -> str:
    """Each `$(...)` (whose own CLI commands are extracted separately) becomes one plain word."""
    while (start := text.find("$(")) >= 0:
        depth, end = 0, start + 1
        for end in range(start + 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        text = text[:start] + "substituted" + text[end + 1 :]
    return text


def command_at(text: str, start: int) -> str:
    """The command starting at `start`: up to an unquoted newline, pipe, list operator, redirect or `)`."""
    quote, depth, i = "", 0, start
    while i < len(text):
        char, ahead = text[i], text[i + 1 : i + 2]
        if char == "\\" and ahead == "\n":
            i += 2
            continue
        if quote:
            if char == quote:
                quote = ""
            elif quote == '"' and char == "$" and ahead == "(":
                depth += 1
            elif quote == '"' and char == ")" and depth:
                depth -= 1
        elif char in "'\"":
            quote = char
        elif char == "$" and ahead == "(":
            depth, i = depth + 1, i + 1
        elif char == ")" and depth:
            depth -= 1
        elif char in "\n|;&>)#" and not depth:
            break
        i += 1
    return text[start:i].replace("\\\n", " ").strip()


def commands_in(path: Path) -> Iterator[Command]:
    text = path.read_text()
    spans = [block for lang, block in FENCE.findall(text) if lang in SHELL_FENCES]
    spans += [span.replace("\n", " ") for span in INLINE.findall(FENCE.sub("", text)) if "\n\n" not in span]
    for span in spans:
        protected = PLACEHOLDER.sub(lambda m: m[0].replace(">", "\0"), span)  # `<n>` is no redirect
        for match in START.finditer(protected):
            yield Command(
                str(path.relative_to(REPO_ROOT)), command_at(protected, match.start()).replace("\0", ">")
            )


ALL = sorted({c for path in DOCS for c in commands_in(path)}, key=lambda c: (c.doc, c.text))


def variables(stack: str) -> dict[str, str]:
    config = stack_config(stack)
    return {"PROJECT": config["gcp:project"], "REGION": config["gcp:region"], "STACK": stack}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_cli(argv: list[str], home: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "CLOUDSDK_CONFIG": home,
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_AUTH_ACCESS_TOKEN": "dummy-token",
        "https_proxy": f"http://127.0.0.1:{closed_port()}",
        "HTTPS_PROXY": f"http://127.0.0.1:{closed_port()}",
        "no_proxy": "",
    }
    if argv[0] == "gcloud":
        del env["CLOUDSDK_AUTH_ACCESS_TOKEN"]  # gcloud must stop at "no active account"
    result = subprocess.run(  # noqa: S603 - argv comes from this repository's docs
        argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180, check=False
    )
    return result.stdout + result.stderr


def verdict(argv: list[str], output: str) -> str:
    """'parsed', 'refused' or 'unknown' from what the real CLI answered."""
    parsed, refused = (GCLOUD_PARSED, GCLOUD_REFUSED) if argv[0] == "gcloud" else (BQ_PARSED, BQ_REFUSED)
    output = " ".join(output.split())  # the CLIs wrap their messages
    if any(marker in output for marker in refused):
        return "refused"
    if any(marker in output for marker in parsed):
        return "parsed"
    return "unknown"


@cache
def cli_answers() -> dict[tuple[str, ...], str]:
    """Each distinct gcloud/bq argv (dev's values) and what the CLI answered, run a few at a time."""
    argvs = sorted({tuple(c.argv(variables("dev"))) for c in ALL if c.cli in ("gcloud", "bq")})
    with tempfile.TemporaryDirectory() as home, ThreadPoolExecutor(4) as pool:
        return dict(zip(argvs, pool.map(lambda argv: run_cli(list(argv), home), argvs), strict=True))


def needs_clis() -> None:
    missing = [cli for cli in ("gcloud", "bq") if shutil.which(cli) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: the docs' commands cannot be parsed here")


def test_the_docs_hold_commands_of_every_cli() -> None:
    found = {c.cli for c in ALL}
    assert found == set(CLIS), found
    assert len(ALL) > 40


@pytest.mark.cli
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["gcloud", "pubsub", "subscriptions", "ack", "s", "--ack-ids", "a", "b"], "refused"),
        (["gcloud", "pubsub", "subscriptions", "ack", "s", "--ack-ids=a,b"], "parsed"),
        (["bq", "ls", "-j", "--all-the-jobs", "--project_id", "p"], "refused"),
        (["bq", "ls", "-j", "-a", "--project_id", "p"], "parsed"),
    ],
)
def test_the_check_tells_a_wrong_flag_from_a_right_one(argv: list[str], expected: str) -> None:
    needs_clis()
    with tempfile.TemporaryDirectory() as home:
        output = run_cli(argv, home)
    assert verdict(argv, output) == expected, output


@pytest.mark.cli
@pytest.mark.timeout(1200)  # ~45 CLI starts; bq waits for its refused connection
def test_every_gcloud_and_bq_command_parses() -> None:
    needs_clis()
    failures = [
        f"{argv}: {verdict(list(argv), output)}\n{output.strip()[-600:]}"
        for argv, output in cli_answers().items()
        if verdict(list(argv), output) != "parsed"
    ]
    assert not failures, "\n\n".join(failures)


def pulumi_problems(argv: list[str]) -> list[str]:
    words, path = argv[1:], ()
    while words and any(known[: len(path) + 1] == (*path, words[0]) for known in PULUMI_COMMANDS):
        path, words = (*path, words[0]), words[1:]
    if path not in PULUMI_COMMANDS:
        return [f"`pulumi {' '.join(argv[1:3])}` is not a command of Pulumi's CLI reference"]
    allowed = PULUMI_COMMANDS[path] | PULUMI_GLOBAL_FLAGS
    return [
        f"`pulumi {' '.join(path)}` has no flag {w}"
        for w in words
        if w.startswith("-") and w.split("=")[0] not in allowed
    ]


@pytest.mark.parametrize("command", [c for c in ALL if c.cli == "pulumi"], ids=lambda c: f"{c.doc}:{c.text}")
def test_pulumi_commands_exist_with_their_flags(command: Command) -> None:
    argv = command.argv(variables("dev"))
    assert not pulumi_problems(argv)
    if command.doc.startswith("docs/runbooks/"):
        assert any(argv[1] == verb and flag in argv for verb, flag in RUNBOOK_PULUMI), (
            f"{command.text}: a runbook finds drift with `pulumi refresh --preview-only` and repairs it with "
            "`pulumi up --refresh` (preview and up compare with the saved state, not the cloud)"
        )


def test_the_pulumi_check_refuses_what_the_cli_would() -> None:
    assert pulumi_problems(["pulumi", "up", "--refresh", "--stack", "dev"]) == []
    assert pulumi_problems(["pulumi", "refresh", "--preview-only"]) == []
    assert pulumi_problems(["pulumi", "refresh", "--dry-run"]) == ["`pulumi refresh` has no flag --dry-run"]
    assert pulumi_problems(["pulumi", "drift"]) == [
        "`pulumi drift` is not a command of Pulumi's CLI reference"
    ]


def test_bq_lists_every_users_jobs() -> None:
    """`bq ls -j` lists the caller's own jobs; the API's run as its service account: `-a` lists all."""
    for command in ALL:
        argv = command.argv(variables("dev"))
        if argv[:2] == ["bq", "ls"] and "-j" in argv:
            assert "-a" in argv, command


@cache
def plan_names(stack: str) -> dict[str, set[str]]:
    plan: Plan = render(stack)

    def names(type_: str, key: str) -> set[str]:
        return {r["inputs"][key] for r in plan.resources if r["type"] == type_}

    return {
        "service": names("gcp:cloudrunv2/service:Service", "name"),
        "topic": names("gcp:pubsub/topic:Topic", "name"),
        "subscription": names("gcp:pubsub/subscription:Subscription", "name"),
        "dataset": names("gcp:bigquery/dataset:Dataset", "datasetId"),
        "table": names("gcp:bigquery/table:Table", "tableId"),
    }


def named_resources(argv: list[str]) -> Iterator[tuple[str, str]]:
    """(kind, name) for each resource a gcloud/bq command names, where its position says the kind."""
    if argv[:3] in (["gcloud", "run", "services"], ["gcloud", "pubsub", "topics"]) and len(argv) > 4:
        yield ("service" if argv[1] == "run" else "topic"), argv[4]
    if argv[:3] == ["gcloud", "pubsub", "subscriptions"] and len(argv) > 4 and argv[3] != "create":
        yield "subscription", argv[4]
    for flag, kind in (("--service", "service"), ("--subscription", "subscription")):
        if flag in argv:
            yield kind, argv[argv.index(flag) + 1]
    for word in argv:
        for service in re.findall(r'service_name="([^"]+)"', word):
            yield "service", service
        if argv[0] == "bq" and (ref := re.fullmatch(r"([a-z0-9-]+):(\w+)(?:\.(\w+))?(@-?\d+)?", word)):
            yield "project", ref[1]
            yield "dataset", ref[2]
            if ref[3] and not ref[3].endswith("_restored"):  # the restore copies to a new table first
                yield "table", ref[3]


@pytest.mark.parametrize("stack", STACKS)
def test_resource_names_are_the_ones_the_plan_creates(stack: str) -> None:
    known = plan_names(stack) | {"project": {stack_config(stack)["gcp:project"]}}
    wrong = [
        f"{command.doc}: {kind} {name!r} ({command.text})"
        for command in ALL
        for kind, name in named_resources(command.argv(variables(stack)))
        if name not in known[kind]
    ]
    assert not wrong, "\n".join(wrong)
    checked = [r for c in ALL for r in named_resources(c.argv(variables(stack)))]
    assert {kind for kind, _ in checked} == set(known)
