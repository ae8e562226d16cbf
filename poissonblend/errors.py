"""Exception and warning types raised by every layer of poissonblend.

The library raises these; the CLI prints them as one ``error: …`` line (exit 2)
and the app shows them with ``st.error``. Anything else is a bug and is allowed
to show its traceback.
"""

from __future__ import annotations


class PoissonBlendError(Exception):
    """Base class: a user-facing problem with the input, explained in one line."""


class DatasetError(PoissonBlendError):
    """The training-set folders or one of their files cannot be used."""


class LesionError(PoissonBlendError):
    """A lesion index or lesion transform is invalid (e.g. no such lesion)."""


class PlacementError(PoissonBlendError):
    """A lesion cannot be placed at the requested spot, or no valid spot exists."""


class RecipeError(PoissonBlendError):
    """A recipe is malformed or does not match the dataset."""


class SeamlessCloneError(PoissonBlendError):
    """OpenCV's ``seamlessClone`` (the ``"opencv"`` method) fails on this recipe (tiny lesions)."""


class HoldoutError(PoissonBlendError):
    """A list of held-out cases cannot be read, or samples would use a held-out case."""


class OutputError(PoissonBlendError):
    """An output path is unusable, or writing would overwrite different data."""


class StoreError(PoissonBlendError):
    """The review database cannot be opened or does not match the dataset."""


class ImportError_(PoissonBlendError):  # noqa: N801 - avoid shadowing builtin ImportError
    """An ISLES/NIfTI import cannot proceed."""


class PoissonBlendWarning(UserWarning):
    """Something was odd but usable (junk file skipped, colour PNG converted, ...)."""


class OutsideRootError(PoissonBlendError):
    """A path lies outside the root folder the app (or a caller) is confined to."""


class DiskFullError(OutputError):
    """Writing failed because the disk (or the user's quota) is full."""


class AblationError(PoissonBlendError):
    """An ablation run cannot start or continue (settings, folds, output folder, Keras)."""
