"""Regenerate the sample's models, deterministically, with the repository's test model generators.

    python sample_project/tools/make_models.py      (from the repository root, in its dev environment)

The .onnx files are committed, so the sample builds without this script or scikit-learn.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository root, for tests.modelgen

from tests import modelgen  # noqa: E402 -- after the path set-up above

MODELS = HERE.parent / "src/sample_app/models"

if __name__ == "__main__":
    for name, model in (
        ("image_classifier.onnx", modelgen.cnn(channels=(8, 16), size=32, classes=10, seed=0)),
        ("flower_species.onnx", modelgen.sklearn_pipeline(seed=0)),
    ):
        print(modelgen.save(model, MODELS / name))
