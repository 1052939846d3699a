"""Command line: ``python -m lthkit COMMAND ...`` (``python -m lthkit --help`` lists the commands).

``run`` trains IMP from a preset and writes ``results.json``, ``summary.csv`` and
``accuracy_vs_density.png`` into ``--out``::

    python -m lthkit run --preset fast --rounds 5 --rewind init --control ticket --out runs/fast

One module per command (:data:`COMMANDS`), each with ``add_parser(commands)`` and the function that
runs it; what they share is :mod:`.common`. Every field of :class:`~lthkit.imp.config.LotteryConfig`,
:class:`~lthkit.core.train.TrainConfig` and :class:`~lthkit.core.data.DataConfig` is also a flag
(``--rounds``, ``--lr``, ``--train-size`` ...), generated from the fields' metadata
(:mod:`lthkit.core.fields`) by one path, dataclass → argparse → dataclass
(:func:`~lthkit.cli.common.add_dataclass_flags`, :func:`~lthkit.cli.common.dataclass_changes`), so
the flags, the configs and the cache keys cannot drift apart. Bad arguments give a one-line error
and exit status 2, and nothing is written.
"""

from __future__ import annotations

import importlib
import sys

from .. import __version__
from ..errors import LthkitError
from .common import Parser

#: The commands, in ``--help`` order: each a module of this package with ``add_parser(commands)``.
COMMANDS = ("run", "reproduce", "report", "merge_runs", "data", "dashboard", "stability", "anatomy", "speed", "grade",
            "course")


def build_parser() -> Parser:
    """The ``lthkit`` parser with every command of :data:`COMMANDS`."""
    parser = Parser(prog="lthkit", description="lthkit: the Lottery Ticket Hypothesis, hands on.")
    parser.add_argument("--version", action="version", version=f"lthkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(commands)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except LthkitError as error:
        print(f"lthkit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file the checks could not foresee (a full disk, a folder gone read-only)
        reason = error.strerror or (str(error).splitlines() or [type(error).__name__])[0]
        where = f": {error.filename}" if error.filename else ""
        print(f"lthkit {args.command}: error: {reason}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lthkit {args.command}: interrupted; finished rounds are cached, run the same command to resume",
              file=sys.stderr)
        return 130
