"""Command line: ``python -m proofs_check [list|run|figures|report] [--only ID] [--quick] [--full]
[--seed S] [--json PATH] [--out DIR] [--figure NAME] [--quiet]``.

``run`` (the default) prints each claim with every measured error beside its tolerance and
exits with status 1 when any claim fails, 2 on a usage error.
``figures`` writes ``DIR/NAME.png`` and ``DIR/NAME.pdf`` for every figure (``--only NAME``
selects figures by name) and exits with status 1 when a figure raised.
``report`` runs the selected claims (``--only ID``) and the figures (``--figure NAME``), writes
``DIR/report.md``, ``DIR/report.html``, ``DIR/report.json`` and ``DIR/figures/``, and exits with
status 1 when a claim failed or a figure raised, after writing every file.
Progress lines (``[i/N] ...``) go to stderr and are silenced by ``--quiet``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

from .registry import ClaimResult, Context, run_claim, select

EXIT_FAIL = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m proofs_check",
        description="Check the claims of the IBVI paper (and extensions) against stated tolerances.")
    parser.add_argument("command", nargs="?", default="run", choices=COMMANDS,
                        help="list the claims, run their checks (default), draw the figures, or write "
                             "the report (claims and figures)")
    parser.add_argument("--only", action="append", metavar="ID",
                        help="run only this claim id (or, when no id is exactly ID, every id starting with "
                             "'ID-'); repeatable; for 'figures': only this figure name")
    parser.add_argument("--quick", action="store_true", help="smallest sizes that still test each claim")
    parser.add_argument("--full", action="store_true", help="expensive variants (wide networks, GPU)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random path (default 0)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--out", metavar="DIR", default="proofs_check_out",
                        help="output folder for 'figures' and 'report'")
    parser.add_argument("--figure", action="append", metavar="NAME",
                        help="'report' only: include only this figure (repeatable; default all)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _format_number(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def format_result(result: ClaimResult) -> str:
    """A claim's block: header line, one line per measurement, tables and notes."""
    c = result.claim
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


def result_to_dict(result: ClaimResult) -> dict:
    c = result.claim
    out = {"id": c.id, "kind": c.kind, "reference": c.reference, "statement": c.statement,
           "status": result.status, "passed": result.passed, "seconds": result.seconds,
           "seed": result.seed, "exception": result.exception, "measurements": [], "tables": [],
           "notes": []}
    if result.outcome is not None:
        out["measurements"] = [{"name": m.name, "error": m.error, "tolerance": m.tolerance,
                                "reason": m.reason, "passed": m.passed}
                               for m in result.outcome.measurements]
        out["tables"] = [{"title": t.title, "header": list(t.header), "rows": [list(r) for r in t.rows]}
                         for t in result.outcome.tables]
        out["notes"] = list(result.outcome.notes)
    return out


def environment() -> dict:
    """Versions that decide the numbers, recorded with every run."""
    import matplotlib
    import numpy
    import scipy
    import sympy

    return {"python": platform.python_version(), "numpy": numpy.__version__,
            "scipy": scipy.__version__, "sympy": sympy.__version__,
            "matplotlib": matplotlib.__version__, "platform": platform.platform()}


def run_claims(claims, ctx: Context, *, quiet: bool = False, stream=None) -> list[ClaimResult]:
    stream = sys.stdout if stream is None else stream
    results = []
    for i, c in enumerate(claims, 1):
        if not quiet:
            print(f"[{i}/{len(claims)}] {c.id} ...", file=sys.stderr, flush=True)
        result = run_claim(c, ctx)
        results.append(result)
        print(format_result(result), file=stream, flush=True)
    return results


def summary_line(results) -> str:
    failed = [r.claim.id for r in results if not r.passed]
    total = sum(r.seconds for r in results)
    text = f"{len(results) - len(failed)} passed, {len(failed)} failed ({total:.1f} s)"
    return text + (f"; failing: {', '.join(failed)}" if failed else "")


def cmd_list(args) -> int:
    for c in select(args.only):
        print(f"{c.id:<16s} {c.kind:<10s} {c.reference:<22s} {c.statement}")
    return 0


def _log(args):
    """Where progress lines go: stderr, or nowhere under ``--quiet``."""
    if args.quiet:
        return None
    return lambda line: print(line, file=sys.stderr, flush=True)


def _context(args) -> Context:
    log = _log(args)
    progress = (lambda message: None) if log is None else (lambda message: log(f"      ... {message}"))
    return Context(seed=args.seed, quick=args.quick, full=args.full, progress=progress)


def _write_json(path, results, args, wall_seconds) -> None:
    payload = {"environment": environment(), "seed": args.seed, "quick": args.quick,
               "full": args.full, "wall_seconds": wall_seconds,
               "claims": [result_to_dict(r) for r in results]}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2, default=float)


def cmd_run(args) -> int:
    claims = select(args.only)
    ctx = _context(args)
    start = time.perf_counter()
    results = run_claims(claims, ctx, quiet=args.quiet)
    print(summary_line(results))
    if args.json:
        _write_json(args.json, results, args, time.perf_counter() - start)
    return 0 if all(r.passed for r in results) else EXIT_FAIL


def _use_agg() -> None:
    # Files only, no window: chosen here, in the command, never at import of a library.
    import matplotlib

    matplotlib.use("Agg")


def format_figure(f) -> str:
    """A figure's line: status, name, time, and the files written (or the reason it is missing)."""
    head = f"{f.status:7s} {f.name:<16s} {f.seconds:6.2f} s"
    if f.ok:
        return f"{head}  {f.png}  {f.pdf}"
    if f.skipped is not None:
        return f"{head}  skipped: {f.skipped}"
    return head + "\n" + "\n".join("      ! " + line for line in f.error.rstrip().splitlines())


def cmd_figures(args) -> int:
    from .figures import make_figures

    _use_agg()
    files = make_figures(args.out, _context(args), only=args.only, log=_log(args))
    for f in files:
        print(format_figure(f), flush=True)
    broken = [f.name for f in files if f.error is not None]
    print(f"{sum(f.ok for f in files)} of {len(files)} figures written to {args.out}"
          + (f"; failing: {', '.join(broken)}" if broken else ""))
    return EXIT_FAIL if broken else 0


def cmd_report(args) -> int:
    from .figures import make_figures, select_figures
    from .report import ReportData, write_report

    _use_agg()
    start = time.perf_counter()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    claims = select(args.only)
    select_figures(args.figure)  # an unknown --figure is a usage error before any claim runs
    ctx = _context(args)
    results = run_claims(claims, ctx, quiet=args.quiet)
    figures = make_figures(os.path.join(args.out, "figures"), ctx, only=args.figure, log=_log(args))
    for f in figures:
        print(format_figure(f), flush=True)
    data = ReportData(results=tuple(results), figures=tuple(figures), seed=args.seed, quick=args.quick,
                      full=args.full, date=date, wall_seconds=time.perf_counter() - start,
                      environment=tuple((k, str(v)) for k, v in environment().items()),
                      command=" ".join(["python -m proofs_check", *(args.argv or ["report"])]))
    files = write_report(args.out, data)
    if args.json:
        _write_json(args.json, results, args, data.wall_seconds)
    print(summary_line(results))
    print(f"report: {files.markdown}, {files.html}")
    return 0 if data.passed else EXIT_FAIL


COMMANDS = {"list": cmd_list, "run": cmd_run, "figures": cmd_figures, "report": cmd_report}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return COMMANDS[args.command](args)
    except ValueError as exc:
        print(f"python -m proofs_check: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
