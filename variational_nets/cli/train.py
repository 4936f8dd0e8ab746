"""``python -m variational_nets train``: train and evaluate one configuration.

Checks every option, the output paths, the memory the run needs and the data files before
training; prints the epoch lines (unless ``--quiet``) and the final metrics on stdout; writes
``--json`` and then ``--plot`` (each atomically). Exit status 1 when training diverges.
"""
from __future__ import annotations

import sys
from dataclasses import asdict

from ..files import write_json
from ..backend import BACKENDS, get_xp
from ..experiment import (DEFAULT_RANK, METHODS, TASK_DEFAULTS, TASKS, ExperimentConfig, check_plot,
                          estimate_memory, evaluate, fit_experiment, load_dataset)
from ..validation import check_memory
from ..layers import COVARIANCES
from ..optim import FACTOR_MOMENTUM
from ..parametrization import PARAMETRIZATIONS
from ..train import EXPECTATIONS, TrainingDiverged
from .common import (EXIT_FAILED, checking, distinct_outputs, figure_file, interruption, json_safe,
                     nonnegative_int, output_file, positive_float, positive_int, say)

__all__ = ["DESCRIPTION", "add_arguments", "run"]

#: The ``--help`` text of ``train``.
DESCRIPTION = ("Train a variational MLP by IBVI (or the deterministic or mean-field VI baseline) and "
               "report its test metrics. Defaults per task follow the authors' toy recipe.")
#: Names the library uses for what this command calls by another flag.
_ALIASES = {"data directory": "data_dir"}


def add_arguments(parser) -> None:
    """Add the options of ``train`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``train`` subcommand's parser; gets ``--task`` (required), the method, model, data
        and training options, ``--json``, ``--plot`` and ``--quiet``.
    """
    add = parser.add_argument
    add("--task", required=True, choices=TASKS, help="the data set")
    add("--method", default="ibvi", choices=METHODS,
        help="ibvi, the deterministic network (map) or mean-field VI (vi-kl); default ibvi")
    add("--parametrization", default="mup", choices=PARAMETRIZATIONS, help="default mup")
    add("--width", type=positive_int, metavar="N",
        help="hidden width (default per task: " + ", ".join(f"{t} {d.width}" for t, d in TASK_DEFAULTS.items())
        + ")")
    add("--depth", type=positive_int, default=3, metavar="N", help="number of hidden layers (default 3)")
    add("--epochs", type=positive_int, metavar="N", help="epochs (default per task)")
    add("--lr", type=positive_float, default=1e-2, metavar="STEP", help="base step size (default 1e-2)")
    add("--batch-size", type=positive_int, metavar="N", help="mini-batch size (default per task)")
    add("--seed", type=nonnegative_int, default=0, metavar="S", help="seed of every random path (default 0)")
    add("--backend", default="numpy", choices=BACKENDS, help="array backend (default numpy)")
    add("--data-dir", metavar="DIR", help="cifar10: the folder with the official binary files")
    add("--covariance", choices=COVARIANCES, help="covariance family (default per task)")
    add("--rank", type=positive_int, metavar="R", help=f"rank of low-rank factors (default {DEFAULT_RANK})")
    add("--expectation", default="closed-form", choices=EXPECTATIONS,
        help="expected loss of the last layer: closed form or Monte Carlo")
    add("--num-samples", type=positive_int, default=16, metavar="K",
        help="weight samples for the test metrics (default 16)")
    add("--factor-momentum", default="exact", choices=FACTOR_MOMENTUM,
        help="momentum buffers of covariance factors in the model's dtype (exact, PyTorch's update) "
             "or as bfloat16 (25%% less factor state)")
    add("--limit", type=positive_int, metavar="N", help="cifar10: keep the first N records of each file")
    add("--allow-small-files", action="store_true", help="cifar10: accept files with fewer than 10000 records")
    add("--json", metavar="PATH", type=output_file(), help="also write the results as JSON")
    add("--plot", metavar="PATH", type=figure_file,
        help="draw predictive bands (toy-regression) or the decision map and its uncertainty (two-moons)")
    add("--quiet", action="store_true", help="no progress lines")


def _config(args) -> ExperimentConfig:
    return ExperimentConfig(
        task=args.task, method=args.method, parametrization=args.parametrization, width=args.width,
        depth=args.depth, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
        backend=args.backend, data_dir=args.data_dir, covariance=args.covariance, rank=args.rank,
        expectation=args.expectation, num_samples=args.num_samples, limit=args.limit,
        allow_small_files=args.allow_small_files, factor_momentum=args.factor_momentum).resolved()


def _largest_size_option(args, config: ExperimentConfig) -> str:
    """The size option given that is furthest above its default: the one a memory refusal names."""
    d = TASK_DEFAULTS[config.task]
    growth = {"width": config.width / d.width, "depth": config.depth / 3,
              "batch_size": config.batch_size / d.batch_size}
    if config.covariance == "lowrank":
        growth["rank"] = config.rank / DEFAULT_RANK
    given = {k: v for k, v in growth.items() if getattr(args, k) is not None}
    return max(given, key=given.get) if given else "width"


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


def run(args) -> int:
    """Check everything, train, print the metrics, write ``--json`` and ``--plot``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by the ``train`` parser.

    Returns
    -------
    int
        0, or 1 when training diverged (one line on stderr).

    Raises
    ------
    variational_nets.cli.common.UsageError
        A bad option, output path, data folder, or a run too large for this machine's memory.
    """
    with checking(args, _ALIASES):
        config = _config(args)
        if args.plot is not None:
            check_plot(config, args.plot)
        distinct_outputs(args, "json", "plot")
        get_xp(config.backend)  # a missing GPU is the user's to fix, before any work
        size = _largest_size_option(args, config)
        check_memory(size, estimate_memory(config), f"training at {size.replace('_', ' ')} {getattr(config, size)}")
        dataset = load_dataset(config)  # malformed data files are bad input, not a bug
    with interruption(lambda: f"training stopped, nothing written; rerun: {args.command_line}"):
        try:
            trained = fit_experiment(config, progress=print, quiet=args.quiet, dataset=dataset)
        except TrainingDiverged as err:
            say(args.command_prog, str(err))
            return EXIT_FAILED
        result = evaluate(trained)
    print(_format(result), flush=True)
    if args.json is not None:
        write_json(args.json, json_safe(result.to_dict()))
    if args.plot is not None:
        from ..plots import plot_experiment

        plot_experiment(trained, args.plot)
    if not args.quiet and (args.json or args.plot):
        print("wrote " + ", ".join(p for p in (args.json, args.plot) if p), file=sys.stderr)
    return 0
