"""The one place that turns how a command ended into a process exit code.

Commands return an :class:`ExitStatus` (or nothing: OK); errors carry one (``HybridctlError.status``).
:func:`run` invokes the app with an :class:`Environment`, renders what escapes, and maps the status
with :func:`exit_code`:

======================  =====  ===============================================
status                  code   except
======================  =====  ===============================================
OK                      0
ERROR                   1
BAD_INPUT               2      ``routes diff``: 1 (there 2 always means drift)
DRIFT                   2
THRESHOLD               3      (``budget status``)
INTERRUPTED             130
======================  =====  ===============================================

``routes diff`` follows ``terraform plan -detailed-exitcode``: 0 in sync, 1 any error, 2 drift.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import typer

# Typer vendors click; its usage errors are click's ClickException (no public typer name).
from typer._click.exceptions import ClickException

from hybridctl.cli.environment import Environment, command_words
from hybridctl.core.errors import ExitStatus, HybridctlError
from hybridctl.render.errors import render_error

CODES: Mapping[ExitStatus, int] = {
    ExitStatus.OK: 0,
    ExitStatus.ERROR: 1,
    ExitStatus.BAD_INPUT: 2,
    ExitStatus.DRIFT: 2,
    ExitStatus.THRESHOLD: 3,
    ExitStatus.INTERRUPTED: 130,
}
# terraform plan -detailed-exitcode: a broken inventory must never read as drift.
DETAILED_EXITCODE: Mapping[ExitStatus, int] = {**CODES, ExitStatus.BAD_INPUT: 1}
POLICY: Mapping[tuple[str, ...], Mapping[ExitStatus, int]] = {("routes", "diff"): DETAILED_EXITCODE}
# Click's own usage errors (unknown option, bad value) exit 2: bad input.
USAGE_ERROR = 2


def exit_code(status: ExitStatus, command: Sequence[str] = ()) -> int:
    """The process exit code of ``status`` for ``command`` (its words: ``("routes", "diff")``)."""
    return POLICY.get(tuple(command), CODES)[status]


def status_of(error: BaseException) -> ExitStatus:
    if isinstance(error, HybridctlError):
        return error.status
    if isinstance(error, KeyboardInterrupt):
        return ExitStatus.INTERRUPTED
    return ExitStatus.ERROR


def _result_code(result: Any, command: Sequence[str]) -> int:
    if result is None:
        return exit_code(ExitStatus.OK, command)
    if isinstance(result, ExitStatus):
        return exit_code(result, command)
    if isinstance(result, int):
        # Passed through: typer.Exit(n) (--help: 0; the lab's commands) and `vip agent`, whose codes
        # are the OCF protocol's own.
        return result
    raise TypeError(f"command returned {result!r}, not an ExitStatus")


def _usage_error(env: Environment, error: ClickException, command: Sequence[str]) -> int:
    if env.stderr.stderr:  # the process's stderr: typer's own formatting
        from typer import rich_utils

        if error.__class__.__name__ == "NoArgsIsHelpError":
            error.show()  # the help text
        else:
            rich_utils.rich_format_error(error)
    else:
        error.show(file=env.stderr.file)
    code = error.exit_code
    if code == USAGE_ERROR:
        return exit_code(ExitStatus.BAD_INPUT, command)
    return code


def run(app: typer.Typer, args: list[str], env: Environment) -> int:
    """Run ``app`` on ``args``: every error is rendered and mapped here, nowhere else."""
    env.argv = list(args)
    try:
        result = app(args=args, obj=env, standalone_mode=False, prog_name="hybridctl")
    except HybridctlError as error:
        render_error(env.stdout if env.json_errors else env.stderr, error, env.json_errors)
        return exit_code(status_of(error), env.command)
    except ClickException as error:
        # A usage error comes before the command starts: its context says which command it was.
        ctx = getattr(error, "ctx", None)
        return _usage_error(env, error, command_words(ctx) if ctx is not None else env.command)
    except KeyboardInterrupt:
        return exit_code(ExitStatus.INTERRUPTED, env.command)
    except typer.Abort:  # end of input at a prompt
        env.stderr.print("Aborted!")
        return exit_code(ExitStatus.ERROR, env.command)
    except Exception as error:  # a bug: say so plainly, keep the traceback for reports
        env.stderr.print(f"[red]internal error[/]: {error!r}")
        env.stderr.print(traceback.format_exc(), markup=False, highlight=False)
        return exit_code(ExitStatus.ERROR, env.command)
    return _result_code(result, env.command)
