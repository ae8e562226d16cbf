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

from .blend import Blend, Quality, blend, check_margin
from .dataset import Dataset
from .errors import LesionError, PlacementError, RecipeError, SeamlessCloneError
from .io import parse_slice_name
from .lesions import LesionPatch, cut_lesion, lesion_component, transform_lesion
from .opencv_blend import opencv_blend
from .placement import MIN_BRAIN_FRACTION, sample_spot, valid_spots
from .poisson import MODES

CASE_ID_PREFIX = "pb"
METHODS = ("poissonblend", "opencv")
"""How a recipe is blended: poissonblend's own solve, or the seed script's ``cv2.seamlessClone``."""


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
        if self.rotation_range[0] > self.rotation_range[1]:
            raise RecipeError(f"rotation range {self.rotation_range} must be (low, high)")
        check_margin(self.margin)
        if not (isinstance(self.min_area, int) and self.min_area >= 1):
            raise RecipeError(f"minimum lesion area {self.min_area!r} must be an integer >= 1 px")

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
def _targets(dataset: Dataset, holdout: frozenset[str]) -> tuple[str, ...]:
    """Names of the slices with brain outside the held-out cases."""
    if not holdout:
        return dataset.target_names
    return tuple(name for name in dataset.target_names if dataset.info(name).case_id not in holdout)


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
    ``options.min_area`` px, the target
    uniformly among slices with brain, the spot uniformly among valid spots;
    slices of ``options.holdout`` cases are never drawn.

    Raises
    ------
    PlacementError
        If no valid placement turned up in ``options.max_tries`` draws.
    """
    rng = np.random.default_rng(rng)
    sources = _sources(dataset, options.min_area, options.holdout)
    targets = _targets(dataset, options.holdout)
    outside = " outside the held-out cases" if options.holdout else ""
    if not len(sources):
        raise PlacementError(f"no lesion of at least {options.min_area} px in the dataset{outside}")
    if not targets:
        raise PlacementError(f"no slice with brain tissue to place a lesion on{outside}")
    table = dataset.lesion_table
    for _ in range(options.max_tries):
        row = sources[rng.integers(len(sources))]
        source, lesion = dataset.slices[table.slice_row[row]].name, int(table.index[row])
        target = targets[rng.integers(len(targets))]
        scale = float(rng.uniform(*options.scale_range))
        rotation = float(rng.uniform(*options.rotation_range))
        flip_h, flip_v = (bool(b) for b in rng.integers(2, size=2)) if options.flip else (False, False)
        draft = Recipe(source, lesion, target, 0, 0, options.mode, round(scale, 3),
                       round(rotation, 1), flip_h, flip_v, options.margin)
        try:
            valid = valid_spots_for(dataset, draft, avoid_lesions=options.avoid_lesions,
                                    min_brain_fraction=options.min_brain_fraction)
        except LesionError:
            continue  # vanished at this scale: draw again
        if valid.any():
            x, y = sample_spot(valid, rng)
            return Recipe(source, lesion, target, x, y, options.mode, draft.scale,
                          draft.rotation, flip_h, flip_v, options.margin, options.method)
    raise PlacementError(
        f"no valid placement found in {options.max_tries} draws: lesions are too large "
        "for the targets' brains, or the targets are full of lesions")


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
    method = opencv_blend if recipe.method == "opencv" else blend
    result: Blend = method(patch, target, target_lesions, center_xy=(recipe.x, recipe.y),
                           mode=recipe.mode, margin=recipe.margin,
                           brain=dataset.brain(recipe.target))
    return Sample(recipe, result.image, result.mask, result.lesion_mask, result.quality)


def draw_sample(dataset: Dataset, rng: np.random.Generator | int,
                options: SamplingOptions = SamplingOptions()) -> tuple[Sample, int]:
    """Draw a recipe and render it, drawing again where the "opencv" method fails.

    ``sample_recipe`` then ``render``; for ``options.method == "opencv"`` a recipe
    on which OpenCV raises (:class:`SeamlessCloneError`) is discarded and the
    next one drawn from the same `rng`, so the result is still determined by it.
    (The "poissonblend" method never fails here: this is exactly ``sample_recipe``
    and ``render``.)

    Returns
    -------
    sample : Sample
    redrawn : int
        Recipes discarded because OpenCV raised.

    Raises
    ------
    PlacementError
        If no valid placement turned up, or OpenCV failed on ``options.max_tries``
        recipes in a row.
    """
    rng = np.random.default_rng(rng)
    for redrawn in range(options.max_tries):
        recipe = sample_recipe(dataset, rng, options)
        try:
            return render(dataset, recipe), redrawn
        except SeamlessCloneError:
            continue
    raise PlacementError(f"OpenCV's seamlessClone failed on {options.max_tries} recipes in a row; "
                         "draw larger lesions (min_area) or use the poissonblend method")


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


__all__ = ["METHODS", "MethodComparison", "Quality", "Recipe", "Sample", "SamplingOptions",
           "check_method", "draw_sample", "lesion_patch", "placed_lesion_mask", "render",
           "render_methods", "sample_recipe", "sample_rng", "valid_spots_for"]
