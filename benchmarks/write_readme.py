"""Write the README's performance figures from the benchmarks' JSON results.

    python benchmarks/write_readme.py [--readme README.md] [--results benchmarks/results]
        [--check] [--stdout]

Only the text between the two marker lines is replaced:

    <!-- benchmarks:start -->
    ...
    <!-- benchmarks:end -->

Every number comes from the JSON files (bench_search.json, bench_budget.json,
bench_memory.json, bench_scan.json); a missing file is said in its subsection, and a
`--quick` smoke run is marked as one. --check exits 1 when the README is not up to date.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import _git, accuracy_gap

HERE = Path(__file__).resolve().parent
START = "<!-- benchmarks:start -->"
END = "<!-- benchmarks:end -->"
SCRIPTS = (
    "bench_baseline",
    "bench_speed",
    "bench_scale",
    "bench_search",
    "bench_budget",
    "bench_memory",
    "bench_scan",
)
DEPENDS = {  # what each script measures: its figures are stale once their code changes
    "bench_baseline": ("generator",),
    "bench_speed": ("generator",),
    "bench_scale": ("generator",),
    "bench_search": ("generator/train",),
    "bench_budget": ("generator/train",),
    "bench_memory": ("generator/train",),
    "bench_scan": ("generator/data",),
}


class MarkerError(Exception):
    pass


# ---- formatting -----------------------------------------------------------------------------


def cell(
    summary: dict[str, Any] | None, digits: int = 1, unit: str = "", of: int | None = None
) -> str:
    """'mean ± std (min–max)'; one value as it is; '—' when there is none. With `of` (the
    runs in the row), says when the figure rests on fewer runs."""
    if not summary or not summary.get("n"):
        return "—"
    f = f"{{:.{digits}f}}"
    text = f.format(summary["mean"]) + unit
    if summary["n"] > 1:
        text += f" ± {f.format(summary['std'])} ({f.format(summary['min'])}–"
        text += f"{f.format(summary['max'])})"
    if of is not None and summary["n"] < of:
        text += f" [{summary['n']} of {of} runs]"
    return text


def tally(counts: dict[str, int] | None) -> str:
    if not counts:
        return "—"
    return ", ".join(f"`{name}` ×{n}" if n > 1 else f"`{name}`" for name, n in counts.items())


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:g} s"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def run_facts(data: dict[str, Any]) -> str:
    seeds = data.get("seeds") or []
    when = (data.get("finished_utc") or data.get("started_utc") or "?")[:10]
    wall = data.get("wall_seconds")
    took = ""
    if wall:
        took = f", {wall:.0f} s in all" if wall < 120 else f", {wall / 60:.0f} min in all"
    # absolute paths name the measuring machine's folders: keep only the file names
    command = " ".join(
        Path(word).name if word.startswith("/") else word
        for word in str(data.get("command", "?")).split()
    )
    return (
        f"Run {when}: `{command}`; {len(seeds)} seed"
        f"{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))}){took}."
    )


def quick_warning(data: dict[str, Any]) -> list[str]:
    if not data.get("quick"):
        return []
    return [
        "> **Smoke run (`--quick`): these numbers only show that the script works; they are "
        "not a measurement.** Run it without `--quick` and write this section again.",
        "",
    ]


def weights_line(data: dict[str, Any]) -> str:
    w = data.get("weights") or {}
    if w.get("file"):
        return (
            f"Pretrained weights: the local file `{w['file']}` (sha256 {w['sha256_16']}…); "
            "pretrained figures are only as good as that file."
        )
    return (
        f"Pretrained weights: none (`--weights {w.get('option', '?')}`), pretrained parts skipped."
    )


def shown_path(path: Path) -> str:
    """Relative to the repository when inside it, so the README names no home folder."""
    try:
        return path.resolve().relative_to(HERE.parent).as_posix()
    except ValueError:
        return path.as_posix()


def missing(script: str, path: Path) -> list[str]:
    return [
        f"_No results: `{shown_path(path)}` is missing. Run `python benchmarks/{script}.py`, "
        "then this script again._",
    ]


# ---- sections -------------------------------------------------------------------------------


def search_section(data: dict[str, Any]) -> list[str]:
    s = data["summary"]
    per_seed = data.get("per_seed") or []
    out = [run_facts(data), "", *quick_warning(data)]
    d = data.get("data", {})
    tests = sorted({p["split"]["test"] for p in per_seed})
    trains = sorted({p["split"]["train"] for p in per_seed})
    vals = sorted({p["split"]["validation"] for p in per_seed})

    def span(values: list[int]) -> str:
        return (
            "?"
            if not values
            else f"{values[0]}" if len(values) == 1 else f"{values[0]}–{values[-1]}"
        )

    point = ""
    if tests:
        point = f"; one test image is {'up to ' if len(tests) > 1 else ''}"
        point += f"{100 / tests[0]:.1f} points of accuracy"
    out += [
        f"Data: `{d.get('folder', '?')}` ({d.get('images', '?')} images, "
        f"{d.get('classes', '?')} classes), split anew with each seed: {span(trains)} train / "
        f"{span(vals)} validation / {span(tests)} test images{point}. Each seed's baselines and "
        "modelgen runs use that seed's split; modelgen starts from an empty cache every run. "
        + weights_line(data),
        "",
        "The modelgen budget compared with a baseline is the cheapest one whose winner's "
        "*validation* accuracy reached the baseline's final validation accuracy; the test set "
        "plays no part in choosing it. Speed ratio: the baseline's training time to its final "
        "validation accuracy over modelgen's whole search time at that budget (probe, feature "
        "extraction and every candidate included); above 1, modelgen got there sooner.",
        "",
    ]
    if "transfer" not in (per_seed[0]["baselines"] if per_seed else {}):
        out += [
            "The transfer-learning baseline did not run: it needs a pretrained MobileNetV2 "
            "weights file (`--weights PATH`).",
            "",
        ]
    comparisons = s.get("comparisons") or []
    if comparisons:
        out += table(
            [
                "baseline",
                "baseline test accuracy",
                "baseline training time",
                "modelgen reached its validation accuracy",
                "modelgen time",
                "modelgen test accuracy",
                "speed ratio",
                "modelgen winners",
            ],
            [
                [
                    c["name"],
                    cell(c["baseline_final_test_accuracy"], 4),
                    cell(c["baseline_train_seconds"], 1, " s"),
                    f"{c['reached']} of {c['seeds']} seeds (budgets "
                    + ", ".join("—" if b is None else f"{b:g} s" for b in c["picked_budgets"])
                    + ")",
                    cell(c["modelgen_seconds"], 1, " s", c["seeds"]),
                    cell(c["modelgen_test_accuracy"], 4, "", c["seeds"]),
                    cell(c["speed_ratio"], 2, "×", c["seeds"]),
                    tally(c["modelgen_winners"]),
                ]
                for c in comparisons
            ],
        )
        out += ["", "At the baseline's own training time (equal budget):", ""]
        out += table(
            [
                "baseline",
                "budget",
                "baseline test accuracy",
                "modelgen test accuracy",
                "modelgen not below the baseline",
                "modelgen winners",
            ],
            [
                [
                    c["name"],
                    cell(c["equal_budget_seconds"], 0, " s"),
                    cell(c["baseline_final_test_accuracy"], 4),
                    cell(c["equal_budget_test_accuracy"], 4, "", c["seeds"]),
                    f"{c['equal_budget_not_below']} of {c['seeds']} seeds"
                    + (
                        f" ({c['equal_budget_refused']} refused)"
                        if c.get("equal_budget_refused")
                        else ""
                    ),
                    tally(c["equal_budget_winners"]),
                ]
                for c in comparisons
            ],
        )
    out += ["", "modelgen at each budget:", ""]
    out += table(
        ["budget", "seeds", "test accuracy", "validation accuracy", "search time", "winners"],
        [
            [
                seconds(b["budget"]),
                f"{b['runs'] - b['refused']}"
                + (f" ({b['refused']} refused)" if b["refused"] else ""),
                cell(b["test_accuracy"], 4),
                cell(b["val_accuracy"], 4),
                cell(b["seconds"], 1, " s"),
                tally(b["winners"]),
            ]
            for b in s.get("budgets", [])
        ],
    )
    cache = s.get("cache") or {}
    out += ["", f"Caches: the same search twice at a {seconds(cache.get('budget'))} budget.", ""]
    out += table(
        ["", "feature extraction", "whole search"],
        [
            [
                "cold cache",
                cell(cache.get("cold_extraction_seconds"), 2, " s"),
                cell(cache.get("cold_seconds"), 1, " s"),
            ],
            [
                "warm cache",
                cell(cache.get("warm_extraction_seconds"), 2, " s"),
                cell(cache.get("warm_seconds"), 1, " s"),
            ],
        ],
    )
    out += [
        "",
        f"The warm run picked the same winner as the cold one in {cache.get('same_winner', '?')} "
        f"of {len(per_seed)} seeds.",
    ]
    ex, raw = s.get("extraction") or {}, data.get("extraction") or {}
    if ex:
        out += [
            "",
            f"Feature-extraction throughput ({raw.get('backbone', '?')}, batch "
            f"{raw.get('batch', '?')}, {raw.get('images', '?')} images, "
            f"{plural(len(raw.get('repeats', [])), 'repeat')}), both runtimes on "
            f"{ex.get('threads')} "
            f"intra-op threads (TensorFlow reports {raw.get('tensorflow_intra_op_threads')}):",
            "",
        ]
        out += table(
            ["runtime", "images/s"],
            [
                ["Keras (TensorFlow)", cell(ex.get("keras_images_per_s"), 1)],
                [
                    "onnxruntime, same exported backbone",
                    cell(ex.get("onnxruntime_images_per_s"), 1),
                ],
                ["Keras / onnxruntime", cell(ex.get("keras_over_onnxruntime"), 2)],
            ],
        )
    return out


def budget_section(data: dict[str, Any]) -> list[str]:
    s = data["summary"]
    probe = data.get("probe", "?")
    out = [run_facts(data), "", *quick_warning(data)]
    out += [
        f"Training wall time against `--time-budget`, feature and pixel caches empty in every "
        f"run; probe timings {probe}. The seeds are the training seed; the split is fixed "
        f"(seed {data.get('split_seed', '?')}). " + weights_line(data),
        "",
    ]
    out += table(
        [
            "data",
            "budget",
            "runs",
            "protocol",
            "trained",
            "trained / budget",
            "runs cut by the deadline",
            "winners",
        ],
        [
            [
                f"{r['data']} ({r['images']:,} images)",
                seconds(r["budget"]),
                f"{r['runs'] - r['refused']}"
                + (f" ({r['refused']} refused)" if r["refused"] else ""),
                tally(r.get("protocols") or {}),
                cell(r["trained_seconds"], 1, " s"),
                cell(r["ratio"], 2),
                f"{r['deadline_cut']}",
                tally(r["winners"]),
            ]
            for r in s.get("rows", [])
        ],
    )
    refusals = [(r, msg) for r in s.get("rows", []) for msg in r.get("refusals", [])]
    if refusals:
        out += [""]
        out += [
            f"- {r['data']} at {seconds(r['budget'])}: refused (exit 2): “{msg}”"
            for r, msg in refusals
        ]
    worst = s.get("worst_ratio")
    if worst is not None:
        verdict = "within" if s.get("within_target") else "**over**"
        out += [
            "",
            f"Worst trained / budget over all runs: {worst:.2f}, {verdict} the target of "
            f"{s.get('target_ratio')}.",
        ]
    return out


def memory_section(data: dict[str, Any]) -> list[str]:
    s = data["summary"]
    out = [run_facts(data), "", *quick_warning(data)]
    out += [
        f"Whole search at a {seconds(data.get('budget'))} budget, each run in its own process "
        f"(peak RSS from getrusage), cold cache, candidate families limited to "
        f"{', '.join(f'`{f}`' for f in s.get('families_requested', [])) or '—'} at every count. "
        + weights_line(data),
        "",
    ]
    out += table(
        ["images", "runs", "peak RSS", "search time", "families trained", "winners"],
        [
            [
                f"{r['images']:,}",
                f"{r['runs'] - r['failed'] - r.get('refused', 0)}"
                + (f" ({r['failed']} failed)" if r["failed"] else "")
                + (f" ({r['refused']} refused)" if r.get("refused") else ""),
                cell(r["peak_rss_mb"], 0, " MB"),
                cell(r["seconds"], 1, " s"),
                tally(r["families_trained"]),
                tally(r["winners"]),
            ]
            for r in s.get("by_count", [])
        ],
    )
    sets = ", ".join(f"`{x}`" for x in s.get("families_trained_sets", [])) or "—"
    same = (
        f"Every run trained the same families ({sets})."
        if s.get("same_families")
        else f"**The runs did not train the same families** ({sets}): the memory figures "
        "do not compare like with like."
    )
    trained = {f for x in s.get("families_trained_sets", []) for f in x.split("+")}
    never = [f for f in s.get("families_requested", []) if f not in trained]
    if never:
        same += (
            f" Allowed but trained in no run (the plan or the weights left them out): "
            f"{', '.join(f'`{f}`' for f in never)}."
        )
    ratio = s.get("rss_ratio_largest_over_smallest")
    refusals = [(r, msg) for r in s.get("by_count", []) for msg in r.get("refusals", [])]
    if refusals:
        out += [""]
        out += [f"- {r['images']:,} images: refused (exit 2): “{msg}”" for r, msg in refusals]
    out += [""]
    out += [
        same
        + (
            f" Mean peak RSS ratio: {ratio:.2f} for {s.get('image_ratio'):g}× the images."
            if ratio is not None
            else ""
        )
    ]
    tuned = [r for r in s.get("by_count", []) if any("fine-tuned" in w for w in r["winners"])]
    if tuned and len(tuned) < len(s.get("by_count", [])):
        counts = ", ".join(f"{r['images']:,}" for r in tuned)
        out += [
            "",
            f"The winners were fine-tuned at {counts} images and not at every count; "
            "fine-tuning holds the backbone's gradients in memory, so the peaks differ by that "
            "stage as much as by the number of images.",
        ]
    return out


def scan_section(data: dict[str, Any]) -> list[str]:
    s = data["summary"]
    out = [run_facts(data), "", *quick_warning(data)]
    out += [
        f"{data.get('size_px', '?')} px PNGs in five classes, generated anew for each seed; every "
        "file decoded and hashed, each scan in its own process.",
        "",
    ]
    out += table(
        ["images", "workers", "runs", "scan", "images/s", "peak RSS", "workers' peak RSS"],
        [
            [
                f"{r['images']:,}",
                f"{r['workers']}",
                f"{r['runs']}",
                cell(r["scan_seconds"], 2, " s"),
                cell(r["images_per_second"], 0),
                cell(r["peak_rss_mb"], 0, " MB"),
                cell(r["workers_peak_rss_mb"], 0, " MB"),
            ]
            for r in s.get("rows", [])
        ],
    )
    return out


def split_sizes(runs: list[dict[str, Any]]) -> str:
    """The 20% splits' sizes, as one number or a range."""
    sizes = sorted({r["held_out_split"] for r in runs if "held_out_split" in r})
    return str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"


def baseline_section(data: dict[str, Any]) -> list[str]:
    runs = data.get("runs") or []
    out = [run_facts(data), "", *quick_warning(data)]
    out += [
        "Real datasets from packages (scikit-learn's 8×8 digits drawn at 32 px, scikit-image's "
        "LFW face and background crops, 750 images of Fashion-MNIST's test split), 20% of each "
        "held out per seed; for clothing, also the test split's next 300 images of each class "
        "(3,000), which are never in the folder, since on 150 images one image is 0.7 points. "
        "modelgen (`modelgen new --yes --weights none --time-budget B`, "
        "empty cache, scored through the generated library) against the Keras "
        "`mnist_convnet` example trained on the same folder until B seconds of training have "
        "passed; accuracy on the same held-out images.",
        "",
    ]
    rows = []
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["budget"]), []).append(r)
    behind_total = 0
    for (name, budget), group in groups.items():
        mine = [r["modelgen"].get("accuracy") for r in group]
        keras = [r["keras_accuracy"] for r in group]
        gaps = [accuracy_gap(m, k) for m, k in zip(mine, keras, strict=True)]
        behind = sum(1 for g in gaps if g is None or g < 0)
        behind_total += behind
        rows.append(
            [
                f"{name} ({group[0]['images']:,} / {group[0]['held_out']})",
                f"{budget:.0f} s",
                cell(_stats(mine), 3),
                cell(_stats(keras), 3),
                cell(_stats(gaps), 3),
                f"{behind} of {len(group)}",
                tally(_count([r["modelgen"].get("winner") for r in group])),
            ]
        )
    out += table(
        [
            "data (images / held out)",
            "budget",
            "modelgen",
            "Keras mnist_convnet",
            "difference",
            "modelgen behind in",
            "modelgen's model",
        ],
        rows,
    )
    out += ["", f"modelgen was behind in {behind_total} of {len(runs)} runs."]
    split_only = []
    for (name, budget), group in groups.items():
        if all("keras_accuracy_split" in r for r in group):
            mine = _stats([r["modelgen"].get("accuracy_split") for r in group])
            keras = _stats([r["keras_accuracy_split"] for r in group])
            split_only.append(f"{name} {budget:.0f} s {cell(mine, 3)} vs {cell(keras, 3)}")
    if split_only:
        out += [
            "",
            "On the 20% split alone (the runs' first "
            f"{split_sizes(runs)} held-out images), modelgen vs Keras: "
            + "; ".join(split_only)
            + ".",
        ]
    if data.get("note"):
        out += ["", str(data["note"])]
    return out


def speed_section(data: dict[str, Any]) -> list[str]:
    out = [run_facts(data), "", *quick_warning(data), weights_line(data), ""]
    summary = data.get("default_summary")
    if summary:
        out += [
            "`modelgen new --yes` on the bundled sample, each run with an empty cache:",
            "",
        ]
        out += table(
            ["wall time", "test accuracy", "peak RSS", "models"],
            [
                [
                    cell(summary["wall_seconds"], 1, " s"),
                    cell(summary["test_accuracy"], 4),
                    cell(summary["peak_rss_mb"], 0, " MB"),
                    tally(_count([r.get("winner") for r in data.get("default", [])])),
                ]
            ],
        )
        grouped: dict[str, list[float]] = {}
        for run in data.get("default", []):
            sums: dict[str, float] = {}
            for name, value in (run.get("phases") or {}).items():
                group = phase_group(name)
                sums[group] = sums.get(group, 0.0) + value
            for group, value in sums.items():
                grouped.setdefault(group, []).append(value)
        out += ["", "Where the time went (`--verbose`, seconds):", ""]
        out += table(list(grouped), [[cell(_stats(values), 1) for values in grouped.values()]])
        out += [""]
        if data.get("default_note"):
            out += [str(data["default_note"]), ""]
    photos = data.get("photos") or []
    if photos:
        out += [
            "120 photos of 2 classes (crops of scikit-image's astronaut and cat photos, 128 px; "
            "80 to train, 40 held out), empty cache:",
            "",
        ]
        rows = []
        for budget in sorted({r["budget"] for r in photos}):
            group = [r for r in photos if r["budget"] == budget]
            ok = [r for r in group if r["exit"] == 0]
            rows.append(
                [
                    f"{budget} s",
                    f"{len(ok)} of {len(group)}",
                    cell(_stats([r["wall_seconds"] for r in group]), 1, " s"),
                    cell(_stats([r.get("held_out_accuracy") for r in ok]), 3),
                    tally(_count([r.get("winner") for r in group])),
                ]
            )
        out += table(["budget", "model made", "wall time", "held-out accuracy", "model"], rows)
        out += [""]
    for key, intro, label, fields, headers in SIDE_BY_SIDE:
        records = data.get(key) or []
        if records:
            out += [intro, ""]
            out += table(headers, compared(records, label, fields))
            out += [""]
    extraction = data.get("extraction") or []
    if extraction:
        groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for r in extraction:  # runs written before the photo rows have no kind
            groups.setdefault((r.get("kind", "random-160"), r["size"]), []).append(r)
        kinds = {kind for kind, _ in groups}
        files = (
            "image files"
            if kinds == {"random-160"}
            else "JPEG files of each kind (160 px of random pixels; 500 x 375 crops of two "
            "photos, where decoding costs several times more)"
        )
        out += [
            f"Feature extraction, MobileNetV2 on {extraction[0].get('images', 256)} {files}: "
            "modelgen's path (decoding on every core, onnxruntime on every core) against a "
            "raw onnxruntime session (its default options) on the same images already decoded "
            "(inference alone), and against a plain loop that decodes each batch of 32 and then "
            "runs the same session, in the same run, each warmed by one batch first. The bound "
            "estimates the most the first ratio could be when decoding and inference share the "
            "cores: decoding's CPU time alone, measured in the same run, spread over every core "
            "with nothing lost. It is an estimate, not a ceiling: the raw session's own "
            "throughput moves between repeats, so a single repeat's ratio can pass it. Share of "
            "the machine's float32 matrix-multiply peak:",
            "",
        ]
        if data.get("extraction_note"):
            out += [str(data["extraction_note"]), ""]
        rows = []
        plain = all("decode_then_run_images_per_s" in r for r in extraction)
        bound = all("ratio_bound" in r for r in extraction)
        order = sorted(groups, key=lambda key: (key[0] != "random-160", key))
        for kind, size in order:
            group = groups[(kind, size)]
            row = [
                f"{EXTRACTION_KINDS.get(kind, kind)} at {size} px",
                cell(_stats([r["modelgen_images_per_s"] for r in group]), 0),
                cell(_stats([r["raw_onnxruntime_images_per_s"] for r in group]), 0),
                cell(_stats([r["ratio"] for r in group]), 2),
            ]
            if bound:
                row += [
                    cell(_stats([r["ratio_bound"] for r in group]), 2),
                    cell(_stats([r["decode_cpu_ms_per_image"] for r in group]), 2),
                ]
            if plain:
                row += [
                    cell(_stats([r["decode_then_run_images_per_s"] for r in group]), 0),
                    cell(_stats([r["ratio_to_decode_then_run"] for r in group]), 2),
                ]
            row += [
                cell(_stats([r["share_of_peak"] for r in group]), 2),
                f"{group[0]['peak_gflops']} GFLOP/s",
            ]
            rows.append(row)
        head = ["files, input", "modelgen images/s", "raw session images/s", "ratio"]
        if bound:
            head += ["bound, cores shared", "decoding, ms of CPU per image"]
        if plain:
            head += ["decode-then-run images/s", "ratio"]
        out += table([*head, "share of peak", "peak"], rows)
    out += camera_table(data.get("camera") or [])
    return out


def camera_table(camera: list[dict[str, Any]]) -> list[str]:
    """Decoding and checking camera-sized JPEGs, modelgen against a full decode."""
    if not camera:
        return []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in camera:
        groups.setdefault((r["photo"], r["task"]), []).append(r)
    out = [
        "",
        f"Camera-sized JPEGs ({camera[0]['images']} photos of each size, quality 90): ms of CPU "
        "per image to decode and preprocess them to the input size, or to check the file, "
        "in modelgen (a JPEG decoded at 1/2, 1/4 or 1/8 scale when every side keeps twice the "
        "input size, or at least 128 px for the check) against the same steps on a full "
        "decode, alternating in one thread; pixels against the full decode's, in grey levels:",
        "",
    ]
    rows = []
    for (photo, task), group in groups.items():
        first = group[0]
        difference = (
            f"{first['pixel_difference_mean']} (max {first['pixel_difference_max']})"
            if "pixel_difference_mean" in first
            else "-"
        )
        rows.append(
            [
                photo.replace("x", " x "),
                task,
                cell(_stats([r["full_decode_ms"] for r in group]), 1),
                cell(_stats([r["modelgen_ms"] for r in group]), 1),
                cell(_stats([r["speed_up"] for r in group]), 1),
                difference,
            ]
        )
    out += table(
        ["photo", "task", "full decode, ms", "modelgen, ms", "speed-up", "pixel difference"],
        rows,
    )
    return out


def scale_section(data: dict[str, Any]) -> list[str]:
    runs = data.get("runs") or []
    out = [run_facts(data), "", *quick_warning(data)]
    out += [
        "Fashion-MNIST's train split as PNG folders (the first N images), `modelgen new --yes "
        "--weights none --time-budget B`, empty cache, in its own process; accuracy on the "
        "10,000 images of the test split through the generated library, against the Keras "
        "`mnist_convnet` trained on the same folder for B seconds of training.",
        "",
    ]
    if data.get("runs_note"):
        out += [str(data["runs_note"]), ""]
    out += table(
        ["images", "budget", "wall time", "peak RSS", "modelgen", "Keras mnist_convnet", "model"],
        [
            [
                f"{r['images']:,}",
                f"{r['budget']:.0f} s",
                f"{r['modelgen'].get('wall_seconds', '—')} s",
                f"{r['modelgen'].get('peak_rss_mb', '—')} MB",
                f"{r['modelgen']['accuracy']:.4f}" if "accuracy" in r["modelgen"] else "failed",
                f"{r['keras_accuracy']:.4f}",
                f"`{r['modelgen'].get('winner')}` ({r['modelgen'].get('protocol')})",
            ]
            for r in runs
        ],
    )
    grown = data.get("growth") or []
    if grown:
        counts = sorted({r["images"] for r in runs})
        out += [
            "",
            f"Time per stage (`--verbose`) at {counts[0]:,} and {counts[-1]:,} images; the "
            "exponent is how it grew (1: in proportion), and the last column extrapolates it "
            "to 1,000,000 images (training is capped by the budget):",
            "",
        ]
        out += table(
            ["stage", f"{counts[0]:,}", f"{counts[-1]:,}", "growth exponent", "at 1,000,000"],
            [
                [
                    g["stage"],
                    f"{g['small']:.1f} s",
                    f"{g['large']:.1f} s",
                    f"{g['exponent']:.2f}",
                    f"{g['at_1m_seconds']:,} s",
                ]
                for g in grown
            ],
        )
    return out


def phase_group(name: str) -> str:
    """A --verbose phase's group: the fixed costs by name, and the fits by what they did."""
    if name.startswith("of the fits"):
        return "of which building and tracing"
    if "refit" in name:
        return "refit"
    if name.startswith(("images at", "calibrating", "importing", "checking", "exporting")):
        return {"images": "caching pixels"}.get(name.split()[0], name)
    if name.startswith("writing"):
        return name
    if "features at" in name or "to ONNX" in name:
        return "features"
    return "scoring fits"


def _stats(values: list[Any]) -> dict[str, Any] | None:
    found = [float(v) for v in values if v is not None]
    if not found:
        return None
    mean = sum(found) / len(found)
    std = (sum((v - mean) ** 2 for v in found) / (len(found) - 1)) ** 0.5 if len(found) > 1 else 0.0
    return {"n": len(found), "mean": mean, "std": std, "min": min(found), "max": max(found)}


def _count(names: list[str | None]) -> dict[str, int]:
    found: dict[str, int] = {}
    for name in names:
        key = "(none)" if name is None else name
        found[key] = found.get(key, 0) + 1
    return dict(sorted(found.items(), key=lambda kv: -kv[1]))


SIDE_BY_SIDE: tuple[
    tuple[str, str, Callable[[dict[str, Any]], str], tuple[tuple[str, int], ...], list[str]], ...
] = (
    (
        "training_loop",
        "The training loop: seconds an epoch of the default convnet on random images, "
        "modelgen's loop (batches converted to float32 as they go) against Keras's "
        "`model.fit` on the same images already in float32, same batch size and sample "
        "weights, alternating in one process:",
        lambda r: f"{r['images']:,} at {r['size']} px",
        (("loop_epoch_seconds", 3), ("keras_fit_epoch_seconds", 3), ("speed_up", 2)),
        ["images", "modelgen's loop", "Keras `fit`", "speed-up"],
    ),
    (
        "batch_norm",
        "Batch normalization: milliseconds a training step of the separable convnet "
        "(a batch of 32 random images), with modelgen's fused layer against Keras's own, "
        "alternating in one process:",
        lambda r: f"{r['size']} px",
        (("fused_step_ms", 2), ("keras_step_ms", 2), ("speed_up", 2)),
        ["input", "fused", "Keras", "speed-up"],
    ),
)
"""bench_speed's parts that compare modelgen with Keras side by side: the JSON key, the
text before the table, each row's label, the fields (with their digits), the headers."""


def compared(
    records: list[dict[str, Any]],
    label: Callable[[dict[str, Any]], str],
    fields: Sequence[tuple[str, int]],
) -> list[list[str]]:
    """One row per label (in the records' order): each field's mean ± std over its records."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(label(record), []).append(record)
    return [
        [name, *(cell(_stats([r[field] for r in group]), digits) for field, digits in fields)]
        for name, group in groups.items()
    ]


def code_of(source: str) -> str:
    """A Python module's code without its comments and docstrings (every statement that is
    only a string): what a benchmark measures, which rewording a docstring does not change."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list):
                kept = [
                    statement
                    for statement in body
                    if not (
                        isinstance(statement, ast.Expr)
                        and isinstance(statement.value, ast.Constant)
                        and isinstance(statement.value.value, str)
                    )
                ]
                setattr(node, field, kept or [ast.Pass()])
    return ast.dump(tree)


def code_changed(commit: str, paths: Sequence[str]) -> bool:
    """Whether the code under `paths` differs between `commit` and HEAD: any file but a
    Python module's comments and docstrings (an unreadable history counts as changed)."""
    names = _git("diff", "--name-only", commit, "HEAD", "--", *paths)
    if names is None:
        return True
    for name in names.splitlines():
        before, after = _git("show", f"{commit}:{name}"), _git("show", f"HEAD:{name}")
        if before is None or after is None or not name.endswith(".py"):
            return True
        try:
            if code_of(before) != code_of(after):
                return True
        except SyntaxError:
            return True
    return False


def stale_line(script: str, data: dict[str, Any]) -> list[str]:
    """Says when the code a script measures has changed since its run."""
    commit = (data.get("machine") or {}).get("commit")
    if not commit or not code_changed(commit, DEPENDS[script]):
        return []
    return [
        f"> Measured at commit {commit[:10]}; the code in `{' '.join(DEPENDS[script])}` has "
        "changed since, so these figures describe that commit's code, not this one's. Run the "
        "script again.",
        "",
    ]


EXTRACTION_KINDS = {"random-160": "160 px random", "photo-500x375": "500 x 375 photos"}

SECTIONS = {
    "bench_baseline": ("modelgen vs a plain Keras script on real datasets", baseline_section),
    "bench_speed": ("Speed: the default run, short budgets, extraction", speed_section),
    "bench_scale": ("Scale: 60,000 images in ten minutes", scale_section),
    "bench_search": ("modelgen vs the hand-written recipes", search_section),
    "bench_budget": ("Time budget", budget_section),
    "bench_memory": ("Memory", memory_section),
    "bench_scan": ("Dataset doctor", scan_section),
}


def machine_line(results: dict[str, dict[str, Any]]) -> list[str]:
    described: dict[str, list[str]] = {}
    for script, data in results.items():
        m = data.get("machine") or {}
        v = m.get("versions") or {}
        commit = (m.get("commit") or "?")[:10]
        if m.get("uncommitted_changes"):
            commit += " with uncommitted changes"
        text = (
            f"{m.get('cores', '?')} cores ({m.get('cpu') or 'CPU unknown'}), "
            f"{m.get('memory_gb', '?')} GB RAM, {m.get('platform', '?')}; Python "
            f"{m.get('python', '?')}, TensorFlow {v.get('tensorflow', '?')}, Keras "
            f"{v.get('keras', '?')}, onnxruntime {v.get('onnxruntime', '?')}, numpy "
            f"{v.get('numpy', '?')}; modelgen {v.get('modelgen', '?')} at commit {commit}"
        )
        described.setdefault(text, []).append(script)
    if not described:
        return []
    if len(described) == 1:
        return [f"Machine: {next(iter(described))}."]
    return ["Machines:", ""] + [
        f"- {', '.join(f'`{s}.py`' for s in scripts)}: {text}."
        for text, scripts in described.items()
    ]


def render(results_dir: Path) -> str:
    results: dict[str, dict[str, Any]] = {}
    for script in SCRIPTS:
        path = results_dir / f"{script}.json"
        if path.is_file():
            results[script] = json.loads(path.read_text())
    shown = shown_path(results_dir)
    with_seeds = sorted({len(d.get("seeds") or []) for d in results.values()})
    out = [
        "<!-- Written by benchmarks/write_readme.py from the JSON files in "
        f"{shown}/: edit those scripts, not this text. -->",
        "",
        "Measured with the scripts in `benchmarks/`; their raw per-seed numbers are in "
        f"`{shown}/`. Each figure is the mean ± standard deviation (min–max) over the runs "
        "counted in its row, one run per seed"
        + (
            f" ({' or '.join(map(str, with_seeds))} seed{'s' if with_seeds != [1] else ''})"
            if with_seeds
            else ""
        )
        + ".",
        "",
        *machine_line(results),
    ]
    for script, (title, section) in SECTIONS.items():
        out += ["", f"### {title} (`{script}.py`)", ""]
        if script in results:
            out += stale_line(script, results[script])
            out += section(results[script])
        else:
            out += missing(script, results_dir / f"{script}.json")
    return "\n".join(out).strip("\n") + "\n"


def replace_between_markers(text: str, body: str, where: str) -> str:
    starts, ends = text.count(START), text.count(END)
    if starts == 0 or ends == 0:
        raise MarkerError(
            f"{where} has no {START if starts == 0 else END} line: add the two marker lines\n"
            f"  {START}\n  {END}\nwhere the performance figures belong (e.g. under "
            "'## Performance'), then run this script again; nothing was written"
        )
    if starts > 1 or ends > 1:
        raise MarkerError(
            f"{where} has {starts} start and {ends} end markers; keep exactly one of each: "
            "nothing was written"
        )
    head, rest = text.split(START, 1)
    if END not in rest:
        raise MarkerError(f"{where}: {END} comes before {START}; nothing was written")
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{body}{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=HERE.parent / "README.md")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the README's section is out of date"
    )
    parser.add_argument("--stdout", action="store_true", help="print the section, write nothing")
    args = parser.parse_args()
    body = render(args.results)
    if args.stdout:
        print(body, end="")
        return
    try:
        text = args.readme.read_text(encoding="utf-8")
    except OSError as exc:
        sys.exit(f"cannot read {args.readme}: {exc.strerror}")
    try:
        new = replace_between_markers(text, body, str(args.readme))
    except MarkerError as exc:
        sys.exit(f"error: {exc}")
    if args.check:
        if new != text:
            sys.exit(f"{args.readme}: the benchmarks section is out of date; run {__file__}")
        print(f"{args.readme}: the benchmarks section is up to date")
        return
    if new == text:
        print(f"{args.readme}: already up to date")
        return
    args.readme.write_text(new, encoding="utf-8")
    print(f"{args.readme}: benchmarks section written from {args.results}")


if __name__ == "__main__":
    main()
