"""How the time budget is spent, decided before training from a short timing probe.

Pure arithmetic on the probe's estimates, which are cached per machine: the same data and
budget give the same plan, and so the same model. Counts are rounded down to coarse ladders
(a plan of 8 settings x 5 epochs, not 7.3 x 4.6); the deadline is only a safety net.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .families import Kind, Skip, SkipCause

RESERVE = 0.08  # of the budget, kept for assembling and evaluating the winner
EXTRACT_SHARE = 0.45  # at most this much of what is left goes to feature extraction
FINE_TUNE_SHARE = 0.3  # kept for fine-tuning when a pretrained candidate runs
HEAD_SHARE = 0.25  # of the training time, for all heads on cached features together
HALVING_SHARE = 0.4  # of a family's time, for its successive-halving rungs
ETA = 2  # successive halving keeps the best 1/ETA of the trials at each rung
FINE_TUNE_SETUP = 3.0  # seconds to build and trace a trainable backbone (MobileNetV2, 2 cores)

CONFIG_LADDER = (16, 8, 4, 2, 1)
RUNG_LADDER = (1, 2, 3, 4, 5, 6, 8, 10, 13)
FINAL_LADDER = (5, 8, 10, 15, 20, 30, 40, 60, 80, 120, 160, 240, 320)
FINE_TUNE_LADDER = (2, 3, 5, 8, 13, 20)


@dataclass(frozen=True)
class Estimate:
    """What one candidate family is expected to cost, from the probe."""

    name: str
    kind: Kind
    prepare_seconds: float  # features to embed, or pixels to decode, not cached yet
    epoch_seconds: float  # one epoch over train + validation
    trial_seconds: float  # building and compiling one trial, first-call tracing
    max_configs: int
    min_rung_epochs: int
    fine_tune_epoch_seconds: float = 0.0


@dataclass(frozen=True)
class FamilyPlan:
    name: str
    kind: Kind
    configs: int
    rung_epochs: int  # epochs added at each successive-halving rung
    final_epochs: int  # most epochs for the survivor (early stopping usually ends it)
    fine_tune_epochs: int
    seconds: float  # planned time, preparation included, fine-tuning not
    fine_tune_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "kind": self.kind.value,
            "seconds": round(self.seconds, 1),
            "fine_tune_seconds": round(self.fine_tune_seconds, 1),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FamilyPlan:
        """A family from modelgen.toml's [model.plan]; ValueError names what is wrong."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown keys {', '.join(unknown)}")
        ints = ("configs", "rung_epochs", "final_epochs", "fine_tune_epochs")
        for key in ints:
            if not isinstance(values.get(key, 0), int) or isinstance(values.get(key), bool):
                raise ValueError(f"{key} must be a whole number, not {values.get(key)!r}")
        kinds = [k.value for k in Kind]
        if not isinstance(values.get("name"), str) or values.get("kind") not in kinds:
            raise ValueError(f"needs a name and a kind ({' or '.join(kinds)})")
        if values.get("configs", 1) < 1 or values.get("final_epochs", 0) < 1:
            raise ValueError("configs and final_epochs must be at least 1")
        if values.get("configs", 1) > 1 and values.get("rung_epochs", 0) < 1:
            raise ValueError("rung_epochs must be at least 1 when configs is above 1")
        return cls(
            values["name"],
            Kind(values["kind"]),
            values.get("configs", 1),
            values.get("rung_epochs", 0),
            values["final_epochs"],
            values.get("fine_tune_epochs", 0),
            float(values.get("seconds", 0.0)),
            float(values.get("fine_tune_seconds", 0.0)),
        )

    @property
    def rungs(self) -> tuple[int, ...]:
        """Trials alive at each rung: 8 configs -> (8, 4, 2), then 1 goes on to the final."""
        alive, found = self.configs, []
        while alive > 1:
            found.append(alive)
            alive = -(-alive // ETA)
        return tuple(found)


@dataclass(frozen=True)
class Plan:
    budget: float
    families: tuple[FamilyPlan, ...]
    skipped: tuple[Skip, ...]
    estimates: tuple[Estimate, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """What modelgen.toml records, so `--replay-plan` can train exactly this again."""
        return {"budget": self.budget, "families": [f.to_dict() for f in self.families]}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Plan:
        """A recorded plan; ValueError names what is wrong with it."""
        families = values.get("families")
        if not isinstance(families, list) or not families:
            raise ValueError("[model.plan] needs a non-empty families list")
        if not all(isinstance(f, dict) for f in families):
            raise ValueError("every entry of families must be a table")
        parsed = []
        for i, family in enumerate(families, start=1):
            try:
                parsed.append(FamilyPlan.from_dict(family))
            except ValueError as exc:
                raise ValueError(f"family {i}: {exc}") from None
        budget = values.get("budget", 0)
        if not isinstance(budget, int | float) or isinstance(budget, bool):
            raise ValueError(f"budget must be a number, not {budget!r}")
        return cls(float(budget), tuple(parsed), ())

    def names(self, kind: Kind) -> tuple[str, ...]:
        return tuple(f.name for f in self.families if f.kind is kind)

    def family(self, name: str) -> FamilyPlan:
        return next(f for f in self.families if f.name == name)

    def describe(self, *, replayed: bool = False) -> list[str]:
        """The plan in a few lines, as printed before training."""
        if not self.families:
            return []
        lines = [
            (
                "Plan (recorded; replayed in full, with no deadline):"
                if replayed
                else f"Plan (about {self.seconds:.0f}s of the {self.budget:.0f}s budget):"
            )
        ]
        for f in self.families:
            rungs = (
                f"{f.configs} settings, halving {'→'.join(map(str, f.rungs))} every "
                f"{f.rung_epochs} epochs, "
                if f.configs > 1
                else ""
            )
            tune = (
                f", fine-tune up to {f.fine_tune_epochs} epochs if it wins"
                if f.fine_tune_epochs
                else ""
            )
            lines.append(
                f"  {f.name}: {rungs}best trains up to {f.final_epochs} epochs{tune} "
                f"(~{f.seconds:.0f}s)"
            )
        return lines

    @property
    def seconds(self) -> float:
        """Planned time: every family, plus fine-tuning of (at most) one winner."""
        fine_tune = max((f.fine_tune_seconds for f in self.families), default=0.0)
        return sum(f.seconds for f in self.families) + fine_tune


def floor_ladder(value: float, ladder: tuple[int, ...]) -> int:
    """The largest rung of the ladder not above value (0 if none)."""
    return max((x for x in ladder if x <= value), default=0)


def halving_epochs(configs: int, rung_epochs: int) -> int:
    """Trial-epochs spent by successive halving: every rung trains the survivors further."""
    total, alive = 0, configs
    while alive > 1:
        total += alive * rung_epochs
        alive = -(-alive // ETA)
    return total


def plan_family(
    estimate: Estimate, seconds: float, max_epochs: int, fine_tune_seconds: float = 0.0
) -> FamilyPlan | Skip:
    """Configs, rung length and final length that fit `seconds`, or why nothing fits."""
    train = seconds - estimate.prepare_seconds
    for configs in CONFIG_LADDER:
        if configs > estimate.max_configs:
            continue
        epochs = (train - configs * estimate.trial_seconds) / max(estimate.epoch_seconds, 1e-6)
        rung = floor_ladder(HALVING_SHARE * epochs / max(1, 2 * configs - 2), RUNG_LADDER)
        if configs > 1 and rung < estimate.min_rung_epochs:
            continue
        spent = halving_epochs(configs, rung)
        final = min(max_epochs, floor_ladder(epochs - spent, FINAL_LADDER))
        if final == 0:
            continue
        fine_tune = 0
        if estimate.fine_tune_epoch_seconds:
            fine_tune = floor_ladder(
                (fine_tune_seconds - FINE_TUNE_SETUP) / estimate.fine_tune_epoch_seconds,
                FINE_TUNE_LADDER,
            )
        planned = (
            estimate.prepare_seconds
            + configs * estimate.trial_seconds
            + (spent + final) * estimate.epoch_seconds
        )
        return FamilyPlan(
            estimate.name,
            estimate.kind,
            configs,
            rung if configs > 1 else 0,
            final,
            fine_tune,
            planned,
            fine_tune * estimate.fine_tune_epoch_seconds + FINE_TUNE_SETUP * (fine_tune > 0),
        )
    least = estimate.prepare_seconds + estimate.trial_seconds + 5 * estimate.epoch_seconds
    return Skip(
        estimate.name,
        estimate.kind,
        SkipCause.UNAFFORDABLE,
        f"needs about {least:.0f}s and the budget leaves {max(0.0, seconds):.0f}s for it",
    )


def make_plan(
    budget: float, elapsed: float, estimates: list[Estimate], max_epochs: int = 200
) -> Plan:
    """Share what is left of the budget after the probe among the candidate families."""
    available = budget * (1 - RESERVE) - elapsed
    skipped: list[Skip] = []
    transfers: list[Estimate] = []
    extracting = 0.0
    for e in (e for e in estimates if e.kind is Kind.TRANSFER):
        if extracting + e.prepare_seconds <= EXTRACT_SHARE * available:
            transfers.append(e)
            extracting += e.prepare_seconds
        else:
            skipped.append(
                Skip(
                    e.name,
                    e.kind,
                    SkipCause.UNAFFORDABLE,
                    f"embedding the images would take about {e.prepare_seconds:.0f}s, more "
                    f"than this budget allows; raise --time-budget to about "
                    f"{(e.prepare_seconds / EXTRACT_SHARE + elapsed) / (1 - RESERVE):.0f}",
                )
            )
    cnns = [e for e in estimates if e.kind is Kind.CNN]
    training = available - extracting
    fine_tune = FINE_TUNE_SHARE * training if transfers else 0.0
    training -= fine_tune
    heads = HEAD_SHARE * training if transfers and cnns else training if transfers else 0.0
    families: list[FamilyPlan] = []
    shares = [(e, e.prepare_seconds + heads / len(transfers)) for e in transfers]
    shares += [(e, (training - heads) / len(cnns)) for e in cnns]
    unaffordable: list[Estimate] = []
    for estimate, seconds in shares:
        planned = plan_family(estimate, seconds, max_epochs, fine_tune)
        if isinstance(planned, Skip):
            skipped.append(planned)
            unaffordable.append(estimate)
        else:
            families.append(planned)
    if families and unaffordable:
        # what the unaffordable families would have had goes to the others
        kept = [e for e in [*transfers, *cnns] if e not in unaffordable]
        rest = make_plan(budget, elapsed, kept, max_epochs)
        return Plan(budget, rest.families, (*skipped, *rest.skipped), tuple(estimates))
    if not families and estimates:
        fallback = _fallback(estimates, available, max_epochs)
        if fallback is not None:
            families.append(fallback)
            skipped = [skip for skip in skipped if skip.family != fallback.name]
    return Plan(budget, tuple(families), tuple(skipped), tuple(estimates))


def _fallback(estimates: list[Estimate], available: float, max_epochs: int) -> FamilyPlan | None:
    """When no family fits its share, the whole budget goes to the one that trains most:
    a head on cached features if embedding leaves room for a few head epochs, else the
    cheapest convnet for as many epochs as fit (at least one)."""

    def epochs(e: Estimate) -> int:
        spare = available - e.prepare_seconds - e.trial_seconds
        return min(max_epochs, int(spare / max(e.epoch_seconds, 1e-6)))

    transfers = [
        e
        for e in estimates
        if e.kind is Kind.TRANSFER and e.prepare_seconds <= 0.6 * available and epochs(e) >= 5
    ]
    cnns = sorted((e for e in estimates if e.kind is Kind.CNN and epochs(e) >= 1), key=epochs)
    chosen = transfers[0] if transfers else cnns[-1] if cnns else None
    if chosen is None:
        return None
    n = epochs(chosen)
    seconds = chosen.prepare_seconds + chosen.trial_seconds + n * chosen.epoch_seconds
    return FamilyPlan(chosen.name, chosen.kind, 1, 0, n, 0, seconds, 0.0)
