"""Result files: written atomically, and only where the caller asked.

Every result file of the project (JSON summaries, the sweep's CSV table, a rewritten JSON-lines
store, report pages, plots) goes through :func:`atomic_write`: the content is written to a
temporary file in the destination's own folder and moved over the destination with
:func:`os.replace`, which is atomic on POSIX and Windows file systems. A reader therefore sees
either the old file or the complete new one, never half a JSON, even when the writer is killed.

:func:`check_output_file` and :func:`check_output_dir` say *before* any work whether a result can
be written where the caller asked: they never create a folder the caller did not name.
Messages name the Python argument (``name``); command lines map it to their flag.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "write_json", "savefig", "check_output_file", "check_output_dir"]


@functools.cache
def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back (once per process).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", *, encoding: str | None = "utf-8", newline: str | None = None):
    """Open a temporary file beside ``path``; on success move it over ``path`` in one step.

    Parameters
    ----------
    path : str or os.PathLike
        The destination. Its folder must exist (see :func:`check_output_file`).
    mode : {"w", "wb"}, optional
        Text or binary.
    encoding, newline : str, optional
        As for :func:`open` (text mode only).

    Yields
    ------
    file object
        Write the whole content to it. When the block raises (or the process dies), the
        destination is left as it was and the temporary file is removed (or, after a kill, left
        as a hidden ``.NAME.*.tmp`` file beside it).

    Raises
    ------
    ValueError
        ``mode`` other than ``"w"`` or ``"wb"``.
    OSError
        The folder does not exist or cannot be written.

    Notes
    -----
    The new file gets the permissions a plain :func:`open` would give it (``0o666`` less the
    umask), not the ``0o600`` of :mod:`tempfile`. Cost: one extra ``fsync`` per file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        text = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path, payload, **dump_options) -> None:
    """Write ``payload`` as JSON to ``path`` atomically (see :func:`atomic_write`).

    Parameters
    ----------
    path : str or os.PathLike
        The destination; its folder must exist.
    payload : object
        Anything :func:`json.dump` encodes with ``dump_options``.
    **dump_options
        Passed to :func:`json.dump` (``indent=2`` unless given; for example ``default=float``).

    Raises
    ------
    TypeError, ValueError
        From :func:`json.dump` for a payload it cannot encode; the destination is left as it was.
    OSError
        The folder does not exist or cannot be written.
    """
    dump_options.setdefault("indent", 2)
    with atomic_write(path) as fh:
        json.dump(payload, fh, **dump_options)
        fh.write("\n")


def savefig(figure, path, **options) -> None:
    """Save a Matplotlib ``figure`` to ``path`` atomically; the format is the path's suffix.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure to save.
    path : str or os.PathLike
        The destination; a path without a suffix gets Matplotlib's default format
        (``rcParams["savefig.format"]``).
    **options
        Passed to :meth:`matplotlib.figure.Figure.savefig` (``dpi``, ``bbox_inches``, ...).

    Raises
    ------
    ValueError
        From Matplotlib, for a format it does not know; the destination is left as it was.
    OSError
        The folder does not exist or cannot be written.
    """
    import matplotlib

    suffix = Path(path).suffix[1:].lower()
    options.setdefault("format", suffix or matplotlib.rcParams["savefig.format"])
    with atomic_write(path, "wb") as fh:
        figure.savefig(fh, **options)


def _writable_folder(folder: Path, name: str, path) -> None:
    if not folder.exists():
        raise ValueError(f"{name}: the folder {str(folder)!r} of {str(path)!r} does not exist")
    if not folder.is_dir():
        raise ValueError(f"{name}: {str(folder)!r} in {str(path)!r} is a file, not a folder")
    if not _can_create_in(folder):
        raise ValueError(f"{name}: the folder {str(folder)!r} is not writable")


def _can_create_in(folder: Path) -> bool:
    """Whether a file can really be created in ``folder``: permission bits are not enough (root
    passes every ``os.access`` test; ``/proc`` or a read-only mount refuse anyway). The probe is an
    anonymous temporary file (``O_TMPFILE`` where the system has it), removed on close."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _path_text(path, name: str, expected: str) -> str:
    """``os.fspath(path)``; TypeError for a non-path, ValueError for an empty one (naming ``name``)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {type(path).__name__}")
    text = os.fspath(path)
    if not text:
        raise ValueError(f"{name}: expected {expected}, got an empty path")
    return text


def check_output_file(path, *, name: str = "path", suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` as a :class:`~pathlib.Path` if a file can be written there, else ValueError.

    Parameters
    ----------
    path : str or os.PathLike
        The file to be written (it may exist: it will be replaced).
    name : str, optional
        The argument's name, used in the messages.
    suffixes : tuple of str, optional
        Allowed suffixes (lower case, with the dot); empty: any.

    Returns
    -------
    pathlib.Path
        ``path``, in a writable folder; nothing is created.

    Raises
    ------
    TypeError
        ``path`` is not a string or path.
    ValueError
        An empty path; a path that names a folder; a folder that does not exist, is a file or
        is not writable; an existing file that is not writable; a suffix not in ``suffixes``.
    """
    text = _path_text(path, name, "a file name")
    path = Path(path)
    if path.is_dir() or text.endswith(os.sep):
        raise ValueError(f"{name}: {text!r} is a folder, expected a file name")
    if suffixes and path.suffix.lower() not in suffixes:
        raise ValueError(f"{name}: expected a file name ending in {' or '.join(suffixes)}, "
                         f"got {text!r}")
    _writable_folder(path.parent, name, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{name}: {str(path)!r} exists and is not writable")
    return path


def check_output_dir(path, *, name: str = "out_dir", create: bool = False,
                     parents: bool = False) -> Path:
    """``path`` as a :class:`~pathlib.Path` if files can be written inside it, else ValueError.

    Parameters
    ----------
    path : str or os.PathLike
        The folder.
    name : str, optional
        The argument's name, used in the messages.
    create : bool, optional
        Whether the caller will create a missing folder (its parent must then exist and be
        writable). Nothing is created here.
    parents : bool, optional
        Whether the caller will also create missing parent folders.

    Returns
    -------
    pathlib.Path
        ``path``, a folder that exists or that the caller may create; nothing is created.

    Raises
    ------
    TypeError
        ``path`` is not a string or path.
    ValueError
        An empty path; a path that is a file; a folder that is not writable; a missing folder
        when ``create`` is false; a missing parent when ``parents`` is false.
    """
    _path_text(path, name, "a folder")
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{name}: {str(path)!r} is a file, expected a folder")
        if not _can_create_in(path):
            raise ValueError(f"{name}: the folder {str(path)!r} is not writable")
        return path
    if not create:
        raise ValueError(f"{name}: the folder {str(path)!r} does not exist")
    ancestor = path.parent
    if parents:
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
    _writable_folder(ancestor, name, path)
    return path
