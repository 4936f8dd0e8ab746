"""The registry of claims: what each claim states, how it is checked, and what a check returns.

A *claim* is a statement of the paper (or one of our extensions) together with a check: a
function that measures one or more errors and compares each with a tolerance whose reason is
written beside it. Checks never compare a formula with itself; each measurement names the two
routes it compares.

Claims register themselves with the :func:`claim` decorator in modules of
:mod:`proofs_check.claims`, which are discovered automatically. A check that cannot run here
(its data need an optional extra that is not installed) raises :class:`ClaimSkipped`: the result
is a ``SKIP``, printed on one line with the command that installs what it needs, and is not
counted as failed.

Every result type has ``to_dict()``: the JSON form written by ``python -m proofs_check --json``
and by the report.
"""
from __future__ import annotations

import importlib
import math
import pkgutil
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Sequence

__all__ = ["KINDS", "STATUSES", "ClaimSkipped", "Measurement", "Table", "Outcome", "Context", "Claim",
           "ClaimResult", "claim", "all_claims", "select", "run_claim"]

#: The kinds of a :class:`Claim`: a statement of the paper, one of our extensions, a conjecture
#: (measured and reported, not judged) or a symbolic identity.
KINDS = ("paper", "extension", "conjecture", "symbolic")
#: The statuses of a :class:`ClaimResult`.
STATUSES = ("pass", "FAIL", "ERROR", "SKIP")


class ClaimSkipped(Exception):
    """Raised by a check that cannot run here; its result is ``SKIP``, not a failure.

    Parameters
    ----------
    reason : str
        Why, in a few words (``"needs scikit-learn"``).
    install_hint : str, optional
        The command that installs what is missing (``'pip install "ibvi-theory[data]"'``).
    """

    def __init__(self, reason: str, install_hint: str | None = None):
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("reason must be a non-empty string")
        if install_hint is not None and not isinstance(install_hint, str):
            raise TypeError(f"install_hint must be a string or None, got {type(install_hint).__name__}")
        super().__init__(reason if install_hint is None else f"{reason}: {install_hint}")
        self.reason, self.install_hint = reason, install_hint


@dataclass(frozen=True)
class Measurement:
    """One measured error beside its tolerance.

    ``passed`` is ``error <= tolerance``; a NaN error never passes. A measurement with
    ``tolerance=None`` is *reported only* (used for conjectures: the number is shown, not judged).

    Parameters
    ----------
    name : str
        What was measured, naming the two routes compared (``"closed form vs simulation"``).
    error : float
        The measured error (NaN for a computation that broke down).
    tolerance : float or None
        The largest error that passes; ``None`` for a measurement that is reported only.
    reason : str
        Why the tolerance has this size (rounding, a standard error, a convergence rate).
    """

    name: str
    error: float
    tolerance: float | None
    reason: str

    @property
    def judged(self) -> bool:
        """Whether the measurement is compared with a tolerance.

        Returns
        -------
        bool
            ``tolerance is not None``.
        """
        return self.tolerance is not None

    @property
    def passed(self) -> bool:
        """Whether the error is within the tolerance.

        Returns
        -------
        bool
            ``error <= tolerance`` for a finite error; false for a NaN or infinite error; true for
            a measurement that is reported only.
        """
        if self.tolerance is None:
            return True
        return bool(math.isfinite(self.error) and self.error <= self.tolerance)

    def to_dict(self) -> dict:
        """The JSON form.

        Returns
        -------
        dict
            ``{"name", "error", "tolerance", "reason", "passed"}``.
        """
        return {"name": self.name, "error": self.error, "tolerance": self.tolerance,
                "reason": self.reason, "passed": self.passed}


@dataclass(frozen=True)
class Table:
    """A small table a check wants printed (e.g. a threshold against the rank).

    Parameters
    ----------
    title : str
        The line printed above the table.
    header : tuple of str
        The column names.
    rows : tuple of tuple
        The rows, each with one entry per column (numbers or strings).
    """

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple, ...]

    def to_dict(self) -> dict:
        """The JSON form.

        Returns
        -------
        dict
            ``{"title", "header", "rows"}`` with lists for the tuples.
        """
        return {"title": self.title, "header": list(self.header), "rows": [list(r) for r in self.rows]}


@dataclass(frozen=True)
class Outcome:
    """What a check returns: its measurements, optional tables and free-text notes.

    Parameters
    ----------
    measurements : tuple of Measurement
        The measured errors; the claim passes when every judged one passes.
    tables : tuple of Table, optional
        Tables printed below the measurements.
    notes : tuple of str, optional
        Free-text remarks printed below the tables.
    """

    measurements: tuple[Measurement, ...]
    tables: tuple[Table, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """The JSON form.

        Returns
        -------
        dict
            ``{"measurements", "tables", "notes"}``, each a list of JSON forms.
        """
        return {"measurements": [m.to_dict() for m in self.measurements],
                "tables": [t.to_dict() for t in self.tables], "notes": list(self.notes)}


@dataclass(frozen=True)
class Context:
    """Settings handed to every check.

    Parameters
    ----------
    seed : int, optional
        The seed every random path of the check derives from (see :meth:`rng`).
    quick : bool, optional
        Ask for the smallest problem sizes that still test the claim (used by the test suite).
    full : bool, optional
        Ask for the expensive variants (wide networks, GPU) where a claim has them.
    progress : callable, optional
        Called with a short text during long inner loops; the command line silences it with
        ``--quiet``. The default does nothing.
    """

    seed: int = 0
    quick: bool = False
    full: bool = False
    progress: Callable[[str], None] = field(default=lambda message: None, compare=False)

    def rng(self, offset: int = 0):
        """A fresh random generator derived from the run's seed.

        Parameters
        ----------
        offset : int, optional
            Tells apart independent streams of one check; the same ``(seed, offset)`` gives the
            same numbers.

        Returns
        -------
        numpy.random.Generator
            ``numpy.random.default_rng([seed, offset])``.
        """
        import numpy as np

        return np.random.default_rng([self.seed, offset])


@dataclass(frozen=True)
class Claim:
    """A claim of the paper or an extension, with its check.

    Parameters
    ----------
    id : str
        The claim's id (``"C5"``, ``"C1-gd"``), as in ``docs/theory.md``.
    statement : str
        The claim in one sentence.
    reference : str
        Where the claim is stated (a section of the paper or of ``docs/theory.md``).
    kind : str
        One of :data:`KINDS`.
    check : callable
        ``check(ctx: Context) -> Outcome``: measures the claim's errors.
    """

    id: str
    statement: str
    reference: str
    kind: str
    check: Callable[[Context], Outcome]


@dataclass(frozen=True)
class ClaimResult:
    """A claim after its check ran.

    ``passed`` is true only for a check that ran and met every tolerance; ``failed`` for one
    that missed a tolerance or raised; a skipped claim is neither.

    Parameters
    ----------
    claim : Claim
        The claim that was checked.
    outcome : Outcome or None
        What the check returned; ``None`` when it raised or was skipped.
    seconds : float
        Wall-clock time of the check.
    seed : int
        The seed of the :class:`Context` it ran with.
    exception : str or None, optional
        The type, message and traceback of an exception the check raised (status ``ERROR``).
    skip_reason : str or None, optional
        The reason of a :class:`ClaimSkipped` the check raised (status ``SKIP``).
    install_hint : str or None, optional
        The command that installs what a skipped check needs.
    """

    claim: Claim
    outcome: Outcome | None
    seconds: float
    seed: int
    exception: str | None = None
    skip_reason: str | None = None
    install_hint: str | None = None

    @property
    def skipped(self) -> bool:
        """Whether the check raised :class:`ClaimSkipped`.

        Returns
        -------
        bool
            ``skip_reason is not None``.
        """
        return self.skip_reason is not None

    @property
    def passed(self) -> bool:
        """Whether the check ran and every measurement passed.

        Returns
        -------
        bool
            False for a check that raised, was skipped or returned no outcome.
        """
        if self.exception is not None or self.outcome is None or self.skipped:
            return False
        return all(m.passed for m in self.outcome.measurements)

    @property
    def failed(self) -> bool:
        """Whether the check missed a tolerance or raised.

        Returns
        -------
        bool
            Neither passed nor skipped.
        """
        return not (self.passed or self.skipped)

    @property
    def status(self) -> str:
        """The verdict in one word.

        Returns
        -------
        str
            One of :data:`STATUSES`: ``"ERROR"`` (the check raised), ``"SKIP"``, ``"pass"`` or
            ``"FAIL"``.
        """
        if self.exception is not None:
            return "ERROR"
        if self.skipped:
            return "SKIP"
        return "pass" if self.passed else "FAIL"

    def to_dict(self) -> dict:
        """The JSON form (what ``python -m proofs_check --json`` and the report write).

        Returns
        -------
        dict
            The claim's ``id``, ``kind``, ``reference``, ``statement``; ``status``, ``passed``,
            ``seconds``, ``seed``, ``exception``, ``skip_reason``, ``install_hint``; and the
            outcome's ``measurements``, ``tables`` and ``notes`` (empty lists without one).
        """
        c = self.claim
        out = {"id": c.id, "kind": c.kind, "reference": c.reference, "statement": c.statement,
               "status": self.status, "passed": self.passed, "seconds": self.seconds,
               "seed": self.seed, "exception": self.exception, "skip_reason": self.skip_reason,
               "install_hint": self.install_hint}
        if self.outcome is None:
            out.update(measurements=[], tables=[], notes=[])
        else:
            out.update(self.outcome.to_dict())
        return out


_REGISTRY: dict[str, Claim] = {}


def claim(id: str, *, statement: str, reference: str, kind: str):
    """Decorator registering ``check(ctx) -> Outcome`` as the check of claim ``id``.

    Parameters
    ----------
    id : str
        The claim's id; unique across :mod:`proofs_check.claims`.
    statement : str
        The claim in one sentence.
    reference : str
        Where the claim is stated (``"Theorem 2"``, ``"docs/theory.md §2 (C14)"``).
    kind : str
        One of :data:`KINDS`.

    Returns
    -------
    callable
        The decorator; it registers the check and returns it unchanged.

    Raises
    ------
    ValueError
        If ``kind`` is not one of :data:`KINDS`, or (when decorating) another check is already
        registered under ``id``.
    """
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
    """Every registered claim, in id order.

    Imports every module of :mod:`proofs_check.claims` (so that its claims register) first.

    Returns
    -------
    list of Claim
        Sorted by id, numbers compared as numbers (``C2`` before ``C10``).
    """
    _load_claim_modules()
    return sorted(_REGISTRY.values(), key=lambda c: _sort_key(c.id))


def _sort_key(claim_id: str):
    head, _, tail = claim_id.partition("-")
    digits = "".join(ch for ch in head if ch.isdigit())
    return (head.rstrip("0123456789"), int(digits) if digits else 0, tail)


def select(only: Sequence[str] | None = None) -> list[Claim]:
    """Claims whose id equals one of ``only`` or, failing that, starts with ``ID-`` (all when empty).

    Parameters
    ----------
    only : sequence of str or None, optional
        Claim ids or id families (``"C1"`` selects ``C1-gd``, ``C1-sgd``, ...); matching
        ignores case. ``None`` or empty selects every claim.

    Returns
    -------
    list of Claim
        The selected claims, in the order of ``only``, each once; all claims in id order when
        ``only`` is empty.

    Raises
    ------
    TypeError
        If ``only`` is a string or holds a non-string.
    ValueError
        If a pattern matches no claim; the message names ``only`` and lists the known ids.
    """
    if isinstance(only, str):
        raise TypeError(f"only must be a sequence of claim ids, not a string: use [{only!r}]")
    claims = all_claims()
    if not only:
        return claims
    chosen = []
    for pattern in only:
        if not isinstance(pattern, str):
            raise TypeError(f"only must hold claim ids (strings), got {type(pattern).__name__}")
        hits = [c for c in claims if c.id.lower() == pattern.lower()]
        if not hits:  # no exact id: the family of ids starting with 'ID-'
            hits = [c for c in claims if c.id.lower().startswith(pattern.lower() + "-")]
        if not hits:
            known = ", ".join(c.id for c in claims)
            raise ValueError(f"only: {pattern!r} matches no claim; known ids: {known}")
        chosen.extend(c for c in hits if c not in chosen)
    return chosen


def run_claim(claim: Claim, ctx: Context) -> ClaimResult:
    """Run one check, timing it.

    An exception becomes an ``ERROR`` result (with its traceback), :class:`ClaimSkipped` a
    ``SKIP`` result; neither is raised. ``KeyboardInterrupt`` and the other exceptions that
    do not derive from ``Exception`` propagate.

    Parameters
    ----------
    claim : Claim
        The claim to check.
    ctx : Context
        The settings handed to its check.

    Returns
    -------
    ClaimResult
        The outcome, the time taken and the verdict. A check that returns something other than
        an :class:`Outcome` gives an ``ERROR`` result.
    """
    start = time.perf_counter()
    outcome = exception = skipped = None
    try:
        outcome = claim.check(ctx)
        if not isinstance(outcome, Outcome):
            returned, outcome = type(outcome).__name__, None
            raise TypeError(f"check of {claim.id} returned {returned}, not Outcome")
    except ClaimSkipped as skip:
        skipped = skip
    except Exception as exc:  # a failing check is a result, reported with its traceback
        exception = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
    return ClaimResult(claim=claim, outcome=outcome, seconds=time.perf_counter() - start,
                       seed=ctx.seed, exception=exception,
                       skip_reason=None if skipped is None else skipped.reason,
                       install_hint=None if skipped is None else skipped.install_hint)
