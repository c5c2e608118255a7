"""Rendering of results for the terminal (rich) and for machines (JSON). No logic here.

One module per concept (plan, apply, check, budget, cost, vip, init, errors); every JSON
document a command prints is built here, and docs/output.md lists their shapes.
"""

from __future__ import annotations

from hybridctl.render.base import STYLE, dump_json, print_json
from hybridctl.render.errors import render_error
from hybridctl.render.plan import changes_table, plan_document, render_changes, render_plan_extras

__all__ = [
    "STYLE",
    "changes_table",
    "dump_json",
    "plan_document",
    "print_json",
    "render_changes",
    "render_error",
    "render_plan_extras",
]
