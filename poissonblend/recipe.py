"""Recipes: everything that determines one sample, drawn at random and rendered.

Sample, then apply: :func:`sample_recipe` draws a :class:`Recipe` from a
dataset and a random generator; :func:`render` turns a recipe into pixels,
deterministically. A recipe is a frozen dataclass of JSON types; the store and
the manifests keep recipes, never pixels.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from functools import lru_cache

import numpy as np

from .blend import VISIBLE_FRACTION, Blend, Quality, blend, check_margin
from .dataset import MIN_TARGET_TISSUE, Dataset
from .errors import LesionError, PlacementError, RecipeError, SeamlessCloneError
from .io import parse_slice_name
from .lesions import LesionPatch, cut_lesion, lesion_component, transform_lesion
from .opencv_blend import opencv_blend
from .placement import MIN_BRAIN_FRACTION, draw_spot, valid_spots
from .poisson import MODES

CASE_ID_PREFIX = "pb"
METHODS = ("poissonblend", "opencv")
"""How a recipe is blended: poissonblend's own solve, or the seed script's ``cv2.seamlessClone``."""
MAX_LEVEL_SHIFT = 0.15
"""Default largest |target level − source level| (levels: 0 = first slice of a case, 1 = last)."""
MAX_LESION_FRACTION = 0.25
"""Default largest placed lesion, as a fraction of the target's tissue (brain) area."""


@dataclass(frozen=True)
class Recipe:
    """Everything that determines one PoissonBlend sample.

    Attributes
    ----------
    source : str
        File name of the source slice.
    lesion : int
        Index of the lesion (8-connected component) in the source mask.
    target : str
        File name of the target slice.
    x, y : int
        Target column and row receiving the centre of the (transformed) lesion's bbox.
    mode : {"normal", "mixed"}
    scale : float
        Lesion size factor.
    rotation : float
        Degrees, counter-clockwise as displayed.
    flip_h, flip_v : bool
        Mirror the lesion left-right / top-bottom (before scale and rotation).
    margin : int
        Px by which the lesion is grown to form the Poisson region.
    method : {"poissonblend", "opencv"}
        :func:`~poissonblend.blend.blend`, or the seed script's
        :func:`~poissonblend.opencv_blend.opencv_blend`. Left out of
        :meth:`to_dict` when "poissonblend", so recipes made before it existed
        keep their JSON, hash and case id.
    """

    source: str
    lesion: int
    target: str
    x: int
    y: int
    mode: str = "normal"
    scale: float = 1.0
    rotation: float = 0.0
    flip_h: bool = False
    flip_v: bool = False
    margin: int = 6
    method: str = "poissonblend"

    def __post_init__(self) -> None:
        types = {"source": str, "lesion": int, "target": str, "x": int, "y": int, "mode": str,
                 "scale": (int, float), "rotation": (int, float), "flip_h": bool,
                 "flip_v": bool, "margin": int, "method": str}
        for name, kind in types.items():
            value = getattr(self, name)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise RecipeError(f"recipe field {name}={value!r} has the wrong type")
        if self.mode not in MODES:
            raise RecipeError(f"mode {self.mode!r} must be one of {', '.join(MODES)}")
        check_method(self.method)
        if not (math.isfinite(self.scale) and 0.1 <= self.scale <= 10):
            raise RecipeError(f"scale {self.scale} must be between 0.1 and 10")
        if not math.isfinite(self.rotation):
            raise RecipeError(f"rotation {self.rotation} must be a finite number of degrees")
        if self.lesion < 0:
            raise RecipeError(f"lesion {self.lesion} must be >= 0")
        check_margin(self.margin)
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "rotation", float(self.rotation))

    def to_dict(self) -> dict:
        """Plain JSON types; ``Recipe.from_dict(r.to_dict()) == r``.

        ``method`` is left out when it is the default ("poissonblend").
        """
        data = dict(vars(self))
        if data["method"] == METHODS[0]:
            del data["method"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Recipe":
        """Rebuild a recipe; :class:`RecipeError` on missing or unknown fields."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict):
            raise RecipeError(f"a recipe must be a JSON object, not {type(data).__name__}")
        unknown = set(data) - names
        if unknown:
            raise RecipeError(f"unknown recipe field(s): {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise RecipeError(f"incomplete recipe: {exc}") from None

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): equal recipes give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def source_case(self) -> str:
        """Case id of the source slice (``slice_<case_id>_<NNNN>.png``)."""
        return parse_slice_name(self.source)[0]

    @property
    def target_case(self) -> str:
        """Case id of the target slice."""
        return parse_slice_name(self.target)[0]

    @property
    def flips(self) -> str:
        """``""``, ``"h"``, ``"v"`` or ``"hv"``."""
        return ("h" if self.flip_h else "") + ("v" if self.flip_v else "")

    def case_id(self, taken: frozenset[str] | set[str] = frozenset()) -> str:
        """The output case id: ``pb`` + hex digest of the recipe, no underscore.

        Stable for the same recipe; lengthened in the (practically impossible)
        event that it equals an id in `taken` (e.g. the input set's case ids).
        """
        digest = hashlib.blake2b(self.to_json().encode(), digest_size=16).hexdigest()
        for length in (10, 16, 32):
            case_id = CASE_ID_PREFIX + digest[:length]
            if case_id not in taken:
                return case_id
        raise RecipeError(f"case id {case_id} of recipe collides with an existing case")


@dataclass(frozen=True)
class SamplingOptions:
    """How :func:`sample_recipe` draws recipes.

    Attributes
    ----------
    mode : {"normal", "mixed"}
    scale_range : (float, float)
        Scale drawn uniformly from this range.
    rotation_range : (float, float)
        Rotation (degrees) drawn uniformly from this range.
    flip : bool
        Flip left-right and top-bottom each with probability 1/2.
    margin : int
        Poisson region growth, px.
    min_area : int
        Only lesions of at least this many px (before transform) are drawn as
        sources; e.g. 9 leaves out 1–8 px specks.
    avoid_lesions : bool
        Never place a lesion over the target's own lesions.
    min_brain_fraction : float
        Fraction of the lesion that must land inside the target's brain.
    max_tries : int
        Source/target draws before giving up with :class:`PlacementError`.
    method : {"poissonblend", "opencv"}
        The recipes' :attr:`Recipe.method`.
    holdout : frozenset of str
        Held-out case ids: never a source, never a target (any iterable of ids is
        turned into a frozenset).
    min_target_tissue : float
        A target's brain area is at least this fraction of the largest in its
        case (0.2: the near-empty first and last slices of a volume are never
        targets); 0 allows every slice with tissue.
    max_level_shift : float or None
        The target's level (0 = first slice of its case, 1 = last) lies within
        this distance of the source's (0.15: a mid-brain lesion stays mid-brain);
        None draws targets at any level.
    max_lesion_fraction : float
        The placed lesion (after scaling) is at most this fraction of the
        target's brain area.
    min_changed_fraction : float
        :func:`draw_sample` (``generate``, ``queue``) draws again where fewer than
        this fraction of the lesion's pixels changed by more than 3 grey levels
        (the lesion did not visibly arrive); 0 keeps every sample. Not applied to
        method "opencv", which keeps the seed script's flaws on purpose.
    """

    mode: str = "normal"
    scale_range: tuple[float, float] = (1.0, 1.0)
    rotation_range: tuple[float, float] = (0.0, 0.0)
    flip: bool = False
    margin: int = 6
    min_area: int = 1
    avoid_lesions: bool = True
    min_brain_fraction: float = MIN_BRAIN_FRACTION
    max_tries: int = 100

    # issue 13: the seed script's method; held-out cases
    method: str = "poissonblend"
    holdout: frozenset[str] = frozenset()

    # issue 10: plausible samples (tissue, level, size, visibility)
    min_target_tissue: float = MIN_TARGET_TISSUE
    max_level_shift: float | None = MAX_LEVEL_SHIFT
    max_lesion_fraction: float = MAX_LESION_FRACTION
    min_changed_fraction: float = VISIBLE_FRACTION

    def __post_init__(self) -> None:
        check_method(self.method)
        if isinstance(self.holdout, str) or not isinstance(self.holdout, Iterable):
            raise RecipeError(f"holdout {self.holdout!r} must be a set of case ids")
        holdout = frozenset(self.holdout)
        if not all(isinstance(case, str) for case in holdout):
            raise RecipeError(f"holdout {sorted(map(repr, holdout))} must hold case ids (strings)")
        object.__setattr__(self, "holdout", holdout)
        if self.mode not in MODES:
            raise RecipeError(f"mode {self.mode!r} must be one of {', '.join(MODES)}")
        lo, hi = self.scale_range
        if not (0.1 <= lo <= hi <= 10):
            raise RecipeError(f"scale range {self.scale_range} must satisfy 0.1 <= low <= high <= 10")
        if not (math.isfinite(self.rotation_range[0]) and math.isfinite(self.rotation_range[1])
                and self.rotation_range[0] <= self.rotation_range[1]):
            raise RecipeError(f"rotation range {self.rotation_range} must be finite (low, high) degrees")
        check_margin(self.margin)
        if not (isinstance(self.min_area, int) and self.min_area >= 1):
            raise RecipeError(f"minimum lesion area {self.min_area!r} must be an integer >= 1 px")
        for name in ("min_target_tissue", "max_level_shift", "max_lesion_fraction",
                     "min_changed_fraction"):
            value = getattr(self, name)
            if value is None and name == "max_level_shift":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise RecipeError(f"{name} {value!r} must be a number from 0 to 1")
        if self.max_lesion_fraction <= 0:
            raise RecipeError(f"max_lesion_fraction {self.max_lesion_fraction!r} must be > 0")

    def to_dict(self) -> dict:
        data = dict(vars(self))
        data["holdout"] = sorted(self.holdout)
        return data


def check_method(method: str) -> None:
    """:class:`RecipeError` unless `method` is one of :data:`METHODS`."""
    if method not in METHODS:
        raise RecipeError(f"method {method!r} must be one of {', '.join(METHODS)}")


def _held_out_slices(dataset: Dataset, holdout: frozenset[str]) -> np.ndarray:
    """(n_slices,) bool: the slice belongs to a held-out case."""
    return np.fromiter((s.case_id in holdout for s in dataset.slices), bool, len(dataset.slices))


@lru_cache(maxsize=64)
def _sources(dataset: Dataset, min_area: int, holdout: frozenset[str] = frozenset()) -> np.ndarray:
    """Rows of ``dataset.lesion_table`` (lesions in slice-name order) of at least `min_area` px,
    outside the held-out cases."""
    table = dataset.lesion_table
    keep = table.area >= min_area
    if holdout:
        keep &= ~_held_out_slices(dataset, holdout)[table.slice_row]
    return np.flatnonzero(keep)


@lru_cache(maxsize=64)
def _targets(dataset: Dataset, min_target_tissue: float,
             holdout: frozenset[str] = frozenset()) -> tuple[np.ndarray, np.ndarray]:
    """Rows (of ``dataset.slices``) of the targets outside the held-out cases, sorted by level
    (ties by name), and their levels."""
    rows = np.array([dataset.row(n) for n in dataset.targets(min_target_tissue)
                     if dataset.info(n).case_id not in holdout], np.int64)
    levels = np.array([dataset.slices[k].level for k in rows.tolist()], np.float64)
    order = np.argsort(levels, kind="stable")
    return rows[order], levels[order]


def _level_range(levels: np.ndarray, level: float, max_shift: float | None) -> tuple[int, int]:
    """Positions ``lo:hi`` of sorted `levels` within `max_shift` of `level` (all if None)."""
    if max_shift is None:
        return 0, len(levels)
    eps = 1e-9  # levels are k / (n - 1): keep a shift of exactly max_shift
    return (int(np.searchsorted(levels, level - max_shift - eps, "left")),
            int(np.searchsorted(levels, level + max_shift + eps, "right")))


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of sample `index` of a batch drawn with `seed`.

    Each sample has its own stream, so sample ``i`` is the same whether a batch
    is drawn by one process or many.
    """
    return np.random.default_rng([index, seed])


@lru_cache(maxsize=2048)
def _lesion_patch(dataset: Dataset, source: str, lesion: int, scale: float, rotation: float,
                  flip_h: bool, flip_v: bool, margin: int) -> LesionPatch:
    info = dataset.info(source)
    if not 0 <= lesion < len(info.lesions):
        raise LesionError(f"{source} has {len(info.lesions)} lesion(s); there is no lesion {lesion}")
    image, lesion_mask = dataset.load(source)
    les = info.lesions[lesion]
    pad = margin + 1
    identity = scale == 1.0 and rotation % 360 == 0
    patch = cut_lesion(image, lesion_component(lesion_mask, les), les,
                       pad=pad if identity else pad + int(math.ceil(pad / scale)))
    if not (identity and not flip_h and not flip_v):
        patch = transform_lesion(patch, scale=scale, rotation=rotation, flip_h=flip_h,
                                 flip_v=flip_v, pad=pad)
    for a in (patch.image, patch.mask):
        a.flags.writeable = False
    return patch


def lesion_patch(dataset: Dataset, recipe: Recipe) -> LesionPatch:
    """The recipe's lesion, cut from its source and transformed (cached, read-only)."""
    return _lesion_patch(dataset, recipe.source, recipe.lesion, recipe.scale, recipe.rotation,
                         recipe.flip_h, recipe.flip_v, recipe.margin)


def placed_lesion_mask(patch: LesionPatch) -> np.ndarray:
    """The patch's lesion cropped to its bounding box, as placement works with it."""
    r0, c0, r1, c1 = patch.bbox_rc
    return patch.mask[r0:r1, c0:c1]


def valid_spots_for(dataset: Dataset, recipe: Recipe, *, avoid_lesions: bool = True,
                    min_brain_fraction: float = MIN_BRAIN_FRACTION) -> np.ndarray:
    """Valid (row, col) = (y, x) map for the recipe's lesion on its target (x, y ignored)."""
    lesion = placed_lesion_mask(lesion_patch(dataset, recipe))
    _, target_lesions = dataset.load(recipe.target)
    return valid_spots(lesion, dataset.brain(recipe.target), target_lesions if avoid_lesions else None,
                       min_brain_fraction=min_brain_fraction)


def sample_recipe(dataset: Dataset, rng: np.random.Generator | int,
                  options: SamplingOptions = SamplingOptions()) -> Recipe:
    """Draw one recipe: a lesion, a target, a transform and a valid spot.

    The lesion is drawn uniformly among the dataset's lesions of at least
    ``options.min_area`` px; the target uniformly among the slices with at least
    ``options.min_target_tissue`` of their case's largest brain area whose level
    lies within ``options.max_level_shift`` of the source's; a placed lesion
    larger than ``options.max_lesion_fraction`` of the target's brain area is
    drawn again; the spot is drawn uniformly among valid spots
    (:func:`~poissonblend.placement.draw_spot`). Slices of ``options.holdout``
    cases are never drawn.

    Raises
    ------
    PlacementError
        If no valid placement turned up in ``options.max_tries`` draws.
    """
    rng = np.random.default_rng(rng)
    sources = _sources(dataset, options.min_area, options.holdout)
    target_rows, target_levels = _targets(dataset, options.min_target_tissue, options.holdout)
    outside = " outside the held-out cases" if options.holdout else ""
    if not len(sources):
        raise PlacementError(f"no lesion of at least {options.min_area} px in the dataset{outside}")
    if not len(target_rows):
        raise PlacementError(f"no slice with brain tissue to place a lesion on{outside}")
    table = dataset.lesion_table
    for _ in range(options.max_tries):
        row = sources[rng.integers(len(sources))]
        source_info = dataset.slices[table.slice_row[row]]
        lo, hi = _level_range(target_levels, source_info.level, options.max_level_shift)
        if hi == lo:
            continue  # no target at this lesion's level
        target_info = dataset.slices[target_rows[lo + rng.integers(hi - lo)]]
        scale = float(rng.uniform(*options.scale_range))
        rotation = float(rng.uniform(*options.rotation_range))
        flip_h, flip_v = (bool(b) for b in rng.integers(2, size=2)) if options.flip else (False, False)
        lesion_index, scale, rotation = int(table.index[row]), round(scale, 3), round(rotation, 1)
        try:
            lesion = placed_lesion_mask(_lesion_patch(dataset, source_info.name, lesion_index, scale,
                                                      rotation, flip_h, flip_v, options.margin))
        except LesionError:
            continue  # vanished at this scale: draw again
        if np.count_nonzero(lesion) > options.max_lesion_fraction * target_info.brain_area:
            continue
        avoid = options.avoid_lesions and len(target_info.lesions) > 0
        spot = draw_spot(lesion, dataset.brain(target_info.name),
                         dataset.load(target_info.name)[1] if avoid else None,
                         rng, brain_bbox_rc=target_info.brain_bbox_rc,
                         min_brain_fraction=options.min_brain_fraction)
        if spot is not None:
            return Recipe(source_info.name, lesion_index, target_info.name, *spot, options.mode,
                          scale, rotation, flip_h, flip_v, options.margin, options.method)
    raise PlacementError(
        f"no valid placement found in {options.max_tries} draws: lesions are too large "
        "for the targets' brains, the targets are full of lesions, or no target lies at "
        "the lesions' levels")


@dataclass(frozen=True, eq=False)
class Sample:
    """A rendered recipe.

    Attributes
    ----------
    recipe : Recipe
    image : (M, N) ndarray of uint8
        The blended target.
    mask : (M, N) ndarray of uint8
        Target mask ∪ placed lesion, 0/255.
    lesion_mask : (M, N) ndarray of bool
        The placed lesion alone.
    quality : Quality
    """

    recipe: Recipe
    image: np.ndarray
    mask: np.ndarray
    lesion_mask: np.ndarray
    quality: Quality


def render(dataset: Dataset, recipe: Recipe) -> Sample:
    """Make the sample a recipe describes; the same recipe always gives the same bytes.

    Raises
    ------
    DatasetError
        If the recipe's source or target is not in the dataset.
    LesionError
        If the lesion index does not exist or the lesion vanishes at its scale.
    PlacementError
        If the lesion does not fit in the target at (x, y).
    SeamlessCloneError
        If ``recipe.method`` is "opencv" and OpenCV raises on the lesion (tiny lesions).
    """
    patch = lesion_patch(dataset, recipe)
    target, target_lesions = dataset.load(recipe.target)
    levels = (dataset.info(recipe.source).level, dataset.info(recipe.target).level)
    method = opencv_blend if recipe.method == "opencv" else blend
    result: Blend = method(patch, target, target_lesions, center_xy=(recipe.x, recipe.y),
                           mode=recipe.mode, margin=recipe.margin,
                           brain=dataset.brain(recipe.target), levels=levels)
    return Sample(recipe, result.image, result.mask, result.lesion_mask, result.quality)


@dataclass(frozen=True, eq=False)
class Draw:
    """A sample drawn by :func:`draw_sample`, and the recipes dropped before it.

    Attributes
    ----------
    sample : Sample
        ``render(dataset, sample.recipe)``.
    redrawn : int
        Recipes dropped because OpenCV's seamlessClone raised (method "opencv").
    invisible : int
        Recipes dropped because their lesion did not visibly arrive.
    """

    sample: Sample
    redrawn: int = 0
    invisible: int = 0

    def __iter__(self):
        """Unpacks as ``sample, redrawn`` (what :func:`draw_sample` returned before it counted
        invisible lesions)."""
        return iter((self.sample, self.redrawn))


def draw_sample(dataset: Dataset, rng: np.random.Generator | int,
                options: SamplingOptions = SamplingOptions()) -> Draw:
    """Draw recipes with `rng` and render them until one makes a sample worth writing.

    ``sample_recipe`` then ``render``; a recipe is dropped and the next one of
    the same `rng` drawn where the lesion did not visibly arrive (fewer than
    ``options.min_changed_fraction`` of its pixels changed by more than 3 grey
    levels; method "poissonblend" only: "opencv" keeps the seed script's
    invisible lesions on purpose) or OpenCV raised (method "opencv"), so the
    result depends on `rng` alone (``generate`` and ``queue`` give sample ``i``
    the same stream for any number of workers).

    Raises
    ------
    PlacementError
        If no valid placement turned up, or ``options.max_tries`` recipes in a
        row were dropped.
    """
    rng = np.random.default_rng(rng)
    redrawn = invisible = 0
    for _ in range(options.max_tries):
        recipe = sample_recipe(dataset, rng, options)
        try:
            sample = render(dataset, recipe)
        except SeamlessCloneError:
            redrawn += 1
            continue
        if recipe.method == "poissonblend" and (
                sample.quality.changed_fraction < options.min_changed_fraction):
            invisible += 1
            continue
        return Draw(sample, redrawn, invisible)
    if not invisible:
        raise PlacementError(f"OpenCV's seamlessClone failed on {options.max_tries} recipes in a "
                             "row; draw larger lesions (min_area) or use the poissonblend method")
    raise PlacementError(
        f"{options.max_tries} samples in a row did not show their lesion (fewer than "
        f"{options.min_changed_fraction:.0%} of its pixels changed by more than 3 grey levels): "
        "the lesions are too faint for these targets")


def default_target(dataset: Dataset, source: str, *, max_level_shift: float | None = MAX_LEVEL_SHIFT,
                   min_target_tissue: float = MIN_TARGET_TISSUE,
                   holdout: frozenset[str] = frozenset()) -> str | None:
    """A plausible target for a lesion of slice `source`, chosen without randomness.

    Among the targets (:meth:`Dataset.targets`) of other cases whose level lies
    within `max_level_shift` of the source's (the nearest levels if none does),
    the one whose brain area is closest to their median (ties: nearest level,
    then name); targets of the source's own case only when no other case has
    one. Never a slice of a `holdout` case. None if the dataset has no target.
    """
    info = dataset.info(source)
    names = [n for n in dataset.targets(min_target_tissue) if dataset.info(n).case_id not in holdout]
    others = [n for n in names if dataset.info(n).case_id != info.case_id] or list(names)
    if not others:
        return None
    shift = {n: abs(dataset.info(n).level - info.level) for n in others}
    limit = max_level_shift if max_level_shift is not None else 1.0
    near = [n for n in others if shift[n] <= limit + 1e-9] or [
        n for n in others if shift[n] == min(shift.values())]
    median = float(np.median([dataset.info(n).brain_area for n in near]))
    return min(near, key=lambda n: (abs(dataset.info(n).brain_area - median), shift[n], n))


@dataclass(frozen=True, eq=False)
class MethodComparison:
    """One recipe rendered by every method (see :func:`render_methods`).

    Attributes
    ----------
    samples : dict of str to Sample
        Method → its sample, for the methods that rendered.
    errors : dict of str to str
        Method → the one-line error of a method that failed (e.g. OpenCV on a tiny lesion).
    """

    samples: dict[str, Sample]
    errors: dict[str, str]


def render_methods(dataset: Dataset, recipe: Recipe,
                   methods: Iterable[str] = METHODS) -> MethodComparison:
    """Render `recipe` with each of `methods` (its own ``method`` field is ignored).

    A :class:`SeamlessCloneError` is recorded in ``errors``; every other error
    (no such slice, spot outside the target) is raised, as :func:`render` does.
    """
    samples, errors = {}, {}
    for method in methods:
        check_method(method)
        try:
            samples[method] = render(dataset, replace(recipe, method=method))
        except SeamlessCloneError as exc:
            errors[method] = str(exc)
    return MethodComparison(samples, errors)


__all__ = ["METHODS", "Draw", "MethodComparison", "Quality", "Recipe", "Sample", "SamplingOptions",
           "check_method", "default_target", "draw_sample", "lesion_patch", "placed_lesion_mask",
           "render", "render_methods", "sample_recipe", "sample_rng", "valid_spots_for"]
