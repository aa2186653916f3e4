#!/usr/bin/env python3
"""Write the ModelVersion CRD generated from operator/pai_operator/spec.py.

Outputs (never edit them by hand; tests/unit/test_crd.py checks they are fresh):
    crds/pai.mlops.dev_modelversions.yaml
    charts/pai-operator/crds/pai.mlops.dev_modelversions.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "operator"))

from pai_operator.crd import CRD_FILENAME, render_crd_yaml  # noqa: E402

TARGETS = (ROOT / "crds" / CRD_FILENAME, ROOT / "charts" / "pai-operator" / "crds" / CRD_FILENAME)


def main() -> None:
    text = render_crd_yaml()
    for target in TARGETS:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
