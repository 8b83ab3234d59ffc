"""What the search compares: a recipe is one network with one setting, as data (recorded in
modelgen.toml and replayed from it). The list puts the strong default first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from .backbones import LoadedBackbone
from .families import Kind, candidate_name
from .networks import CNN_ARCHITECTURES

AUGMENTATIONS = ("none", "shift", "shift+flip")


@dataclass(frozen=True)
class Recipe:
    """A network (a convnet from scratch, or a dense head on a backbone's features), its
    input size and training settings."""

    family: str  # a convnet name, or the backbone whose features a head reads
    kind: Kind
    input_size: int
    learning_rate: float = 1e-3
    dropout: float = 0.5
    augment: str = "none"  # one of AUGMENTATIONS (convnets only)
    l2: float = 0.0  # heads only

    @property
    def name(self) -> str:
        """What the leaderboard shows: the family, and the settings that differ from the
        family's default."""
        base = candidate_name(self.family, self.kind)
        extra = [f"augment {self.augment}"] if self.augment != "none" else []
        return f"{base} ({', '.join(extra)})" if extra else base

    @property
    def input_key(self) -> tuple[str, int]:
        """What the recipe reads: pixels at its size, or its backbone's features at its
        size (members of one ensemble read the same)."""
        return (self.family if self.kind is Kind.TRANSFER else "", self.input_size)

    def settings(self) -> dict[str, Any]:
        found: dict[str, Any] = {"learning_rate": self.learning_rate, "dropout": self.dropout}
        if self.kind is Kind.CNN:
            found["augment"] = self.augment
        else:
            found["l2"] = self.l2
        return found

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"kind": self.kind.value}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Recipe:
        """A recorded recipe; KeyError/ValueError/TypeError when it is malformed."""
        for required in ("family", "kind", "input_size"):
            if required not in raw:
                raise KeyError(required)
        unknown = sorted(set(raw) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown settings {', '.join(unknown)}")
        values = dict(raw) | {"kind": Kind(raw["kind"])}
        recipe = cls(**values)
        if recipe.augment not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {recipe.augment!r}")
        if recipe.input_size < 16 or not 0 < recipe.learning_rate < 1:
            raise ValueError(f"recipe {recipe.name} has out-of-range settings")
        return recipe


def recipes(
    cnns: Sequence[str], cnn_size: int, backbones: Sequence[tuple[str, int]]
) -> list[Recipe]:
    """Every recipe worth a try, most promising first (the search runs a prefix of it when
    the budget is short). backbones: (name, input size) of each backbone with weights.

    A head on pretrained features comes first when there is one: after the features it
    trains in seconds and is strong on photos. Otherwise the Keras mnist_convnet design
    with its own settings (Adam 1e-3, dropout 0.5) on randomly shifted images is the
    default; then the same without shifts, the deeper convnet, and flips (which help
    photos and hurt digits: the scores decide).
    """
    found = [Recipe(name, Kind.TRANSFER, size, 1e-3, 0.2, "none", 1e-4) for name, size in backbones]
    if not cnns:
        return found
    first, *others = cnns
    found.append(Recipe(first, Kind.CNN, cnn_size, augment="shift"))
    found.append(Recipe(first, Kind.CNN, cnn_size))
    for name in others:
        found.append(Recipe(name, Kind.CNN, cnn_size, augment="shift"))
    found.append(Recipe(first, Kind.CNN, cnn_size, augment="shift+flip"))
    for name in others:
        found.append(Recipe(name, Kind.CNN, cnn_size, augment="shift+flip"))
    return found


def describe(recipe: Recipe, loaded: Mapping[str, LoadedBackbone]) -> str:
    """The network in words, for the leaderboard and the generated README."""
    if recipe.kind is Kind.TRANSFER:
        weights = loaded[recipe.family].weights_name
        return (
            f"{recipe.family} ({weights}) at {recipe.input_size}px, frozen; "
            "dense head on its features"
        )
    return CNN_ARCHITECTURES[recipe.family][0] + f" at {recipe.input_size}px"


def shipped_name(members: Sequence[Recipe]) -> tuple[str, dict[str, Any]]:
    """The shipped model's name and settings: its recipe's, or an ensemble of its members."""
    name = " + ".join(r.name for r in members)
    if len(members) == 1:
        return name, members[0].settings()
    return f"ensemble of {name}", {"members": [r.name for r in members]}
