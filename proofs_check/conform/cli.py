"""Command line of the conformance kit.

``python -m proofs_check.conform MODULE:CALLABLE [--optimizer gd|sgd|momentum] [--batch-size B]
[--momentum M] [--mc-samples M] [--step-multipliers random|V1,V2,...] [--factor-step-scale C]
[--n N] [--d D] [--width R] [--condition-number K] [--seed S] [--members K] [--noise-runs K]
[--json PATH] [--quiet]``

imports the trainer, runs every check and prints the checks table. ``MODULE`` is a module name
(imported with the current folder on the path) or a ``.py`` file; ``CALLABLE`` names a function,
a callable object, or a class whose no-argument instance is the trainer. Exit status 0 when every
check passed, 1 when one failed (or the trainer raised), 2 on a usage error: bad options, or a
``MODULE:CALLABLE`` that cannot be imported (one line, no traceback). Progress lines go to stderr.

Other command lines embed it with :func:`add_arguments` and :func:`run`.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import os
import re
import sys

from variational_nets.cli.common import EXIT_FAILED, EXIT_USAGE
from variational_nets.files import write_json

from . import checks
from .setup import MEMBERS, NOISE_RUNS

__all__ = ["add_arguments", "run", "main", "load_trainer", "EXIT_FAIL", "EXIT_USAGE"]

#: Exit status when a check failed or the trainer raised (the command lines' ``EXIT_FAILED``).
EXIT_FAIL = EXIT_FAILED
PROG = "python -m proofs_check.conform"

#: Python argument names of the library and the flags that set them (for error messages).
FLAGS = {"optimizer": "--optimizer", "batch_size": "--batch-size", "momentum": "--momentum",
         "mc_samples": "--mc-samples", "step_multipliers": "--step-multipliers",
         "factor_step_scale": "--factor-step-scale", "n": "--n", "d": "--d",
         "width": "--width", "condition_number": "--condition-number", "seed": "--seed",
         "members": "--members", "noise_runs": "--noise-runs"}


class UsageError(ValueError):
    """A command-line input that cannot be used (reported in one line, exit status 2)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the conformance command's arguments to ``parser`` (its own or a subcommand's).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        Gets the positional ``MODULE:CALLABLE``, the claim and problem flags, ``--json`` and
        ``--quiet``, and a default ``conform_prog`` (its ``prog``, for error messages).
    """
    parser.add_argument("trainer", metavar="MODULE:CALLABLE",
                        help="the trainer: module (or path/to/file.py) and the name of a function, callable "
                             "object or no-argument class in it")
    parser.add_argument("--optimizer", default="gd", choices=("gd", "sgd", "momentum"),
                        help="what the trainer claims to run (default gd)")
    parser.add_argument("--batch-size", type=int, metavar="B", help="rows per step (required for sgd)")
    parser.add_argument("--momentum", type=float, default=0.9, metavar="M",
                        help="heavy-ball coefficient for --optimizer momentum (default 0.9)")
    parser.add_argument("--mc-samples", type=int, default=0, metavar="M",
                        help="Monte Carlo samples per step (default 0: the closed-form expected loss)")
    parser.add_argument("--step-multipliers", metavar="random|V1,V2,...",
                        help="per-coordinate step multipliers the trainer applies: 'random' (drawn by the kit) "
                             "or d comma-separated positive numbers")
    parser.add_argument("--factor-step-scale", type=float, default=1.0, metavar="C",
                        help="the factor's step over the mean's, e.g. muP's 1/R (default 1)")
    parser.add_argument("--n", type=int, default=6, help="rows of the generated problem (default 6)")
    parser.add_argument("--d", type=int, default=16, help="columns of the generated problem (default 16)")
    parser.add_argument("--width", type=int, metavar="R", help="columns of the prior's factor (default d)")
    parser.add_argument("--condition-number", type=float, default=2.0, metavar="K",
                        help="condition number of X (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the problem, the prior and the runs")
    parser.add_argument("--members", type=int, default=MEMBERS, help=f"ensemble members (default {MEMBERS})")
    parser.add_argument("--noise-runs", type=int, default=NOISE_RUNS,
                        help=f"one-step runs of the MC noise check (default {NOISE_RUNS})")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON (atomically)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(conform_prog=parser.prog)


def _flagged(message: str) -> str:
    """The message with the flags of the Python argument names it mentions appended."""
    named = [flag for name, flag in FLAGS.items() if re.search(rf"(?<![\w-]){name}(?![\w])", message)]
    return message + (f" [{', '.join(named)}]" if named else "")


def _step_multipliers(text: str | None):
    if text is None or text == "random":
        return text
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--step-multipliers must be 'random' or comma-separated numbers, got {text!r}") from None


def load_trainer(spec: str):
    """The trainer named by ``MODULE:CALLABLE`` (a class is instantiated without arguments).

    Parameters
    ----------
    spec : str
        ``module.name:attribute`` (the module imported with the current folder on the path) or
        ``path/to/file.py:attribute``; the attribute may be dotted.

    Returns
    -------
    callable
        The named function or callable object, or a no-argument instance of the named class.

    Raises
    ------
    UsageError
        When the spec is malformed, the module cannot be imported (for any reason), the name is
        missing, the class cannot be instantiated without arguments, or the object is not callable.
    """
    module_name, sep, name = spec.rpartition(":")
    if not sep or not module_name or not name:
        raise UsageError(f"the trainer must be given as MODULE:CALLABLE, got {spec!r}")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            if not os.path.isfile(module_name):
                raise UsageError(f"cannot import {module_name!r}: no such file")
            unique = "_conform_trainer_" + re.sub(r"\W", "_", os.path.abspath(module_name))
            module_spec = importlib.util.spec_from_file_location(unique, module_name)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[unique] = module
            module_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except UsageError:
        raise
    except BaseException as exc:  # any failure to import is the user's input, reported in one line
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise UsageError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    target = module
    for part in name.split("."):
        if not hasattr(target, part):
            raise UsageError(f"{module_name!r} has no attribute {name!r}")
        target = getattr(target, part)
    if inspect.isclass(target):
        try:
            target = target()
        except Exception as exc:
            raise UsageError(f"cannot instantiate {name!r} without arguments: {type(exc).__name__}: {exc}") from None
    if not callable(target):
        raise UsageError(f"{spec!r} is not callable (got a {type(target).__name__})")
    return target


def run(args: argparse.Namespace) -> int:
    """Run the checks for parsed ``args``, print the table, write ``--json``.

    Parameters
    ----------
    args : argparse.Namespace
        From a parser set up by :func:`add_arguments`.

    Returns
    -------
    int
        0 when every check passed, 1 when one failed (or the trainer raised), 2 on a usage error
        (printed as one line on stderr, no traceback).
    """
    prog = getattr(args, "conform_prog", PROG)
    try:
        if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
            raise UsageError(f"--json {args.json!r}: the folder does not exist")
        setup = checks.prepare(optimizer=args.optimizer, batch_size=args.batch_size, momentum=args.momentum,
                                 mc_samples=args.mc_samples, step_multipliers=_step_multipliers(args.step_multipliers),
                                 factor_step_scale=args.factor_step_scale,
                                 n=args.n, d=args.d, width=args.width, condition_number=args.condition_number,
                                 seed=args.seed, members=args.members, noise_runs=args.noise_runs)
        trainer = load_trainer(args.trainer)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError) as exc:
        print(f"{prog}: error: {_flagged(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    progress = None if args.quiet else (lambda line: print(f"[conform] {line} ...", file=sys.stderr, flush=True))
    report = checks.run_checks(trainer, setup, name=args.trainer, progress=progress)
    print(report.format())
    if args.json:
        write_json(args.json, report.to_dict())
    return 0 if report.passed else EXIT_FAIL


def main(argv=None) -> int:
    """``python -m proofs_check.conform``: parse ``argv`` and :func:`run` it.

    Parameters
    ----------
    argv : list of str, optional
        Default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status of :func:`run`.

    Raises
    ------
    SystemExit
        From argparse, with status 2 on a malformed flag and 0 after ``--help``.
    """
    parser = argparse.ArgumentParser(prog=PROG, description="Check an IBVI trainer against the theorems on the "
                                                            "linear model (docs/conformance.md).")
    add_arguments(parser)
    return run(parser.parse_args(argv))
