"""A shareable report of a run: a summary table, every claim with its measurements and figures.

:func:`write_report` writes ``report.md``, ``report.html`` and ``report.json`` into one folder
whose ``figures/`` subfolder holds the PNG and PDF files. Both pages have the same layout:

1. a banner (passed or failed) and the run's settings;
2. a **summary table**, one row per claim: id (a link to its section), kind, status, the worst
   judged error beside its tolerance (the measurement whose ``error / tolerance`` is largest), and
   the time;
3. one **section per claim**: its statement, reference, the measurements (error, tolerance,
   verdict, the tolerance's reason), its tables and notes, and the figures that illustrate it
   (a figure module's ``CLAIMS``), each drawn once with its caption once;
4. the figures that illustrate none of the selected claims, and the package versions.

Formulas in statements, names and notes are written in ASCII by the claims (``mu_0``,
``X^+``, ``||XL||_F``); :func:`readable` turns them into their usual symbols for display
(``μ₀``, ``X⁺``, ``‖XL‖_F``). The JSON keeps the text as the claims wrote it.

The HTML is self-contained apart from the figures: its CSS is inline, each figure is an
``<img>`` with a *relative* path ``figures/NAME.png``, every piece of text goes through
:func:`html.escape`, and the layout wraps long words and tables so the page fits a 1280-pixel
window without horizontal scrolling.
"""
from __future__ import annotations

import html
import math
import os
import re
from dataclasses import dataclass

from variational_nets.files import atomic_write, write_json

from .figures import FigureFile
from .registry import ClaimResult, Measurement

__all__ = ["ReportData", "ReportFiles", "render_markdown", "render_html", "write_report", "report_payload",
           "readable", "worst_measurement"]


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows.

    Parameters
    ----------
    results : tuple of ClaimResult
        The claims, in the order they ran.
    figures : tuple of FigureFile
        The figures drawn for the report.
    seed : int
        The seed the claims ran with.
    quick, full : bool
        The run's size settings (see :class:`proofs_check.registry.Context`).
    date : str
        ISO-8601 timestamp.
    wall_seconds : float
        Wall time of the whole command.
    environment : tuple of (str, str)
        ``(package, version)`` pairs (see :func:`proofs_check.cli.environment`).
    command : str, optional
        The command that made the report.
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
        """Whether the run passed.

        Returns
        -------
        bool
            True when no claim failed and no figure raised (skipped claims and figures do not
            fail).
        """
        return not any(r.failed for r in self.results) and all(f.error is None for f in self.figures)

    @property
    def mode(self) -> str:
        """The run's size setting in one word.

        Returns
        -------
        str
            ``"full"``, ``"quick"`` or ``"default"``.
        """
        return "full" if self.full else ("quick" if self.quick else "default")

    def summary(self) -> str:
        """The run in one sentence.

        Returns
        -------
        str
            How many claims passed, the failing and skipped ids, how many figures were drawn and
            the figures that raised or were skipped.
        """
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
    """Paths of the written report files.

    Parameters
    ----------
    markdown : str
        ``OUT_DIR/report.md``.
    html : str
        ``OUT_DIR/report.html``.
    json : str
        ``OUT_DIR/report.json``.
    """

    markdown: str
    html: str
    json: str


# ---------------------------------------------------------------------------------------------
# Formulas for display

_GREEK = {"mu": "μ", "Sigma": "Σ", "sigma": "σ", "eta": "η", "lambda": "λ", "lam": "λ", "tau": "τ",
          "kappa": "κ", "rho": "ρ", "beta": "β", "alpha": "α", "delta": "δ", "gamma": "γ", "theta": "θ",
          "phi": "φ", "zeta": "ζ", "nu": "ν", "xi": "ξ", "epsilon": "ε", "Delta": "Δ"}
_GREEK_PATTERN = re.compile(r"(?<![A-Za-z])(" + "|".join(sorted(_GREEK, key=len, reverse=True)) + r")(?![A-Za-z])")
_SUBSCRIPT_DIGITS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_REPLACEMENTS = (
    (re.compile(r"\bmuP\b"), "μP"),
    (re.compile(r"_inf(?![A-Za-z])"), "∞"),
    (re.compile(r"(?<![A-Za-z])inf(?![A-Za-z])"), "∞"),
    (re.compile(r"_(\d)(?![\dA-Za-z])"), lambda m: m.group(1).translate(_SUBSCRIPT_DIGITS)),
    (re.compile(r"\^2(?![\d.])"), "²"),
    (re.compile(r"\^T(?![A-Za-z])"), "ᵀ"),
    (re.compile(r"\^\+"), "⁺"),
    (re.compile(r"\^-1(?![\d/.])"), "⁻¹"),
    (re.compile(r"\|\|"), "‖"),
    (re.compile(r"<="), "≤"),
    (re.compile(r">="), "≥"),
    (re.compile(r"->"), "→"),
    (re.compile(r"\+-"), "±"),
    (re.compile(r"\bsqrt\("), "√("),
)


def readable(text) -> str:
    """``text`` with ASCII formulas written in their usual symbols, for display only.

    Parameters
    ----------
    text : str
        A statement, measurement name, reason or note as a claim wrote it.

    Returns
    -------
    str
        Greek letters spelled out (``mu``, ``Sigma``, ``eta``, ``lambda``, ...) become symbols
        when they stand alone or carry a subscript (``mu_0`` → ``μ₀``; never inside a word);
        single-digit subscripts, ``_inf``, ``^2``, ``^T``, ``^+``, ``^-1``, ``||``, ``<=``,
        ``>=``, ``->``, ``+-`` and ``sqrt(`` become ``₀…₉``, ``∞``, ``²``, ``ᵀ``, ``⁺``, ``⁻¹``,
        ``‖``, ``≤``, ``≥``, ``→``, ``±`` and ``√(``.

    Examples
    --------
    >>> readable("q_inf = N(mu_0 + X^+(y - X mu_0), P_null Sigma_0 P_null)")
    'q∞ = N(μ₀ + X⁺(y - X μ₀), P_null Σ₀ P_null)'
    """
    text = _GREEK_PATTERN.sub(lambda m: _GREEK[m.group(1)], str(text))
    for pattern, replacement in _REPLACEMENTS:
        text = pattern.sub(replacement, text)
    return text


# ---------------------------------------------------------------------------------------------
# What both pages show


def _ratio(m: Measurement) -> float:
    """``error / tolerance`` of a judged measurement (0/0 counts as 0, NaN or x/0 as infinite)."""
    if not math.isfinite(m.error):
        return math.inf
    if m.tolerance == 0:
        return 0.0 if m.error == 0 else math.inf
    return abs(m.error) / m.tolerance


def worst_measurement(result: ClaimResult) -> Measurement | None:
    """The judged measurement of ``result`` with the largest ``error / tolerance`` (``None`` if none).

    Parameters
    ----------
    result : ClaimResult
        A claim after its check ran; its judged measurements are compared.

    Returns
    -------
    Measurement or None
        Ties go to the first; a failing measurement always has a ratio above 1 (or infinite).
    """
    if result.outcome is None:
        return None
    judged = [m for m in result.outcome.measurements if m.judged]
    return max(judged, key=_ratio) if judged else None


def _worst_cell(result: ClaimResult) -> str:
    if result.skipped:
        return "skipped"
    if result.exception is not None or result.outcome is None:
        return "exception"
    worst = worst_measurement(result)
    if worst is None:
        return "reported only"
    relation = "≤" if worst.passed else ">"
    return f"{worst.error:.2e} {relation} {worst.tolerance:.1e}"


def _status(result: ClaimResult) -> str:
    return result.status


def _verdict(m: Measurement) -> str:
    if not m.judged:
        return "reported"
    return "ok" if m.passed else "BAD"


_MEASUREMENT_COLUMNS = ("measurement", "error", "tolerance", "verdict", "reason for the tolerance")


def _measurement_row(m: Measurement) -> tuple[str, ...]:
    if m.judged:
        return readable(m.name), f"{m.error:.3e}", f"{m.tolerance:.1e}", _verdict(m), readable(m.reason)
    return readable(m.name), f"{m.error:.4g}", "—", _verdict(m), readable(m.reason)


def _number(value) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else readable(value)


def _relative(path: str, out_dir: str) -> str:
    return os.path.relpath(path, out_dir).replace(os.sep, "/")


def _illustrates(figure: FigureFile, claim_id: str) -> bool:
    """Whether ``figure`` lists ``claim_id`` (or its family: ``C1`` covers ``C1-gd``)."""
    return any(claim_id == c or claim_id.startswith(c + "-") for c in figure.claims)


def _place_figures(data: ReportData) -> tuple[dict, list]:
    """``{claim id: [figures]}`` — each figure under the first selected claim it illustrates —
    and the figures that illustrate none of them."""
    placed, rest = {}, []
    for figure in data.figures:
        home = next((r.claim.id for r in data.results if _illustrates(figure, r.claim.id)), None)
        if home is None:
            rest.append(figure)
        else:
            placed.setdefault(home, []).append(figure)
    return placed, rest


def _anchor(claim_id: str) -> str:
    return "claim-" + re.sub(r"[^A-Za-z0-9_-]", "-", claim_id)


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


def _md_figure(f: FigureFile, out_dir: str) -> list[str]:
    lines = [f"**Figure {f.name}.**", ""]
    if f.ok:
        lines += [f"![{_md_cell(f.name)}]({_relative(f.png, out_dir)})", "",
                  f"{readable(f.caption)} ([PDF]({_relative(f.pdf, out_dir)}); drawn in {f.seconds:.1f} s)", ""]
    elif f.skipped is not None:
        lines += [f"Skipped: {f.skipped}. {readable(f.caption)}", ""]
    else:
        lines += ["Failed:", "", "```text", f.error.rstrip(), "```", ""]
    return lines


def render_markdown(data: ReportData, out_dir: str) -> str:
    """The report as Markdown; figure paths are relative to ``out_dir``.

    Parameters
    ----------
    data : ReportData
        What the report shows.
    out_dir : str
        The folder ``report.md`` is written to; figure links are made relative to it.

    Returns
    -------
    str
        The Markdown page: summary table, then one section per claim and figure.
    """
    status = "PASSED" if data.passed else "FAILED"
    placed, rest = _place_figures(data)
    lines = ["# IBVI theory checks: report", "",
             f"**{status}**: {data.summary()}.", "",
             f"- date: {data.date}",
             f"- seed: {data.seed}",
             f"- mode: {data.mode}",
             f"- wall time: {data.wall_seconds:.1f} s (claims {sum(r.seconds for r in data.results):.1f} s, "
             f"figures {sum(f.seconds for f in data.figures):.1f} s)",
             f"- command: `{data.command}`", "",
             "## Summary", "",
             "One row per claim; *worst error* is the judged measurement with the largest ratio of error to "
             "tolerance. Each id links to the claim's section.", ""]
    lines += _md_table(("claim", "kind", "status", "worst error vs tolerance", "time (s)"),
                       [(f"[{r.claim.id}](#{_anchor(r.claim.id)})", r.claim.kind, _status(r), _worst_cell(r),
                         f"{r.seconds:.2f}") for r in data.results])
    lines += ["", "## Claims", "",
              "Each measurement is an error between two independent routes beside its tolerance and the "
              "reason for that tolerance; *reported* rows are measured and shown, not judged.", ""]
    for r in data.results:
        c = r.claim
        lines += [f'<a id="{_anchor(c.id)}"></a>', "", f"### {c.id}: {c.kind}, {_status(r)}", "",
                  readable(c.statement), "", f"*Reference: {readable(c.reference)}; {r.seconds:.2f} s.*", ""]
        if r.skipped:
            hint = "" if r.install_hint is None else f" Install: `{r.install_hint}`."
            lines += [f"Skipped: {r.skip_reason}.{hint}", ""]
        elif r.exception is not None or r.outcome is None:
            lines += ["```text", (r.exception or "no outcome").rstrip(), "```", ""]
        else:
            if r.outcome.measurements:
                lines += _md_table(_MEASUREMENT_COLUMNS, [_measurement_row(m) for m in r.outcome.measurements])
                lines.append("")
            for table in r.outcome.tables:
                lines += [f"**{_md_cell(readable(table.title))}**", ""]
                lines += _md_table([readable(h) for h in table.header],
                                   [[_number(v) for v in row] for row in table.rows])
                lines.append("")
            lines += [f"- {' '.join(readable(note).split())}" for note in r.outcome.notes]
            if r.outcome.notes:
                lines.append("")
        for f in placed.get(c.id, ()):
            lines += _md_figure(f, out_dir)
    if rest or not data.figures:
        lines += ["## Other figures", ""]
        if not data.figures:
            lines.append("No figures were selected.")
        for f in rest:
            lines += _md_figure(f, out_dir)
    lines += ["", "## Versions", ""]
    lines += _md_table(("package", "version"), data.environment)
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 1180px;
       padding: 0 1em; color: #222; line-height: 1.45; overflow-wrap: anywhere; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.8em; }
h3 { margin: 1.6em 0 .3em; } h3 .kind { font-weight: normal; color: #555; font-size: .85em; }
section.claim { border-top: 1px solid #ddd; padding-top: .2em; }
.statement { margin: .3em 0; } .reference { color: #555; font-size: .9em; margin: .2em 0 .6em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .85em; width: 100%; table-layout: auto; }
th, td { border: 1px solid #ccc; padding: .25em .45em; vertical-align: top; text-align: left; }
th { background: #f0f0f0; white-space: nowrap; overflow-wrap: normal; }
td.num { text-align: right; font-family: ui-monospace, monospace; white-space: nowrap; }
table.summary td:first-child { white-space: nowrap; }
.pass, .ok { color: #176317; font-weight: bold; } .fail, .FAIL, .BAD, .ERROR { color: #b00020; font-weight: bold; }
.rep, .SKIP { color: #555; } .banner { padding: .5em 1em; border-radius: 4px; display: inline-block; }
.banner.pass { background: #e3f4e3; } .banner.fail { background: #fbe3e6; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { margin-top: .3em; font-size: .92em; }
pre { background: #f6f6f6; padding: .6em; white-space: pre-wrap; font-size: .85em; }
ul.notes { font-size: .92em; }
"""

_NUMERIC = {"error", "tolerance", "time (s)"}
_STATUS_CLASS = {"pass": "pass", "ok": "ok", "FAIL": "FAIL", "ERROR": "ERROR", "BAD": "BAD",
                 "reported": "rep", "SKIP": "SKIP"}


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _cell(name: str, value, *, raw: bool = False) -> str:
    classes = ["num"] if name in _NUMERIC else []
    if name in ("verdict", "status") and str(value) in _STATUS_CLASS:
        classes.append(_STATUS_CLASS[str(value)])
    attr = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{attr}>{value if raw else _e(value)}</td>"


def _html_table(header, rows, *, css_class: str | None = None, raw_first: bool = False) -> list[str]:
    attr = f' class="{css_class}"' if css_class else ""
    out = [f"<table{attr}>", "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead>",
           "<tbody>"]
    for row in rows:
        cells = [_cell(name, value, raw=raw_first and k == 0) for k, (name, value) in enumerate(zip(header, row))]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    return out


def _html_figure(f: FigureFile, out_dir: str) -> list[str]:
    if f.ok:
        return ["<figure>",
                f'<img id="figure-{_e(f.name)}" src="{_e(_relative(f.png, out_dir))}" alt="figure {_e(f.name)}">',
                f"<figcaption><strong>Figure {_e(f.name)}.</strong> {_e(readable(f.caption))} "
                f"(<a href=\"{_e(_relative(f.pdf, out_dir))}\">PDF</a>; drawn in {f.seconds:.1f} s)</figcaption>",
                "</figure>"]
    if f.skipped is not None:
        return [f"<p><strong>Figure {_e(f.name)}</strong> skipped: {_e(f.skipped)}. {_e(readable(f.caption))}</p>"]
    return [f'<p class="fail">Figure {_e(f.name)} failed:</p><pre>{_e(f.error.rstrip())}</pre>']


def render_html(data: ReportData, out_dir: str) -> str:
    """The report as one HTML page with inline CSS; figures are relative ``<img>`` paths.

    Parameters
    ----------
    data : ReportData
        What the report shows.
    out_dir : str
        The folder ``report.html`` is written to; ``<img>`` paths are made relative to it.

    Returns
    -------
    str
        One self-contained HTML page (CSS inline, images linked).
    """
    status = "PASSED" if data.passed else "FAILED"
    banner = "pass" if data.passed else "fail"
    claim_time = sum(r.seconds for r in data.results)
    figure_time = sum(f.seconds for f in data.figures)
    placed, rest = _place_figures(data)
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
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
             "<h2>Summary</h2>",
             "<p>One row per claim; <em>worst error</em> is the judged measurement with the largest ratio of "
             "error to tolerance. Each id links to the claim's section.</p>"]
    parts += _html_table(("claim", "kind", "status", "worst error vs tolerance", "time (s)"),
                         [(f'<a href="#{_anchor(r.claim.id)}">{_e(r.claim.id)}</a>', r.claim.kind, _status(r),
                           _worst_cell(r), f"{r.seconds:.2f}") for r in data.results],
                         css_class="summary", raw_first=True)
    parts += ["<h2>Claims</h2>",
              "<p>Each measurement is an error between two independent routes beside its tolerance and the "
              "reason for that tolerance; <em>reported</em> rows are measured and shown, not judged.</p>"]
    for r in data.results:
        c = r.claim
        parts += [f'<section class="claim" id="{_anchor(c.id)}">',
                  f'<h3>{_e(c.id)} <span class="kind">{_e(c.kind)}, '
                  f'<span class="{_STATUS_CLASS.get(_status(r), "")}">{_e(_status(r))}</span></span></h3>',
                  f'<p class="statement">{_e(readable(c.statement))}</p>',
                  f'<p class="reference">Reference: {_e(readable(c.reference))}; {r.seconds:.2f} s.</p>']
        if r.skipped:
            hint = "" if r.install_hint is None else f" Install: <code>{_e(r.install_hint)}</code>."
            parts.append(f"<p>Skipped: {_e(r.skip_reason)}.{hint}</p>")
        elif r.exception is not None or r.outcome is None:
            parts.append(f"<pre>{_e((r.exception or 'no outcome').rstrip())}</pre>")
        else:
            if r.outcome.measurements:
                parts += _html_table(_MEASUREMENT_COLUMNS, [_measurement_row(m) for m in r.outcome.measurements])
            for table in r.outcome.tables:
                parts.append(f"<p><strong>{_e(readable(table.title))}</strong></p>")
                parts += _html_table([readable(h) for h in table.header],
                                     [[_number(v) for v in row] for row in table.rows])
            if r.outcome.notes:
                parts.append('<ul class="notes">' + "".join(f"<li>{_e(readable(n))}</li>" for n in r.outcome.notes)
                             + "</ul>")
        for f in placed.get(c.id, ()):
            parts += _html_figure(f, out_dir)
        parts.append("</section>")
    if rest or not data.figures:
        parts.append("<h2>Other figures</h2>")
        if not data.figures:
            parts.append("<p>No figures were selected.</p>")
        for f in rest:
            parts += _html_figure(f, out_dir)
    parts.append("<h2>Versions</h2>")
    parts += _html_table(("package", "version"), data.environment)
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------


def report_payload(data: ReportData) -> dict:
    """The JSON form: the claims as ``python -m proofs_check --json`` writes them, plus the figures.

    Parameters
    ----------
    data : ReportData
        What the report shows.

    Returns
    -------
    dict
        ``environment`` (package to version), ``seed``, ``quick``, ``full``, ``date``,
        ``wall_seconds``, ``passed``, ``claims`` (each :meth:`ClaimResult.to_dict
        <proofs_check.registry.ClaimResult.to_dict>`) and ``figures`` (name, status, paths,
        caption, claims, seconds, error, skipped).
    """
    return {"environment": dict(data.environment), "seed": data.seed, "quick": data.quick, "full": data.full,
            "date": data.date, "wall_seconds": data.wall_seconds, "passed": data.passed,
            "claims": [r.to_dict() for r in data.results],
            "figures": [{"name": f.name, "status": f.status, "png": f.png, "pdf": f.pdf, "caption": f.caption,
                         "claims": list(f.claims), "seconds": f.seconds, "error": f.error, "skipped": f.skipped}
                        for f in data.figures]}


def write_report(out_dir, data: ReportData) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and ``report.json`` into ``out_dir`` (created if missing).

    Parameters
    ----------
    out_dir : str or os.PathLike
        The report folder, created with its parents where missing.
    data : ReportData
        What the report shows.

    Returns
    -------
    ReportFiles
        The three paths. Each file is written atomically (a temporary file in ``out_dir``, then
        renamed over it).

    Raises
    ------
    OSError
        If ``out_dir`` cannot be created or written.
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
