"""proofs_check.registry: results of passing, failing, raising and skipped checks; SKIP is one
line, not a failure, and counted apart; every result type serializes itself (to_dict)."""
import json

import pytest

from proofs_check import cli, registry
from proofs_check.registry import (Claim, ClaimSkipped, Context, Measurement, Outcome, Table,
                                   run_claim, select)

HINT = 'pip install "ibvi-theory[data]"'


def _claim(check, claim_id="ZZ9"):
    return Claim(claim_id, "a statement", "test §0", "extension", check)


def _passing(ctx):
    return Outcome((Measurement("two routes", 1e-12, 1e-8, "rounding"),
                    Measurement("a ratio", 1.5, None, "reported")),
                   tables=(Table("a table", ("a", "b"), ((1, 0.5),)),), notes=("a note",))


def _failing(ctx):
    return Outcome((Measurement("wrong", 0.75, 1e-6, "rounding"),))


def _raising(ctx):
    raise RuntimeError("boom")


def _skipping(ctx):
    raise ClaimSkipped("needs scikit-learn", HINT)


@pytest.fixture
def fake_claims(monkeypatch):
    registry.all_claims()  # the real modules register into the real registry first
    monkeypatch.setattr(registry, "_REGISTRY", {})
    for claim_id, check in (("ZZ1-pass", _passing), ("ZZ1-fail", _failing), ("ZZ2", _raising),
                            ("ZZ3-full", _skipping)):
        registry.claim(claim_id, statement=f"{claim_id} statement", reference="test", kind="paper")(check)


@pytest.mark.parametrize("check,status,passed,failed,skipped", [
    (_passing, "pass", True, False, False), (_failing, "FAIL", False, True, False),
    (_raising, "ERROR", False, True, False), (_skipping, "SKIP", False, False, True)])
def test_each_outcome_has_one_status(check, status, passed, failed, skipped):
    result = run_claim(_claim(check), Context(seed=4))
    assert (result.status, result.passed, result.failed, result.skipped) == (status, passed, failed, skipped)
    assert result.status in registry.STATUSES and result.seed == 4


def test_a_skip_is_one_line_with_the_install_command():
    result = run_claim(_claim(_skipping, "C10-full"), Context())
    assert (result.skip_reason, result.install_hint, result.outcome, result.exception) == \
        ("needs scikit-learn", HINT, None, None)
    assert cli.format_result(result) == f"SKIP  C10-full         needs scikit-learn: {HINT}"
    assert str(ClaimSkipped("needs a GPU")) == "needs a GPU"


def test_claim_skipped_checks_its_arguments():
    with pytest.raises(ValueError, match="reason must be a non-empty string"):
        ClaimSkipped("  ")
    with pytest.raises(TypeError, match="install_hint must be a string or None, got int"):
        ClaimSkipped("needs x", 3)


def test_summary_counts_skipped_claims_apart():
    results = [run_claim(_claim(c), Context()) for c in (_passing, _passing, _skipping)]
    assert cli.summary_line(results).startswith("2 passed, 0 failed, 1 skipped (")
    results.append(run_claim(_claim(_failing, "ZZ8"), Context()))
    assert cli.summary_line(results).endswith("; failing: ZZ8")


def test_a_check_returning_something_else_is_an_error_naming_what_it_returned():
    result = run_claim(_claim(lambda ctx: [1.0]), Context())
    assert result.status == "ERROR" and result.exception.startswith("TypeError: check of ZZ9 returned list")


def test_an_interrupt_is_not_a_result():
    def interrupted(ctx):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_claim(_claim(interrupted), Context())


def test_to_dict_is_the_json_form_of_every_result_type():
    passed = run_claim(_claim(_passing), Context(seed=2))
    data = json.loads(json.dumps(passed.to_dict()))
    assert data["status"] == "pass" and data["seed"] == 2 and data["skip_reason"] is None
    assert data["measurements"][0] == {"name": "two routes", "error": 1e-12, "tolerance": 1e-8,
                                       "reason": "rounding", "passed": True}
    assert data["measurements"][1]["tolerance"] is None and data["measurements"][1]["passed"] is True
    assert data["tables"] == [{"title": "a table", "header": ["a", "b"], "rows": [[1, 0.5]]}]
    assert data["notes"] == ["a note"]
    skipped = run_claim(_claim(_skipping), Context()).to_dict()
    assert (skipped["status"], skipped["install_hint"], skipped["measurements"]) == ("SKIP", HINT, [])
    assert set(skipped) == set(data)
    errored = run_claim(_claim(_raising), Context()).to_dict()
    assert errored["status"] == "ERROR" and errored["exception"].startswith("RuntimeError: boom")


def test_run_with_a_skipped_claim_passes_and_records_the_skip(fake_claims, tmp_path, capsys):
    path = tmp_path / "r.json"
    assert cli.main(["--only", "ZZ1-pass", "--only", "ZZ3-full", "--quiet", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"SKIP  ZZ3-full         needs scikit-learn: {HINT}\n" in out
    assert "1 passed, 0 failed, 1 skipped" in out
    claims = json.loads(path.read_text())["claims"]
    assert [(c["id"], c["status"]) for c in claims] == [("ZZ1-pass", "pass"), ("ZZ3-full", "SKIP")]


def test_a_report_with_a_skipped_claim_passes_and_says_so(fake_claims, tmp_path):
    out = tmp_path / "rep"
    assert cli.main(["report", "--out", str(out), "--only", "ZZ1-pass", "--only", "ZZ3-full", "--figure",
                     "convergence", "--quick", "--quiet"]) == 0
    md = (out / "report.md").read_text()
    assert "PASSED" in md and "1 of 2 claims passed; skipped: ZZ3-full" in md and HINT in md
    payload = json.loads((out / "report.json").read_text())
    assert payload["passed"] is True and payload["claims"][1]["status"] == "SKIP"


def test_select_names_the_argument_and_refuses_a_string():
    with pytest.raises(ValueError, match=r"^only: 'NOPE' matches no claim; known ids: C1-gd"):
        select(["NOPE"])
    with pytest.raises(TypeError, match=r"only must be a sequence of claim ids, not a string: use \['C1'\]"):
        select("C1")
    with pytest.raises(TypeError, match="only must hold claim ids"):
        select([1])
    assert [c.id for c in select(["c5"])] == ["C5"]


def test_summary_shows_the_wall_time_and_the_checks_own_time_when_they_ran_in_parallel():
    import dataclasses

    results = [dataclasses.replace(run_claim(_claim(_passing, f"ZZ{i}"), Context()), seconds=10.0)
               for i in (1, 2)]
    assert cli.summary_line(results).endswith("(20.0 s)")
    assert cli.summary_line(results, wall_seconds=11.0).endswith(
        "(11.0 s; the checks' own time 20.0 s in parallel)")
    assert cli.summary_line(results, wall_seconds=20.0).endswith("(20.0 s)")
