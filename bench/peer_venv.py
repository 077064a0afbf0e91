"""A peer tool in its own virtualenv beside the bench (never in the project's): created on first
use, reinstalled when the pinned version differs."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path


def ensure_peer(venv: Path, package: str, version: str) -> Path:
    """The venv's bin/ folder, with `package==version` installed."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} (Python {platform.python_version()})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0 or probe.stdout.strip() != version:
        print(f"installing {package}=={version} into {venv} (a few minutes)", flush=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"{package}=={version}"], check=True
        )
    return venv / "bin"
