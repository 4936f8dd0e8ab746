"""Fuzzing both command lines with hypothesis: argument lists drawn from valid and bad values
(negative, zero, absurd and non-numeric numbers, NaN/inf, unknown choices, paths whose folder is
missing or is a file, folders given as files, unknown options, conflicting options).

Every call must end in one of the documented ways: exit 0 (ran), exit 1 (training diverged; one
line), or exit 2 with exactly one line on stderr that names an option (or is argparse's own
one-line complaint about the command line); never an internal error (3), never a traceback.
Each example runs in a fresh folder, and afterwards the only new files are the ones named by
an output option (``--json``, ``--plot``, ``--csv``, ``--results``) or inside ``--out DIR``;
after exit 2 there are none at all.

Valid numbers are kept small so that a run takes a fraction of a second; the claims and figures
of ``proofs_check`` are replaced by fast stand-ins (their own tests check them), so the fuzzing
is of the command line, not of the checks. A few cases also run as real subprocesses, to see the
bare stderr.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from variational_nets.cli import main as nets_main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: argparse's own one-line complaints, which name the offending text rather than an option.
ARGPARSE_LINES = ("unrecognized arguments", "the following arguments are required", "invalid choice",
                  "not allowed with argument", "expected one argument", "expected at least one argument")
OUTPUT_FLAGS = ("--json", "--plot", "--csv", "--results")

# --- values ------------------------------------------------------------------------------------

BAD_INTS = ["0", "-1", "1.5", "abc", "", "1e3", " 3", "nan", "0x10", "-0"]
BAD_FLOATS = ["0", "-0.1", "nan", "inf", "-inf", "x", "1e400", "", "0.1.2"]
BAD_SEEDS = ["-1", "1.5", "x", "", "-99999999999999999999"]
# output paths, relative to the example's folder (which holds existing.txt and sub/)
OUT_FILES = (["out.json", "sub/out.json", "existing.txt"],
             ["missing/out.json", "existing.txt/out.json", "sub", ".", "", "sub/"])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Opt:
    """An option: a strategy for valid argument tokens and one for invalid ones."""

    def __init__(self, valid, invalid=None):
        self.valid, self.invalid = valid, invalid


def opt(flag, valid, invalid=(), *, many=False):
    """``[flag, value]``; with ``many``, ``valid`` holds whole lists of values (``[flag, v1, v2]``)
    and an invalid draw is a valid list with one value replaced by an invalid one."""
    if not many:
        good = st.sampled_from(list(valid)).map(lambda value: [flag, value])
        bad = st.sampled_from(list(invalid)).map(lambda value: [flag, value]) if invalid else None
        return Opt(good, bad)
    good = st.sampled_from(list(valid)).map(lambda values: [flag, *values])
    bad = st.tuples(st.sampled_from(list(valid)), st.sampled_from(list(invalid)), st.integers(0, 2)).map(
        lambda t: [flag, *t[0][:t[2]], t[1], *t[0][t[2] + 1:]]) if invalid else None
    return Opt(good, bad)


def flag_only(flag):
    return Opt(st.just([flag]))


@st.composite
def argv_from(draw, required: dict, optional: dict, extra=(), prefix=()):
    """An argument list: ``prefix`` (the subcommand), every ``required`` option and a subset of
    the ``optional`` ones, all valid but at most one (drawn about half the time), and now and
    then a stray word or option. One bad value among good ones is the case a check must catch
    by itself: a run that starts must not trip over it later."""
    table = {**required, **optional}
    keys = list(required) + [k for k in optional if draw(st.booleans())]
    spoilable = [k for k in keys if table[k].invalid is not None]
    spoil = draw(st.one_of(st.just(None), st.sampled_from(spoilable))) if spoilable else None
    argv = list(prefix)
    for key in keys:
        argv += draw(table[key].invalid if key == spoil else table[key].valid)
    if extra and draw(st.integers(0, 7)) == 7:
        argv.append(draw(st.sampled_from(["--bogus", "stray", *extra])))
    return argv


# --- what a call may leave behind ----------------------------------------------------------------

def _listing(folder) -> set:
    found = set()
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(root, name), folder))
    return found


def _named_outputs(argv) -> tuple:
    files, dirs = set(), set()
    for i, a in enumerate(argv[:-1]):
        if a in OUTPUT_FLAGS:
            files.add(os.path.normpath(argv[i + 1]))
        elif a == "--out":
            dirs.add(os.path.normpath(argv[i + 1]))
    return files, dirs


def _allowed(path, files, dirs) -> bool:
    if path in files:
        return True
    return any(path == d or path.startswith(d + os.sep) or d.startswith(path + os.sep) for d in dirs)


def _known_flags(parser) -> set:
    """Every option string of ``parser`` and its subcommands (argparse keeps them in _actions)."""
    import argparse

    flags = set()
    for action in parser._actions:
        flags.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                flags |= _known_flags(child)
    return flags


def _flags_of(main) -> set:
    if main is nets_main:
        from variational_nets.cli import build_parser
    else:
        from proofs_check.cli import build_parser
    return _known_flags(build_parser())


def _call(main, argv, capsys):
    """Run ``main(argv)`` in a fresh folder; check the outcome and the files it left."""
    with tempfile.TemporaryDirectory() as root:
        folder, scratch = os.path.join(root, "cwd"), os.path.join(root, "tmp")
        os.mkdir(folder)
        os.mkdir(scratch)
        old_cwd, old_tmp = os.getcwd(), tempfile.tempdir
        os.chdir(folder)
        tempfile.tempdir = scratch  # this call's temporary files, apart from other processes'
        try:
            with open("existing.txt", "w") as fh:
                fh.write("a file\n")
            os.mkdir("sub")
            start = _listing(folder)
            capsys.readouterr()
            code = main(list(argv))
            out, err = capsys.readouterr()
            created = _listing(folder) - start
            left = _listing(scratch)
        finally:
            os.chdir(old_cwd)
            tempfile.tempdir = old_tmp
    assert "Traceback" not in err, (argv, err)
    assert code in (0, 1, 2), (argv, code, err)
    lines = err.splitlines()
    if code == 2:
        assert len(lines) == 1, (argv, err)
        line = lines[0]
        named = re.search(r"error: argument (--[\w-]+)", line)
        assert (named and named.group(1) in _flags_of(main)) or \
            any(text in line for text in ARGPARSE_LINES), (argv, line)
        assert created == set(), (argv, created)
    if code == 1:  # training diverged (stderr), points failed (stderr), or the grid diverged (stdout)
        last = lines[-1] if lines else ""
        assert "diverged" in last or "points failed" in last or "every base step" in out, (argv, out, err)
    files, dirs = _named_outputs(argv)
    stray = {p for p in created if not _allowed(p, files, dirs)}
    assert stray == set(), (argv, stray)
    assert left == set(), (argv, left)  # the sweep's scratch store is removed as well
    return code


def fuzz(examples: int):
    """Hypothesis settings of a fuzz test: ``examples`` cases, no deadline (some cases train)."""
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# --- python -m variational_nets train -------------------------------------------------------------

TRAIN = argv_from(
    {"task": opt("--task", ["toy-regression", "two-moons", "two-moons"], ["cifar10", "mnist", "digits", ""]),
     "epochs": opt("--epochs", ["1", "2"], BAD_INTS + ["99999999999999999999999"]),
     "width": opt("--width", ["2", "8"], BAD_INTS + ["99999999"])},
    {"method": opt("--method", ["ibvi", "map", "vi-kl"], ["sgld", "IBVI"]),
     "parametrization": opt("--parametrization", ["mup", "sp"], ["ntk"]),
     "depth": opt("--depth", ["1", "2"], BAD_INTS),
     "lr": opt("--lr", ["0.01", "0.1", "1e5"], BAD_FLOATS),
     "batch_size": opt("--batch-size", ["8", "100000"], BAD_INTS),
     "seed": opt("--seed", ["0", "7", "99999999999999999999"], BAD_SEEDS),
     "covariance": opt("--covariance", ["full", "lowrank", "diagonal"], ["kron"]),
     "rank": opt("--rank", ["1", "4"], BAD_INTS + ["100000000"]),
     "expectation": opt("--expectation", ["closed-form", "mc"], ["exact"]),
     "num_samples": opt("--num-samples", ["1", "4"], BAD_INTS),
     "factor_momentum": opt("--factor-momentum", ["exact", "bfloat16"], ["fp8"]),
     "backend": opt("--backend", ["numpy"], ["tpu", "cupy"]),
     "data_dir": opt("--data-dir", ["sub"], ["missing", "existing.txt", ""]),
     "limit": opt("--limit", ["2"], BAD_INTS),
     "json": opt("--json", *OUT_FILES),
     "plot": opt("--plot", ["fig.png", "sub/fig.pdf"], ["fig.xyz", "missing/fig.png", "sub", "existing.txt/f.png"]),
     "quiet": flag_only("--quiet"),
     "small": flag_only("--allow-small-files")})


@fuzz(40)
@given(argv=TRAIN)
def test_fuzz_train(argv, capsys):
    _call(nets_main, ["train", *argv], capsys)


# --- python -m variational_nets sweep transfer|coordcheck -------------------------------------------

def _sweep_common():
    return {
        "parametrizations": opt("--parametrizations", [["sp", "mup"], ["mup"], ["sp"]], ["ntk"], many=True),
        "batch_size": opt("--batch-size", ["256", "32"], BAD_INTS),
        "backend": opt("--backend", ["numpy"], ["tpu"]),
        "results": opt("--results", ["r.jsonl", "sub/r.jsonl"], ["r.csv", "missing/r.jsonl", "sub",
                                                                  "existing.txt/r.jsonl"]),
        "csv": opt("--csv", ["t.csv", "sub/t.csv"], ["t.jsonl", "missing/t.csv", "sub"]),
        "processes": opt("--processes", ["1"], BAD_INTS),
        "scheduler": opt("--scheduler", [f"tcp://127.0.0.1:{_closed_port()}"], ["tcp://127.0.0.1:port",
                                                                                  "nope://x", ""]),
        "json": opt("--json", *OUT_FILES),
        "quiet": flag_only("--quiet"),
    }


# the grid is always given (valid or not): the defaults are sized for real experiments
GRID = {"widths": opt("--widths", [["4", "8"], ["4", "8", "16"], ["8", "99999999"]], BAD_INTS, many=True),
        "seeds": opt("--seeds", [["0"], ["3"], ["0", "1"]], BAD_SEEDS, many=True)}
TRANSFER = argv_from({**GRID, "task": opt("--task", ["synthetic"], ["cifar10", "imagenet"]),
                      "lrs": opt("--lrs", [["0.05", "0.2"], ["0.05", "0.1", "0.2"], ["1e5", "1e6"]], BAD_FLOATS,
                                 many=True)},
                     {**_sweep_common(), "epochs": opt("--epochs", ["1"], BAD_INTS),
                      "data_dir": opt("--data-dir", ["sub"], ["missing"]),
                      "limit": opt("--limit", ["3"], BAD_INTS),
                      "plot": opt("--plot", ["t.png"], ["t.xyz", "missing/t.png"])},
                     extra=["--steps"])
COORDCHECK = argv_from(GRID, {**_sweep_common(), "lr": opt("--lr", ["0.1"], BAD_FLOATS), "steps": opt("--steps", ["0", "1"], BAD_INTS),
                              "plot": opt("--plot", ["c.png"], ["c.xyz"])}, extra=["--task"])


@pytest.fixture
def one_process(monkeypatch):
    # Fuzz examples run in this process: spawning workers per example would take seconds each.
    # (Worker processes, interrupts and Dask have their own tests.)
    import variational_nets.cli.benchmark as benchmark_cli
    import variational_nets.cli.sweep as sweep_cli

    monkeypatch.setattr(sweep_cli, "worker_count", lambda args: 1)
    monkeypatch.setattr(benchmark_cli, "worker_count", lambda args: 1)


@fuzz(25)
@given(argv=TRANSFER)
def test_fuzz_sweep_transfer(argv, capsys, one_process):
    _call(nets_main, ["sweep", "transfer", *argv], capsys)


@fuzz(20)
@given(argv=COORDCHECK)
def test_fuzz_sweep_coordcheck(argv, capsys, one_process):
    _call(nets_main, ["sweep", "coordcheck", *argv], capsys)


# --- python -m variational_nets benchmark | corruptions ---------------------------------------------

# the run is always tiny (synthetic task, one method, one epoch of a width-4 network): the defaults
# are sized for the real benchmark
BENCHMARK = argv_from(
    {"task": opt("--task", ["synthetic"], ["cifar10", "mnist-c", ""]),
     "methods": opt("--methods", [["map"], ["ibvi-output"], ["temperature", "laplace"]], ["sgld", "IBVI"], many=True),
     "seeds": opt("--seeds", [["0"], ["2"]], BAD_SEEDS, many=True),
     "epochs": opt("--epochs", ["1"], BAD_INTS),
     "width": opt("--width", ["4"], BAD_INTS + ["99999999"]),
     "corruptions": opt("--corruptions", [["rotate"], ["fog", "stripe"]], ["blur", ""], many=True)},
    {"depth": opt("--depth", ["1"], BAD_INTS),
     "batch_size": opt("--batch-size", ["256", "600"], BAD_INTS),
     "lr": opt("--lr", ["0.1", "1e5"], BAD_FLOATS),
     "rank": opt("--rank", ["1", "3"], BAD_INTS),
     "num_samples": opt("--num-samples", ["1", "2"], BAD_INTS),
     "ensemble_size": opt("--ensemble-size", ["1", "2"], BAD_INTS),
     "severity": opt("--severity", ["5", "0.5"], ["0", "6", "-1", "nan", "x"]),
     "full": flag_only("--full"),
     **{k: v for k, v in _sweep_common().items() if k not in ("parametrizations", "batch_size", "backend")},
     "plot": opt("--plot", ["b.png"], ["b.xyz", "missing/b.png"])})
CORRUPTIONS = argv_from(
    {"plot": opt("--plot", ["c.png", "sub/c.pdf"], ["c.xyz", "missing/c.png", "sub", "existing.txt/c.png"]),
     "task": opt("--task", ["synthetic"], ["cifar10", ""])},
    {"seed": opt("--seed", ["0", "9"], BAD_SEEDS), "index": opt("--index", ["0", "399"], ["400", "-1", "x"]),
     "severities": opt("--severities", [["1"], ["2", "5"]], ["0", "5.5", "x"], many=True),
     "quiet": flag_only("--quiet")})


@fuzz(12)
@given(argv=BENCHMARK)
def test_fuzz_benchmark(argv, capsys, one_process):
    _call(nets_main, ["benchmark", *argv], capsys)


@fuzz(12)
@given(argv=CORRUPTIONS)
def test_fuzz_corruptions(argv, capsys):
    _call(nets_main, ["corruptions", *argv], capsys)


# --- python -m proofs_check ----------------------------------------------------------------------

@pytest.fixture
def stand_ins(monkeypatch):
    """Two fast claims and one fast figure in place of the real ones."""
    from proofs_check import registry
    from proofs_check.figures import FigureSpec
    from proofs_check.registry import Measurement, Outcome

    def check(ctx):
        return Outcome((Measurement("stand-in", 0.0, 1e-12, "exact"),))

    def figure(ctx):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(2, 2))
        fig.add_subplot().plot([0, 1], [ctx.seed % 3, 1])
        return fig

    registry.all_claims()
    monkeypatch.setattr(registry, "_REGISTRY", {})
    for claim_id in ("ZZ1-a", "ZZ1-b"):
        registry.claim(claim_id, statement="s", reference="test", kind="paper")(check)
    specs = [FigureSpec(name="tiny", caption="A stand-in figure.", make=figure, module="fuzz.fig_tiny")]
    monkeypatch.setattr("proofs_check.figures.available_figures", lambda: specs)


CLAIM_OPTIONS = {"only": opt("--only", ["ZZ1", "ZZ1-a", "zz1-b"], ["NOPE", "", "C1"]),
                 "seed": opt("--seed", ["0", "3", "99999999999999999999"], BAD_SEEDS),
                 "quick": flag_only("--quick"), "full": flag_only("--full"), "quiet": flag_only("--quiet")}
OUT_DIRS = (["rep", "sub", "sub/rep"], ["missing/rep", "existing.txt", "existing.txt/rep", ""])
PROOFS = st.one_of(
    argv_from({}, {**CLAIM_OPTIONS, "json": opt("--json", *OUT_FILES)}, extra=["--out", "--figure"]),
    argv_from({}, {**CLAIM_OPTIONS, "json": opt("--json", *OUT_FILES)}, prefix=["run"]),
    argv_from({}, {"only": CLAIM_OPTIONS["only"]}, extra=["--seed"], prefix=["list"]),
    argv_from({"out": opt("--out", *OUT_DIRS)},
              {"figure": opt("--figure", ["tiny"], ["nope", ""]), "seed": CLAIM_OPTIONS["seed"],
               "quick": flag_only("--quick"), "mkdir": flag_only("--mkdir"), "quiet": flag_only("--quiet")},
              extra=["--full"], prefix=["figures"]),
    argv_from({"out": opt("--out", *OUT_DIRS)},
              {**CLAIM_OPTIONS, "figure": opt("--figure", ["tiny"], ["nope"]), "mkdir": flag_only("--mkdir"),
               "json": opt("--json", *OUT_FILES)}, prefix=["report"]),
)


@fuzz(80)
@given(argv=PROOFS)
def test_fuzz_proofs_check(argv, capsys, stand_ins):
    from proofs_check.cli import main

    _call(main, argv, capsys)


# --- a few real processes: exit 2, one line, no traceback on the bare stderr ------------------------

@pytest.mark.parametrize("argv", [
    ["proofs_check", "--seed", "-1"],
    ["proofs_check", "report", "--out", "existing.txt"],
    ["proofs_check", "figures", "--out", "missing/figs"],
    ["variational_nets", "train", "--task", "two-moons", "--width", "99999999"],
    ["variational_nets", "train", "--task", "two-moons", "--plot", "missing/x.png", "--json", "ok.json"],
    ["variational_nets", "sweep", "transfer", "--results", "missing/x.jsonl"],
    ["variational_nets", "sweep", "coordcheck", "--lr", "nan"],
])
def test_bare_stderr_of_a_real_process(argv, tmp_path):
    (tmp_path / "existing.txt").write_text("a file\n")
    proc = subprocess.run([sys.executable, "-m", *argv], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr and "error: argument --" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["existing.txt"]
