"""Command line: ``python -m poissonblend <command> …``.

Each command lives in :mod:`poissonblend.commands` as a module with
``add_arguments(parser)`` and ``run(args) -> int``, listed with its one-line help
in ``COMMANDS``; only the chosen command's module is imported. This module
builds the parser and holds the single error boundary: the library's typed
errors become one ``error: …`` line and exit status 2, Ctrl-C (and SIGTERM, as
sent by ``kill`` or a batch system) exits 130, and a real bug keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence

from . import __version__
from .commands import COMMANDS
from .errors import PoissonBlendError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but bad usage prints one ``error: …`` line (no usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; the command named in `argv` (if any) gets its full arguments."""
    parser = _Parser(
        prog="python -m poissonblend",
        description="PoissonBlend data augmentation for stroke-lesion segmentation: "
        "blend lesions from one slice into another by Poisson image editing.",
    )
    parser.add_argument("--version", action="version", version=f"poissonblend {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)
    sub.required = True
    chosen = next((arg for arg in argv if arg in COMMANDS), None)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"{__package__}.commands.{module_name}") if name == chosen else None
        cmd = sub.add_parser(name, help=help_text, description=module.__doc__ if module else help_text,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        if module is not None:
            module.add_arguments(cmd)
            cmd.set_defaults(_run=module.run)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a batch system's time limit) stops a command as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def error_handler() -> Iterator[None]:
    """Turn library errors into ``error: …`` on stderr; re-raise as SystemExit."""
    try:
        yield
    except PoissonBlendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            with error_handler(), sigterm_as_interrupt():
                return int(args._run(args))
        except SystemExit as exc:
            return int(exc.code or 0)
