"""Command line: ``python -m variational_nets train --task T [options]`` and
``python -m variational_nets sweep --experiment transfer|coordcheck [options]``.

``train`` prints progress and the final metrics, optionally writes them as JSON (``--json``) and
draws the predictive plot (``--plot``). Exit status 0 on success, 2 for bad input (one line
naming the option, the same text as the ``ValueError`` of
:func:`~variational_nets.experiment.run_experiment`), 1 when training diverges.

``sweep`` runs the step-size transfer (:mod:`~variational_nets.transfer`) or the coordinate check
(:mod:`~variational_nets.coordcheck`) over width × step × seed (× parametrization) through
:func:`~variational_nets.sweep.run_sweep`: in local processes by default (``--processes N``), on
a Dask cluster with ``--scheduler ADDRESS``. Rows go to ``--results PATH`` (JSON lines, a CSV
table beside it); finished points are not recomputed by a second run. It prints the table
(best step per width and its drift / log-log slopes per layer), and optionally writes it as
JSON (``--json``) and draws the figure (``--plot``). Exit status 0, 2 for bad input, 1 when
points failed with an error (their errors are in the results file).
"""
from __future__ import annotations

import argparse
import json
import math
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
    t.add_argument("--factor-momentum", default="exact",
                   help="exact | bfloat16: momentum buffers of covariance factors in the model's "
                        "dtype (PyTorch's update) or as bfloat16 (25%% less factor state)")
    t.add_argument("--limit", help="keep the first N records of each CIFAR-10 file")
    t.add_argument("--allow-small-files", action="store_true",
                   help="accept CIFAR-10 files with fewer than 10000 records")
    t.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    t.add_argument("--plot", metavar="PATH", help="draw predictive bands / decision map")
    t.add_argument("--quiet", action="store_true", help="no progress lines")
    w = sub.add_parser("sweep", help="step-size transfer or coordinate check over width x step x seed")
    w.add_argument("--experiment", required=True, help="transfer | coordcheck")
    w.add_argument("--widths", nargs="+", help="hidden widths (default per experiment)")
    w.add_argument("--lrs", nargs="+", help="base step sizes (coordcheck: exactly one)")
    w.add_argument("--seeds", nargs="+", help="seeds (default per experiment)")
    w.add_argument("--parametrizations", nargs="+", default=["sp", "mup"], help="sp mup (default both)")
    w.add_argument("--task", help="transfer: digits | synthetic | cifar10 (default digits)")
    w.add_argument("--epochs", help="transfer: epochs per point (default 1)")
    w.add_argument("--batch-size", help="mini-batch size (default 64)")
    w.add_argument("--steps", help="coordcheck: SGD steps k (sizes after 0..k; default 3)")
    w.add_argument("--backend", default="numpy", help="numpy | cupy | auto (default numpy)")
    w.add_argument("--data-dir", help="folder with the CIFAR-10 binary files")
    w.add_argument("--limit", help="keep the first N records of each CIFAR-10 file")
    w.add_argument("--results", metavar="PATH", help="results file, .jsonl (default "
                                                     "sweep_<experiment>.jsonl); resumable")
    w.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (default: "
                                                          "local processes)")
    w.add_argument("--processes", help="local worker processes (default: one per CPU)")
    w.add_argument("--json", metavar="PATH", help="also write the summary as JSON")
    w.add_argument("--plot", metavar="PATH", help="draw the transfer / coordinate-check figure")
    w.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _list(values, name, option, convert, expected):
    if values is None:
        return None
    out = []
    for text in values:
        try:
            out.append(convert(text))
        except ValueError:
            raise ValueError(f"invalid {name} ({option}): expected {expected}, got '{text}'") from None
    return tuple(out)


def _int_option(value, name, option):
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"invalid {name} ({option}): expected an integer, got '{value}'") from None


def _sweep_config(args):
    """The experiment's config from the parsed ``sweep`` options (ValueError naming the option)."""
    from .coordcheck import CoordCheckConfig
    from .transfer import TransferConfig

    if args.experiment not in ("transfer", "coordcheck"):
        raise ValueError(f"invalid experiment (--experiment): expected one of transfer, coordcheck, "
                         f"got '{args.experiment}'")
    options = {"parametrizations": tuple(args.parametrizations), "backend": args.backend}
    for key, value in (("widths", _list(args.widths, "widths", "--widths", int, "integers")),
                       ("seeds", _list(args.seeds, "seeds", "--seeds", int, "integers")),
                       ("batch_size", _int_option(args.batch_size, "batch size", "--batch-size"))):
        if value is not None:
            options[key] = value
    lrs = _list(args.lrs, "lrs", "--lrs", float, "numbers")
    if args.experiment == "coordcheck":
        for option, value in (("--task", args.task), ("--epochs", args.epochs),
                              ("--data-dir", args.data_dir), ("--limit", args.limit)):
            if value is not None:
                raise ValueError(f"invalid option {option}: the coordcheck experiment does not take it")
        if lrs is not None:
            if len(lrs) != 1:
                raise ValueError(f"invalid lrs (--lrs): the coordcheck uses exactly one base step, "
                                 f"got {len(lrs)}")
            options["lr"] = lrs[0]
        if args.steps is not None:
            options["steps"] = _int_option(args.steps, "steps", "--steps")
        return CoordCheckConfig(**options)
    if args.steps is not None:
        raise ValueError("invalid option --steps: the transfer experiment trains for --epochs")
    if lrs is not None:
        options["lrs"] = lrs
    for key, value in (("task", args.task), ("data_dir", args.data_dir),
                       ("epochs", _int_option(args.epochs, "epochs", "--epochs")),
                       ("limit", _int_option(args.limit, "limit", "--limit"))):
        if value is not None:
            options[key] = value
    return TransferConfig(**options)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # strict JSON has no inf/NaN
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def run_sweep_command(args) -> int:
    """``python -m variational_nets sweep``: run, print the table, write JSON / the figure."""
    from . import plots
    from .coordcheck import CoordCheckConfig, coordcheck_slopes, format_slopes, run_coordcheck
    from .transfer import format_transfer, run_transfer

    config = _sweep_config(args)
    processes = _int_option(args.processes, "processes", "--processes")
    results = args.results or f"sweep_{args.experiment}.jsonl"
    kwargs = dict(results_path=results, scheduler=args.scheduler, processes=processes,
                  progress=not args.quiet)
    if isinstance(config, CoordCheckConfig):
        result = run_coordcheck(config, **kwargs)
        slopes = coordcheck_slopes(result)
        print(format_slopes(slopes))
        summary = {"experiment": "coordcheck", "config": asdict(config),
                   "results_path": result.results_path, "slopes": [asdict(s) for s in slopes]}
        draw = plots.plot_coordcheck
    else:
        result = run_transfer(config, **kwargs)
        print(format_transfer(result, "train_loss"))
        print(format_transfer(result, "test_nll"))
        summary = {"experiment": "transfer", "config": asdict(config),
                   "results_path": result.results_path,
                   "best_index": {p: {m: list(result.best_indices(p, m)) for m in ("train_loss", "test_nll")}
                                  for p in config.parametrizations},
                   "drift": {p: {m: result.drift(p, m) for m in ("train_loss", "test_nll")}
                             for p in config.parametrizations},
                   "curves": [asdict(c) for c in result.curves]}
        draw = plots.plot_transfer
    print(f"rows: {result.results_path} (CSV beside it)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(_json_safe(summary), fh, indent=2)
    if args.plot:
        draw(result, args.plot)
    return 0


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
        if args.command == "sweep":
            return run_sweep_command(args)
        if args.command != "train":
            raise UsageError("expected the command 'train' or 'sweep' (see --help)")
        config = ExperimentConfig(
            task=args.task, method=args.method, parametrization=args.parametrization,
            width=args.width, depth=args.depth, epochs=args.epochs, lr=args.lr,
            batch_size=args.batch_size, seed=args.seed, backend=args.backend,
            data_dir=args.data_dir, covariance=args.covariance, rank=args.rank,
            expectation=args.expectation, num_samples=args.num_samples, limit=args.limit,
            allow_small_files=args.allow_small_files, factor_momentum=args.factor_momentum)
        result = run_experiment(config, quiet=args.quiet, plot=args.plot)
    except (UsageError, ValueError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingDiverged as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except RuntimeError as err:  # sweep points that failed with an error
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    print(_format(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result.to_dict(), fh, indent=2)
    return 0
