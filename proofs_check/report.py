"""A shareable report of a run: the claims table and the figures, as Markdown and as HTML.

:func:`write_report` writes ``report.md``, ``report.html`` and ``report.json`` into one folder
whose ``figures/`` subfolder holds the PNG and PDF files. The HTML is self-contained apart from
the figures: its CSS is inline and each figure is an ``<img>`` with a *relative* path
``figures/NAME.png``, so the folder can be zipped or served as it is (the images are not
embedded as base64, which keeps the HTML small and the PNGs reusable). The HTML is written with
the standard library only; every piece of text goes through :func:`html.escape`.
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass

from variational_nets._files import atomic_write, write_json

from .figures import FigureFile
from .registry import ClaimResult, Measurement

__all__ = ["ReportData", "ReportFiles", "render_markdown", "render_html", "write_report", "report_payload"]


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows.

    ``environment`` holds ``(package, version)`` pairs (see :func:`proofs_check.cli.environment`);
    ``date`` is an ISO-8601 timestamp; ``wall_seconds`` the wall time of the whole command.
    """

    results: tuple[ClaimResult, ...]
    figures: tuple[FigureFile, ...]
    seed: int
    quick: bool
    full: bool
    date: str
    wall_seconds: float
    environment: tuple[tuple[str, str], ...]
    command: str = "python -m proofs_check report"

    @property
    def passed(self) -> bool:
        """True when no claim failed and no figure raised (skipped claims and figures do not fail)."""
        return not any(r.failed for r in self.results) and all(f.error is None for f in self.figures)

    @property
    def mode(self) -> str:
        return "full" if self.full else ("quick" if self.quick else "default")

    def summary(self) -> str:
        failed = [r.claim.id for r in self.results if r.failed]
        skipped_claims = [r.claim.id for r in self.results if r.skipped]
        text = f"{sum(r.passed for r in self.results)} of {len(self.results)} claims passed"
        if failed:
            text += f"; failing: {', '.join(failed)}"
        if skipped_claims:
            text += f"; skipped: {', '.join(skipped_claims)}"
        broken = [f.name for f in self.figures if f.error is not None]
        skipped = [f.name for f in self.figures if f.skipped is not None]
        text += f"; {sum(f.ok for f in self.figures)} of {len(self.figures)} figures drawn"
        if broken:
            text += f"; figure errors: {', '.join(broken)}"
        if skipped:
            text += f"; skipped: {', '.join(skipped)}"
        return text


@dataclass(frozen=True)
class ReportFiles:
    """Paths of the written report files."""

    markdown: str
    html: str
    json: str


# ---------------------------------------------------------------------------------------------
# The rows of the claims table, shared by both renderers.

_COLUMNS = ("id", "kind", "reference", "statement", "measurement", "error", "tolerance", "reason",
            "verdict", "status", "time (s)")


def _verdict(m: Measurement) -> str:
    if not m.judged:
        return "reported"
    return "ok" if m.passed else "BAD"


def _measurement_cells(m: Measurement) -> tuple[str, str, str, str, str]:
    if m.judged:
        return m.name, f"{m.error:.3e}", f"{m.tolerance:.1e}", m.reason, _verdict(m)
    return m.name, f"{m.error:.4g}", "— (not judged)", m.reason, _verdict(m)


def _claim_rows(result: ClaimResult) -> list[tuple[str, ...]]:
    """One row per measurement; the claim's own columns only on its first row."""
    c = result.claim
    head = (c.id, c.kind, c.reference, c.statement)
    tail = (result.status, f"{result.seconds:.2f}")
    if result.skipped:
        hint = "" if result.install_hint is None else f": {result.install_hint}"
        return [head + ("skipped", "—", "—", result.skip_reason + hint, "—") + tail]
    if result.exception is not None or result.outcome is None:
        first_line = (result.exception or "no outcome").strip().splitlines()[0]
        return [head + ("exception", "—", "—", first_line, "ERROR") + tail]
    measurements = result.outcome.measurements
    if not measurements:
        return [head + ("(none)", "—", "—", "the check returned no measurement", "—") + tail]
    rows = []
    for k, m in enumerate(measurements):
        left = head if k == 0 else ("", "", "", "")
        right = tail if k == 0 else ("", "")
        rows.append(left + _measurement_cells(m) + right)
    return rows


def _relative(path: str, out_dir: str) -> str:
    return os.path.relpath(path, out_dir).replace(os.sep, "/")


def _number(value) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------
# Markdown


def _md_cell(text) -> str:
    """A table cell: one line, pipes escaped (Markdown tables split on ``|``)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _md_table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows)
    return lines


def render_markdown(data: ReportData, out_dir: str) -> str:
    """The report as Markdown; figure paths are relative to ``out_dir``."""
    status = "PASSED" if data.passed else "FAILED"
    lines = ["# IBVI theory checks: report", "",
             f"**{status}**: {data.summary()}.", "",
             f"- date: {data.date}",
             f"- seed: {data.seed}",
             f"- mode: {data.mode}",
             f"- wall time: {data.wall_seconds:.1f} s (claims {sum(r.seconds for r in data.results):.1f} s, "
             f"figures {sum(f.seconds for f in data.figures):.1f} s)",
             f"- command: `{data.command}`", "",
             "## Versions", ""]
    lines += _md_table(("package", "version"), data.environment)
    lines += ["", "## Claims", "",
              "Each measurement is an error between two independent routes beside its tolerance and the "
              "reason for that tolerance; `reported` rows are measured and shown, not judged.", ""]
    lines += _md_table(_COLUMNS, [row for r in data.results for row in _claim_rows(r)])
    details = [r for r in data.results
               if r.exception is not None or (r.outcome is not None and (r.outcome.tables or r.outcome.notes))]
    if details:
        lines += ["", "## Details", ""]
    for r in details:
        lines += [f"### {r.claim.id}", ""]
        if r.exception is not None:
            lines += ["```text", r.exception.rstrip(), "```", ""]
            continue
        for table in r.outcome.tables:
            lines += [f"**{_md_cell(table.title)}**", ""]
            lines += _md_table(table.header, [[_number(v) for v in row] for row in table.rows])
            lines.append("")
        for note in r.outcome.notes:
            lines.append(f"- note: {' '.join(str(note).split())}")
        if r.outcome.notes:
            lines.append("")
    lines += ["", "## Figures", ""]
    if not data.figures:
        lines.append("No figures were selected.")
    for f in data.figures:
        lines += [f"### {f.name}", ""]
        if f.ok:
            lines += [f"![{_md_cell(f.caption)}]({_relative(f.png, out_dir)})", "",
                      f"*{f.caption}* ([PDF]({_relative(f.pdf, out_dir)}); drawn in {f.seconds:.1f} s)", ""]
        elif f.skipped is not None:
            lines += [f"Skipped: {f.skipped}.", "", f"*{f.caption}*", ""]
        else:
            lines += ["Failed:", "", "```text", f.error.rstrip(), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .86em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; vertical-align: top; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; font-family: ui-monospace, monospace; white-space: nowrap; }
tr.claim-start td { border-top: 2px solid #888; }
.pass { color: #176317; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
.rep { color: #555; } .banner { padding: .5em 1em; border-radius: 4px; display: inline-block; }
.banner.pass { background: #e3f4e3; } .banner.fail { background: #fbe3e6; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-style: italic; margin-top: .3em; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: .85em; }
"""

_NUMERIC = {"error", "tolerance", "time (s)"}


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _status_class(text: str) -> str:
    if text in ("pass", "ok"):
        return "pass"
    if text in ("FAIL", "ERROR", "BAD"):
        return "fail"
    return "rep" if text == "reported" else ""


def _html_table(header, rows, *, row_classes=None) -> list[str]:
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead>", "<tbody>"]
    for k, row in enumerate(rows):
        cls = f' class="{row_classes[k]}"' if row_classes and row_classes[k] else ""
        cells = []
        for name, value in zip(header, row):
            classes = [c for c in ("num" if name in _NUMERIC else "", _status_class(str(value))
                                   if name in ("verdict", "status") else "") if c]
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{_e(value)}</td>")
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    return out


def render_html(data: ReportData, out_dir: str) -> str:
    """The report as one HTML page with inline CSS; figures are relative ``<img>`` paths."""
    status = "PASSED" if data.passed else "FAILED"
    banner = "pass" if data.passed else "fail"
    claim_time = sum(r.seconds for r in data.results)
    figure_time = sum(f.seconds for f in data.figures)
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             "<title>IBVI theory checks: report</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
             "<h1>IBVI theory checks: report</h1>",
             f'<p class="banner {banner}"><strong>{status}</strong>: {_e(data.summary())}.</p>',
             "<ul>",
             f"<li>date: {_e(data.date)}</li>",
             f"<li>seed: {_e(data.seed)}</li>",
             f"<li>mode: {_e(data.mode)}</li>",
             f"<li>wall time: {data.wall_seconds:.1f} s (claims {claim_time:.1f} s, figures {figure_time:.1f} s)</li>",
             f"<li>command: <code>{_e(data.command)}</code></li>",
             "</ul>",
             "<h2>Versions</h2>"]
    parts += _html_table(("package", "version"), data.environment)
    parts += ["<h2>Claims</h2>",
              "<p>Each measurement is an error between two independent routes beside its tolerance and the "
              "reason for that tolerance; <em>reported</em> rows are measured and shown, not judged.</p>"]
    rows, classes = [], []
    for r in data.results:
        claim_rows = _claim_rows(r)
        rows += claim_rows
        classes += ["claim-start"] + [""] * (len(claim_rows) - 1)
    parts += _html_table(_COLUMNS, rows, row_classes=classes)
    details = [r for r in data.results
               if r.exception is not None or (r.outcome is not None and (r.outcome.tables or r.outcome.notes))]
    if details:
        parts.append("<h2>Details</h2>")
    for r in details:
        parts.append(f'<h3 id="{_e(r.claim.id)}">{_e(r.claim.id)}</h3>')
        if r.exception is not None:
            parts.append(f"<pre>{_e(r.exception.rstrip())}</pre>")
            continue
        for table in r.outcome.tables:
            parts.append(f"<p><strong>{_e(table.title)}</strong></p>")
            parts += _html_table(table.header, [[_number(v) for v in row] for row in table.rows])
        if r.outcome.notes:
            parts.append("<ul>" + "".join(f"<li>note: {_e(n)}</li>" for n in r.outcome.notes) + "</ul>")
    parts.append("<h2>Figures</h2>")
    if not data.figures:
        parts.append("<p>No figures were selected.</p>")
    for f in data.figures:
        parts.append(f'<h3 id="figure-{_e(f.name)}">{_e(f.name)}</h3>')
        if f.ok:
            parts += ["<figure>",
                      f'<img src="{_e(_relative(f.png, out_dir))}" alt="{_e(f.caption)}">',
                      f"<figcaption>{_e(f.caption)} (<a href=\"{_e(_relative(f.pdf, out_dir))}\">PDF</a>; "
                      f"drawn in {f.seconds:.1f} s)</figcaption>",
                      "</figure>"]
        elif f.skipped is not None:
            parts.append(f"<p>Skipped: {_e(f.skipped)}.</p><p><em>{_e(f.caption)}</em></p>")
        else:
            parts.append(f'<p class="fail">Failed:</p><pre>{_e(f.error.rstrip())}</pre>')
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------


def report_payload(data: ReportData) -> dict:
    """The JSON form: the claims as ``python -m proofs_check --json`` writes them, plus the figures."""
    return {"environment": dict(data.environment), "seed": data.seed, "quick": data.quick, "full": data.full,
            "date": data.date, "wall_seconds": data.wall_seconds, "passed": data.passed,
            "claims": [r.to_dict() for r in data.results],
            "figures": [{"name": f.name, "status": f.status, "png": f.png, "pdf": f.pdf, "caption": f.caption,
                         "seconds": f.seconds, "error": f.error, "skipped": f.skipped} for f in data.figures]}


def write_report(out_dir, data: ReportData) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and ``report.json`` into ``out_dir`` (created if missing).

    Each file is written atomically (a temporary file in ``out_dir``, then renamed over it).
    """
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    files = ReportFiles(markdown=os.path.join(out_dir, "report.md"), html=os.path.join(out_dir, "report.html"),
                        json=os.path.join(out_dir, "report.json"))
    with atomic_write(files.markdown) as fh:
        fh.write(render_markdown(data, out_dir))
    with atomic_write(files.html) as fh:
        fh.write(render_html(data, out_dir))
    write_json(files.json, report_payload(data), default=float)
    return files
