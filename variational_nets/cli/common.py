"""What every command line of the project shares: subcommands, argument types, exit codes,
usage errors, interrupts and internal errors.

Both ``python -m variational_nets`` and ``python -m proofs_check`` are built from
:class:`Command` objects: a name, a help line, ``add_arguments(parser)`` (the subcommand's own
options) and ``run(args) -> int``. :func:`add_commands` registers a list of them under a parser
(nested lists give sub-subcommands, as ``sweep transfer``); :func:`run_main` parses the
arguments, runs the chosen command and turns every outcome into one exit status:

=====  ==================================================================================
 0     all good
 1     a claim failed, training diverged, or sweep points failed (the command says which)
 2     usage error: one line on stderr naming the option and what was expected
 3     internal error: a bug; one line with the exception type, message and where
 130   interrupted by SIGINT (Ctrl-C)
 143   terminated by SIGTERM
=====  ==================================================================================

A command first checks all its options, inside :func:`checking`: a ``ValueError``,
``TypeError`` or ``ImportError`` raised there (by argparse types or by the library's own
checks, whose messages name Python arguments) becomes a usage error naming the flag. Whatever
escapes the command afterwards is an internal error, never dressed as the user's fault.
Interrupts: SIGTERM raises :class:`Terminated` in the main thread (SIGINT raises
``KeyboardInterrupt`` as usual); a command adds what was finished and how to resume with
:func:`interruption`, and :func:`run_main` prints that as one line.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shlex
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERNAL", "EXIT_SIGINT", "EXIT_SIGTERM",
           "EXIT_STATUS", "Command", "Parser", "UsageError", "Terminated", "Interrupted",
           "add_commands", "run_main", "checking", "interruption", "flag_message",
           "positive_int", "nonnegative_int", "positive_float", "output_file", "figure_file",
           "distinct_outputs", "command_line", "json_safe", "say"]

#: Exit status: all good.
EXIT_OK = 0
#: Exit status: a claim failed, training diverged, or sweep points failed.
EXIT_FAILED = 1
#: Exit status: a usage error (one line on stderr naming the option).
EXIT_USAGE = 2
#: Exit status: an internal error (a bug).
EXIT_INTERNAL = 3
#: Exit status after SIGINT (Ctrl-C): 130.
EXIT_SIGINT = 128 + signal.SIGINT
#: Exit status after SIGTERM: 143.
EXIT_SIGTERM = 128 + signal.SIGTERM

#: The exit-status table printed at the end of every ``--help``.
EXIT_STATUS = f"""exit status:
  {EXIT_OK}    all good
  {EXIT_FAILED}    a claim failed, training diverged, or sweep points failed
  {EXIT_USAGE}    usage error (one line on stderr naming the option)
  {EXIT_INTERNAL}    internal error (a bug: the exception type, message and where)
  {EXIT_SIGINT}  interrupted (SIGINT, Ctrl-C)
  {EXIT_SIGTERM}  terminated (SIGTERM)"""


class UsageError(Exception):
    """A bad command line: one line naming the option; exit status 2.

    Parameters
    ----------
    message : str
        What is wrong, naming the option (``"argument --width: expected a positive integer"``).
    prog : str, optional
        The (sub)command whose usage it is, printed before the message; default the program's.
    """

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


class Terminated(BaseException):
    """SIGTERM arrived (raised by :func:`run_main`'s handler in the main thread)."""


class Interrupted(BaseException):
    """An interrupt, with the one line that says what was finished: exit ``code``.

    Parameters
    ----------
    code : int
        The exit status, :data:`EXIT_SIGINT` or :data:`EXIT_SIGTERM`.
    line : str
        What was finished, what was kept and how to resume.
    """

    def __init__(self, code: int, line: str):
        super().__init__(line)
        self.code, self.line = code, line


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (:class:`UsageError`).

    Its epilog is the exit-status table (:data:`EXIT_STATUS`), its help keeps the description's
    line breaks, and it refuses abbreviated options (``--wid`` is not ``--width``).

    Parameters
    ----------
    *args
        As ``argparse.ArgumentParser``.
    **kwargs
        As ``argparse.ArgumentParser``; ``epilog``, ``formatter_class`` and ``allow_abbrev``
        get the defaults above when not given.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("epilog", EXIT_STATUS)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)  # --wid is not --width: one spelling per option
        super().__init__(*args, **kwargs)

    def error(self, message):
        """Raise the parse error instead of printing the usage and exiting.

        Parameters
        ----------
        message : str
            The message argparse composed.

        Raises
        ------
        UsageError
            Always, with ``message`` and this parser's ``prog``.
        """
        raise UsageError(message, self.prog)


@dataclass(frozen=True)
class Command:
    """A subcommand: ``add_arguments(parser)`` adds its options, ``run(args) -> int`` runs it.

    Parameters
    ----------
    name : str
        The subcommand as typed (``"train"``).
    help : str
        One line for the parent's ``--help``.
    add_arguments : callable
        ``add_arguments(parser)``: adds the subcommand's own options.
    run : callable or None, optional
        ``run(args) -> int``: runs it and returns the exit status; not used when the command
        has ``subcommands``.
    description : str or None, optional
        The subcommand's own ``--help`` text (default ``help``).
    subcommands : tuple of Command, optional
        Registered under this one (``sweep transfer``).
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int] | None = None
    description: str | None = None
    subcommands: tuple = ()


def _flags_of(parser: argparse.ArgumentParser) -> dict:
    """``{dest: "--long-option"}`` for every option of ``parser``."""
    flags = {}
    for action in parser._actions:  # argparse offers no public list of its actions
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.dest is not argparse.SUPPRESS and action.help is not argparse.SUPPRESS:
            flags.setdefault(action.dest, max(longs, key=len))
    return flags


def add_commands(parser: argparse.ArgumentParser, commands: Sequence[Command], *,
                 dest: str = "command", metavar: str | None = None) -> None:
    """Register ``commands`` as subcommands of ``parser``, each with its own options.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parent parser (the program's, or a command's with subcommands).
    commands : sequence of Command
        A command with ``subcommands`` gets them registered under it, recursively.
    dest : str, optional
        Attribute of the parsed namespace that holds the chosen name.
    metavar : str, optional
        How ``--help`` shows the choice (default ``{name,name,...}``).

    Notes
    -----
    Each leaf parser stores its ``run``, its ``prog`` (``"python -m pkg sweep transfer"``) and
    its ``{dest: flag}`` table in the namespace, for :func:`run_main` and :func:`checking`.
    """
    sub = parser.add_subparsers(dest=dest, metavar=metavar or "{" + ",".join(c.name for c in commands) + "}",
                                parser_class=Parser, required=True)
    for command in commands:
        child = sub.add_parser(command.name, help=command.help,
                               description=command.description or command.help)
        command.add_arguments(child)
        if command.subcommands:
            add_commands(child, command.subcommands, dest=f"{dest}_{command.name}")
        else:
            child.set_defaults(_run=command.run, command_prog=child.prog, _flags=_flags_of(child))


def say(prog: str, line: str) -> None:
    """Print ``"prog: line"`` on stderr (flushed).

    Parameters
    ----------
    prog : str
        The (sub)command speaking (``"python -m variational_nets train"``).
    line : str
        The message.
    """
    print(f"{prog}: {line}", file=sys.stderr, flush=True)


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {'/'.join(Path(last.filename).parts[-2:])}:{last.lineno} in {last.name})"


@contextlib.contextmanager
def _sigterm_raises():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_main(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None, *,
             default_command: str | None = None) -> int:
    """Parse ``argv``, run the chosen command, return its exit status (see the module table).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        Built with :func:`add_commands`.
    argv : sequence of str, optional
        Default ``sys.argv[1:]``.
    default_command : str, optional
        Run when ``argv`` is empty or starts with an option other than ``-h``/``--help``
        (``python -m proofs_check --only C1`` means ``run --only C1``).

    Returns
    -------
    int
        0, 1 (the command's own verdict), 2 (a :class:`UsageError`), 3 (any other
        ``Exception``: one line with its type, message and the last frame), 130 (SIGINT),
        143 (SIGTERM).

    Raises
    ------
    SystemExit
        ``SystemExit(0)`` after ``--help``, as argparse does.

    Notes
    -----
    While it runs, SIGTERM raises :class:`Terminated` in the main thread. The parsed ``args``
    carry ``argv`` (as given) and ``command_line`` (the whole command, for messages that say
    how to resume).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if default_command is not None and (not argv or (argv[0].startswith("-")
                                                     and argv[0] not in ("-h", "--help"))):
        argv = [default_command, *argv]
    prog = parser.prog
    with _sigterm_raises():
        try:
            try:
                args = parser.parse_args(argv)
            except UsageError:
                raise
            except (ValueError, TypeError) as exc:  # an argparse type raising something plain
                raise UsageError(str(exc)) from None
            args.argv = argv
            args.command_line = command_line(prog, argv)
            prog = args.command_prog
            return args._run(args)
        except UsageError as exc:
            say(exc.prog or prog, f"error: {exc}")
            return EXIT_USAGE
        except Interrupted as exc:
            say(prog, exc.line)
            return exc.code
        except KeyboardInterrupt:
            say(prog, "interrupted (SIGINT)")
            return EXIT_SIGINT
        except Terminated:
            say(prog, "terminated (SIGTERM)")
            return EXIT_SIGTERM
        except BrokenPipeError:  # the reader of stdout went away (| head): stop quietly
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILED
        except Exception as exc:
            say(prog, f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}{_where(exc)}")
            return EXIT_INTERNAL


@contextlib.contextmanager
def interruption(detail: Callable[[], str]):
    """Context: an interrupt inside raises :class:`Interrupted` with one line ending in ``detail()``.

    Parameters
    ----------
    detail : callable
        ``detail() -> str``, called after the interrupt: what was finished, what was kept, how
        to resume.

    Yields
    ------
    None
        The block runs inside.

    Raises
    ------
    Interrupted
        With code 130 for ``KeyboardInterrupt``, 143 for :class:`Terminated`.
    """
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(EXIT_SIGINT, f"interrupted (SIGINT): {detail()}") from None
    except Terminated:
        raise Interrupted(EXIT_SIGTERM, f"terminated (SIGTERM): {detail()}") from None


_FLAG_IN_PARENS = re.compile(r"\s*\((--[A-Za-z0-9][A-Za-z0-9-]*)\)")


def flag_message(message: str, flags: Mapping[str, str], aliases: Mapping[str, str] | None = None) -> str:
    """A library message with the Python argument it names replaced by the command's flag.

    ``flags`` maps argument names (argparse ``dest``\\ s) to flags; ``aliases`` maps other
    names the library uses to those ``dest``\\ s (``{"results_path": "results"}``). The flag is
    the first of: one written in parentheses in the message (``invalid x (--x)``, removed from
    the text), or the earliest name (or alias) that occurs in the message as a word, with
    ``_`` or a space between its parts. A leading ``invalid <name>:`` or ``<name>:`` is dropped,
    since the flag now says it.

    Parameters
    ----------
    message : str
        The library's one-line message.
    flags : mapping of str to str
        Argument names (``dest``) to the command's flags (``{"batch_size": "--batch-size"}``).
    aliases : mapping of str to str, optional
        Other names the library uses, to the ``dest`` they stand for.

    Returns
    -------
    str
        ``"argument --flag: message"``, or the message alone when it names no argument of this
        command.
    """
    named = [f for f in _FLAG_IN_PARENS.findall(message) if f in flags.values()]
    text = _FLAG_IN_PARENS.sub("", message).strip()
    flag = named[0] if named else None
    lead = re.match(r"invalid [\w ]+?\s*\((--[\w-]+)\): ", message)
    if flag is not None and lead is not None and lead.group(1) == flag:
        text = _FLAG_IN_PARENS.sub("", message[lead.end():]).strip()
    if flag is None:
        names = {**{name: flag for name, flag in flags.items()},
                 **{alias: flags[dest] for alias, dest in (aliases or {}).items() if dest in flags}}
        best = None
        for name, candidate in names.items():
            for spelling in {name, name.replace("_", " ")}:
                found = re.search(rf"(?<![\w-]){re.escape(spelling)}(?![\w-])", text)
                if found and (best is None or (found.start(), -len(spelling)) < best[:2]):
                    best = (found.start(), -len(spelling), candidate)
        flag = None if best is None else best[2]
        if best is not None:  # "invalid widths: a slope needs ..." -> "a slope needs ..."
            spelling = text[best[0]:best[0] - best[1]]
            for prefix in (f"invalid {spelling}: ", f"{spelling}: "):
                if text.startswith(prefix):
                    text = text[len(prefix):]
                    break
    return text if flag is None else f"argument {flag}: {text}"


@contextlib.contextmanager
def checking(args, aliases: Mapping[str, str] | None = None):
    """Context for a command's checks, before any work: bad input becomes a usage error.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments of a command registered with :func:`add_commands`.
    aliases : mapping of str to str, optional
        Other names the library uses for the command's arguments (see :func:`flag_message`).

    Yields
    ------
    None
        The checks run inside.

    Raises
    ------
    UsageError
        For a ``ValueError``, ``TypeError`` or ``ImportError`` raised inside, with a message
        that names the flag.
    """
    try:
        yield
    except (ValueError, TypeError, ImportError) as exc:
        message = " ".join(str(exc).split())
        raise UsageError(flag_message(message, args._flags, aliases), args.command_prog) from None


# --- argument types: argparse converts and checks, one line naming the option ----------------

_NUMBER_TYPE_DOC = """{summary}

Parameters
----------
text : str
    The option's value as typed.

Returns
-------
{returns}
    ``{returns}(text)``.

Raises
------
argparse.ArgumentTypeError
    ``expected {expected}, got '<text>'`` when ``text`` is not such a number.
"""


def _number_type(convert, valid, expected: str, name: str, summary: str):
    """An argparse type: ``convert(text)`` if it succeeds and ``valid`` holds, else
    ``argparse.ArgumentTypeError("expected <expected>, got '<text>'")``."""
    doc = _NUMBER_TYPE_DOC.format(summary=summary, returns=convert.__name__, expected=expected)

    def parse(text: str):
        try:
            value = convert(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__, parse.__qualname__, parse.__doc__ = name, name, doc
    return parse


positive_int = _number_type(int, lambda v: v >= 1, "a positive integer", "positive_int",
                            "An argparse type: an integer >= 1 (sizes, counts).")
nonnegative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0", "nonnegative_int",
                               "An argparse type: an integer >= 0 (seeds, steps).")
positive_float = _number_type(float, lambda v: math.isfinite(v) and v > 0, "a positive finite number",
                              "positive_float", "An argparse type: a finite number > 0 (step sizes).")


def _path_type(check, description: str):
    def convert(text: str) -> str:
        try:
            check(text)
        except (ValueError, TypeError) as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None
        return text

    convert.__name__ = description
    return convert


def output_file(*suffixes: str):
    """An argparse type for an output file (see :func:`variational_nets.files.check_output_file`).

    Parameters
    ----------
    *suffixes : str
        Allowed suffixes (``".jsonl"``); none: any.

    Returns
    -------
    callable
        ``convert(text) -> text``, raising ``argparse.ArgumentTypeError`` for a folder that
        does not exist, is a file or is not writable, a path that is a folder, another suffix.
    """
    from ..files import check_output_file

    return _path_type(lambda text: check_output_file(text, name="path", suffixes=suffixes), "output file")


def figure_file(text: str) -> str:
    """An argparse type: a writable file whose suffix is a Matplotlib format.

    Parameters
    ----------
    text : str
        The option's value as typed: a file name such as ``fig.png`` or ``fig.pdf``.

    Returns
    -------
    str
        ``text``.

    Raises
    ------
    argparse.ArgumentTypeError
        For a folder that does not exist or is not writable, a path that is a folder, or a
        suffix Matplotlib cannot write (see :func:`variational_nets.plots.check_figure_path`).
    """
    from ..plots import check_figure_path

    return _path_type(lambda t: check_figure_path(t, name="path"), "figure file")(text)


def distinct_outputs(args, *dests: str) -> None:
    """Refuse two output options that name the same file.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a command registered with :func:`add_commands`.
    *dests : str
        The output options, by ``dest``, in the order the message should blame them.

    Raises
    ------
    ValueError
        ``invalid plot: names the same file as --json`` (the later option).
    """
    seen = {}
    for dest in dests:
        value = getattr(args, dest, None)
        if value is None:
            continue
        key = os.path.realpath(value)
        if key in seen:
            raise ValueError(f"invalid {dest}: names the same file as {args._flags[seen[key]]}")
        seen[key] = dest


def command_line(prog: str, argv: Sequence[str]) -> str:
    """The command as a shell would take it.

    Parameters
    ----------
    prog : str
        ``"python -m proofs_check"``.
    argv : sequence of str
        The arguments after ``prog``.

    Returns
    -------
    str
        ``prog`` and the arguments, each quoted where a shell needs it.
    """
    return " ".join([prog, shlex.join(list(argv))]) if argv else prog


def json_safe(value):
    """``value`` with non-finite floats as strings: strict JSON has no ``inf`` or ``NaN``.

    Parameters
    ----------
    value : object
        Nested dicts, lists and tuples of JSON values.

    Returns
    -------
    object
        The same structure (tuples as lists) with ``inf``, ``-inf``, ``nan`` as ``"inf"``,
        ``"-inf"``, ``"nan"``.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
