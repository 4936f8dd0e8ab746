"""Scale and accuracy of linear_theory's closed forms (issue 2, item 6).

Times are printed as ratios against baselines measured in the same run; nothing here asserts a
time. Sections:

1. ``ibvi_limit`` and ``w2_gvi`` (auto route: Gram matrix + refinement) at ``n = 1000,
   d = 100 000, r = 10`` against forming ``XXᵀ`` (the floor, ``n²d`` multiply-adds) and one thin
   SVD of ``X`` (LAPACK ``gesdd``).
2. A dense ``d × d`` implementation (explicit ``X⁺`` and projector ``I − X⁺X``) at a size where
   it still fits, against our routes at the same size.
3. Accuracy of the fast path on ill-conditioned ``X`` (κ = 1e3, 1e6, 1e9): the route ``auto``
   chose, the relative error of ``μ∞`` against an independent SVD-based least-squares reference
   (``scipy.linalg.lstsq``, ``gelsd``) and the interpolation residual ``‖Xμ∞ − y‖/‖y‖``.
4. ``w2_squared`` against POT's dense ``ot.gaussian.bures_wasserstein_distance``.

Usage::

    python benchmarks/bench_linear.py            # full size (about a minute, ~4 GB of RAM)
    python benchmarks/bench_linear.py --small    # n = 200, d = 20 000
    python benchmarks/bench_linear.py --json out.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linear_theory import Gaussian, ibvi_limit, random_regression, row_space_solver, w2_gvi, w2_squared  # noqa: E402

EPS = np.finfo(np.float64).eps


def best_time(fn, repeats: int) -> tuple[float, object]:
    """Smallest wall time over ``repeats`` calls (the least disturbed by other load) and the result."""
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def table(title: str, header: list[str], rows: list[list]) -> None:
    def fmt(c):
        return c if isinstance(c, str) else str(c) if isinstance(c, (int, np.integer)) else f"{c:.3g}"

    cells = [[str(c) for c in header]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(cells[0], widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def section_scale(n: int, d: int, r: int, seed: int, repeats: int, wide_svd: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    prior = Gaussian(rng.standard_normal(d), rng.standard_normal((d, r)) / np.sqrt(r))
    lam = 1e-2 * d  # s² ≈ d for Gaussian X: λ in the middle of the spectrum's scale

    t_gram, _ = best_time(lambda: X @ X.T, repeats)
    # The thin SVD of X is taken as gesdd on Xᵀ (tall, Fortran-ordered, no copy): the same
    # decomposition, and the layout row_space_basis uses. OpenBLAS's wide path is several times
    # slower; it is timed as well with --wide-svd.
    t_svd, _ = best_time(lambda: scipy.linalg.svd(X.T, full_matrices=False, lapack_driver="gesdd"), 1)
    t_wide = (best_time(lambda: scipy.linalg.svd(X, full_matrices=False, lapack_driver="gesdd"), 1)[0]
              if wide_svd else float("nan"))
    t_solver, solver = best_time(lambda: row_space_solver(X), repeats)
    t_limit, limit = best_time(lambda: ibvi_limit(X, y, prior), repeats)
    t_gvi, _ = best_time(lambda: w2_gvi(X, y, prior, lam), repeats)
    residual = float(np.linalg.norm(X @ limit.mean - y) / np.linalg.norm(y))
    rows = [["X Xᵀ (floor)", t_gram, 1.0, t_gram / t_svd],
            ["thin SVD of X (gesdd on Xᵀ)", t_svd, t_svd / t_gram, 1.0],
            ["thin SVD of X (gesdd, wide call)", t_wide, t_wide / t_gram, t_wide / t_svd],
            [f"row_space_solver (auto → {solver.method})", t_solver, t_solver / t_gram, t_solver / t_svd],
            ["ibvi_limit", t_limit, t_limit / t_gram, t_limit / t_svd],
            [f"w2_gvi (λ = {lam:g})", t_gvi, t_gvi / t_gram, t_gvi / t_svd]]
    table(f"1. scale: n = {n}, d = {d}, r = {r} (best of {repeats}; SVD once)",
          ["operation", "time [s]", "÷ XXᵀ", "÷ SVD"], rows)
    print(f"   route chosen: {solver.method}, κ(X) = {solver.cond:.3g}; ‖Xμ∞ − y‖/‖y‖ = {residual:.2e}")
    return {"n": n, "d": d, "r": r, "route": solver.method, "cond": solver.cond, "residual": residual,
            "times": {"xxt": t_gram, "svd": t_svd, "svd_wide_call": t_wide, "solver": t_solver, "ibvi_limit": t_limit, "w2_gvi": t_gvi}}


def dense_ibvi_limit(X, y, prior):
    """The textbook d × d route: explicit pseudo-inverse and projector I − X⁺X."""
    X_pinv = np.linalg.pinv(X)
    projector = np.eye(X.shape[1]) - X_pinv @ X
    return prior.mean + X_pinv @ (y - X @ prior.mean), projector @ prior.factor


def dense_w2_gvi(X, y, prior, lam):
    H = X.T @ np.linalg.inv(X @ X.T + lam * np.eye(X.shape[0]))
    return prior.mean + H @ (y - X @ prior.mean), (np.eye(X.shape[1]) - H @ X) @ prior.factor


def section_dense(n: int, d: int, r: int, seed: int, repeats: int) -> dict:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    prior = Gaussian(rng.standard_normal(d), rng.standard_normal((d, r)) / np.sqrt(r))
    lam = 1e-2 * d
    t_gram, _ = best_time(lambda: X @ X.T, repeats)
    t_svd, _ = best_time(lambda: scipy.linalg.svd(X.T, full_matrices=False, lapack_driver="gesdd"), repeats)
    t_dense, (mean_d, factor_d) = best_time(lambda: dense_ibvi_limit(X, y, prior), repeats)
    t_ours, ours = best_time(lambda: ibvi_limit(X, y, prior), repeats)
    t_dense_gvi, (gmean_d, gfactor_d) = best_time(lambda: dense_w2_gvi(X, y, prior, lam), repeats)
    t_ours_gvi, ours_gvi = best_time(lambda: w2_gvi(X, y, prior, lam), repeats)

    def rel(a, b):
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    rows = [["X Xᵀ (floor)", t_gram, 1.0, t_gram / t_svd, "", ""],
            ["thin SVD of X", t_svd, t_svd / t_gram, 1.0, "", ""],
            ["dense ibvi_limit (pinv, I − X⁺X)", t_dense, t_dense / t_gram, t_dense / t_svd, "", ""],
            ["ibvi_limit (ours)", t_ours, t_ours / t_gram, t_ours / t_svd, f"{t_dense / t_ours:.1f}×",
             f"{max(rel(ours.mean, mean_d), rel(ours.factor, factor_d)):.1e}"],
            ["dense w2_gvi (inverse, I − HX)", t_dense_gvi, t_dense_gvi / t_gram, t_dense_gvi / t_svd, "", ""],
            ["w2_gvi (ours)", t_ours_gvi, t_ours_gvi / t_gram, t_ours_gvi / t_svd, f"{t_dense_gvi / t_ours_gvi:.1f}×",
             f"{max(rel(ours_gvi.mean, gmean_d), rel(ours_gvi.factor, gfactor_d)):.1e}"]]
    table(f"2. against a dense d×d implementation: n = {n}, d = {d}, r = {r} (best of {repeats})",
          ["operation", "time [s]", "÷ XXᵀ", "÷ SVD", "dense ÷ ours", "rel. diff"], rows)
    return {"n": n, "d": d, "r": r, "times": {"xxt": t_gram, "svd": t_svd, "dense_ibvi": t_dense,
                                              "ibvi_limit": t_ours, "dense_w2_gvi": t_dense_gvi,
                                              "w2_gvi": t_ours_gvi},
            "rel_diff_ibvi": max(rel(ours.mean, mean_d), rel(ours.factor, factor_d)),
            "rel_diff_w2_gvi": max(rel(ours_gvi.mean, gmean_d), rel(ours_gvi.factor, gfactor_d))}


def section_accuracy(n: int, d: int, seed: int) -> list[dict]:
    out, rows = [], []
    for kappa in (1e3, 1e6, 1e9):
        problem = random_regression(n, d, condition_number=kappa, seed=seed)
        X, y = problem.X, problem.y  # y = X w_true: consistent, the interpolation residual can be 0
        prior = Gaussian(np.zeros(d), np.zeros((d, 1)))
        reference = scipy.linalg.lstsq(X, y, lapack_driver="gelsd")[0]  # min-norm solution by SVD
        route = row_space_solver(X).method
        mean = ibvi_limit(X, y, prior).mean
        err = float(np.linalg.norm(mean - reference) / np.linalg.norm(reference))
        res = float(np.linalg.norm(X @ mean - y) / np.linalg.norm(y))
        # What the Gram route would give without refinement (X⁺b through 1/s of eig(XXᵀ)), and
        # with it, when forcing method='gram' is still allowed at this κ
        try:
            gram = row_space_solver(X, method="gram")
            unrefined = gram.spectral_map(y, lambda s: 1.0 / s)
            gram_err = float(np.linalg.norm(gram.pinv(y) - reference) / np.linalg.norm(reference))
            raw_err = float(np.linalg.norm(unrefined - reference) / np.linalg.norm(reference))
            raw_res = float(np.linalg.norm(X @ unrefined - y) / np.linalg.norm(y))
        except ValueError:
            gram_err = raw_err = raw_res = float("nan")
        rows.append([f"{kappa:.0e}", route, err, res, kappa * EPS, gram_err, raw_err, raw_res])
        out.append({"kappa": kappa, "route": route, "rel_error": err, "residual": res, "kappa_eps": kappa * EPS,
                    "forced_gram_rel_error": gram_err, "unrefined_gram_rel_error": raw_err,
                    "unrefined_gram_residual": raw_res})
    table(f"3. accuracy of ibvi_limit on ill-conditioned X: n = {n}, d = {d} (reference: scipy lstsq/gelsd)",
          ["κ(X)", "auto route", "rel. err μ∞", "‖Xμ∞−y‖/‖y‖", "κ·eps", "forced gram err",
           "unrefined gram err", "unrefined resid."], rows)
    print("   (forced gram: method='gram' with refinement; 'nan' where it is refused as numerically rank deficient)")
    return out


def section_w2(seed: int, repeats: int, dims) -> list[dict]:
    import ot

    rng = np.random.default_rng(seed)
    rows, out = [], []
    for d, r in dims:
        p = Gaussian(rng.standard_normal(d), rng.standard_normal((d, r)) / np.sqrt(r))
        q = Gaussian(rng.standard_normal(d), rng.standard_normal((d, r)) / np.sqrt(r))
        cov_p, cov_q = p.cov(), q.cov()
        t_ours, ours = best_time(lambda: w2_squared(p, q), repeats)

        def pot():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # sqrt of negative eigenvalues
                try:
                    return float(ot.gaussian.bures_wasserstein_distance(p.mean, q.mean, cov_p, cov_q)) ** 2
                except np.linalg.LinAlgError:
                    return float("nan")

        t_pot, theirs = best_time(pot, repeats)
        rel = abs(ours - theirs) / ours
        rows.append([d, r, t_ours, t_pot, f"{t_pot / t_ours:.1f}×", f"{ours:.12g}", f"{theirs:.12g}", rel])
        out.append({"d": d, "r": r, "time_ours": t_ours, "time_pot": t_pot, "w2_squared_ours": ours,
                    "w2_squared_pot": theirs, "rel_diff": rel})
    table(f"4. w2_squared vs POT bures_wasserstein_distance (POT gets dense covariances; best of {repeats})",
          ["d", "r", "ours [s]", "POT [s]", "POT ÷ ours", "W₂² ours", "W₂² POT", "rel. diff"], rows)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="n = 200, d = 20 000 instead of 1000 × 100 000")
    parser.add_argument("--json", type=Path, help="write the measured numbers to this path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wide-svd", action="store_true",
                        help="also time gesdd called on the wide C-ordered X (slow with OpenBLAS)")
    args = parser.parse_args(argv)

    if args.small:
        scale, dense, accuracy, w2_dims, repeats = (200, 20_000, 10), (200, 2000, 10), (100, 1000), \
            [(500, 500), (1000, 25)], 3
    else:
        scale, dense, accuracy, w2_dims, repeats = (1000, 100_000, 10), (400, 4000, 10), (300, 3000), \
            [(1000, 1000), (2000, 50)], 2
    print(f"numpy {np.__version__}, scipy {scipy.__version__}; seed {args.seed}")
    results = {"small": args.small, "seed": args.seed}
    results["scale"] = section_scale(*scale, seed=args.seed, repeats=repeats, wide_svd=args.wide_svd)
    results["dense"] = section_dense(*dense, seed=args.seed, repeats=repeats)
    results["accuracy"] = section_accuracy(*accuracy, seed=args.seed)
    results["w2"] = section_w2(args.seed, repeats, w2_dims)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
