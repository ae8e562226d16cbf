"""Settings of an ablation run (no Keras here: the app and the report read them too)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import AblationError

ARMS = ("none", "poissonblend", "opencv", "accepted")
"""Every arm: original slices only; + PoissonBlend samples; + OpenCV seamlessClone samples;
+ the review database's accepted candidates."""

BASELINE = "none"

# Independent random streams of a run's seed: numpy SeedSequence entropy [seed, STREAM, …].
FOLDS_STREAM, WEIGHTS_STREAM, ORDER_STREAM, EMPTY_STREAM, BOOTSTRAP_STREAM = range(5)


@dataclass(frozen=True)
class ModelOptions:
    """Architecture and optimiser of the U-Net.

    Attributes
    ----------
    base_filters : int
        Convolution filters of the first level; each level down doubles them.
    levels : int
        Poolings (the input is padded to a multiple of ``2 ** levels`` px).
    learning_rate : float
        Adam's step size.
    """

    base_filters: int = 8
    levels: int = 3
    learning_rate: float = 3e-3

    def __post_init__(self) -> None:
        if not (isinstance(self.base_filters, int) and 1 <= self.base_filters <= 512):
            raise AblationError(f"base filters {self.base_filters!r} must be an integer from 1 to 512")
        if not (isinstance(self.levels, int) and 1 <= self.levels <= 6):
            raise AblationError(f"levels {self.levels!r} must be an integer from 1 to 6")
        if not (0 < self.learning_rate < 1):
            raise AblationError(f"learning rate {self.learning_rate!r} must be in (0, 1)")


@dataclass(frozen=True)
class AblationConfig:
    """What an ablation run does; the same config and data give the same report.

    Attributes
    ----------
    arms : tuple of str
        Arms to train, in order, from :data:`ARMS`; must include ``"none"``.
    folds : int
        Case-level folds (K >= 2).
    epochs : int
        Length of training in passes over the fold's original training slices:
        every arm takes ``epochs * ceil(original slices / batch_size)`` optimiser
        steps, so an augmented arm sees more varied data, not more steps.
    batch_size : int
    samples_per_case : int
        Augmented samples per training case (``poissonblend``, ``opencv`` arms).
    empty_fraction : float
        Share of the lesion-free training slices kept (every lesion slice is).
    seed : int
        Folds, initial weights, data order, samples and bootstrap all follow it.
    model : ModelOptions
    """

    arms: tuple[str, ...] = ("none", "poissonblend")
    folds: int = 2
    epochs: int = 16
    batch_size: int = 16
    samples_per_case: int = 6
    empty_fraction: float = 0.25
    seed: int = 0
    model: ModelOptions = field(default_factory=ModelOptions)

    def __post_init__(self) -> None:
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise AblationError(f"unknown arm(s) {', '.join(unknown)}: choose from {', '.join(ARMS)}")
        if BASELINE not in self.arms:
            raise AblationError(f"arms must include the baseline '{BASELINE}' "
                                "(the others are compared with it)")
        if len(set(self.arms)) != len(self.arms):
            raise AblationError(f"arms {','.join(self.arms)} name an arm twice")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise AblationError(f"{name.replace('_', ' ')} {value!r} must be an integer >= 1")
        if not (isinstance(self.samples_per_case, int) and self.samples_per_case >= 0):
            raise AblationError(f"samples per case {self.samples_per_case!r} must be an integer >= 0")
        if not 0 <= self.empty_fraction <= 1:
            raise AblationError(f"empty fraction {self.empty_fraction!r} must be between 0 and 1")
        if not (isinstance(self.folds, int) and self.folds >= 2):
            raise AblationError(f"folds {self.folds!r} must be an integer >= 2")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["arms"] = list(self.arms)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "AblationConfig":
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - names:
            raise AblationError(f"not an ablation config: {data!r:.200}")
        data = dict(data)
        data["arms"] = tuple(data.get("arms", cls.arms))
        if "model" in data:
            data["model"] = ModelOptions(**data["model"])
        return cls(**data)
