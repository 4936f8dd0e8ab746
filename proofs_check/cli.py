"""Command line: ``python -m proofs_check [run|list|figures|report] [options]``.

``run`` (also what ``python -m proofs_check`` does without a subcommand, and with options only:
``python -m proofs_check --only C1 --seed 3``) prints each claim with every measured error
beside its tolerance; a claim that cannot run here is one ``SKIP`` line naming what to install.
``list`` prints the claims. ``figures`` writes ``DIR/NAME.png`` and ``DIR/NAME.pdf`` for the
figures chosen with ``--figure NAME``. ``report`` runs the claims chosen with ``--only ID`` and
the figures chosen with ``--figure NAME`` and writes ``DIR/report.md``, ``DIR/report.html``,
``DIR/report.json`` and ``DIR/figures/``, every file even when a claim failed.

``--out DIR`` (figures, report) is created when missing, its parent must exist (``--mkdir``
creates the missing parents too); nothing is written outside ``DIR`` and the ``--json`` file.
Every option is checked before any claim runs. Exit statuses: 0 all good, 1 a claim failed or
a figure raised, 2 usage error, 3 internal error, 130 SIGINT, 143 SIGTERM. Progress lines
(``[i/N] ...``) go to stderr and are silenced by ``--quiet``.

Adding a subcommand: a module with ``add_arguments(parser)`` and ``run(args) -> int`` and one
:class:`~variational_nets.cli.common.Command` line in :func:`commands`.
"""
from __future__ import annotations

import datetime
import os
import platform
import sys
import time

from variational_nets.files import check_output_dir, write_json
from variational_nets.backend import one_blas_thread
from variational_nets.cli.common import (EXIT_FAILED, EXIT_INTERNAL, EXIT_SIGINT, EXIT_SIGTERM, EXIT_USAGE,
                                         Command, Parser, add_commands, checking, interruption,
                                         nonnegative_int, output_file, positive_int, run_main)

from .conform import cli as conform_cli
from .parallel import parallelizable, resolve_jobs, run_claims_in_processes
from .registry import ClaimResult, Context, run_claim, select

__all__ = ["PROG", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERNAL", "EXIT_SIGINT", "EXIT_SIGTERM",
           "build_parser", "commands", "main", "format_result", "summary_line", "environment",
           "run_claims"]

#: The program name in usage lines and messages.
PROG = "python -m proofs_check"


# --- output ----------------------------------------------------------------------------------

def _format_number(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def format_result(result: ClaimResult) -> str:
    """The printed form of a claim's result.

    Parameters
    ----------
    result : ClaimResult
        A claim after its check ran (or was skipped).

    Returns
    -------
    str
        A header line, one line per measurement (error beside tolerance and reason), tables and
        notes; for an ``ERROR`` the exception; a skipped claim is one line
        (``SKIP  ID  reason: install hint``).
    """
    c = result.claim
    if result.skipped:
        hint = "" if result.install_hint is None else f": {result.install_hint}"
        return f"SKIP  {c.id:<16s} {result.skip_reason}{hint}"
    lines = [f"{result.status:5s} {c.id:<16s} [{c.kind}; {c.reference}]  {result.seconds:6.2f} s",
             f"      {c.statement}"]
    if result.exception is not None:
        lines.extend("      ! " + line for line in result.exception.rstrip().splitlines())
        return "\n".join(lines)
    for m in result.outcome.measurements:
        if m.judged:
            verdict = "ok " if m.passed else "BAD"
            lines.append(f"      {verdict} {m.name}: {m.error:.3e} <= {m.tolerance:.1e}  ({m.reason})")
        else:
            lines.append(f"      rep {m.name}: {m.error:.4g}  (reported, not judged: {m.reason})")
    for table in result.outcome.tables:
        lines.append(f"      {table.title}")
        widths = [max(len(str(h)), *(len(_format_number(r[i])) for r in table.rows))
                  for i, h in enumerate(table.header)]
        lines.append("        " + "  ".join(str(h).rjust(w) for h, w in zip(table.header, widths)))
        for row in table.rows:
            lines.append("        " + "  ".join(_format_number(v).rjust(w) for v, w in zip(row, widths)))
    for note in result.outcome.notes:
        lines.append(f"      note: {note}")
    return "\n".join(lines)


def summary_line(results, wall_seconds: float | None = None) -> str:
    """The last line of a run.

    Parameters
    ----------
    results : sequence of ClaimResult
        The claims that ran.
    wall_seconds : float, optional
        The run's wall-clock time. When the claims ran in parallel it is less than the sum of
        their own times, and both are shown; without it, the sum is shown.

    Returns
    -------
    str
        ``"23 passed, 0 failed, 1 skipped (85.4 s)"``, or with ``wall_seconds`` of a parallel run
        ``"34 passed, 0 failed, 0 skipped (38.2 s; the checks' own time 65.1 s in parallel)"``,
        and ``"; failing: ID, ..."`` when any failed.
    """
    failed = [r.claim.id for r in results if r.failed]
    total = sum(r.seconds for r in results)
    if wall_seconds is None:
        time_text = f"{total:.1f} s"
    elif total > 1.05 * wall_seconds:
        time_text = f"{wall_seconds:.1f} s; the checks' own time {total:.1f} s in parallel"
    else:
        time_text = f"{wall_seconds:.1f} s"
    text = (f"{sum(r.passed for r in results)} passed, {len(failed)} failed, "
            f"{sum(r.skipped for r in results)} skipped ({time_text})")
    return text + (f"; failing: {', '.join(failed)}" if failed else "")


def environment() -> dict:
    """Versions that decide the numbers, recorded with every run.

    Returns
    -------
    dict
        ``{"python", "numpy", "scipy", "sympy", "matplotlib", "platform"}`` as strings.
    """
    import matplotlib
    import numpy
    import scipy
    import sympy

    return {"python": platform.python_version(), "numpy": numpy.__version__,
            "scipy": scipy.__version__, "sympy": sympy.__version__,
            "matplotlib": matplotlib.__version__, "platform": platform.platform()}


def run_claims(claims, ctx: Context, *, quiet: bool = False, stream=None, results=None,
               jobs: int | None = 1) -> list[ClaimResult]:
    """Run ``claims``, printing each result in claim order as soon as it (and every earlier one) finished.

    Parameters
    ----------
    claims : sequence of Claim
        The claims to check, in order.
    ctx : Context
        The settings handed to every check.
    quiet : bool, optional
        No ``[i/N] ID ...`` progress lines on stderr.
    stream : file, optional
        Where results are printed (default stdout).
    results : list, optional
        Receives each result as soon as it exists, so that a caller interrupted half way
        knows what finished.
    jobs : int or None
        Worker processes (:func:`proofs_check.parallel.resolve_jobs`; ``None``: one per CPU, at
        most four). With 1, or when a check is not one of :mod:`proofs_check.claims`, the claims
        run here, one after another. The numbers do not depend on it.

    Returns
    -------
    list of ClaimResult
        ``results``.
    """
    stream = sys.stdout if stream is None else stream
    results = [] if results is None else results

    def start(i, claim):
        if not quiet:
            print(f"[{i}/{len(claims)}] {claim.id} ...", file=sys.stderr, flush=True)

    def finish(result):
        results.append(result)
        print(format_result(result), file=stream, flush=True)

    jobs = resolve_jobs(jobs, len(claims))
    if jobs > 1 and parallelizable(claims):
        run_claims_in_processes(claims, ctx, jobs, quiet=quiet, on_start=start, on_result=finish)
        return results
    # The checks' matrices are small: BLAS threads would only spin, most of all on a busy
    # machine, so the program holds BLAS to one thread itself rather than asking the user to.
    with one_blas_thread():
        for i, c in enumerate(claims, 1):
            start(i, c)
            finish(run_claim(c, ctx))
    return results


def _log(args):
    """Where progress lines go: stderr, or nowhere under ``--quiet``."""
    if args.quiet:
        return None
    return lambda line: print(line, file=sys.stderr, flush=True)


def _context(args) -> Context:
    log = _log(args)
    progress = (lambda message: None) if log is None else (lambda message: log(f"      ... {message}"))
    return Context(seed=args.seed, quick=args.quick, full=getattr(args, "full", False), progress=progress)


def _write_json(path, results, args, wall_seconds) -> None:
    payload = {"environment": environment(), "seed": args.seed, "quick": args.quick,
               "full": getattr(args, "full", False), "wall_seconds": wall_seconds,
               "claims": [r.to_dict() for r in results]}
    write_json(path, payload, default=float)


def _use_agg() -> None:
    # Files only, no window: chosen here, in the command, never at import of a library.
    import matplotlib

    matplotlib.use("Agg")


def format_figure(f) -> str:
    """A figure's printed line.

    Parameters
    ----------
    f : FigureFile
        A figure after :func:`~proofs_check.figures.make_figures` ran it.

    Returns
    -------
    str
        Status, name and time, then the files written, the reason it was skipped, or the
        exception (indented lines).
    """
    head = f"{f.status:7s} {f.name:<16s} {f.seconds:6.2f} s"
    if f.ok:
        return f"{head}  {f.png}  {f.pdf}"
    if f.skipped is not None:
        return f"{head}  skipped: {f.skipped}"
    return head + "\n" + "\n".join("      ! " + line for line in f.error.rstrip().splitlines())


# --- checks done before any work ---------------------------------------------------------------

def _figures(names):
    """The figure specs for ``--figure`` names; UsageError naming ``--figure`` for an unknown one."""
    from .figures import available_figures, select_figures

    for name in names or ():
        try:
            select_figures([name])
        except ValueError:
            known = ", ".join(s.name for s in available_figures())
            raise ValueError(f"invalid figure: {name!r} matches no figure; known figures: {known}") from None
    return select_figures(names)


def _selected_claims(args):
    """The claims ``--only`` selects; UsageError naming ``--only`` when it matches none."""
    with checking(args):
        return select(args.only)


def _out_dir(args):
    check_output_dir(args.out, name="out", create=True, parents=args.mkdir)


# --- subcommands -------------------------------------------------------------------------------

def _claim_options(parser, *, full: bool = True) -> None:
    parser.add_argument("--only", action="append", metavar="ID",
                        help="only this claim id (or, when no id is exactly ID, every id starting with "
                             "'ID-'); repeatable")
    parser.add_argument("--seed", type=nonnegative_int, default=0, metavar="S",
                        help="seed of every random path (default 0)")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="smallest sizes that still test each claim")
    if full:
        sizes.add_argument("--full", action="store_true", help="expensive variants (wide networks, GPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                        help="worker processes (default: one per CPU, at most 4; 1 runs every claim in "
                             "this process); the numbers do not depend on it")


def _out_options(parser) -> None:
    parser.add_argument("--out", metavar="DIR", required=True,
                        help="output folder, created if missing (its parent must exist)")
    parser.add_argument("--mkdir", action="store_true", help="also create the missing parents of --out")


def _json_option(parser) -> None:
    parser.add_argument("--json", metavar="PATH", type=output_file(), help="also write the results as JSON")


def _figure_option(parser) -> None:
    parser.add_argument("--figure", action="append", metavar="NAME",
                        help="only this figure (repeatable; default all)")


def add_run_arguments(parser) -> None:
    """Add the options of ``run`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``run`` subcommand's parser; gets the claim options and ``--json``.
    """
    _claim_options(parser)
    _json_option(parser)


def cmd_run(args) -> int:
    """``run``: every selected claim, the summary line, the JSON file.

    Parameters
    ----------
    args : argparse.Namespace
        The ``run`` options: the claim selection and sizes, ``--jobs``, ``--json``.

    Returns
    -------
    int
        0, or 1 when a claim failed.

    Raises
    ------
    variational_nets.cli.common.UsageError
        For an ``--only`` that matches no claim.
    """
    claims = _selected_claims(args)
    ctx = _context(args)
    start = time.perf_counter()
    results = []
    with interruption(lambda: f"{len(results)} of {len(claims)} claims finished, nothing written; "
                              f"rerun: {args.command_line}"):
        run_claims(claims, ctx, quiet=args.quiet, results=results, jobs=args.jobs)
    wall = time.perf_counter() - start
    print(summary_line(results, wall))
    if args.json:
        _write_json(args.json, results, args, wall)
    return EXIT_FAILED if any(r.failed for r in results) else 0


def add_list_arguments(parser) -> None:
    """Add the options of ``list`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``list`` subcommand's parser; gets ``--only``.
    """
    parser.add_argument("--only", action="append", metavar="ID", help="only this claim id or family")


def cmd_list(args) -> int:
    """``list``: one line per claim: id, kind, reference, statement.

    Parameters
    ----------
    args : argparse.Namespace
        The ``list`` options: ``--only``.

    Returns
    -------
    int
        0.

    Raises
    ------
    variational_nets.cli.common.UsageError
        For an ``--only`` that matches no claim.
    """
    claims = _selected_claims(args)
    for c in claims:
        print(f"{c.id:<16s} {c.kind:<10s} {c.reference:<22s} {c.statement}")
    return 0


def add_figures_arguments(parser) -> None:
    """Add the options of ``figures`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``figures`` subcommand's parser; gets ``--figure``, ``--seed``, ``--quick``, the output folder.
    """
    _figure_option(parser)
    parser.add_argument("--seed", type=nonnegative_int, default=0, metavar="S",
                        help="seed of every random path (default 0)")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    _out_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def cmd_figures(args) -> int:
    """``figures``: draw the selected figures into ``--out``.

    Parameters
    ----------
    args : argparse.Namespace
        The ``figures`` options: ``--figure``, ``--seed``, ``--quick``, ``--out``.

    Returns
    -------
    int
        0, or 1 when a figure raised.

    Raises
    ------
    variational_nets.cli.common.UsageError
        For an unknown ``--figure`` or an ``--out`` that cannot be created.
    """
    from .figures import make_figures

    with checking(args):
        _out_dir(args)
        _figures(args.figure)
    _use_agg()
    os.makedirs(args.out, exist_ok=True)
    with interruption(lambda: f"figures stopped; rerun: {args.command_line}"):
        files = make_figures(args.out, _context(args), only=args.figure, log=_log(args))
    for f in files:
        print(format_figure(f), flush=True)
    broken = [f.name for f in files if f.error is not None]
    print(f"{sum(f.ok for f in files)} of {len(files)} figures written to {args.out}"
          + (f"; failing: {', '.join(broken)}" if broken else ""))
    return EXIT_FAILED if broken else 0


def add_report_arguments(parser) -> None:
    """Add the options of ``report`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``report`` subcommand's parser; gets the claim and figure options, the output folder, ``--json``.
    """
    _claim_options(parser)
    _figure_option(parser)
    _out_options(parser)
    _json_option(parser)


def cmd_report(args) -> int:
    """``report``: run claims and figures, write the report files into ``--out``.

    Parameters
    ----------
    args : argparse.Namespace
        The ``report`` options: the claim selection, ``--figure``, ``--out``, ``--json``.

    Returns
    -------
    int
        0, or 1 when a claim failed or a figure raised (the report is written either way).

    Raises
    ------
    variational_nets.cli.common.UsageError
        For an ``--only`` or ``--figure`` that matches nothing, or an ``--out`` that cannot be
        created.
    """
    from .figures import make_figures
    from .report import ReportData, write_report

    with checking(args):  # cheapest first: the claim ids need every claim module imported
        _out_dir(args)
        _figures(args.figure)
        claims = select(args.only)
    _use_agg()
    start = time.perf_counter()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    ctx = _context(args)
    results = []
    with interruption(lambda: f"{len(results)} of {len(claims)} claims finished, no report written; "
                              f"rerun: {args.command_line}"):
        run_claims(claims, ctx, quiet=args.quiet, results=results, jobs=args.jobs)
        os.makedirs(args.out, exist_ok=True)
        figures = make_figures(os.path.join(args.out, "figures"), ctx, only=args.figure, log=_log(args),
                               caption_in_image=False)
    for f in figures:
        print(format_figure(f), flush=True)
    data = ReportData(results=tuple(results), figures=tuple(figures), seed=args.seed, quick=args.quick,
                      full=args.full, date=date, wall_seconds=time.perf_counter() - start,
                      environment=tuple((k, str(v)) for k, v in environment().items()),
                      command=args.command_line)
    files = write_report(args.out, data)
    if args.json:
        _write_json(args.json, results, args, data.wall_seconds)
    print(summary_line(results, data.wall_seconds))
    print(f"report: {files.markdown}, {files.html}")
    return 0 if data.passed else EXIT_FAILED


def commands() -> tuple:
    """The subcommands, in the order ``--help`` lists them. Register a new one here.

    Returns
    -------
    tuple of variational_nets.cli.common.Command
        ``run``, ``list``, ``figures``, ``report`` and ``conform``.
    """
    return (
        Command("run", "run the checks of the claims (the default)", add_run_arguments, cmd_run),
        Command("list", "list the claims: id, kind, reference, statement", add_list_arguments, cmd_list),
        Command("figures", "draw the theory figures (PNG and PDF)", add_figures_arguments, cmd_figures),
        Command("report", "run claims and figures, write report.md, report.html and report.json",
                add_report_arguments, cmd_report),
        Command("conform", "check an IBVI trainer (MODULE:CALLABLE) against the theorems on the linear model",
                conform_cli.add_arguments, conform_cli.run),
    )


def build_parser() -> Parser:
    """The parser of ``python -m proofs_check`` with every subcommand.

    Returns
    -------
    variational_nets.cli.common.Parser
        Its subcommands are those of :func:`commands`.
    """
    parser = Parser(prog=PROG, description="Check the claims of the IBVI paper (and our extensions) against "
                                           "stated tolerances. Without a subcommand: run.")
    add_commands(parser, commands())
    return parser


def main(argv=None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Default ``sys.argv[1:]``; without a subcommand, ``run``.

    Returns
    -------
    int
        The exit status: 0 all good, 1 a claim failed or a figure raised, 2 usage error,
        3 internal error, 130 SIGINT, 143 SIGTERM.
    """
    return run_main(build_parser(), argv, default_command="run")

