"""`init`: the draft inventory, the sites discovered, the placeholders left to fill."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from hybridctl.features.draft import CloudSite

Placeholder = tuple[tuple[str | int, ...], str]


def init_document(
    output_file: Path | None, text: str, sites: Sequence[CloudSite], left: Sequence[Placeholder]
) -> dict[str, Any]:
    """`init -o json`: the draft itself when no file was written."""
    return {
        "file": str(output_file) if output_file else None,
        "draft": text if output_file is None else None,
        "sites": [
            {
                "name": s.name,
                "kind": s.kind,
                "ref": s.ref,
                "subnets": len(s.subnets),
                "bridge": s.bridge.nic_ref if s.bridge else None,
                "bridge_candidates": s.candidates if s.bridge is None else [],
            }
            for s in sites
        ],
        "placeholders": [{"field": ".".join(str(p) for p in loc), "what": what} for loc, what in left],
    }


def render_init(
    out: Console,
    err: Console,
    output_file: Path | None,
    text: str,
    sites: Sequence[CloudSite],
    left: Sequence[Placeholder],
) -> None:
    """The draft on stdout (unless written to a file); what was found and what is left on stderr."""
    if output_file is None:
        out.file.write(text)
    for site in sites:
        chosen = f"bridge {site.bridge.nic_ref} ({site.bridge.why})" if site.bridge else "no bridge chosen"
        err.print(f"[bold]{site.name}[/]: {site.ref}: {len(site.subnets)} subnet(s), {chosen}", highlight=False)
    err.print(
        f"{len(left)} placeholder(s) to fill"
        + (f" in {output_file}" if output_file else "")
        + "; then `hybridctl doctor -i FILE` and `hybridctl plan -i FILE`",
        highlight=False,
    )
