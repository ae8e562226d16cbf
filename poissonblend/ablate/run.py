"""The ablation run: folds × arms, each result written as soon as it is known.

Layout of the output folder ``DIR``::

    DIR/config.json                    settings + dataset identity (a resumed run must match)
    DIR/fold1/poissonblend/input|mask  the fold's augmented samples (single-slice cases)
    DIR/fold1/poissonblend/manifest.csv   their recipes, with source_case and target_case
    DIR/fold1/none/result.json         per-case Dice of that fold and arm (atomic)
    DIR/report.json, report.md, dice.png

All samples are made first (forking workers is safe before Keras and its
threads are loaded); then each fold/arm without a result is trained from the
fold's initial weights and scored. A killed or interrupted run, started again
with the same settings, keeps every result already written.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..dataset import Dataset
from ..errors import AblationError, OutputError
from ..io import atomic_write_bytes, slice_name
from ..output import folder_lock, manifest_row, read_manifest, write_manifest, write_sample
from ..recipe import SamplingOptions
from .config import BASELINE, EMPTY_STREAM, FOLDS_STREAM, ORDER_STREAM, WEIGHTS_STREAM, AblationConfig
from .data import (Fold, batch_order, case_folds, case_slices, padded_shape, read_samples, to_arrays,
                   training_names)
from .report import build_report, write_report

CONFIG_NAME = "config.json"
RESULT_NAME = "result.json"
SAMPLES_MANIFEST = "manifest.csv"
THRESHOLD = 0.5
"""Probability above which a pixel is predicted lesion."""

Progress = Callable[[str, int, int], None]
"""``progress(label, done, total)``: label e.g. ``"fold 1/2 none"``."""



@dataclass(frozen=True)
class ArmResult:
    """One fold and arm, trained and scored.

    Attributes
    ----------
    per_case : dict of str to float
        Volume Dice of each test case.
    train_slices, samples, steps : int
        Original training slices, augmented samples added, optimiser steps.
    seconds : float
        Wall time of training and scoring.
    """

    per_case: dict
    train_slices: int
    samples: int
    steps: int
    seconds: float

    def to_dict(self) -> dict:
        return dict(vars(self))


def _json_bytes(data: dict) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def fold_dir(out_dir: Path, k: int) -> Path:
    """Folder of fold `k` (0-based) of a run: ``fold1``, ``fold2`` …"""
    return Path(out_dir) / f"fold{k + 1}"


def _check_out_dir(out_dir: Path, dataset: Dataset, identity: dict) -> None:
    """Make `out_dir`, or accept it as an earlier run of these settings on this data."""
    resolved = out_dir.resolve()
    for folder in (dataset.input_dir, dataset.mask_dir):
        if resolved == folder or folder in resolved.parents:
            raise AblationError(f"output folder {out_dir} is inside the dataset folder {folder}")
    if out_dir.exists() and not out_dir.is_dir():
        raise AblationError(f"output folder {out_dir} is a file")
    config_path = out_dir / CONFIG_NAME
    if config_path.exists():
        try:
            recorded = json.loads(config_path.read_text())
        except (OSError, ValueError) as exc:
            raise AblationError(f"{config_path} is unreadable ({exc}); choose another --out") from None
        if recorded != identity:
            changed = sorted(k for k in set(recorded) | set(identity) if recorded.get(k) != identity.get(k))
            raise AblationError(f"{out_dir} holds a run with other settings or data ({', '.join(changed)} "
                                "differ); resume it with the same ones or choose another --out")
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise AblationError(f"output folder {out_dir} is not empty and holds no ablation run; "
                            "choose a new or empty folder")
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(config_path, _json_bytes(identity))


@contextlib.contextmanager
def _run_lock(out_dir: Path) -> Iterator[None]:
    """One run at a time per output folder (released by the kernel if the process dies)."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(folder_lock(out_dir))
        except OutputError:
            raise AblationError(f"another ablate run is writing to {out_dir} right now") from None
        yield


def _run_identity(dataset: Dataset, config: AblationConfig, holdout: frozenset[str],
                  store_path: Path | None) -> dict:
    return {"settings": config.to_dict(), "holdout": sorted(holdout),
            "dataset": {"input_dir": str(dataset.input_dir), "mask_dir": str(dataset.mask_dir),
                        "identity": dataset.identity},
            "db": None if store_path is None else str(Path(store_path).resolve())}


def _make_generated(dataset: Dataset, fold: Fold, arm: str, folder: Path, config: AblationConfig) -> None:
    """Draw the arm's samples (method `arm`) from the fold's training cases alone, with their manifest.

    Every other case (the fold's test cases, the held-out ones) is held out of the draw.
    """
    from ..generate import generate

    options = SamplingOptions(method=arm, holdout=dataset.case_ids - set(fold.train))
    # Forked workers would deadlock on JAX's threads if an earlier run in this process started them.
    workers = 1 if "jax" in sys.modules else None
    generate(dataset, folder / "input", folder / "mask", count=config.samples_per_case * len(fold.train),
             seed=config.seed, options=options, workers=workers, manifest=folder / SAMPLES_MANIFEST)


def _make_accepted(dataset: Dataset, fold: Fold, folder: Path, store_path: Path) -> None:
    """Write the accepted candidates whose source and target are both training cases of the fold."""
    from ..store import Store

    store = Store.open(store_path, dataset)
    train = set(fold.train)
    rows = []
    for c in store.candidates(state="accepted"):
        if c.recipe.source_case in train and c.recipe.target_case in train:
            write_sample(store.render(c), c.case_id, folder / "input", folder / "mask")
            rows.append(manifest_row(c.case_id, c.recipe, c.quality, seed=c.seed,
                                     sample_index=c.sample_index))
    write_manifest(folder / SAMPLES_MANIFEST, rows, merge=False)


def prepare_samples(dataset: Dataset, folds: tuple[Fold, ...], out_dir: Path, config: AblationConfig, *,
                    store_path: Path | None) -> None:
    """Make every fold's augmented samples (skipped where a run already made them)."""
    for k, fold in enumerate(folds):
        for arm in config.arms:
            if arm == BASELINE:
                continue
            folder = fold_dir(out_dir, k) / arm
            if (folder / RESULT_NAME).exists():
                continue
            if arm == "accepted":
                _make_accepted(dataset, fold, folder, store_path)
            else:
                _make_generated(dataset, fold, arm, folder, config)


def _sample_pairs(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    names = [slice_name(r["case_id"], 0) for r in read_manifest(folder / SAMPLES_MANIFEST)]
    return read_samples(folder / "input", folder / "mask", names)


def _score(model, dataset: Dataset, cases: tuple[str, ...], shape_rc: tuple[int, int],
           batch_size: int) -> dict[str, float]:
    from .model import predict
    from .stats import volume_dice

    scores = {}
    for case, names in case_slices(dataset, cases).items():
        pairs = [dataset.load(n) for n in names]
        x, _ = to_arrays(pairs, shape_rc)
        prob = predict(model, x, batch_size=batch_size)
        pred = np.stack([p[:m.shape[0], :m.shape[1]] > THRESHOLD for p, (_, m) in zip(prob, pairs)])
        scores[case] = volume_dice(pred, np.stack([m for _, m in pairs]))
    return scores


def _train_fold(model, dataset: Dataset, fold: Fold, k: int, out_dir: Path, config: AblationConfig,
                shape_rc: tuple[int, int], progress: Progress | None) -> None:
    from .model import initial_weights, optimizer_state, reset, train

    todo = [a for a in config.arms if not (fold_dir(out_dir, k) / a / RESULT_NAME).exists()]
    if not todo:
        return
    seed = config.seed
    names = training_names(dataset, fold.train, empty_fraction=config.empty_fraction,
                           rng=[seed, EMPTY_STREAM, k])
    originals = [dataset.load(n) for n in names]
    steps = config.epochs * math.ceil(len(originals) / config.batch_size)
    weights = initial_weights(model, [seed, WEIGHTS_STREAM, k])
    fresh = optimizer_state(model)
    label_fold = f"fold {k + 1}/{config.folds}"
    for arm in todo:
        started = time.perf_counter()
        folder = fold_dir(out_dir, k) / arm
        samples = [] if arm == BASELINE else _sample_pairs(folder)
        x, y = to_arrays(originals + samples, shape_rc)
        batches = batch_order(len(x), steps=steps, batch_size=config.batch_size, rng=[seed, ORDER_STREAM, k])
        reset(model, weights, fresh)
        label = f"{label_fold} {arm}"
        train(model, x, y, batches, progress=(lambda d, t: progress(label, d, t)) if progress else None)
        del x, y
        per_case = _score(model, dataset, fold.test, shape_rc, config.batch_size)
        result = ArmResult(per_case, len(originals), len(samples), steps,
                           round(time.perf_counter() - started, 1))
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / RESULT_NAME, _json_bytes(result.to_dict()))
    reset(model, weights, fresh)


def load_results(out_dir: Path, folds: tuple[Fold, ...], arms: tuple[str, ...]) -> dict:
    """``{(k, arm): ArmResult}`` of the fold/arm results written so far."""
    results = {}
    for k in range(len(folds)):
        for arm in arms:
            path = fold_dir(out_dir, k) / arm / RESULT_NAME
            if path.exists():
                results[k, arm] = ArmResult(**json.loads(path.read_text()))
    return results


def run_ablation(dataset: Dataset, out_dir: str | os.PathLike, config: AblationConfig = AblationConfig(), *,
                 store_path: str | os.PathLike | None = None, holdout: frozenset[str] = frozenset(),
                 progress: Progress | None = None) -> dict:
    """Run (or resume) an ablation and write its report; return the report.

    Parameters
    ----------
    dataset : Dataset
        The user's slices; cases are grouped by case id.
    out_dir : path
        New or empty folder, or the folder of an earlier run of the same
        settings on the same data (resumed: finished fold/arm results are kept).
    config : AblationConfig
    store_path : path, optional
        Review database of the ``accepted`` arm.
    holdout : frozenset of str
        Case ids kept out of the ablation altogether: in no fold, never a
        source or target of a sample (ids not in the dataset are ignored).
    progress : callable(label, done, total), optional
        Called after each optimiser step.

    Raises
    ------
    AblationError
        Bad settings, too few cases, an output folder of another run.
    """
    out_dir = Path(out_dir)
    if "accepted" in config.arms and store_path is None:
        raise AblationError("the 'accepted' arm needs a review database (--db)")
    folds = case_folds(dataset.case_ids - set(holdout), folds=config.folds, rng=[config.seed, FOLDS_STREAM])
    identity = _run_identity(dataset, config, frozenset(holdout), store_path)
    _check_out_dir(out_dir, dataset, identity)
    with _run_lock(out_dir):
        prepare_samples(dataset, folds, out_dir, config, store_path=store_path)
        shape_rc = padded_shape((s.shape for s in dataset.slices), 2 ** config.model.levels)
        if len(load_results(out_dir, folds, config.arms)) < len(folds) * len(config.arms):
            from .model import build_unet

            model = build_unet(shape_rc, config.model)
            for k, fold in enumerate(folds):
                _train_fold(model, dataset, fold, k, out_dir, config, shape_rc, progress)
        results = load_results(out_dir, folds, config.arms)
        samples = [{a: f"{fold_dir(Path(), k) / a / SAMPLES_MANIFEST}" for a in config.arms if a != BASELINE}
                   for k in range(len(folds))]
        report = build_report(folds, results, config, identity=identity, samples=samples)
        write_report(out_dir, report)
        return report
