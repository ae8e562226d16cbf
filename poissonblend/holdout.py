"""Held-out cases: case ids a sample may never take its lesion or its target from.

A researcher who evaluates on a test split must never train on a sample whose
source lesion or target slice came from a test case. The held-out cases are
given as text, one case id per line (blank lines and ``#`` comments ignored);
``SamplingOptions.holdout`` keeps them out of every draw, a review database
records its own (:meth:`Store.set_holdout`), and ``export`` refuses accepted
candidates that use one.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

from .dataset import Dataset
from .errors import HoldoutError, PoissonBlendWarning
from .recipe import Recipe


def parse_holdout(text: str, *, origin: str = "held-out cases") -> frozenset[str]:
    """Case ids of a held-out list: one per line; blank lines and ``#`` comments ignored.

    Raises
    ------
    HoldoutError
        If a line holds more than one word (`origin` and the line number are named).
    """
    ids = set()
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if len(words) > 1:
            raise HoldoutError(f"{origin}, line {number}: {line.strip()!r} holds more than one "
                               "case id (one per line)")
        ids.update(words)
    return frozenset(ids)


def read_holdout(path: str | os.PathLike) -> frozenset[str]:
    """The case ids of a held-out file (see :func:`parse_holdout`).

    Raises
    ------
    HoldoutError
        If the file cannot be read as text or a line holds more than one id.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise HoldoutError(f"held-out file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise HoldoutError(f"cannot read held-out file {path} ({exc.strerror or exc})") from None
    return parse_holdout(text, origin=str(path))


def warn_unknown_cases(dataset: Dataset, holdout: Iterable[str]) -> list[str]:
    """Warn (:class:`PoissonBlendWarning`) naming held-out ids that are no case of `dataset`.

    Returns
    -------
    list of str
        Those ids, sorted ([] and no warning if there are none).
    """
    unknown = sorted(set(holdout) - dataset.case_ids)
    if unknown:
        warnings.warn(f"{len(unknown)} held-out case id(s) not in the dataset {dataset.input_dir}: "
                      f"{', '.join(unknown)}", PoissonBlendWarning, stacklevel=2)
    return unknown


def held_out_roles(recipe: Recipe, holdout: frozenset[str]) -> list[str]:
    """How `recipe` uses held-out cases, e.g. ``["source 0003", "target 0007"]`` ([] if not)."""
    return [f"{role} {case}" for role, case in (("source", recipe.source_case),
                                                ("target", recipe.target_case))
            if case in holdout]


__all__ = ["held_out_roles", "parse_holdout", "read_holdout", "warn_unknown_cases"]
