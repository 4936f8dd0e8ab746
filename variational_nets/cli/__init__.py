"""Command line: ``python -m variational_nets train|sweep transfer|sweep coordcheck|benchmark|corruptions``.

``train`` trains and evaluates one configuration (:mod:`.train`); ``sweep transfer`` and
``sweep coordcheck`` run the step-size transfer and the μP coordinate check over width × step ×
seed (:mod:`.sweep`); ``benchmark`` runs every method of the image benchmark over seeds
(:mod:`.benchmark`); ``corruptions`` draws a test image under every corruption (:mod:`.corruptions`). Each subcommand has its own options; the same thing has the same flag
everywhere (``--seed``/``--seeds``, ``--width``/``--widths``, ``--lr``/``--lrs``, ``--json
PATH``, ``--plot PATH``, ``--results PATH``, ``--csv PATH``, ``--quiet``). Every option is
checked before any work; the exit statuses are those of :mod:`.common` (0 ok, 1 diverged or
failed points, 2 usage error, 3 internal error, 130 SIGINT, 143 SIGTERM).

Adding a subcommand: a module with ``add_arguments(parser)`` and ``run(args) -> int`` (checks
inside :func:`.common.checking`, then the work), and one :class:`.common.Command` line in
:data:`COMMANDS` below.
"""
from __future__ import annotations

from . import benchmark, corruptions, sweep, train
from .common import EXIT_FAILED, EXIT_INTERNAL, EXIT_USAGE, Command, Parser, add_commands, run_main

__all__ = ["PROG", "COMMANDS", "build_parser", "main", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERNAL"]

#: The program name in usage lines and messages.
PROG = "python -m variational_nets"

#: The subcommands, in the order ``--help`` lists them. Register a new one here.
COMMANDS = (
    Command("train", "train and evaluate one configuration", train.add_arguments, train.run,
            description=train.DESCRIPTION),
    Command("sweep", "step-size transfer or coordinate check over width x step x seed",
            sweep.add_arguments, subcommands=sweep.COMMANDS, description=sweep.DESCRIPTION),
    Command("benchmark", "every method of the image benchmark over seeds (claim C11)", benchmark.add_arguments,
            benchmark.run, description=benchmark.DESCRIPTION),
    Command("corruptions", "draw a test image under every corruption of the benchmark",
            corruptions.add_arguments, corruptions.run, description=corruptions.DESCRIPTION),
)


def build_parser() -> Parser:
    """The parser of ``python -m variational_nets`` with every subcommand.

    Returns
    -------
    variational_nets.cli.common.Parser
        Its subcommands are those of :data:`COMMANDS`.
    """
    parser = Parser(prog=PROG, description="Variational MLPs trained by IBVI (or a baseline) with "
                                           "NumPy or CuPy: train one configuration, sweep a grid, or "
                                           "benchmark every method on images.")
    add_commands(parser, COMMANDS)
    return parser


def main(argv=None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 all good, 1 training diverged or sweep points failed, 2 usage
        error, 3 internal error, 130 SIGINT, 143 SIGTERM.
    """
    return run_main(build_parser(), argv)
