"""The verdict on a trainer: one result per check, and the report that prints the checks table."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..registry import Measurement
from .setup import Claims

__all__ = ["CheckResult", "ConformanceReport"]


@dataclass(frozen=True)
class CheckResult:
    """One check: its measurements, and what a failure usually means.

    Parameters
    ----------
    name : str
        One of :data:`~proofs_check.conform.CHECKS`.
    description : str
        What the check asserts, in one line.
    measurements : tuple of proofs_check.Measurement, optional
        Each measured error beside its tolerance and the reason for it.
    hint : str, optional
        What a failure usually means (set for failed checks only).
    skipped : str, optional
        Why the check does not apply to the claims (a skipped check passes).
    error : str, optional
        The trainer's exception or broken output during this check (an error fails it).
    seconds : float, optional
        Wall time of the check.
    details : tuple of (str, float), optional
        Diagnostic numbers the hints read (see :meth:`detail`).
    """

    name: str
    description: str
    measurements: tuple[Measurement, ...] = ()
    hint: str | None = None
    skipped: str | None = None
    error: str | None = None
    seconds: float = 0.0
    details: tuple[tuple[str, float], ...] = ()

    def detail(self, key: str) -> float:
        """A diagnostic number the check recorded beside its measurements.

        Parameters
        ----------
        key : str
            The number's name in ``details``.

        Returns
        -------
        float
            Its value; NaN when the check did not record it.
        """
        return dict(self.details).get(key, math.nan)

    @property
    def passed(self) -> bool:
        """Whether the check passed.

        Returns
        -------
        bool
            Skipped, or no error and every measurement within its tolerance.
        """
        if self.skipped is not None:
            return True
        return self.error is None and all(m.passed for m in self.measurements)

    @property
    def status(self) -> str:
        """The verdict in one word.

        Returns
        -------
        str
            ``"pass"``, ``"FAIL"``, ``"ERROR"`` or ``"skip"``.
        """
        if self.skipped is not None:
            return "skip"
        if self.error is not None:
            return "ERROR"
        return "pass" if self.passed else "FAIL"

    def worst(self) -> Measurement | None:
        """The failing measurement farthest above its tolerance.

        Returns
        -------
        Measurement or None
            The failing measurement with the largest ``error / tolerance`` (a non-finite error
            counts as infinitely far); ``None`` when none fails.
        """
        failing = [m for m in self.measurements if not m.passed]
        if not failing:
            return None
        return max(failing, key=lambda m: math.inf if not math.isfinite(m.error) else m.error / m.tolerance)


@dataclass(frozen=True)
class ConformanceReport:
    """The verdict on a trainer: claims, problem, the limit it reached and every check.

    Parameters
    ----------
    trainer : str
        How the trainer is named in the table (``module:qualname`` or the command line's spec).
    claims : Claims
        What the trainer claims to do (optimizer, gradients, limit).
    problem : str
        The problem in words (sizes, rank, conditioning, prior, seed).
    lr, lr_factor : float
        The steps of mean and factor the trainer was called with.
    steps : int
        Steps of the main run.
    reached : str
        Which limit the trainer reached (``q_inf``, the ``D^-1``-metric limit, or neither).
    checks : tuple of CheckResult
        In the order of :data:`~proofs_check.conform.CHECKS`.
    seconds : float
        Wall time of all checks.
    """

    trainer: str
    claims: Claims
    problem: str
    lr: float
    lr_factor: float
    steps: int
    reached: str
    checks: tuple[CheckResult, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether every check passed.

        Returns
        -------
        bool
            True when no check failed or raised (skipped checks pass).
        """
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[str, ...]:
        """The checks that failed.

        Returns
        -------
        tuple of str
            Their names, in the order they ran.
        """
        return tuple(c.name for c in self.checks if not c.passed)

    def check(self, name: str) -> CheckResult:
        """The result of one check.

        Parameters
        ----------
        name : str
            One of :data:`~proofs_check.conform.CHECKS`.

        Returns
        -------
        CheckResult
            The result of the check called ``name``.

        Raises
        ------
        KeyError
            If no check of the report has that name; the message lists the checks.
        """
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; checks: {', '.join(c.name for c in self.checks)}")

    def format(self) -> str:
        """The checks table, as ``python -m proofs_check.conform`` prints it.

        Returns
        -------
        str
            A header (trainer, claims, problem, steps, the limit reached), one line per
            measurement (check, verdict, error, tolerance, name and reason), then what each
            failure usually means and a summary line.
        """
        lines = [f"conformance of {self.trainer}: {self.claims.describe()}",
                 f"  problem: {self.problem}",
                 f"  lr = {self.lr:.4g}, lr_factor = {self.lr_factor:.4g}, {self.steps} steps",
                 f"  limit reached: {self.reached}", "",
                 f"  {'check':<11s} {'verdict':<7s} {'error':>10s} {'tolerance':>10s}  measurement (reason)"]
        for c in self.checks:
            if c.skipped is not None or c.error is not None:
                lines.append(f"  {c.name:<11s} {c.status:<7s} {'':>10s} {'':>10s}  "
                             + (f"skipped: {c.skipped}" if c.skipped is not None else c.error.splitlines()[0]))
                continue
            for m in c.measurements:
                verdict = "rep" if not m.judged else ("ok" if m.passed else "FAIL")
                tolerance = "—" if m.tolerance is None else f"{m.tolerance:.1e}"
                lines.append(f"  {c.name:<11s} {verdict:<7s} {m.error:>10.3e} {tolerance:>10s}  {m.name} ({m.reason})")
        bad = [c for c in self.checks if not c.passed]
        if bad:
            lines.append("")
            lines.append("  what the failures usually mean:")
            for c in bad:
                worst = c.worst()
                by = "" if worst is None else f" ({worst.error:.3g} against {worst.tolerance:.1g})"
                lines.append(f"  - {c.name}{by}: {c.hint or 'see the measurements above'}")
        lines.append("")
        summary = f"{len(self.checks) - len(bad)} of {len(self.checks)} checks passed"
        lines.append(f"  {summary}" + (f"; failed: {', '.join(c.name for c in bad)}" if bad else "")
                     + f" ({self.seconds:.1f} s)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """A JSON-ready summary.

        Returns
        -------
        dict
            The report's fields, ``passed`` and ``failed``, and per check its name, description,
            status, hint, skip reason, error, seconds and measurements. Non-finite errors
            become the strings ``"inf"``/``"nan"``.
        """
        def number(x):
            return x if x is None or math.isfinite(x) else str(x)

        return {"trainer": self.trainer, "claims": self.claims.as_dict(), "problem": self.problem,
                "lr": self.lr, "lr_factor": self.lr_factor, "steps": self.steps, "reached": self.reached,
                "passed": self.passed, "failed": list(self.failed), "seconds": self.seconds,
                "checks": [{"name": c.name, "description": c.description, "status": c.status,
                            "passed": c.passed, "hint": c.hint, "skipped": c.skipped, "error": c.error,
                            "seconds": c.seconds,
                            "measurements": [{"name": m.name, "error": number(m.error),
                                              "tolerance": m.tolerance, "reason": m.reason,
                                              "passed": m.passed} for m in c.measurements]}
                           for c in self.checks]}

