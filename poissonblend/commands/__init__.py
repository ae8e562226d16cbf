"""CLI commands, one module each (see :mod:`poissonblend.cli`)."""

from . import generate

COMMANDS = (generate,)
