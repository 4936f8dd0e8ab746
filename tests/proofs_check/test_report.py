"""The ``report`` command: the claims table, versions, seed, figures on disk, HTML escaping, exit
codes, and ``--quiet``.

Claims used here are registered into a *copy* of the registry (monkeypatched), so they never leak
into other tests; the real claim modules are loaded into the real registry first, so importing
them for the first time inside a test cannot strand them in the copy.
"""
import json
import os
import re

import matplotlib
import numpy
import pytest
import scipy

from proofs_check import cli, registry
from proofs_check.figures import FigureSpec
from proofs_check.registry import Measurement, Outcome, Table, claim

HOSTILE = '<script>alert("x")</script> & a|b'


@pytest.fixture
def fake_claims(monkeypatch):
    registry.all_claims()  # real claim modules register into the real registry, before the swap
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @claim("ZZ1-pass", statement=f"a claim that holds {HOSTILE}", reference="test §0", kind="extension")
    def _passing(ctx):
        ctx.progress("halfway through the passing claim")
        return Outcome(measurements=(Measurement("closed form vs simulation", 1.2344e-12, 1e-8,
                                                 "rounding of 40 steps"),
                                     Measurement("ratio of risks", 1.6875, None, f"reported, a conjecture {HOSTILE}")),
                       tables=(Table("threshold against the rank", ("rank", "threshold"), ((1, 0.5), (2, 0.25))),),
                       notes=("a note with <b>markup</b>",))

    @claim("ZZ1-fail", statement="a claim whose check fails", reference="test §1", kind="paper")
    def _failing(ctx):
        return Outcome(measurements=(Measurement("deliberately wrong formula", 0.75, 1e-6, "rounding"),))

    @claim("ZZ2", statement="a claim whose check raises", reference="test §2", kind="conjecture")
    def _raising(ctx):
        raise RuntimeError("broken <check> & co")

    return ("ZZ1-pass", "ZZ1-fail", "ZZ2")


def _read(out, name):
    with open(os.path.join(out, name), encoding="utf-8") as fh:
        return fh.read()


def _figure_references(out):
    md = re.findall(r"\]\((figures/[^)]+)\)", _read(out, "report.md"))
    html = re.findall(r'(?:src|href)="(figures/[^"]+)"', _read(out, "report.html"))
    return md, html


def test_report_holds_claims_table_versions_seed_and_figures(fake_claims, tmp_path):
    out = str(tmp_path / "rep")
    rc = cli.main(["report", "--out", out, "--quick", "--seed", "7", "--only", "ZZ1-pass",
                   "--figure", "convergence", "--quiet"])
    assert rc == 0
    md, html = _read(out, "report.md"), _read(out, "report.html")
    for text in (md, html):
        assert "ZZ1-pass" in text and "ZZ1-fail" not in text  # only the selected claim
        assert "1.234e-12" in text and "1.0e-08" in text  # measured error beside its tolerance
        assert "rounding of 40 steps" in text and "1.688" in text and "reported" in text
        assert "pass" in text and "PASSED" in text
        assert "seed: 7" in text and "mode: quick" in text
        for version in (numpy.__version__, scipy.__version__, matplotlib.__version__):
            assert version in text
        assert "threshold against the rank" in text  # the claim's table
        assert "wall time:" in text and "date:" in text
    md_refs, html_refs = _figure_references(out)
    assert set(md_refs) == set(html_refs) == {"figures/convergence.png", "figures/convergence.pdf"}
    for ref in md_refs:
        assert os.path.getsize(os.path.join(out, ref)) > 1000
    payload = json.loads(_read(out, "report.json"))
    assert payload["seed"] == 7 and payload["passed"] is True
    assert [c["id"] for c in payload["claims"]] == ["ZZ1-pass"]
    assert payload["claims"][0]["measurements"][0]["error"] == pytest.approx(1.2344e-12)
    assert payload["figures"][0]["status"] == "ok"


def test_report_html_escapes_text_and_markdown_escapes_pipes(fake_claims, tmp_path):
    out = str(tmp_path / "rep")
    assert cli.main(["report", "--out", out, "--only", "ZZ1-pass", "--figure", "convergence", "--quick",
                     "--quiet"]) == 0
    html, md = _read(out, "report.html"), _read(out, "report.md")
    assert "<script>" not in html and "<b>markup</b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; a|b" in html
    assert "&lt;b&gt;markup&lt;/b&gt;" in html
    assert "a\\|b" in md  # a raw pipe would split the Markdown table row


def test_failing_and_raising_claims_make_report_exit_nonzero_but_write_everything(fake_claims, tmp_path):
    out = str(tmp_path / "rep")
    rc = cli.main(["report", "--out", out, "--quick", "--figure", "convergence", "--quiet",
                   "--only", "ZZ1-pass", "--only", "ZZ1-fail", "--only", "ZZ2"])
    assert rc == cli.EXIT_FAILED
    md, html = _read(out, "report.md"), _read(out, "report.html")
    for text in (md, html):
        assert "FAILED" in text and "failing: ZZ1-fail, ZZ2" in text
        assert "7.500e-01" in text and "BAD" in text and "FAIL" in text
        assert "ERROR" in text and "RuntimeError" in text
    assert "broken &lt;check&gt; &amp; co" in html
    md_refs, _ = _figure_references(out)
    assert all(os.path.isfile(os.path.join(out, ref)) for ref in md_refs) and md_refs
    payload = json.loads(_read(out, "report.json"))
    assert {c["id"]: c["status"] for c in payload["claims"]} == {"ZZ1-pass": "pass", "ZZ1-fail": "FAIL",
                                                                  "ZZ2": "ERROR"}


def test_a_raising_figure_makes_report_exit_nonzero_and_is_reported(fake_claims, tmp_path, monkeypatch):
    def broken(ctx):
        raise ValueError("figure <broke>")

    specs = [FigureSpec(name="broken", caption="A figure that raises.", make=broken, module="test.fig_broken")]
    monkeypatch.setattr("proofs_check.figures.available_figures", lambda: specs)
    out = str(tmp_path / "rep")
    assert cli.main(["report", "--out", out, "--only", "ZZ1-pass", "--quiet"]) == cli.EXIT_FAILED
    html = _read(out, "report.html")
    assert "figure &lt;broke&gt;" in html and "figure errors: broken" in html


@pytest.mark.parametrize("command", ["run", "figures", "report"])
def test_quiet_silences_progress_lines(fake_claims, tmp_path, capsys, command):
    base = [command, "--quick"] + ([] if command == "run" else ["--out", str(tmp_path / command)])
    base += ["--figure", "convergence"] if command == "figures" else ["--only", "ZZ1-pass"]
    if command == "report":
        base += ["--figure", "convergence"]
    assert cli.main(base) == 0
    loud = capsys.readouterr()
    if command != "figures":
        assert "[1/1] ZZ1-pass ..." in loud.err
        assert "... halfway through the passing claim" in loud.err
    if command != "run":
        assert "[1/1] figure convergence ..." in loud.err
        assert "... convergence: GD" in loud.err  # the figure's own ctx.progress messages
    assert cli.main(base + ["--quiet"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""
    assert quiet.out  # results are still printed


def test_unknown_figure_or_claim_is_a_usage_error(fake_claims, tmp_path, capsys):
    out = str(tmp_path / "rep")
    assert cli.main(["report", "--out", out, "--figure", "no-such-figure", "--quiet"]) == cli.EXIT_USAGE
    assert "no-such-figure" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(out, "report.md"))  # nothing ran
    assert cli.main(["figures", "--out", out, "--figure", "no-such-figure"]) == cli.EXIT_USAGE
    assert cli.main(["report", "--out", out, "--only", "NO-SUCH-CLAIM"]) == cli.EXIT_USAGE


def _data(results, figures):
    from proofs_check.report import ReportData

    return ReportData(results=tuple(results), figures=tuple(figures), seed=0, quick=True, full=False,
                      date="2026-01-01T00:00:00+00:00", wall_seconds=1.0, environment=(("numpy", "x"),))


def test_figures_sit_under_the_claim_they_illustrate_and_skips_are_spelled_out(tmp_path):
    from proofs_check.figures import FigureFile
    from proofs_check.registry import ClaimSkipped, Context, run_claim
    from proofs_check.report import render_html, render_markdown

    def skipping(ctx):
        raise ClaimSkipped("needs an extra", "pip install extra")

    passing = registry.Claim("ZZ5-a", "a passing claim", "test §5", "extension",
                             lambda ctx: Outcome(measurements=(Measurement("err", 0.0, 1e-9, "exact"),)))
    skipped = registry.Claim("ZZ6", "a skipped claim", "test §6", "paper", skipping)
    results = [run_claim(passing, Context()), run_claim(skipped, Context())]
    out = str(tmp_path)
    drawn = FigureFile("drawn", os.path.join(out, "figures", "drawn.png"), os.path.join(out, "figures", "drawn.pdf"),
                       "the drawn figure", claims=("ZZ5",))
    missing = FigureFile("missing", None, None, "a figure with nothing to draw", skipped="needs a GPU",
                         claims=("C99",))
    data = _data(results, [drawn, missing])
    assert "skipped: ZZ6" in data.summary() and "skipped: missing" in data.summary()
    for page, second_claim, other in ((render_markdown(data, out), "### ZZ6", "## Other figures"),
                                      (render_html(data, out), 'id="claim-ZZ6"', "Other figures")):
        # the figure of ZZ5-a (family ZZ5) is drawn inside ZZ5-a's section, before the next claim
        assert page.index("ZZ5-a") < page.index("figures/drawn.png") < page.index(second_claim)
        # the skipped figure illustrates no selected claim: it goes to the other figures, with its reason
        assert page.index(other) < page.index("needs a GPU")
        assert "needs an extra" in page and "pip install extra" in page


def test_a_report_without_figures_says_so():
    from proofs_check.registry import Context, run_claim
    from proofs_check.report import render_html, render_markdown

    passing = registry.Claim("ZZ7", "a passing claim", "test §7", "extension",
                             lambda ctx: Outcome(measurements=(Measurement("err", 0.0, 1e-9, "exact"),)))
    data = _data([run_claim(passing, Context())], [])
    assert "No figures were selected." in render_markdown(data, ".")
    assert "<p>No figures were selected.</p>" in render_html(data, ".")
