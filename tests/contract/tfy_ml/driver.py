"""Runs inside the `truefoundry` venv (tests/support/tfy_ml.py), not the project's: TrueFoundry's
own ML client doing what a data scientist does, against the emulator named by TFY_HOST with the
key in TFY_API_KEY. One action per run, given as a JSON argument; the last stdout line is the
JSON result.

    {"action": "log", "ml_repo", "name", "metadata"?, "description"?, "external_uri"?}
        client.log_model(...): a local folder (staged, uploaded, committed) unless external_uri
        is given (a BlobStorageDirectory: an external source, nothing staged)
    {"action": "update", "fqn", "description"?, "metadata"?, "version_alias"?}
        ModelVersion.from_fqn(fqn), set the fields given, .update()
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any


def _describe(version: Any) -> dict[str, Any]:
    return {
        "fqn": version.fqn,
        "id": str(version._model_version.id),
        "version": version.version,
        "description": version.description,
        "metadata": version.metadata,
        "version_alias": version.version_alias,
    }


def log(args: dict[str, Any]) -> dict[str, Any]:
    from truefoundry.ml import BlobStorageDirectory, get_client

    client = get_client()
    common = {
        "ml_repo": args["ml_repo"],
        "name": args["name"],
        "description": args.get("description"),
        "metadata": args.get("metadata"),
    }
    if args.get("external_uri"):
        version = client.log_model(
            model_file_or_folder=BlobStorageDirectory(uri=args["external_uri"]), **common
        )
        return _describe(version)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "model.joblib").write_bytes(b"not really a model" * 64)
        (Path(folder) / "README.md").write_text("trained by the contract test\n")
        version = client.log_model(model_file_or_folder=folder, **common)
    return _describe(version)


def update(args: dict[str, Any]) -> dict[str, Any]:
    from truefoundry.ml import ModelVersion, get_client

    get_client()  # the session ModelVersion's calls run in
    version = ModelVersion.from_fqn(args["fqn"])
    if "description" in args:
        version.description = args["description"]
    if "metadata" in args:
        version.metadata = args["metadata"]
    if "version_alias" in args:
        version.version_alias = args["version_alias"]
    version.update()
    return _describe(version)


def main() -> int:
    args = json.loads(sys.argv[1])
    result = {"log": log, "update": update}[args["action"]](args)
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
