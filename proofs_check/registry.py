"""The registry of claims: what each claim states, how it is checked, and what a check returns.

A *claim* is a statement of the paper (or one of our extensions) together with a check: a
function that measures one or more errors and compares each with a tolerance whose reason is
written beside it. Checks never compare a formula with itself; each measurement names the two
routes it compares.

Claims register themselves with the :func:`claim` decorator in modules of
:mod:`proofs_check.claims`, which are discovered automatically.
"""
from __future__ import annotations

import importlib
import math
import pkgutil
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Sequence

KINDS = ("paper", "extension", "conjecture", "symbolic")


@dataclass(frozen=True)
class Measurement:
    """One measured error beside its tolerance.

    ``passed`` is ``error <= tolerance``; a NaN error never passes. A measurement with
    ``tolerance=None`` is *reported only* (used for conjectures: the number is shown, not judged).
    """

    name: str
    error: float
    tolerance: float | None
    reason: str

    @property
    def judged(self) -> bool:
        return self.tolerance is not None

    @property
    def passed(self) -> bool:
        if self.tolerance is None:
            return True
        return bool(math.isfinite(self.error) and self.error <= self.tolerance)


@dataclass(frozen=True)
class Table:
    """A small table a check wants printed (e.g. a threshold against the rank)."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple, ...]


@dataclass(frozen=True)
class Outcome:
    """What a check returns: its measurements, optional tables and free-text notes."""

    measurements: tuple[Measurement, ...]
    tables: tuple[Table, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Context:
    """Settings handed to every check.

    ``quick`` asks for the smallest problem sizes that still test the claim (used by the test
    suite); ``full`` asks for the expensive variants (wide networks, GPU) where a claim has them.
    ``progress`` is called with a short text for long inner loops (silenced by ``--quiet``).
    """

    seed: int = 0
    quick: bool = False
    full: bool = False
    progress: Callable[[str], None] = field(default=lambda message: None, compare=False)

    def rng(self, offset: int = 0):
        """A fresh ``numpy.random.Generator`` derived from the run's seed."""
        import numpy as np

        return np.random.default_rng([self.seed, offset])


@dataclass(frozen=True)
class Claim:
    """A claim of the paper or an extension, with its check."""

    id: str
    statement: str
    reference: str
    kind: str
    check: Callable[[Context], Outcome]


@dataclass(frozen=True)
class ClaimResult:
    """A claim after its check ran."""

    claim: Claim
    outcome: Outcome | None
    seconds: float
    seed: int
    exception: str | None = None

    @property
    def passed(self) -> bool:
        if self.exception is not None or self.outcome is None:
            return False
        return all(m.passed for m in self.outcome.measurements)

    @property
    def status(self) -> str:
        if self.exception is not None:
            return "ERROR"
        return "pass" if self.passed else "FAIL"


_REGISTRY: dict[str, Claim] = {}


def claim(id: str, *, statement: str, reference: str, kind: str):
    """Decorator registering ``check(ctx) -> Outcome`` as the check of claim ``id``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def decorate(check: Callable[[Context], Outcome]):
        if id in _REGISTRY and _REGISTRY[id].check is not check:
            raise ValueError(f"claim id {id!r} is registered twice")
        _REGISTRY[id] = Claim(id=id, statement=statement, reference=reference, kind=kind, check=check)
        return check

    return decorate


def _load_claim_modules() -> None:
    from . import claims as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def all_claims() -> list[Claim]:
    """Every registered claim, in id order."""
    _load_claim_modules()
    return sorted(_REGISTRY.values(), key=lambda c: _sort_key(c.id))


def _sort_key(claim_id: str):
    head, _, tail = claim_id.partition("-")
    digits = "".join(ch for ch in head if ch.isdigit())
    return (head.rstrip("0123456789"), int(digits) if digits else 0, tail)


def select(only: Sequence[str] | None = None) -> list[Claim]:
    """Claims whose id equals one of ``only`` or, failing that, starts with ``ID-`` (all when empty).

    Raises ``ValueError`` naming ``--only`` when a pattern matches no claim.
    """
    claims = all_claims()
    if not only:
        return claims
    chosen = []
    for pattern in only:
        hits = [c for c in claims if c.id.lower() == pattern.lower()]
        if not hits:  # no exact id: the family of ids starting with 'ID-'
            hits = [c for c in claims if c.id.lower().startswith(pattern.lower() + "-")]
        if not hits:
            known = ", ".join(c.id for c in claims)
            raise ValueError(f"--only {pattern!r} matches no claim; known ids: {known}")
        chosen.extend(c for c in hits if c not in chosen)
    return chosen


def run_claim(claim: Claim, ctx: Context) -> ClaimResult:
    """Run one check, timing it; an exception becomes an ``ERROR`` result, not a crash."""
    start = time.perf_counter()
    try:
        outcome = claim.check(ctx)
        if not isinstance(outcome, Outcome):
            raise TypeError(f"check of {claim.id} returned {type(outcome).__name__}, not Outcome")
        exception = None
    except Exception as exc:  # a failing check is a result, reported with its traceback
        outcome = None
        exception = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
    return ClaimResult(claim=claim, outcome=outcome, seconds=time.perf_counter() - start,
                       seed=ctx.seed, exception=exception)
