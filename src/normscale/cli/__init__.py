"""The ``normscale`` command line: one entry point, one module per subcommand.

Every public module of this package is a subcommand. It defines ``HELP`` (a
one-line summary), ``add_arguments(parser)`` and ``run(args)``, which returns
a :class:`~normscale.cli._common.Result` (or ``None``). The conventions shared
by all subcommands live here and in :mod:`normscale.cli._common`:

- ``--json``: the machine-readable result on stdout, logs on stderr;
- ``--quiet``: no logs and no progress bar (progress is shown only on a terminal);
- ``--mkdir``: create missing output folders outside the current directory
  (without it, only folders under the current directory are created);
- bad input: exit code 2 and a one-line message naming the flag or file and the
  bad value, no traceback; checked before any work starts.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import re
import sys
import warnings
from collections.abc import Sequence

from normscale import __version__, safeio
from normscale.cli._common import Result, to_jsonable
from normscale.errors import NormscaleError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2) instead of usage blocks.

    A value that starts with a minus and a digit, a dot or inf/nan (``--lam
    -1:10:5``, ``--lr -inf``) is a value, not an option, so that it reaches
    the option's own check and its "must be > 0" message.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\.?\d|inf|nan)", re.IGNORECASE)

    def error(self, message: str) -> None:  # type: ignore[override]
        # "argument --lr: --lr must be ..." -> "--lr must be ...": the flag once
        message = re.sub(r"^argument (\S+): (?=\1\b)", "", message)
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _subcommand_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="normscale", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"normscale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _subcommand_modules():
        module = importlib.import_module(f"{__name__}.{name}")
        command = name.rstrip("_").replace("_", "-")  # import_.py: `normscale import`
        p = sub.add_parser(command, help=module.HELP, description=module.__doc__)
        p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
        p.add_argument("--quiet", action="store_true", help="no logs, no progress bar")
        p.add_argument("--mkdir", action="store_true",
                       help="create missing output folders (default: only under the current "
                            "directory)")
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _flags=frozenset(p._option_string_actions))
    return parser


def _name_the_flag(message: str, flags: frozenset[str]) -> str:
    """"The 'n_boot' parameter of fit_laws must be ..." -> "--n-boot must be ..." when the
    subcommand has that flag: the user sees the flag typed, not an internal function."""
    def flag(m: re.Match) -> str:
        name = "--" + m.group(1).replace("_", "-")
        return f"{name} " if name in flags else m.group(0)

    return re.sub(r"^The '(\w+)' parameter of [\w. ]+? (?=must|is|needs)", flag, message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)

    def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
        if not args.quiet:
            print(f"normscale {args.command}: warning: {message}", file=sys.stderr)

    warnings.showwarning = one_line_warning
    try:
        with safeio.command():  # no output of a command overwrites one of its inputs
            result = args._run(args)
    except NormscaleError as exc:
        msg = _name_the_flag(str(exc).replace("\n", " "), args._flags)
        print(f"normscale {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"normscale {args.command}: interrupted", file=sys.stderr)
        return 130
    if isinstance(result, Result):
        try:
            if args.json:
                json.dump(to_jsonable(result.data), sys.stdout, indent=None, allow_nan=True)
                sys.stdout.write("\n")
            elif result.text:
                print(result.text)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader left early (`| head`): not a failure of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return result.exit_code
    return 0
