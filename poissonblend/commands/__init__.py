"""CLI commands, one module each (see :mod:`poissonblend.cli`).

Each module's docstring is its ``--help`` description; it defines
``add_arguments(parser)`` and ``run(args) -> int``. A module is imported only
when its command runs, so a command does not pay for the others' imports
(NIfTI, SciPy, SQLite …) at start-up.
"""

COMMANDS: dict[str, tuple[str, str]] = {
    # command: (module in poissonblend.commands, one-line help)
    "generate": ("generate", "write N random blended samples into output folders"),
    "import-isles": ("import_isles", "import ISLES 2022 NIfTI cases as input/ + mask/ PNG slices"),
    "demo": ("demo", "write a small synthetic demo training set (input/ and mask/ folders)"),
    "queue": ("queue", "draw N candidates into a review database"),
    "status": ("status", "count the candidates of a review database by state"),
    "decide": ("decide", "accept / reject / skip candidates by id or quality"),
    "export": ("export", "write accepted candidates into output folders"),
    "ablate": ("ablate", "measure what augmentation does to U-Net Dice on your slices (K-fold)"),
}
