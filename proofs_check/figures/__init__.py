"""Theory figures: each module ``fig_*.py`` of this package draws one figure.

A figure module defines

``NAME``
    a short identifier (letters, digits, ``_`` and ``-``): the file stem of its PNG and PDF and
    the value ``only`` (the command line's ``--figure``) matches;
``CAPTION``
    one sentence saying what the figure shows (drawn under the figure and printed in the report);
``make(ctx) -> matplotlib.figure.Figure``
    draws the figure for a :class:`proofs_check.registry.Context` (``ctx.quick`` asks for small
    sizes, ``ctx.seed`` seeds every random path, ``ctx.progress`` takes progress messages);
``CLAIMS`` (optional)
    the claim ids (or families: ``"C1"`` covers ``"C1-gd"``) the figure illustrates; the report
    places the figure in the section of the first of them that ran;
``REQUIRES`` (optional)
    names of modules the figure needs that may be missing (an optional extra); when one cannot
    be imported the figure is *skipped* with that reason, not failed.

Modules are discovered at call time, so a new ``fig_*.py`` is picked up without registration.
:func:`make_figures` writes every selected figure as PNG (150 dpi) and PDF; like
:func:`proofs_check.registry.run_claim`, an exception inside ``make`` becomes a recorded error
in the returned :class:`FigureFile`, so one broken figure does not stop the others or the report.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import re
import sys
import textwrap
import time
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Sequence

from variational_nets.files import savefig

from ..registry import Context

__all__ = ["FigureSpec", "FigureFile", "available_figures", "select_figures", "make_figures", "DPI"]

#: Resolution of the PNG files (the PDF is vector graphics).
DPI = 150
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class FigureSpec:
    """A discovered figure module: its name, caption, drawing function and requirements.

    Parameters
    ----------
    name : str
        The module's ``NAME``: the file stem of its PNG and PDF.
    caption : str
        The module's ``CAPTION``, on one line.
    make : callable
        ``make(ctx: Context) -> matplotlib.figure.Figure``.
    module : str
        The module's dotted name.
    requires : tuple of str, optional
        The module's ``REQUIRES``: modules the figure needs that may be missing.
    claims : tuple of str, optional
        The module's ``CLAIMS``: the claim ids or families the figure illustrates.
    """

    name: str
    caption: str
    make: Callable[[Context], object]
    module: str
    requires: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()

    def missing_requirements(self) -> tuple[str, ...]:
        """The modules of ``requires`` that cannot be imported here.

        Returns
        -------
        tuple of str
            Each module of ``requires`` whose import raises ``ImportError``, in order; empty
            when the figure can be drawn.
        """
        missing = []
        for module in self.requires:
            try:
                importlib.import_module(module)
            except ImportError:
                missing.append(module)
        return tuple(missing)


@dataclass(frozen=True)
class FigureFile:
    """A figure after :func:`make_figures` ran it.

    Parameters
    ----------
    name : str
        The figure's ``NAME``.
    png, pdf : str or None
        The written paths; ``None`` when the figure failed or was skipped.
    caption : str
        The figure's caption.
    seconds : float, optional
        Wall-clock time of drawing and writing it.
    error : str or None, optional
        The exception text (with traceback) of a figure that failed.
    skipped : str or None, optional
        Why the figure was not drawn (a missing requirement).
    claims : tuple of str, optional
        The claim ids or families the figure illustrates.
    """

    name: str
    png: str | None
    pdf: str | None
    caption: str
    seconds: float = 0.0
    error: str | None = None
    skipped: str | None = None
    claims: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the figure was drawn and both files written.

        Returns
        -------
        bool
            Neither failed nor skipped.
        """
        return self.error is None and self.skipped is None

    @property
    def status(self) -> str:
        """The verdict in one word.

        Returns
        -------
        str
            ``"ERROR"``, ``"skipped"`` or ``"ok"``.
        """
        if self.error is not None:
            return "ERROR"
        return "skipped" if self.skipped is not None else "ok"


def _spec_from_module(module: ModuleType) -> FigureSpec:
    where = module.__name__
    name = getattr(module, "NAME", None)
    caption = getattr(module, "CAPTION", None)
    make = getattr(module, "make", None)
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise TypeError(f"figure module {where} must define NAME as a string of letters, digits, '_' "
                        f"or '-', got {name!r}")
    if not isinstance(caption, str) or not caption.strip():
        raise TypeError(f"figure module {where} must define CAPTION as a non-empty sentence")
    if not callable(make):
        raise TypeError(f"figure module {where} must define make(ctx) -> matplotlib.figure.Figure")
    requires = getattr(module, "REQUIRES", ())
    if isinstance(requires, str):
        requires = (requires,)
    claims = getattr(module, "CLAIMS", ())
    if isinstance(claims, str):
        claims = (claims,)
    if not all(isinstance(c, str) and c for c in claims):
        raise TypeError(f"figure module {where} must define CLAIMS as claim ids (strings), got {claims!r}")
    return FigureSpec(name=name, caption=" ".join(caption.split()), make=make, module=where,
                      requires=tuple(requires), claims=tuple(claims))


def available_figures() -> list[FigureSpec]:
    """Every figure module ``fig_*.py`` of this package, in module-name order (a, b, c, ...).

    Returns
    -------
    list of FigureSpec
        One per module, imported at call time.

    Raises
    ------
    TypeError
        If a module lacks a well-formed ``NAME``, ``CAPTION`` or ``make``, or its ``CLAIMS`` are
        not strings; the message names the module.
    ValueError
        If two modules share a ``NAME``.
    """
    specs, seen = [], {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("fig_"):
            continue
        spec = _spec_from_module(importlib.import_module(f"{__name__}.{info.name}"))
        if spec.name in seen:
            raise ValueError(f"figure name {spec.name!r} is defined by both {seen[spec.name]} and {spec.module}")
        seen[spec.name] = spec.module
        specs.append(spec)
    return specs


def _aliases(spec: FigureSpec) -> set[str]:
    stem = spec.module.rsplit(".", 1)[-1]
    return {spec.name.lower(), stem.lower(), stem[len("fig_"):].lower()}


def select_figures(only: Sequence[str] | None = None) -> list[FigureSpec]:
    """Figures whose ``NAME`` (or module name, with or without ``fig_``) is one of ``only``.

    Parameters
    ----------
    only : sequence of str or None, optional
        Figure names; matching ignores case. ``None`` or empty selects every figure.

    Returns
    -------
    list of FigureSpec
        The selected figures in the order of ``only``, each once; all of them in module order
        when ``only`` is empty.

    Raises
    ------
    ValueError
        If a name matches no figure; the message names ``only`` and lists the known names.
    TypeError
        If a figure module is malformed (see :func:`available_figures`).
    """
    specs = available_figures()
    if isinstance(only, str):
        raise TypeError(f"only must be a sequence of figure names, not a string: {only!r}")
    if not only:
        return specs
    chosen = []
    for pattern in only:
        hits = [s for s in specs if pattern.lower() in _aliases(s)]
        if not hits:
            known = ", ".join(s.name for s in specs)
            raise ValueError(f"only {pattern!r} matches no figure; known figures: {known}")
        chosen.extend(s for s in hits if s not in chosen)
    return chosen


def _caption_under(figure, caption: str) -> None:
    """Draw the caption below the axes; ``bbox_inches="tight"`` then keeps it in the file."""
    width_inches = figure.get_size_inches()[0]
    wrapped = textwrap.fill(caption, width=max(40, int(width_inches * 13)))
    figure.text(0.5, -0.01, wrapped, ha="center", va="top", fontsize=9, style="italic")


def _close(figure) -> None:
    # A figure drawn through pyplot stays alive in pyplot's registry until closed.
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(figure)


def make_figures(out_dir, ctx: Context, only: Sequence[str] | None = None, *,
                 log: Callable[[str], None] | None = None, caption_in_image: bool = True) -> list[FigureFile]:
    """Draw the selected figures and write ``out_dir/NAME.png`` (``DPI``) and ``out_dir/NAME.pdf``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The folder, created if missing.
    ctx : Context
        The :class:`~proofs_check.registry.Context` handed to every ``make``.
    only : sequence of str or None, optional
        Figure names (see :func:`select_figures`); all figures when empty.
    log : callable or None, optional
        Called with one progress line per figure (``"[i/N] figure NAME ..."``); ``None``
        prints nothing.
    caption_in_image : bool, optional
        Draw the caption under the axes, so that the files stand alone (the report prints the
        caption beside the figure instead, once).

    Returns
    -------
    list of FigureFile
        One per selected figure, in order. A figure whose ``make`` raises, or returns something
        that is not a matplotlib ``Figure``, is returned with its ``error``; one with a missing
        requirement with ``skipped``.

    Raises
    ------
    ValueError
        If a name in ``only`` matches no figure.
    TypeError
        If a figure module is malformed (see :func:`available_figures`).
    """
    from matplotlib.figure import Figure

    specs = select_figures(only)
    os.makedirs(out_dir, exist_ok=True)
    files = []
    for i, spec in enumerate(specs, 1):
        if log is not None:
            log(f"[{i}/{len(specs)}] figure {spec.name} ...")
        missing = spec.missing_requirements()
        if missing:
            files.append(FigureFile(name=spec.name, png=None, pdf=None, caption=spec.caption,
                                    skipped=f"needs {', '.join(missing)}, which cannot be imported",
                                    claims=spec.claims))
            continue
        start = time.perf_counter()
        figure = None
        try:
            figure = spec.make(ctx)
            if not isinstance(figure, Figure):
                raise TypeError(f"make() of {spec.module} returned {type(figure).__name__}, "
                                "not a matplotlib.figure.Figure")
            if caption_in_image:
                _caption_under(figure, spec.caption)
            png = os.path.join(out_dir, f"{spec.name}.png")
            pdf = os.path.join(out_dir, f"{spec.name}.pdf")
            savefig(figure, png, dpi=DPI, bbox_inches="tight")
            savefig(figure, pdf, bbox_inches="tight")
            files.append(FigureFile(name=spec.name, png=png, pdf=pdf, caption=spec.caption,
                                    seconds=time.perf_counter() - start, claims=spec.claims))
        except Exception as exc:  # a broken figure is a result, reported with its traceback
            files.append(FigureFile(name=spec.name, png=None, pdf=None, caption=spec.caption,
                                    seconds=time.perf_counter() - start, claims=spec.claims,
                                    error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"))
        finally:
            if figure is not None and isinstance(figure, Figure):
                _close(figure)
    return files
