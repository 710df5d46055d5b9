"""The image's trimmed runtime imports everything the image ships, serves every route, and installs
nothing the service never uses.

The runtime venv is built as the Dockerfile's builder stage builds /opt/venv (requirements/runtime.txt
without the packages the service never imports, then requirements/prune-runtime.sh), and the code is
the image's: `app/` less what .dockerignore leaves out (the local stand-ins). Every shipped module is
imported from it, the operator's command runs, and the API is started from it as the image's CMD
starts it. A module or route that needed a library the trim left out fails here; a runtime
dependency that no route imports fails here too, unless it is listed below with why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

import httpx
import pytest

from app.contract.examples import EXAMPLE_EVENT
from app.local.processes import free_port
from bench.mix import load_test_event
from bench.runtime_env import REPO_ROOT, build_runtime_venv

pytestmark = pytest.mark.integration

# Installed by runtime.txt but imported by no route, each for a reason that holds outside this test.
NOT_IMPORTED_ON_PURPOSE = {
    "swagger-ui-py": "the API serves its static files (Swagger UI) without importing it",
}
# Serve the app as `python -m app.api` does; on SIGUSR1 write the imported module names to a file.
SERVE_AND_REPORT_IMPORTS = """
import json, runpy, signal, sys
report = sys.argv.pop(1)
def dump(signum, frame):
    with open(report, "w") as f:
        json.dump(sorted(sys.modules), f)
signal.signal(signal.SIGUSR1, dump)
runpy.run_module("app.api", run_name="__main__", alter_sys=True)
"""
# Run by the runtime venv's python: installed distributions none of whose modules were imported.
UNIMPORTED_DISTRIBUTIONS = r"""
import json, re, sys
from importlib.metadata import distributions
imported = set(json.load(open(sys.argv[1])))
unused = []
for dist in distributions():
    modules = set()
    for file in dist.files or []:
        name = re.sub(r"(\.cpython-[^.]*|\.abi3)?\.(py|so)$", "", str(file))
        if name != str(file) and ".dist-info" not in name:
            modules.add(name.replace("/", ".").removesuffix(".__init__"))
    if not modules & imported:
        unused.append(re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower())
print(json.dumps(sorted(unused)))
"""


# Run by the runtime venv's python in the image's tree: import every module of the app package.
IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, app
names = sorted(m.name for m in pkgutil.walk_packages(app.__path__, "app."))
for name in names:
    importlib.import_module(name)
print(json.dumps(names))
"""


@pytest.fixture(scope="module")
def runtime_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_runtime_venv(tmp_path_factory.mktemp("runtime") / "venv")


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the Dockerfile's `COPY app/ ./app/` puts in the image: app/ less .dockerignore's patterns."""
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    tree = tmp_path_factory.mktemp("srv")
    for path in sorted((REPO_ROOT / "app").rglob("*")):
        relative = PurePosixPath(path.relative_to(REPO_ROOT).as_posix())
        ignored = any(fnmatch(str(p), pattern) for p in (relative, *relative.parents) for pattern in patterns)
        if path.is_file() and not ignored:
            (tree / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, tree / relative)
    return tree


def test_every_shipped_module_imports_from_the_trimmed_runtime(
    runtime_python: Path, image_tree: Path
) -> None:
    run = subprocess.run(  # noqa: S603 - fixed argv
        [str(runtime_python), "-c", IMPORT_EVERY_MODULE],
        cwd=image_tree,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(image_tree)},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    modules = json.loads(run.stdout)
    assert {"app.api.main", "app.deadletters.inbox", "app.contract.table_row", "app.gcp_errors"} <= set(
        modules
    )
    assert not [m for m in modules if m.startswith(("app.local", "app.bridge"))], "a local stand-in ships"


def test_the_operators_command_runs_from_the_image(runtime_python: Path, image_tree: Path) -> None:
    run = subprocess.run(  # noqa: S603 - fixed argv
        [str(runtime_python), "-m", "app.deadletters", "--help"],
        cwd=image_tree,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(image_tree)},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "redrive" in run.stdout


@pytest.fixture(scope="module")
def served(
    local_stack, runtime_python: Path, image_tree: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes], Path]]:
    port = free_port()
    report = tmp_path_factory.mktemp("imports") / "modules.json"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(image_tree)} | local_stack.api_env
    # A generous warehouse deadline: this checks what is installed, not how fast a shared machine is.
    env |= {"PORT": str(port), "APP_READ_DEADLINE_SECONDS": "20"}
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [str(runtime_python), "-c", SERVE_AND_REPORT_IMPORTS, str(report)], env=env, cwd=image_tree
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert process.poll() is None, "the API exited at start-up from the trimmed runtime"
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield client, process, report
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_trimmed_runtime_leaves_out_what_the_service_never_imports(runtime_python: Path) -> None:
    for module in ("faker", "polyfactory", "rich", "jinja2", "httpx", "h11", "pyasn1"):
        found = subprocess.run(  # noqa: S603 - fixed argv
            [
                str(runtime_python),
                "-c",
                f"import importlib.util as u; print(u.find_spec({module!r}) is not None)",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert found == "False", f"{module} is in the runtime venv"
    static = next(runtime_python.parent.parent.glob("lib/python3*/site-packages/swagger_ui/static"))
    assert not list(static.glob("swagger-editor*")), "prune-runtime.sh left Swagger Editor in place"


def test_every_route_answers_from_the_trimmed_runtime(served) -> None:
    client, _, _ = served
    assert client.get("/ready").status_code == 200
    published = client.post("/v1/events", json=load_test_event())
    assert published.status_code == 202, published.text
    refused = client.post("/v1/events", json={"carrier": 7})
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")
    day = EXAMPLE_EVENT["event_time"][:10]
    listed = client.get("/v1/flights", params={"from": day, "to": day, "limit": 5})
    assert listed.status_code == 200
    assert client.get(f"/v1/flights/{EXAMPLE_EVENT['event_id']}", params={"on": day}).status_code in (
        200,
        404,
    )
    assert client.get("/v1/flights", params={"limit": 0}).status_code == 400
    assert client.get("/schema/openapi.json").json()["paths"]
    page = client.get("/schema")
    assert page.status_code == 200
    assets = re.findall(r"(?:src|href)=['\"](/schema/assets/[^'\"]+)", page.text)
    assert len(assets) >= 3, page.text
    for asset in assets:
        assert client.get(asset).status_code == 200, f"{asset} is linked by /schema but not served"


def test_every_runtime_dependency_is_imported_by_some_route(served, runtime_python: Path) -> None:
    client, process, report = served
    client.get("/ready")  # the routes above ran already in this module; make sure readiness did too
    process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not report.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    unused = json.loads(
        subprocess.run(  # noqa: S603 - fixed argv
            [str(runtime_python), "-c", UNIMPORTED_DISTRIBUTIONS, str(report)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    unexpected = sorted(set(unused) - NOT_IMPORTED_ON_PURPOSE.keys())
    assert not unexpected, (
        f"installed by requirements/runtime.txt but imported by no route: {unexpected}; leave them out "
        "(Makefile RUNTIME_NEVER_IMPORTED) or list them in NOT_IMPORTED_ON_PURPOSE with the reason"
    )
