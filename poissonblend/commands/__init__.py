"""CLI commands, one module each (see :mod:`poissonblend.cli`)."""

from . import decide, demo, export, generate, import_isles, queue, status

COMMANDS = (generate, import_isles, demo, queue, status, decide, export)
