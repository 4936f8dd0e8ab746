"""The store of a sweep: one JSON line per finished point, read back on resume; the CSV table."""
from __future__ import annotations

import csv
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..files import atomic_write, check_output_file
from .points import AXES, ROW_COLUMNS, SweepPoint

__all__ = ["SweepRow", "SweepResult", "check_results_path", "load_rows", "read_results", "append_row", "write_csv"]


@dataclass(frozen=True)
class SweepRow:
    """The outcome of one point: ``status`` is ``"ok"`` or ``"failed"``.

    Parameters
    ----------
    point : SweepPoint
        The point.
    status : {"ok", "failed"}
        Whether ``fn`` returned results or raised (or its worker was lost).
    results : tuple of (str, scalar), optional
        ``(name, value)`` pairs in the order ``fn`` returned them; empty for a failed point.
    error : str or None, optional
        ``"ExceptionType: message"`` for a failed point, else None.
    elapsed_s : float, optional
        The wall time of ``fn`` on its worker.
    """

    point: SweepPoint
    status: str
    results: tuple = ()
    error: str | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the point finished without an error.

        Returns
        -------
        bool
            ``status == "ok"``.
        """
        return self.status == "ok"

    def value(self, name: str):
        """One result of the point.

        Parameters
        ----------
        name : str
            A name ``fn`` returned.

        Returns
        -------
        bool, int, float or str
            What ``fn`` returned under ``name``.

        Raises
        ------
        KeyError
            If ``fn`` did not return it or the point failed.
        """
        for key, value in self.results:
            if key == name:
                return value
        raise KeyError(f"no result {name!r} for {self.point.label()} (status {self.status})")

    def as_dict(self) -> dict:
        """The row as one flat mapping, for tables and JSON.

        Returns
        -------
        dict
            The point's columns, the results, ``status``, ``error``, ``elapsed_s``.
        """
        return {**self.point.as_dict(), **dict(self.results), "status": self.status,
                "error": self.error, "elapsed_s": self.elapsed_s}

    def to_json(self) -> str:
        """The row as one line of the results file.

        Returns
        -------
        str
            ``{"point": {"width", "lr", "seed", "params"}, "status", "results", "error",
            "elapsed_s"}`` as JSON, without a newline. Non-finite results are written as
            ``NaN``/``Infinity``, which Python's :mod:`json` reads back.
        """
        return json.dumps({
            "point": {"width": self.point.width, "lr": self.point.lr, "seed": self.point.seed,
                      "params": dict(self.point.params)},
            "status": self.status, "results": dict(self.results), "error": self.error,
            "elapsed_s": self.elapsed_s,
        })

    @classmethod
    def from_json(cls, record: dict) -> "SweepRow":
        """The row of one decoded line of the results file (the inverse of :meth:`to_json`).

        Parameters
        ----------
        record : dict
            ``json.loads`` of a line.

        Returns
        -------
        SweepRow
            The stored row.

        Raises
        ------
        KeyError
            If ``point`` or ``status`` (or a point's axis) is missing.
        TypeError, ValueError
            If a value is one :class:`SweepPoint` rejects.
        """
        p = record["point"]
        point = SweepPoint(p["width"], p["lr"], p["seed"], tuple(p.get("params", {}).items()))
        return cls(point, record["status"], tuple(record.get("results", {}).items()),
                   record.get("error"), float(record.get("elapsed_s", 0.0)))


@dataclass(frozen=True)
class SweepResult:
    """The rows of a sweep, in the order of its points, and where they are stored.

    Parameters
    ----------
    rows : tuple of SweepRow
        One row per point, in the order of the sweep's points.
    results_path : pathlib.Path
        The JSON-lines file that holds the rows.
    csv_path : pathlib.Path or None
        The CSV table this run wrote; None when it was not asked for one.
    n_computed : int
        Points evaluated by this run.
    n_reused : int
        Points read from the results file.
    """

    rows: tuple
    results_path: Path
    csv_path: Path | None
    n_computed: int
    n_reused: int

    @property
    def n_failed(self) -> int:
        """How many rows are failures (see :func:`~variational_nets.sweep.run_sweep`).

        Returns
        -------
        int
            Rows whose status is not ``"ok"``.
        """
        return sum(not row.ok for row in self.rows)

    @property
    def failed(self) -> tuple:
        """The failed rows.

        Returns
        -------
        tuple of SweepRow
            In the order of the points.
        """
        return tuple(row for row in self.rows if not row.ok)

    def column(self, name: str) -> list:
        """One column over the rows.

        Parameters
        ----------
        name : str
            A point column, a result, or ``status``/``error``/``elapsed_s``.

        Returns
        -------
        list
            One value per row; None where a row lacks it (failed points have no results).
        """
        return [row.as_dict().get(name) for row in self.rows]


def check_results_path(results_path) -> Path:
    """``results_path`` as a Path: a ``.jsonl`` file in an existing, writable folder.

    Parameters
    ----------
    results_path : str or os.PathLike
        Where the sweep's rows are to be stored.

    Returns
    -------
    pathlib.Path
        ``results_path``.

    Raises
    ------
    TypeError, ValueError
        Naming ``results_path`` (see :func:`variational_nets.files.check_output_file`).
    """
    return check_output_file(results_path, name="results_path", suffixes=(".jsonl",))


def load_rows(path: Path) -> dict:
    """Latest row of every point in a results file.

    A last line cut off by an interrupted write is dropped with a ``RuntimeWarning`` and the
    file is rewritten (atomically) without it, so that the next append starts a fresh line.
    Cost: one read of the file.

    Parameters
    ----------
    path : pathlib.Path
        The JSON-lines file.

    Returns
    -------
    dict
        ``{point: row}`` in the order the points first appear; empty if the file does not
        exist.

    Raises
    ------
    ValueError
        Naming the file and line, for a line that is not a sweep row.
    """
    if not path.exists():
        return {}
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: b"" unless a write was cut off
    if tail:
        warnings.warn(f"{path}: dropping an incomplete last line (an interrupted write)",
                      RuntimeWarning, stacklevel=3)
        with atomic_write(path, "wb") as f:
            f.write(data[:len(data) - len(tail)])
    rows = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = SweepRow.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} line {number} is not a sweep row ({exc}); "
                             f"fix or remove that line, or use another results_path") from exc
        rows[row.point] = row
    return rows


def read_results(results_path) -> SweepResult:
    """Every point stored in a results file (its latest row), as a :class:`SweepResult`.

    Parameters
    ----------
    results_path : str or os.PathLike
        A ``.jsonl`` file written by :func:`~variational_nets.sweep.run_sweep`.

    Returns
    -------
    SweepResult
        Its rows in the order the points first appear in the file; ``n_reused`` counts them,
        ``csv_path`` is None.

    Raises
    ------
    ValueError
        A path not ending in ``.jsonl``, or a line that is not a sweep row.
    FileNotFoundError
        The file does not exist.
    """
    path = Path(results_path)
    if path.suffix.lower() != ".jsonl":
        raise ValueError(f"results_path: expected a file name ending in .jsonl, got {str(path)!r}")
    if not path.exists():
        raise FileNotFoundError(f"no results file at {path}")
    rows = tuple(load_rows(path).values())
    return SweepResult(rows, path, None, 0, len(rows))


def append_row(path: Path, row: SweepRow) -> None:
    """Append one row as a JSON line and flush it to disk (``fsync``) before returning.

    An interrupted sweep therefore loses at most the points still running; a line cut off by a
    kill in the middle of this write is repaired by :func:`load_rows`.

    Parameters
    ----------
    path : pathlib.Path
        The JSON-lines file (created if missing).
    row : SweepRow
        The finished point.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    with open(path, "a", encoding="utf-8") as f:
        f.write(row.to_json() + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_csv(path, rows: Iterable[SweepRow]) -> Path:
    """Write the CSV table of ``rows`` to ``path`` atomically.

    Columns: ``width, lr, seed``, the free parameters (by name), the results (in the order
    they first appear), ``status, error, elapsed_s``; floats are written with ``repr`` so that
    they read back exactly, missing values as empty cells.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv`` file in an existing, writable folder.
    rows : iterable of SweepRow
        The rows, one line each, in order.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError, ValueError
        Naming ``csv_path``, for a path that cannot be written.
    """
    path = check_output_file(path, name="csv_path", suffixes=(".csv",))
    rows = list(rows)
    free = sorted({k for r in rows for k, _ in r.point.params})
    results = []
    for r in rows:
        for k, _ in r.results:
            if k not in results:
                results.append(k)
    header = list(AXES) + free + results + list(ROW_COLUMNS)
    with atomic_write(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v)
                             for k, v in r.as_dict().items()})
    return path
