"""The ablation behind ``python -m poissonblend ablate``: does augmentation raise Dice here?

A controlled experiment on the user's own slices: case-level K-fold; in each
fold every arm (``none``, ``poissonblend``, ``opencv``, ``accepted``) trains the
same small U-Net from the same initial weights for the same number of optimiser
steps, on the fold's training cases plus its arm's samples, and is scored by
the volume Dice of each test case.

Modules: :mod:`.data` (folds, normalisation, the training view of a fold),
:mod:`.stats` (Dice, bootstrap confidence intervals), :mod:`.report`
(report.json / report.md / dice.png, reading reports back), :mod:`.run` (the
folds × arms loop, resumable) and :mod:`.model` (the Keras U-Net; the only
module that imports Keras, so importing the others costs no Keras start-up).
"""
