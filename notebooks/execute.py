"""Run the walkthrough notebook top to bottom and keep its outputs: `make notebook`, and its test.

The kernel is this interpreter's own ipykernel (the project's virtual environment) whatever
kernels the machine has installed, because the notebook imports the project. Cells run with the
caller's environment (`WALKTHROUGH_FAST=1` for the fast mode). A failing cell raises
`nbclient.exceptions.CellExecutionError`, and `make notebook` then keeps the stored copy as it was.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from nbclient import NotebookClient

WALKTHROUGH = Path(__file__).resolve().with_name("walkthrough.ipynb")


def execute(
    path: Path = WALKTHROUGH, *, env: Mapping[str, str] | None = None, cell_timeout: int = 900
) -> nbformat.NotebookNode:
    """The notebook at `path`, executed in a fresh kernel whose working directory is the notebook's."""
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    sockets = Path(jupyter_runtime_dir())
    sockets.mkdir(parents=True, exist_ok=True)
    kernel = AsyncKernelManager(
        kernel_name="python3",
        # No kernel directories: only the native kernel, i.e. this interpreter's ipykernel.
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[]),
        # Unix sockets, not TCP ports on the loopback; an absolute path, as the kernel's cwd differs.
        transport="ipc",
        ip=str(sockets / f"walkthrough-{uuid.uuid4().hex[:12]}"),
    )
    client = NotebookClient(
        notebook,
        km=kernel,
        timeout=cell_timeout,
        record_timing=False,  # no per-cell timestamps: they would change the stored file on every run
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(cleanup_kc=True, env=dict(os.environ if env is None else env))
    return notebook


def main() -> int:
    notebook = execute()
    nbformat.write(notebook, WALKTHROUGH)
    print(f"executed and stored {WALKTHROUGH.name} with its outputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
