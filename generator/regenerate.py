"""`modelgen retrain` and `modelgen update`: a generated project regenerated in place.

retrain: rescan the data (every image keeps its split), train within the saved budget, score
the project's own model and the new one on the same test images (gate.py), and only if the
gate lets it through, re-render and merge the project's files (merge.py), all swapped in at
once (transaction.py). update: the same merge for a newer modelgen's templates, rendered
from the saved context, with the model and its files left as they are.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from . import __version__
from .context import BASE, CONTEXT, TemplateContext
from .data.changes import Changes, diff
from .errors import InterruptedAfterWrite, UsageError
from .gate import REFUSED, Verdict, compare, markdown, predict_incumbent, read_incumbent
from .merge import BESIDE, Action, MergePlan, has_markers, plan_merge
from .progress import Reporter
from .project import Outcome, Release, base_blobs, project_files
from .render import MANIFEST, is_state, old_base_blobs, render_tree, sha256
from .resources import inside
from .spec import SAMPLE, ProjectSpec, load_answers_file, make_answers, resolve
from .transaction import apply, mark_unmerged

CANDIDATES = ".modelgen/candidates"
TEMPLATE = "image_classification"


@dataclass(frozen=True)
class Project:
    """A generated project as its modelgen.toml describes it."""

    root: Path
    document: dict[str, Any]
    spec: ProjectSpec

    @property
    def generated(self) -> dict[str, str]:
        files = self.document.get("generated", {}).get("files", {})
        return {str(k): str(v) for k, v in files.items()}

    @property
    def artifacts(self) -> list[str]:
        """Generated files that do not come from a template: the model and its data."""
        return [str(p) for p in self.document.get("generated", {}).get("artifacts", [])]

    def blob(self, digest: str) -> bytes | None:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            return None  # not a hash modelgen wrote: never a path
        path = self.root / BASE / digest
        return path.read_bytes() if path.is_file() else None


def open_project(
    path: Path,
    *,
    data: str | None = None,
    ask: Callable[[Path], str] | None = None,
    time_budget: int | None = None,
    verbose: bool = False,
    need_data: bool = True,
) -> Project:
    """Read PROJECT/modelgen.toml and resolve its answers against the project folder.

    The data source is relative to the project; when it is gone, `data` (--data) or ask()
    says where it is now, else UsageError naming --data (unless need_data is False)."""
    root = path.resolve()
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise UsageError(
            f"{path} is not a modelgen project (no {MANIFEST}): run `modelgen new` first, or "
            "pass the project folder"
        )
    try:
        document = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{manifest} cannot be read ({exc}): restore it from git") from None
    _check_version(manifest, document)
    values = load_answers_file(manifest)
    values["output"] = str(root)
    recorded = str(values.get("data", SAMPLE))
    if data is not None:
        values["data"] = str(Path(data).expanduser().resolve())
    elif recorded != SAMPLE:
        where = (root / recorded).resolve()
        if need_data and not where.exists():
            if ask is None:
                raise UsageError(
                    f"the data source {where} recorded in {manifest} (data = {recorded!r}) "
                    "does not exist: pass --data NEW_PATH"
                )
            where = Path(ask(where)).expanduser().resolve()
        values["data"] = str(where)
    if time_budget is not None:
        values["time_budget"] = time_budget
    spec = resolve(make_answers(values), cwd=root, force=True, verbose=verbose)
    return Project(root, document, spec)


def _check_version(manifest: Path, document: dict[str, Any]) -> None:
    def parts(text: str) -> tuple[int, ...]:
        return tuple(int(p) for p in text.split(".")[:3] if p.isdigit())

    made = str(document.get("versions", {}).get("modelgen", "0"))
    if parts(made) > parts(__version__):
        raise UsageError(
            f"{manifest} was written by modelgen {made}, newer than this modelgen "
            f"{__version__}: upgrade modelgen (the file was not changed)"
        )


@dataclass(frozen=True)
class Regenerated:
    """What retrain or update did, or would do with --dry-run."""

    merge: MergePlan | None  # None when the gate refused the new model
    verdict: Verdict | None = None  # retrain only
    changes: Changes | None = None  # retrain only
    candidate: Path | None = None  # where a refused model was kept
    written: bool = False
    in_git_index: bool = False  # conflicts recorded as unmerged in git

    def to_dict(self) -> dict[str, Any]:
        merge = self.merge
        return {
            "data": self.changes.to_dict() if self.changes else None,
            "gate": self.verdict.to_dict() if self.verdict else None,
            "files": (
                {c.path: c.action.value for c in merge.changes if c.action is not Action.SAME}
                if merge
                else {}
            ),
            "conflicts": [c.path for c in merge.conflicts] if merge else [],
            "candidate": str(self.candidate) if self.candidate else None,
            "written": self.written,
        }


def retrain(
    project: Project,
    reporter: Reporter,
    *,
    accept_regression: str | None = None,
    dry_run: bool = False,
) -> Regenerated:
    """Train on the data as it is now and replace the project's model only through the gate
    (see the module doc)."""
    from .pipeline import data_sources, produce
    from .render import check_output

    refuse_unresolved(project)
    spec = project.spec
    outcome = produce(
        spec,
        reporter,
        lambda dataset: check_output(project.root, force=True, sources=data_sources(dataset, spec)),
    )
    changes = diff(spec.history.files if spec.history else (), outcome.dataset)
    verdict = gate(project, outcome, reporter)
    if verdict.blocks and accept_regression:
        verdict = verdict.accept(accept_regression)
    if verdict.blocks:
        kept = None if dry_run else keep_candidate(project, outcome, verdict)
        return Regenerated(None, verdict, changes, candidate=kept)
    files = project_files(spec, outcome, Release("retrain", verdict.to_dict()))
    plan = plan_merge(project.root, project.generated, _generated(files), project.blob)
    result = Regenerated(plan, verdict, changes)
    if dry_run:
        return result
    in_index = _write(project, plan, _state(files), old_base_blobs(project.root, files))
    return replace(result, written=True, in_git_index=in_index)


def gate(project: Project, outcome: Outcome, reporter: Reporter) -> Verdict:
    """The project's own model and the new one on the same test images."""
    records = outcome.split.test
    labels = outcome.dataset.labels
    truth = [r.label for r in records]
    candidate = [labels[int(k)] for k in np.argmax(outcome.probabilities, axis=1)]
    incumbent, why = read_incumbent(project.root, project.spec.package)
    predicted = None
    if incumbent is not None:
        with reporter.phase("scoring the current model on the same test images", total=None):
            predicted = predict_incumbent(incumbent, [r.path for r in records])
        why = f"{incumbent.model.relative_to(project.root).as_posix()} cannot be run"
    if incumbent is None or predicted is None:
        verdict = compare(truth, candidate, None, (), why_none=why)
        history = project.spec.history
        if history is not None and history.versions:  # there was a model: never fail open
            return replace(
                verdict,
                status=REFUSED,
                reasons=(f"{why}, so the new model cannot be compared with it",),
            )
        return verdict
    return compare(truth, candidate, predicted, incumbent.labels)


def keep_candidate(project: Project, outcome: Outcome, verdict: Verdict) -> Path:
    """A refused model, kept for inspection under .modelgen/candidates/ (git-ignored)."""
    name = f"{outcome.dataset.fingerprint[:12]}-{sha256(outcome.model)[:12]}"
    folder = inside(project.root, f"{CANDIDATES}/{name}")
    folder.mkdir(parents=True, exist_ok=True)
    labels = {
        "labels": list(outcome.dataset.labels),
        "input_size": outcome.training.winner.input_size,
    }
    (folder / "model.onnx").write_bytes(outcome.model)
    (folder / "metadata.json").write_text(json.dumps(labels, indent=2) + "\n", encoding="utf-8")
    (folder / "gate.json").write_text(json.dumps(verdict.to_dict(), indent=2) + "\n")
    (folder / "gate.md").write_text(markdown(verdict), encoding="utf-8")
    return folder


def update(project: Project, *, dry_run: bool = False) -> Regenerated:
    """Re-render the templates from the saved context, model and answers unchanged."""
    refuse_unresolved(project)
    context = saved_context(project)
    if "artifacts" not in project.document.get("generated", {}):
        raise UsageError(
            f"{project.root / MANIFEST} does not list which generated files are the model's "
            "(it predates `update`): run `modelgen retrain` once"
        )
    rendered = render_tree(TEMPLATE, context.as_mapping())
    carried = {rel: project.generated[rel] for rel in project.artifacts if rel in project.generated}
    plan = plan_merge(project.root, project.generated, rendered, project.blob, carried=carried)
    result = Regenerated(plan)
    if dry_run:
        return result
    document = dict(project.document)
    files = {rel: sha256(content) for rel, content in rendered.items()} | carried
    document["generated"] = {"files": dict(sorted(files.items())), "artifacts": project.artifacts}
    document["versions"] = {**document.get("versions", {}), "modelgen": __version__}
    state = {MANIFEST: tomli_w.dumps(document).encode("utf-8"), CONTEXT: context.to_json()}
    state |= base_blobs(rendered)
    keep = {f"{BASE}/{digest}" for digest in carried.values()}
    stale = [rel for rel in old_base_blobs(project.root, state) if rel not in keep]
    return replace(result, written=True, in_git_index=_write(project, plan, state, stale))


def saved_context(project: Project) -> TemplateContext:
    path = project.root / CONTEXT
    try:
        return TemplateContext.from_json(path.read_bytes())
    except FileNotFoundError:
        reason = "it is missing"
    except (ValueError, KeyError, TypeError) as exc:
        reason = str(exc)
    raise UsageError(
        f"{path} cannot be rendered from ({reason}): run `modelgen retrain` once, which "
        "renders from a new training and saves it"
    )


def _generated(files: Mapping[str, bytes]) -> dict[str, bytes]:
    return {rel: content for rel, content in files.items() if not is_state(rel)}


def _state(files: Mapping[str, bytes]) -> dict[str, bytes]:
    return {rel: content for rel, content in files.items() if is_state(rel)}


def _write(project: Project, plan: MergePlan, state: dict[str, bytes], stale: list[str]) -> bool:
    """Swap the merged files and modelgen's state in at once; in git, record conflicts as
    unmerged. Returns whether they were recorded in git's index."""
    writes: dict[str, bytes] = {}
    removes = list(stale)
    for change in plan.changes:
        if change.content is not None:
            writes[change.path] = change.content
        if change.beside is not None:
            writes[change.path + BESIDE] = change.beside
        if change.action is Action.REMOVE:
            removes.append(change.path)
    for rel, content in state.items():
        target = inside(project.root, rel)
        if not (target.is_file() and target.read_bytes() == content):
            writes[rel] = content
    sides = {
        c.path: (c.base, c.yours or b"", c.new or b"")
        for c in plan.conflicts
        if c.content is not None
    }
    try:
        apply(project.root, writes, removes)
    except InterruptedAfterWrite:  # Ctrl-C held until the swap was whole: finish the job
        _mark(project, sides)
        raise
    return _mark(project, sides)


def _mark(project: Project, sides: dict[str, tuple[bytes | None, bytes, bytes]]) -> bool:
    try:
        return mark_unmerged(project.root, sides)
    except (OSError, subprocess.CalledProcessError):
        return False  # the markers are in the files; git's index just does not list them


def refuse_unresolved(project: Project) -> None:
    """Conflict markers left from the last merge must be resolved first (as git requires):
    merging over them would bury them in a new conflict."""
    left = []
    for rel in project.generated:
        path = inside(project.root, rel)
        if path.is_file() and rel not in project.artifacts and has_markers(path.read_bytes()):
            left.append(rel)
    if left:
        raise UsageError(
            f"conflict markers are left in {', '.join(sorted(left))}: resolve them (and "
            "`git add` them in git) before regenerating"
        )
