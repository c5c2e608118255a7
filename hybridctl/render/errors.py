"""An error that ends a command: lines on stderr, or (``-o json``) one document on stdout."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

from hybridctl.core.errors import HybridctlError, InputError, RemoteError
from hybridctl.render.base import print_json


def error_document(error: BaseException) -> dict[str, Any]:
    if isinstance(error, InputError):
        return {"error": "bad input", "problems": [p.as_dict() for p in error.problems]}
    if isinstance(error, RemoteError):
        return {"error": error.message, "target": error.target, "hint": error.hint}
    return {"error": str(error)}


def render_error(console: Console, error: BaseException, as_json: bool) -> None:
    if as_json:
        print_json(console, error_document(error))
        return
    if isinstance(error, InputError):
        for problem in error.problems:
            console.print(f"[red]error[/]: {escape(problem.render())}", highlight=False, soft_wrap=True)
        return
    label = "error" if isinstance(error, HybridctlError) else "internal error"
    console.print(f"[red]{label}[/]: {escape(str(error))}", highlight=False, soft_wrap=True)
