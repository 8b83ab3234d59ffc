from __future__ import annotations

from pathlib import Path

import pytest
from helpers import plan_table, recipe_row

from generator.errors import UsageError
from generator.spec import Answers, load_answers_file, make_answers, package_name, resolve
from generator.train.families import Kind


@pytest.mark.parametrize(
    ("name", "package"),
    [
        ("my_classifier", "my_classifier"),
        ("My Classifier!", "my_classifier"),
        ("3d-parts", "model_3d_parts"),
        ("class", "class_model"),
        ("json", "json_model"),  # the standard library's
        ("Test", "test_model"),
        ("tests", "tests_model"),  # the generated project's tests folder
        ("NumPy", "numpy_model"),  # a dependency: pip could not install numpy depending on numpy
        ("onnxruntime-gpu", "onnxruntime_gpu_model"),
        ("Ünïcode x", "n_code_x"),
    ],
)
def test_package_name(name: str, package: str) -> None:
    assert package_name(name) == package


def test_package_name_needs_letters_and_fits_a_file_name() -> None:
    with pytest.raises(UsageError, match="--name"):
        package_name("---")
    assert package_name("y" * 100) == "y" * 100
    with pytest.raises(UsageError, match="package name of 260 characters: pass a --name of at"):
        package_name("y" * 260)


def test_defaults_are_valid() -> None:
    assert make_answers({}) == Answers()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"scenario": "wrap-model"}, "unknown scenario 'wrap-model'"),
        ({"scenario": "nonsense"}, "unknown scenario"),
        ({"compute": "ray"}, "unknown compute target 'ray'"),
        ({"compute": "tpu"}, "unknown compute"),
        ({"time_budget": 3}, "too short"),
        ({"time_budget": "soon"}, "whole numbers"),
    ],
)
def test_bad_answers_name_the_fix(values: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        make_answers(values)


def test_answers_file_accepts_a_modelgen_toml(tmp_path: Path) -> None:
    path = tmp_path / "modelgen.toml"
    path.write_text('[answers]\nname = "parts"\ntime_budget = 60\n\n[data]\nfingerprint = "x"\n')
    assert load_answers_file(path) == {"name": "parts", "time_budget": 60}


def test_answers_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "answers.toml"
    bad.write_text("name = [unclosed\n")
    with pytest.raises(UsageError, match="answers.toml.*not valid TOML"):
        load_answers_file(bad)
    bad.write_text('nmae = "typo"\n')
    with pytest.raises(UsageError, match="unknown keys nmae"):
        load_answers_file(bad)
    with pytest.raises(UsageError, match="does not exist"):
        load_answers_file(tmp_path / "missing.toml")


def test_resolve_paths(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    spec = resolve(make_answers({"data": "photos", "name": "Parts"}), cwd=tmp_path)
    assert spec.data_path == tmp_path / "photos"
    assert spec.output_path == tmp_path / "Parts"
    assert spec.package == "parts"
    sample = resolve(make_answers({}), cwd=tmp_path)
    assert sample.uses_sample and (sample.data_path / "sneaker").is_dir()


def test_the_data_path_is_checked_in_one_place_the_doctor(tmp_path: Path) -> None:
    from generator.data import check_and_split
    from generator.errors import DataError

    for data, message in (
        ("nowhere", "does not exist"),
        ("list.txt", "is a file modelgen cannot read as a source"),
    ):
        (tmp_path / "list.txt").write_text("x")
        spec = resolve(make_answers({"data": data}), cwd=tmp_path)  # paths only: no checks
        with pytest.raises(DataError, match=message):
            check_and_split(spec.source, seed=0)


def test_a_replayed_plan_is_read_and_a_broken_one_named(tmp_path: Path) -> None:
    from generator.pipeline import replay_plan

    table = plan_table(recipe_row("small-cnn", [5, 4]), shipped=[0], refit=[5])
    spec = resolve(make_answers({}), cwd=tmp_path, replay_plan=table)
    plan = replay_plan(spec)
    assert plan is not None and plan.names(Kind.CNN) == ["small-cnn"]
    broken_row = recipe_row("small-cnn", [5, 4])
    del broken_row["family"]
    broken_table = plan_table(broken_row, shipped=[0], refit=[5])
    broken = resolve(make_answers({}), cwd=tmp_path, replay_plan=broken_table)
    with pytest.raises(
        UsageError, match=r"\[model.plan\]\) cannot be replayed: recipe 1 has no 'family'"
    ):
        replay_plan(broken)
    no_recipes = resolve(make_answers({}), cwd=tmp_path, replay_plan={"folds": 2})
    with pytest.raises(UsageError, match="cannot be replayed"):
        replay_plan(no_recipes)
    assert replay_plan(resolve(make_answers({}), cwd=tmp_path)) is None
