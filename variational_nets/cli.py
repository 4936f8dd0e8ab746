"""Command line: ``python -m variational_nets train --task T [options]``.

Prints progress and the final metrics, optionally writes them as JSON (``--json``) and draws
the predictive plot (``--plot``). Exit status 0 on success, 2 for bad input (one line naming
the option, the same text as the ``ValueError`` of :func:`~variational_nets.experiment.run_experiment`),
1 when training diverges.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from .experiment import ExperimentConfig, run_experiment
from .train import TrainingDiverged

EXIT_DIVERGED = 1
EXIT_USAGE = 2
PROG = "python -m variational_nets"


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block: argparse's default is several lines
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Train a variational MLP by IBVI (or a baseline) "
                                            "with NumPy or CuPy and report test metrics.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    t = sub.add_parser("train", help="train and evaluate one configuration")
    # values stay strings here: the API validates them, so both report the same message
    t.add_argument("--task", required=True, help="toy-regression | two-moons | digits | cifar10")
    t.add_argument("--method", default="ibvi", help="ibvi | map | vi-kl (default ibvi)")
    t.add_argument("--parametrization", default="mup", help="mup | sp (default mup)")
    t.add_argument("--width", help="hidden width (default 16 regression, 64 two moons, ...)")
    t.add_argument("--depth", default="3", help="number of hidden layers (default 3)")
    t.add_argument("--epochs", help="epochs (default 500 regression, 200 two moons, ...)")
    t.add_argument("--lr", default="0.01", help="base step size (default 1e-2)")
    t.add_argument("--batch-size", help="mini-batch size (default 16 regression, 32 two moons)")
    t.add_argument("--seed", default="0", help="seed of every random path (default 0)")
    t.add_argument("--backend", default="numpy", help="numpy | cupy | auto (default numpy)")
    t.add_argument("--data-dir", help="folder with the CIFAR-10 binary files")
    t.add_argument("--covariance", help="full | lowrank | diagonal (default per task)")
    t.add_argument("--rank", help="rank of low-rank factors (default 16)")
    t.add_argument("--expectation", default="closed-form", help="closed-form | mc")
    t.add_argument("--num-samples", default="16", help="weight samples at prediction (16)")
    t.add_argument("--limit", help="keep the first N records of each CIFAR-10 file")
    t.add_argument("--allow-small-files", action="store_true",
                   help="accept CIFAR-10 files with fewer than 10000 records")
    t.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    t.add_argument("--plot", metavar="PATH", help="draw predictive bands / decision map")
    t.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _format(result) -> str:
    lines = [f"task {result.config.task}  method {result.config.method}  "
             f"parametrization {result.config.parametrization}  width {result.config.width}  "
             f"parameters {result.num_parameters}",
             f"trained {result.steps} steps in {result.train_seconds:.2f} s, "
             f"final objective {result.final_objective:.5g}"]
    lines.append("test metrics: " + "  ".join(f"{k} {v:.4f}" for k, v in asdict(result.metrics).items()))
    if result.spread is not None:
        parts = [f"{k} {v:.4f}" for k, v in asdict(result.spread).items() if v is not None]
        lines.append("predictive std: " + "  ".join(parts))
    return "\n".join(lines)


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command != "train":
            raise UsageError("expected the command 'train' (see --help)")
        config = ExperimentConfig(
            task=args.task, method=args.method, parametrization=args.parametrization,
            width=args.width, depth=args.depth, epochs=args.epochs, lr=args.lr,
            batch_size=args.batch_size, seed=args.seed, backend=args.backend,
            data_dir=args.data_dir, covariance=args.covariance, rank=args.rank,
            expectation=args.expectation, num_samples=args.num_samples, limit=args.limit,
            allow_small_files=args.allow_small_files)
        result = run_experiment(config, quiet=args.quiet, plot=args.plot)
    except (UsageError, ValueError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingDiverged as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    print(_format(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result.to_dict(), fh, indent=2)
    return 0
