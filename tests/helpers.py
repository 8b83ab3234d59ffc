"""What the tests share: synthetic images, the golden template context, paths and the
environment for child processes. Fixtures live in conftest.py; everything else here."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import venv
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from generator.context import BudgetSummary, DataSummary, ParitySummary, TemplateContext

REPO = Path(__file__).resolve().parent.parent
SHARED_WEIGHTS = REPO.parent / "shared" / "weights" / "mobilenet_v2_1.0_no_top.h5"
MakeDataset = Callable[..., Path]


def draw_shape(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A coloured shape on a noisy background: easy for a small CNN, no downloads needed."""
    background = rng.integers(0, 90, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    colour = tuple(int(c) for c in rng.integers(150, 256, size=3))
    margin = int(rng.integers(2, size // 5))
    box = (margin, margin, size - margin, size - margin)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon(
            [(size // 2, margin), (margin, size - margin), (size - margin, size - margin)],
            fill=colour,
        )
    return image


def tf_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def modelgen(
    *args: str, cache: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The modelgen command in a process of its own, with a cache of its own (cold unless
    given), no terminal."""
    env = env or tf_env()
    env["MODELGEN_CACHE_DIR"] = str(cache or Path(tempfile.mkdtemp(prefix="e2e-cache-")))
    return subprocess.run(
        [sys.executable, "-m", "generator", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


WINNER_ROW = {
    "candidate": "small-cnn",
    "stage": "final",
    "settings": {"dropout": 0.25, "learning_rate": 0.001},
    "val_accuracy": 0.95,
    "val_loss": 0.2,
    "epochs": 12,
    "seconds": 4.2,
}
SAME_DATA = {
    "images": 60,
    "classes": ["circle", "square", "t-shirt/top"],
    "split": {"train": 40, "validation": 10, "test": 10},
    "test_images": 10,
}
FIRST_GATE = {"status": "no baseline", "reasons": ["the project's first model"]}
ACCEPTED = {
    "status": "accepted",
    "previous_accuracy": 0.95,
    "new_accuracy": 0.9,
    "shared_test_images": 10,
    "accepted_because": "relabelled | cleaned",
}
GOLDEN_CONTEXT = TemplateContext(
    project_name="Shapes demo",
    package="shapes_demo",
    distribution="shapes-demo",
    labels=["circle", "square", "t-shirt/top"],
    input_size=32,
    metrics={
        "accuracy": 0.9,
        "macro_accuracy": 0.8889,
        "log_loss": 0.3012,
        "support": 10,
        "labels": ["circle", "square", "t-shirt/top"],
        "per_class": {
            "circle": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 4},
            "square": {"precision": 0.75, "recall": 1.0, "f1": 0.8571, "support": 3},
            "t-shirt/top": {"precision": 1.0, "recall": 0.6667, "f1": 0.8, "support": 3},
        },
        "confusion_matrix": [[4, 0, 0], [0, 3, 0], [0, 1, 2]],
        "top_k_accuracy": {"top_2": 1.0},
    },
    winner={
        "candidate": "small-cnn",
        "description": "small CNN trained from scratch",
        "stage": "refit on train + validation",
    },
    leaderboard=[WINNER_ROW],
    finals=[WINNER_ROW],
    trials=5,
    selection=(
        "scored by 5-fold cross-validation over the 40 + 10 train and validation images "
        "(accuracy and log-loss of each image's out-of-fold prediction)"
    ),
    top_losses=[
        {
            "image": "reports/top-losses/01-0123456789ab.png",
            "source": "t-shirt/top/img7.png",
            "label": "t-shirt/top",
            "predicted": "square",
            "confidence": 0.81,
            "label_probability": 0.1,
        }
    ],
    budget=BudgetSummary(seconds=300, used=41, cut=False),
    skipped=[("mobilenet_v2-frozen", "pretrained weights turned off (--weights none)")],
    parity=ParitySummary(max_abs_diff=3.1e-7, top1_agreement=1.0),
    data=DataSummary(
        images=60,
        train=40,
        validation=10,
        test=10,
        skipped=1,
        source="folder",
        counts={"circle": 20, "square": 20, "t-shirt/top": 20},
    ),
    seed=42,
    history=[
        SAME_DATA | {"version": 1, "how": "new", "test_accuracy": 0.8, "gate": FIRST_GATE},
        SAME_DATA | {"version": 2, "how": "retrain", "test_accuracy": 0.9, "gate": ACCEPTED},
    ],
    card={
        "threshold": 0.61,
        "rule": "the lowest top score at which at least 95% of the held-out images were right",
        "held_out": {"images": 50, "answered": 45, "abstain_rate": 0.1, "answered_accuracy": 0.96},
        "test": {
            "images": 10,
            "answered": 9,
            "abstain_rate": 0.1,
            "answered_accuracy": 1.0,
            "answered_accuracy_95": [0.7008, 1.0],
        },
        "probes": [
            {"input": "blank white image", "label": "square", "score": 0.97, "answered": True},
            {"input": "uniform noise", "label": "t-shirt/top", "score": 0.52, "answered": False},
        ],
        "intervals": {
            "accuracy": [0.5958, 0.9821],
            "recall circle": [0.5101, 1.0],
            "recall square": [0.4385, 1.0],
            "recall t-shirt/top": [0.2077, 0.9385],
        },
    },
)


def recipe_row(family: str, epochs: list[int], **settings: object) -> dict[str, object]:
    """One recorded recipe of a [model.plan] table (see generator.train.plan)."""
    kind = "transfer" if family.startswith("mobilenet") else "cnn"
    row: dict[str, object] = {"family": family, "kind": kind, "input_size": 32}
    row |= {"learning_rate": 0.001, "dropout": 0.5, "augment": "none", "l2": 0.0}
    return row | settings | {"fold_epochs": epochs}


def plan_table(
    *recipes: dict[str, object], shipped: list[int], refit: list[int], folds: int = 2
) -> dict[str, object]:
    """A [model.plan] table: a fixed plan, trained in full whatever the machine's speed."""
    protocol = "cross-validation" if folds > 1 else "holdout"
    return {
        "protocol": protocol,
        "folds": folds,
        "recipes": list(recipes),
        "shipped": shipped,
        "refit_epochs": refit,
    }


def assert_generated_tests_pass(project: Path, env_dir: Path) -> None:
    """The project's own tests, the web service's included, in a fresh venv holding only
    what the project asks for (no TensorFlow), against its wheel (not an editable install)."""
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{project}[cpu,serve,test]"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    no_tf = subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True)
    assert no_tf.returncode != 0
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout and "failed" not in run.stdout and "skipped" not in run.stdout
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util as u, sys; print(u.find_spec(sys.argv[1]).origin)",
        ]
        + [next(p.name for p in (project / "src").iterdir() if p.is_dir())],
        capture_output=True,
        text=True,
        cwd=project,
    )
    assert str(env_dir) in where.stdout, where.stdout + where.stderr  # the installed wheel
