"""Files hybridctl puts on hosts, rendered from the desired state with hybridctl/templates/ (pure
apart from reading the templates: package data, read through importlib.resources so an
installed wheel finds them as well as a source tree)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import jinja2

from hybridctl.core.planner.desired import HostFile, HostPlan

TEMPLATES = files("hybridctl") / "templates"
# Kernel routes hybridctl installs carry this protocol number: that is how `routes diff` and
# `down` tell hybridctl's routes from everybody else's.
ROUTE_PROTO = 177
OVERLAY_SCRIPT = "/etc/hybridctl/overlay.sh"
OVERLAY_UNIT = "/etc/systemd/system/hybridctl-overlay.service"
SYSCTL_FILE = "/etc/sysctl.d/60-hybridctl.conf"
SOFTETHER_BINARIES = {
    "vpn-server": "/usr/libexec/softether/vpnserver/vpnserver",
    "vpn-bridge": "/usr/libexec/softether/vpnbridge/vpnbridge",
}


def _load_template(name: str) -> tuple[str, None, None] | None:
    """A template's source from the package's data (``systemd/softether.service.j2``...)."""
    resource = TEMPLATES.joinpath(*name.split("/"))
    if not resource.is_file():
        return None  # jinja2 raises TemplateNotFound
    return resource.read_text(encoding="utf-8"), None, None


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(template: str, **values: object) -> str:
    return _environment().get_template(template).render(**values)


def unit_path(service: str) -> str:
    return f"/etc/systemd/system/{service}.service"


def host_files(host: HostPlan, inventory: str, binaries: dict[str, str] | None = None) -> list[HostFile]:
    """Every file hybridctl manages on ``host`` (the planner keeps them in ``HostPlan.files``)."""
    binaries = binaries or SOFTETHER_BINARIES
    files: list[HostFile] = []
    if host.softether is not None and host.service is not None:
        files.append(
            HostFile(
                unit_path(host.service),
                render(
                    "systemd/softether.service.j2",
                    inventory=inventory,
                    role=host.role,
                    binary=binaries[host.role],
                ),
            )
        )
    if host.ip_forward:
        files.append(HostFile(SYSCTL_FILE, render("sysctl/60-hybridctl.conf.j2", inventory=inventory, host=host.name)))
    if host.addresses or host.routes:
        devices = sorted({a.device for a in host.addresses})
        files.append(
            HostFile(
                OVERLAY_SCRIPT,
                render(
                    "overlay/overlay.sh.j2",
                    inventory=inventory,
                    host=host.name,
                    devices=devices,
                    addresses=host.addresses,
                    routes=host.routes,
                    proto=ROUTE_PROTO,
                    wait_seconds=30,
                ),
                0o755,
            )
        )
        after = f"{host.service}.service" if host.service else ""
        files.append(
            HostFile(
                OVERLAY_UNIT,
                render("systemd/hybridctl-overlay.service.j2", inventory=inventory, script=OVERLAY_SCRIPT, after=after),
            )
        )
    return files


__all__ = [
    "OVERLAY_SCRIPT",
    "OVERLAY_UNIT",
    "ROUTE_PROTO",
    "SOFTETHER_BINARIES",
    "SYSCTL_FILE",
    "HostFile",
    "host_files",
    "render",
    "unit_path",
]
