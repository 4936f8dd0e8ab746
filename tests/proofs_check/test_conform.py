"""The conformance kit: correct trainers pass every check; each deliberately broken NumPy trainer
fails exactly the checks its bug must fail (through the command line, read back from its JSON),
with the hint that names the bug; the calling convention and the command line's exit codes.

Which checks a bug fails is forced by the mathematics, not chosen: a trainer that does not reach
``q∞`` cannot have Theorem 1's W₂ value (``q∞`` is the unique W₂ projection), a bug that moves the
null-space parts also moves the ensemble members off ``P_null w₀ + X⁺y`` and changes the
contraction, while a factor-only bug leaves the mean's path (the ensemble law) intact.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import linear_theory as lt
from proofs_check import conform
from proofs_check.conform import (TensorTrainer, TrainerError, TrainerOptions, TrainerResult, TrainerTrace,
                                  assert_conforms, check_conformance, mc_step_spread, reference_trainer)
from proofs_check.conform.cli import EXIT_FAIL, EXIT_USAGE, load_trainer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = "examples.numpy_ibvi_trainer:train"
HERE = os.path.abspath(__file__)


class NumpyTrainer(TensorTrainer):
    """A correct IBVI trainer holding its state in NumPy arrays, through the tensor adapter.

    Each broken trainer below overrides one piece: the start, the gradients or the update.
    """

    def start(self, X, y, prior_mean, prior_factor, lr, seed, options):
        self.X, self.y, self.lr, self.options = X, y, lr, options
        self.rng = np.random.default_rng(seed)
        self.prior_mean, self.prior_factor = prior_mean.copy(), prior_factor.copy()
        self.mean, self.factor = self.initial(prior_mean, prior_factor)
        self.multipliers = np.ones(X.shape[1]) if options.step_multipliers is None else options.step_multipliers
        self.velocity = (np.zeros_like(self.mean), np.zeros_like(self.factor))

    def initial(self, prior_mean, prior_factor):
        return prior_mean.copy(), prior_factor.copy()

    def gradients(self, XB, yB, scale):
        samples = self.options.mc_samples
        if samples == 0:
            return -2 * scale * XB.T @ (yB - XB @ self.mean), 2 * scale * XB.T @ (XB @ self.factor)
        Z = self.rng.standard_normal((self.factor.shape[1], samples))
        residual = yB[:, None] - XB @ (self.mean[:, None] + self.factor @ Z)
        return -2 * scale * XB.T @ residual.mean(axis=1), -2 * scale * XB.T @ residual @ Z.T / samples

    def step(self):
        n = self.X.shape[0]
        rows = self.options.batch_size or n
        batch = slice(None) if rows == n else self.rng.choice(n, rows, replace=False)
        g_mean, g_factor = self.gradients(self.X[batch], self.y[batch], n / rows)
        beta = self.options.momentum if self.options.optimizer == "momentum" else 0.0
        self.velocity = (beta * self.velocity[0] + g_mean, beta * self.velocity[1] + g_factor)
        self.update(*self.velocity)

    def update(self, v_mean, v_factor):
        self.mean = self.mean - self.lr * self.multipliers * v_mean
        self.factor = self.factor - self.options.lr_factor * self.multipliers[:, None] * v_factor

    def state(self):
        return self.mean.copy(), self.factor.copy()


class FrozenFactor(NumpyTrainer):
    """Bug: the factor is never updated (its gradient is not computed, or it is not in the optimizer)."""

    def update(self, v_mean, v_factor):
        self.mean = self.mean - self.lr * self.multipliers * v_mean


class WeightDecay(NumpyTrainer):
    """Bug: weight decay 1e-2 on mean and factor (``g + λθ``)."""

    def gradients(self, XB, yB, scale):
        g_mean, g_factor = super().gradients(XB, yB, scale)
        return g_mean + 1e-2 * self.mean, g_factor + 1e-2 * self.factor


class KLTerm(NumpyTrainer):
    """Bug: the ELBO's KL(q‖p) to the prior added with weight 1e-4 (a KL weight 1/N, N = 10⁴ examples).

    ``∇_μ KL = Σ₀⁻¹(μ − μ₀)``, ``∇_L KL = Σ₀⁻¹L − L⁻ᵀ`` (full factors).
    """

    def gradients(self, XB, yB, scale):
        g_mean, g_factor = super().gradients(XB, yB, scale)
        L0 = self.prior_factor

        def precision(A):
            return np.linalg.solve(L0.T, np.linalg.solve(L0, A))

        return (g_mean + 1e-4 * precision(self.mean - self.prior_mean),
                g_factor + 1e-4 * (precision(self.factor) - np.linalg.inv(self.factor).T))


class WrongFactorSign(NumpyTrainer):
    """Bug: the factor ascends its gradient (``L ← L + η∇_L``)."""

    def gradients(self, XB, yB, scale):
        g_mean, g_factor = super().gradients(XB, yB, scale)
        return g_mean, -g_factor


class FactorInitScale(NumpyTrainer):
    """Bug: the factor starts at ``prior_factor/√r`` (the layer's ``1/√R`` init std applied a second time)."""

    def initial(self, prior_mean, prior_factor):
        return prior_mean.copy(), prior_factor / np.sqrt(prior_factor.shape[1])


class HiddenStepMultipliers(NumpyTrainer):
    """Bug: per-coordinate step multipliers in [1, 1.8] (say, a bias stepped faster) while claiming plain GD."""

    def start(self, *args):
        super().start(*args)
        self.multipliers = np.random.default_rng(7).uniform(1.0, 1.8, self.X.shape[1])


class IgnoresStepMultipliers(NumpyTrainer):
    """Bug: claims step multipliers but never applies them."""

    def start(self, *args):
        super().start(*args)
        self.multipliers = np.ones(self.X.shape[1])


class PerExampleSamples(NumpyTrainer):
    """Bug: one Monte Carlo weight sample per row of the batch instead of one shared by the batch."""

    def gradients(self, XB, yB, scale):
        samples = self.options.mc_samples
        Z = self.rng.standard_normal((XB.shape[0], self.factor.shape[1], samples))
        weights = self.mean[None, :, None] + np.einsum("dr,brm->bdm", self.factor, Z)
        residual = yB[:, None] - np.einsum("bd,bdm->bm", XB, weights)
        g_mean = -2 * scale * XB.T @ residual.mean(axis=1)
        g_factor = -2 * scale * np.einsum("bd,bm,brm->dr", XB, residual, Z) / samples
        return g_mean, g_factor


def _flags(**claims):
    flags = []
    for key, value in claims.items():
        flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags


# (trainer class, claims, the checks that must fail, a phrase of the hint on the check that names the bug)
BROKEN = [
    (FrozenFactor, {}, {"limit", "w2-value"}, ("limit", "the factor does not move")),
    (WeightDecay, {}, {"limit", "invariants", "rate", "w2-value", "ensemble"},
     ("invariants", "null-space part of the mean moved: is there weight decay or a KL term")),
    (KLTerm, {}, {"limit", "invariants", "rate", "w2-value", "ensemble"},
     ("invariants", "null-space part of the mean moved: is there weight decay or a KL term")),
    (WrongFactorSign, {}, {"limit", "rate", "w2-value"}, ("limit", "is the sign of its gradient right")),
    (FactorInitScale, {}, {"start", "limit", "invariants", "w2-value"},
     ("start", "is the factor initialized from prior_factor")),
    (HiddenStepMultipliers, {}, {"limit", "invariants", "rate", "w2-value", "ensemble"},
     ("limit", "limit off by a metric: q_T minimizes the loss but its updates left row(X): are per-parameter "
               "step multipliers in use?")),
    (IgnoresStepMultipliers, {"step_multipliers": "random"}, {"limit", "invariants", "rate", "w2-value", "ensemble"},
     ("limit", "reached q_inf, not the D^-1-metric limit: are the claimed step multipliers applied")),
    (PerExampleSamples, {"mc_samples": 2, "width": 4}, {"mc-noise"},
     ("mc-noise", "is one weight sample drawn per step and shared by every row")),
]


@pytest.mark.parametrize("trainer,claims,expected,hint", BROKEN, ids=[b[0].__name__ for b in BROKEN])
def test_broken_trainer_fails_exactly_its_checks_through_the_command_line(trainer, claims, expected, hint,
                                                                          tmp_path, capsys):
    path = tmp_path / "report.json"
    code = conform.main([f"{HERE}:{trainer.__name__}", *_flags(**claims), "--json", str(path), "--quiet"])
    assert code == EXIT_FAIL
    report = json.loads(path.read_text())
    assert set(report["failed"]) == expected, report["failed"]
    checks = {c["name"]: c for c in report["checks"]}
    assert hint[1] in checks[hint[0]]["hint"]
    for name in set(conform.CHECKS) - expected:
        assert checks[name]["passed"], (name, checks[name])
    out = capsys.readouterr().out
    assert "what the failures usually mean" in out and hint[1] in " ".join(out.split())
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@pytest.mark.parametrize("claims", [
    {}, {"optimizer": "momentum"}, {"optimizer": "sgd", "batch_size": 2}, {"mc_samples": 2, "width": 4, "members": 8},
    {"step_multipliers": "random"}, {"optimizer": "momentum", "step_multipliers": "random"},
], ids=["gd", "momentum", "sgd", "mc", "multipliers", "momentum-multipliers"])
def test_reference_simulate_conforms(claims):
    report = assert_conforms(reference_trainer, **claims)
    assert report.passed and report.reached.startswith("q_inf" if "step_multipliers" not in claims else "the D^-1")


@pytest.mark.parametrize("claims", [
    {}, {"optimizer": "sgd", "batch_size": 3, "mc_samples": 1, "width": 2, "members": 8, "noise_runs": 200},
    {"optimizer": "momentum", "mc_samples": 4, "width": 2, "step_multipliers": "random", "members": 8},
], ids=["gd", "sgd-mc", "momentum-mc-multipliers"])
def test_numpy_example_and_tensor_adapter_conform(claims):
    from examples.numpy_ibvi_trainer import train

    for trainer in (train, NumpyTrainer()):
        report = assert_conforms(trainer, **claims)
        assert all(c.passed for c in report.checks)


def test_hidden_multipliers_pass_once_claimed():
    # The trainer that failed as plain GD is a correct preconditioned trainer: claiming its D, it
    # reaches the D^-1-metric limit (as the authors' muP layer does, away from q_inf).
    D = np.random.default_rng(7).uniform(1.0, 1.8, 16)
    report = assert_conforms(HiddenStepMultipliers(), step_multipliers=D)
    assert report.reached.startswith("the D^-1-metric limit")


def test_a_mup_style_factor_step_conforms_once_claimed():
    # muP divides the factor's step by its rank R: the limit is the same, the factor only slower.
    small = dict(n=4, d=8, members=8)
    report = assert_conforms(NumpyTrainer(), step_multipliers="random", factor_step_scale=1 / 8, **small)
    assert report.lr_factor == pytest.approx(report.lr / 8)
    unclaimed = check_conformance(lambda *a, lr_factor, **o: NumpyTrainer()(*a, lr_factor=lr_factor / 8, **o),
                                  **small)
    assert "limit" in unclaimed.failed and "start" not in unclaimed.failed


def test_metric_limit_is_reported_away_from_q_inf():
    report = check_conformance(reference_trainer, step_multipliers="random")
    limit = report.check("limit")
    away = limit.detail("to_identity")
    assert limit.detail("to_limit") < 1e-12 and away > 0.05  # the metric limit is a different distribution
    assert f"{away:.3g}" in report.reached


def test_assert_conforms_raises_with_the_table():
    with pytest.raises(AssertionError, match="the factor does not move"):
        assert_conforms(FrozenFactor())


def test_mc_step_spread_matches_brute_force_sampling():
    # The closed form against the sample mean of the squared deviations of explicitly drawn gradients
    # (shared and per-row samples), on rows with a shared feature; tolerance: 5 standard errors.
    rng = np.random.default_rng(0)
    n, d, r, M, draws = 5, 9, 4, 2, 20000
    X = rng.standard_normal((n, d)) + rng.standard_normal(d)
    y, prior = rng.standard_normal(n), lt.Gaussian(rng.standard_normal(d), rng.standard_normal((d, r)))
    lr, D = 0.01, rng.uniform(0.5, 1.5, d)
    e, A = y - X @ prior.mean, X @ prior.factor
    for shared in (True, False):
        Z = rng.standard_normal((draws, n if not shared else 1, r, M)) * np.ones((1, n, 1, 1))
        residual = e[None, :, None] - np.einsum("ir,kirm->kim", A, Z)  # (draws, n, M)
        g_mean = -2 * np.einsum("id,kim->kd", X, residual) / M
        g_factor = -2 * np.einsum("id,kim,kirm->kdr", X, residual, Z) / M
        dev_mean = lr * D * (g_mean + 2 * X.T @ e)
        dev_factor = lr * D[:, None] * (g_factor - 2 * X.T @ A)
        expected = mc_step_spread(X, y, prior, lr, M, step_multipliers=D, shared=shared)
        for observed, value in ((np.sum(dev_mean ** 2, axis=1), expected[0]),
                                (np.sum(dev_factor ** 2, axis=(1, 2)), expected[1])):
            assert abs(observed.mean() - value) < 5 * observed.std() / np.sqrt(draws)


# --- the calling convention ---------------------------------------------------------------------


def test_result_and_trace_reject_malformed_output():
    with pytest.raises(TrainerError, match="strictly increasing"):
        TrainerTrace(np.array([0, 2, 1]), np.zeros((3, 2)), np.zeros((3, 2, 2)))
    with pytest.raises(TrainerError, match="shapes disagree"):
        TrainerTrace(np.array([0, 1]), np.zeros((3, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(TrainerError, match="integer"):
        TrainerTrace(np.array([0.0, 1.0]), np.zeros((2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(TrainerError, match="1-D"):
        TrainerResult(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(TrainerError, match="TrainerResult or a"):
        conform.as_result([np.zeros(2), np.zeros((2, 2))], 2, 2)
    with pytest.raises(TrainerError, match="the prior has mean"):
        conform.as_result((np.zeros(3), np.zeros((3, 2))), 2, 2)


@pytest.mark.parametrize("options,message", [
    (dict(optimizer="adam"), "optimizer must be one of"),
    (dict(optimizer="sgd"), "needs batch_size"),
    (dict(optimizer="gd", batch_size=2), "full batch"),
    (dict(momentum=1.0), "momentum must be"),
    (dict(mc_samples=-1), "mc_samples must be at least 0"),
    (dict(step_multipliers=[1.0, -1.0]), "step_multipliers must be"),
    (dict(lr_factor=0.0), "lr_factor must be"),
])
def test_trainer_options_name_the_argument(options, message):
    with pytest.raises(ValueError, match=message):
        TrainerOptions(**options)


def test_trainer_options_type_errors():
    with pytest.raises(TypeError, match="record_every must be an integer"):
        TrainerOptions(record_every=1.5)


@pytest.mark.parametrize("claims,message", [
    (dict(step_multipliers="mup"), "step_multipliers must be None, 'random'"),
    (dict(step_multipliers=np.ones(5), n=2, d=5), None),
    (dict(step_multipliers=np.ones(3), problem=lt.random_regression(2, 5)), "length d = 5"),
    (dict(n=6, d=6), "must be overparametrized"),
    (dict(optimizer="sgd", batch_size=9), "batch_size must be at most n = 6"),
    (dict(members=4), "at least 8"),
    (dict(prior=lt.Gaussian(np.zeros(3), np.eye(3))), "prior has dimension 3"),
])
def test_claims_are_checked_before_the_trainer_runs(claims, message):
    if message is None:
        conform.prepare(**claims)
        return
    with pytest.raises(ValueError, match=message):
        check_conformance(lambda *a, **k: pytest.fail("the trainer must not run"), **claims)


def test_a_raising_or_malformed_trainer_fails_the_checks_without_crashing():
    def raises(*args, **options):
        raise RuntimeError("CUDA out of memory")

    def wrong_shape(X, y, prior_mean, prior_factor, lr, steps, seed, **options):
        return prior_mean[:-1], prior_factor

    for trainer, text in ((raises, "RuntimeError: CUDA out of memory"), (wrong_shape, "the prior has mean")):
        report = check_conformance(trainer)
        assert not report.passed
        assert all(c.status in ("ERROR", "skip") for c in report.checks)
        assert text in report.check("limit").error and "raised or broke" in report.check("limit").hint
        json.dumps(report.to_dict())


def test_a_plain_tuple_trainer_is_replayed_for_its_trace():
    calls = []

    def plain(X, y, prior_mean, prior_factor, lr, steps, seed, **options):
        calls.append(steps)
        result = reference_trainer(X, y, prior_mean, prior_factor, lr, steps, seed, **options)
        return result.mean, result.factor

    report = assert_conforms(plain, members=8)
    assert 0 in calls and len(set(calls)) > 30  # the prefixes of the main run
    assert "replayed runs (no trace returned)" in report.check("invariants").measurements[0].reason


def test_a_trace_without_its_first_and_last_state_is_completed_by_the_kit():
    # a trainer that records only interior steps: the kit adds step 0 (one more run with steps=0)
    # and the final state, and judges the same run as with a full trace
    from examples.numpy_ibvi_trainer import train

    calls = []

    def interior(X, y, prior_mean, prior_factor, lr, steps, seed, **options):
        calls.append(steps)
        result = train(X, y, prior_mean, prior_factor, lr, steps, seed, **options)
        trace = result.trace
        if trace is None or len(trace.steps) < 3:
            return result
        kept = slice(1, -1)
        return TrainerResult(result.mean, result.factor,
                             TrainerTrace(trace.steps[kept], trace.means[kept], trace.factors[kept]))

    report = assert_conforms(interior, members=8)
    assert report.passed and 0 in calls
    assert "replayed" not in report.check("invariants").measurements[0].reason


def test_a_diverging_trainer_reports_inf_not_a_crash():
    def nan_trainer(X, y, prior_mean, prior_factor, lr, steps, seed, **options):
        return np.full_like(prior_mean, np.nan) if steps else prior_mean, prior_factor

    report = check_conformance(nan_trainer, members=8)
    assert np.isinf(report.check("limit").measurements[0].error)
    payload = json.dumps(report.to_dict())
    assert '"inf"' in payload


# --- the command line --------------------------------------------------------------------------


def test_cli_passes_on_the_example_and_writes_json_atomically(tmp_path, capsys):
    path = tmp_path / "out.json"
    assert conform.main([EXAMPLE, "--json", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "7 of 7 checks passed" in out and "limit reached: q_inf" in out
    report = json.loads(path.read_text())
    assert report["passed"] and report["failed"] == [] and os.listdir(tmp_path) == ["out.json"]


@pytest.mark.parametrize("argv,message", [
    (["no_colon"], "MODULE:CALLABLE"),
    (["no_such_module_xyz:train"], "cannot import 'no_such_module_xyz': ModuleNotFoundError"),
    (["/no/such/file.py:train"], "no such file"),
    (["examples.numpy_ibvi_trainer:nope"], "has no attribute 'nope'"),
    (["numpy:pi"], "is not callable"),
    ([EXAMPLE, "--optimizer", "sgd"], "needs batch_size (rows per step) [--optimizer, --batch-size]"),
    ([EXAMPLE, "--step-multipliers", "1,2"], "length d = 16, got 2 [--step-multipliers"),
    ([EXAMPLE, "--step-multipliers", "one"], "--step-multipliers must be"),
    ([EXAMPLE, "--members", "2"], "[--members, --noise-runs]"),
    ([EXAMPLE, "--momentum", "1.5"], "momentum must be a number in [0, 1), got 1.5 [--momentum]"),
    ([EXAMPLE, "--optimizer", "sgd", "--batch-size", "0"], "batch_size must be at least 1, got 0 [--batch-size]"),
    ([EXAMPLE, "--factor-step-scale", "-1"], "factor_step_scale must be a finite positive number, got -1.0 "
                                              "[--factor-step-scale]"),
    ([EXAMPLE, "--n", "0"], "n must be a positive integer, got 0 [--n]"),
    ([EXAMPLE, "--json", "/no/such/folder/x.json"], "the folder does not exist"),
])
def test_cli_usage_errors_are_one_line_exit_2(argv, message, capsys):
    assert conform.main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_cli_import_error_inside_the_module_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "bad_trainer.py"
    bad.write_text("import no_such_framework_xyz\n")
    assert conform.main([f"{bad}:train"]) == EXIT_USAGE
    assert "ModuleNotFoundError" in capsys.readouterr().err


def test_add_arguments_and_run_embed_in_a_subcommand(capsys):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m proofs_check")
    conform.add_arguments(parser.add_subparsers(dest="command").add_parser("conform"))
    assert conform.run(parser.parse_args(["conform", EXAMPLE, "--quiet"])) == 0
    assert conform.run(parser.parse_args(["conform", "nope"])) == EXIT_USAGE
    assert capsys.readouterr().err.startswith("python -m proofs_check conform: error:")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_correct_trainers_pass_for_other_seeds(seed):
    from examples.numpy_ibvi_trainer import train

    assert_conforms(train, seed=seed)
    assert_conforms(train, seed=seed, mc_samples=2, width=2, members=8, noise_runs=200)


def test_load_trainer_instantiates_a_class():
    assert isinstance(load_trainer(f"{HERE}:NumpyTrainer"), TensorTrainer)


def test_python_dash_m_runs_the_example_in_a_subprocess(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "MPLBACKEND": "Agg"}
    path = tmp_path / "r.json"
    done = subprocess.run([sys.executable, "-m", "proofs_check.conform", EXAMPLE, "--json", str(path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[conform] main run" in done.stderr and json.loads(path.read_text())["passed"]
    bad = subprocess.run([sys.executable, "-m", "proofs_check.conform", "nope:nope"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == EXIT_USAGE and bad.stderr.count("\n") == 1


def test_pytorch_example_conforms():
    pytest.importorskip("torch")
    from examples.pytorch_ibvi_trainer import TorchIBVITrainer

    assert_conforms(TorchIBVITrainer(), step_multipliers="random")
    assert_conforms(TorchIBVITrainer(), optimizer="momentum", mc_samples=2, width=2, members=8, noise_runs=200)
