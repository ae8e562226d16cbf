"""CLI commands, one module each (see :mod:`poissonblend.cli`)."""

from . import demo, generate, import_isles

COMMANDS = (generate, import_isles, demo)
