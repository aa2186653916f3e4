#!/usr/bin/env python3
"""Write the CRDs of every registered resource (operator/pai_operator/registry.py), generated from
each registry's spec module (operator/pai_operator/pai/spec.py,
operator/pai_operator/truefoundry/spec.py).

Outputs (never edit them by hand; tests/unit/test_crd.py checks they are fresh):
    crds/pai.mlops.dev_modelversions.yaml
    crds/truefoundry.mlops.dev_modelversions.yaml
    charts/pai-operator/crds/ (the same two files)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "operator"))

from pai_operator.crd import RESOURCES, render_crd_yaml  # noqa: E402

DIRECTORIES = (ROOT / "crds", ROOT / "charts" / "pai-operator" / "crds")


def main() -> None:
    for resource in RESOURCES:
        text = render_crd_yaml(resource)
        for directory in DIRECTORIES:
            target = directory / resource.crd_filename
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() and target.read_text(encoding="utf-8") == text:
                continue
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
