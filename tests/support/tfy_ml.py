"""TrueFoundry's own ML client (`truefoundry` 0.17.5) in a virtual environment of its own.

It cannot share the project's: it pins python-dateutil<3 and rich<14, while the operator ships
kubernetes 37.0.2 (python-dateutil>=3) and lints with import-linter 2.17 (rich>=14). So it is
installed, exactly as `tests/contract/tfy_ml/requirements.lock` says (hashes, no resolution), into
`~/.cache/pai-operator/tfy-ml-<lock digest>` on first use (`make tfy-ml-venv` does it ahead), and
driven as a subprocess (`tests/contract/tfy_ml/driver.py`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK = REPO_ROOT / "tests" / "contract" / "tfy_ml" / "requirements.lock"
DRIVER = REPO_ROOT / "tests" / "contract" / "tfy_ml" / "driver.py"
CACHE = Path(os.environ.get("PAI_OPERATOR_CACHE", Path.home() / ".cache" / "pai-operator"))


def tfy_ml_python() -> Path:
    """The venv's interpreter, built once per lock (a file lock keeps parallel builds apart)."""
    override = os.environ.get("TFY_ML_PYTHON")
    if override:
        return Path(override)
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]
    venv = CACHE / f"tfy-ml-{digest}"
    python = venv / "bin" / "python"
    done = venv / ".complete"
    if done.exists():
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"tfy-ml-{digest}.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not done.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*install, "--require-hashes", "--no-deps", "-r", str(LOCK)], check=True)
            done.touch()
    return python


def run_driver(host: str, api_key: str, action: dict[str, Any], *, timeout: float = 120) -> dict[str, Any]:
    """One driver action against `host`; its JSON result. Raises with the driver's output on failure."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "TFY_HOST": host,
        "TFY_API_KEY": api_key,
        "PYTHONUNBUFFERED": "1",
    }
    done = subprocess.run(
        [str(tfy_ml_python()), str(DRIVER), json.dumps(action)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"truefoundry driver failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
