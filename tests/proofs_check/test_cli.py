"""``python -m proofs_check``: subcommands with their own options, the default ``run``, every
option checked before any claim runs (one line, exit 2), interrupts (one line, 130/143, nothing
written), internal errors (exit 3), and files only where the user asked."""
import json
import os
import subprocess
import sys

import pytest

from proofs_check import cli, registry
from proofs_check.registry import Measurement, Outcome
from variational_nets.cli.common import EXIT_STATUS, Terminated

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALLS = []


def _counted(ctx):
    CALLS.append(ctx.seed)
    return Outcome((Measurement("two routes", 0.0, 1e-12, "exact"),))


def _interrupting(ctx):
    raise KeyboardInterrupt


def _terminated(ctx):
    raise Terminated


@pytest.fixture
def fake_claims(monkeypatch):
    registry.all_claims()
    monkeypatch.setattr(registry, "_REGISTRY", {})
    CALLS.clear()
    for claim_id, check in (("ZZ1-a", _counted), ("ZZ1-b", _counted), ("ZZ2-int", _interrupting),
                            ("ZZ3-term", _terminated)):
        registry.claim(claim_id, statement="s", reference="test", kind="paper")(check)
    yield
    CALLS.clear()


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.rstrip("\n")


@pytest.mark.parametrize("argv", [[], ["--only", "ZZ1", "--seed", "3"], ["run", "--only", "ZZ1", "--seed", "3"]])
def test_no_subcommand_means_run(fake_claims, argv, capsys):
    for claim_id in ("ZZ2-int", "ZZ3-term"):  # every claim runs without --only
        registry._REGISTRY.pop(claim_id)
    assert cli.main(argv + ["--quiet"]) == 0
    assert CALLS == [3, 3] if argv else CALLS == [0, 0]
    assert "2 passed, 0 failed, 0 skipped" in capsys.readouterr().out


BAD = [
    (["--seed", "-1"], "run", "--seed", "expected an integer >= 0, got '-1'"),
    (["--seed", "x"], "run", "--seed", "expected an integer >= 0, got 'x'"),
    (["--json", "/nonexistent/dir/a.json"], "run", "--json", "the folder '/nonexistent/dir' of"),
    (["--json", "."], "run", "--json", "is a folder, expected a file name"),
    (["--only", "NOPE"], "run", "--only", "'NOPE' matches no claim; known ids: ZZ1-a"),
    (["--quick", "--full"], "run", "--full", "not allowed with argument --quick"),
    (["--out", "x"], None, None, "unrecognized arguments: --out x"),
    (["run", "--figure", "convergence"], None, None, "unrecognized arguments: --figure convergence"),
    (["report", "--out", "existing.txt"], "report", "--out", "'existing.txt' is a file, expected a folder"),
    (["report", "--out", "a/b"], "report", "--out", "the folder 'a' of 'a/b' does not exist"),
    (["report"], "report", None, "the following arguments are required: --out"),
    (["report", "--out", "r", "--figure", "nope"], "report", "--figure", "'nope' matches no figure; known"),
    (["report", "--out", "r", "--only", "NOPE"], "report", "--only", "'NOPE' matches no claim"),
    (["report", "--out", "r", "--json", "r"], "report", "--json", "is a folder"),
    (["figures", "--out", "f", "--figure", "nope"], "figures", "--figure", "'nope' matches no figure"),
    (["figures", "--out", "f", "--only", "nope"], None, None, "unrecognized arguments: --only nope"),
    (["figures", "--out", "f", "--full"], None, None, "unrecognized arguments: --full"),
    (["list", "--only", "NOPE"], "list", "--only", "'NOPE' matches no claim"),
    (["lst"], None, None, "invalid choice: 'lst'"),
]


@pytest.mark.parametrize("argv,command,flag,fragment", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_options_are_one_line_before_any_claim_runs(fake_claims, argv, command, flag, fragment, tmp_path,
                                                       monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing.txt").write_text("a file")
    (tmp_path / "r").mkdir()
    assert cli.main(argv) == 2
    line = _one_line(capsys)
    prog = cli.PROG + ("" if command is None else f" {command}")
    assert line.startswith(f"{prog}: error: " + ("" if flag is None else f"argument {flag}: ")), line
    assert fragment in line
    assert CALLS == []  # no claim ran
    assert sorted(os.listdir(tmp_path)) == ["existing.txt", "r"] and os.listdir(tmp_path / "r") == []


def test_out_is_created_but_its_missing_parents_only_with_mkdir(fake_claims, tmp_path, capsys):
    out = tmp_path / "a" / "b"
    assert cli.main(["report", "--out", str(out), "--only", "ZZ1-a", "--figure", "convergence", "--quick",
                     "--quiet"]) == 2
    assert not (tmp_path / "a").exists()
    capsys.readouterr()
    assert cli.main(["report", "--out", str(out), "--mkdir", "--only", "ZZ1-a", "--figure", "convergence",
                     "--quick", "--quiet"]) == 0
    assert sorted(os.listdir(out)) == ["figures", "report.html", "report.json", "report.md"]
    assert sorted(os.listdir(out / "figures")) == ["convergence.pdf", "convergence.png"]


@pytest.mark.parametrize("claim_id,code,word", [("ZZ2-int", 130, "interrupted (SIGINT)"),
                                                ("ZZ3-term", 143, "terminated (SIGTERM)")])
def test_an_interrupt_is_one_line_and_writes_nothing(fake_claims, tmp_path, capsys, claim_id, code, word):
    path = tmp_path / "r.json"
    argv = ["--only", "ZZ1-a", "--only", claim_id, "--only", "ZZ1-b", "--json", str(path), "--quiet"]
    assert cli.main(argv) == code
    line = _one_line(capsys)
    assert line == (f"{cli.PROG} run: {word}: 1 of 3 claims finished, nothing written; rerun: "
                    f"{cli.PROG} run --only ZZ1-a --only {claim_id} --only ZZ1-b --json {path} --quiet")
    assert CALLS == [0] and os.listdir(tmp_path) == []


def test_an_error_outside_the_checks_is_internal(fake_claims, monkeypatch, capsys):
    def broken(results, wall_seconds=None):
        raise KeyError("summary")

    monkeypatch.setattr(cli, "summary_line", broken)
    assert cli.main(["--only", "ZZ1-a", "--quiet"]) == 3
    line = _one_line(capsys)
    assert line.startswith(f"{cli.PROG} run: internal error: KeyError: 'summary' (at ")
    assert "test_cli.py" in line and "error: argument" not in line


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["list", "--help"], ["figures", "--help"],
                                  ["report", "--help"]])
def test_every_help_lists_the_exit_statuses(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 0
    assert EXIT_STATUS in capsys.readouterr().out


def test_json_is_written_atomically_with_every_claim(fake_claims, tmp_path):
    path = tmp_path / "r.json"
    path.write_text("an older file")
    assert cli.main(["--only", "ZZ1", "--quiet", "--json", str(path)]) == 0
    payload = json.loads(path.read_text())
    assert [c["id"] for c in payload["claims"]] == ["ZZ1-a", "ZZ1-b"]
    assert os.listdir(tmp_path) == ["r.json"]


@pytest.mark.parametrize("argv,fragment", [(["--seed", "-1"], "argument --seed"),
                                           (["--json", "/nonexistent/dir/a.json"], "argument --json"),
                                           (["report", "--out", __file__], "argument --out")])
def test_the_module_entry_point_gives_one_line_and_no_traceback(argv, fragment):
    proc = subprocess.run([sys.executable, "-m", "proofs_check", *argv], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and fragment in proc.stderr and "Traceback" not in proc.stderr
