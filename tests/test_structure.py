"""The package's shape, checked: imports run one way, files stay small, entry points say
what they do."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import black
import pytest
from helpers import REPO

PACKAGE = REPO / "generator"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> Iterator[str]:
    """Every modelgen module `name` imports, at module level or inside a function."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target in MODULES:
                yield target


GRAPH = {name: set(imports(name)) - {name} for name in MODULES}


def test_the_data_package_imports_no_training_cli_or_pipeline() -> None:
    banned = ("generator.train", "generator.cli", "generator.console", "generator.pipeline")
    for name, targets in GRAPH.items():
        if name.startswith("generator.data"):
            assert not [t for t in targets if t.startswith(banned)], name


def test_no_stage_imports_the_cli() -> None:
    for name, targets in GRAPH.items():
        if not name.startswith("generator.cli") and name != "generator.__main__":
            assert not targets & {"generator.cli", "generator.console"}, name


def test_no_import_cycle() -> None:
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(GRAPH[name]):
            if state.get(target) == "open":
                pytest.fail("import cycle: " + " -> ".join([*trail, name, target]))
            if target not in state:
                visit(target, [*trail, name])
        state[name] = "done"

    for name in sorted(MODULES):
        if name not in state:
            visit(name, [])


def test_rendering_imports_no_tensorflow() -> None:
    code = (
        "import sys, generator.render, generator.project, generator.data\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_no_module_is_over_400_lines() -> None:
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert {n: lines for n, lines in long.items() if lines > MAX_LINES} == {}


def test_every_public_function_over_20_lines_says_what_it_does() -> None:
    missing = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        scopes = [tree, *(n for n in tree.body if isinstance(n, ast.ClassDef))]
        for scope in scopes:
            for node in scope.body:
                if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                    continue
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 20 and ast.get_docstring(node) is None:
                    missing.append(f"{name}.{node.name} ({length} lines)")
    assert missing == []


@pytest.mark.parametrize(
    "template", sorted((REPO / "templates").rglob("*.py.jinja")), ids=lambda p: p.name
)
def test_python_templates_read_as_the_code_they_render(template: Path) -> None:
    source = template.read_text().replace("{{ package }}", "package_name")
    assert "{{" not in source and "{%" not in source, "only {{ package }} is templated"
    mode = black.Mode(line_length=100, target_versions={black.TargetVersion.PY311})
    assert black.format_str(source, mode=mode) == source
    assert "Union[" not in source and "Optional[" not in source
