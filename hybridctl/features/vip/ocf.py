"""``hybridctl vip agent``: an OCF resource agent for a route-table VIP.

Pacemaker (or any cluster manager that runs OCF scripts) calls it as
``hybridctl vip agent ACTION`` with the parameters in ``OCF_RESKEY_<name>`` variables, through the
wrapper ``hybridctl vip install-agent`` writes to ``/usr/lib/ocf/resource.d/hybridctl/vip``
(:func:`wrapper_script`). Exit codes are the OCF resource agent API's:

=====  =====================  =========================================================
code   name                   returned when
=====  =====================  =========================================================
0      OCF_SUCCESS            start/stop done (also when already so); monitor: running here
1      OCF_ERR_GENERIC        an API call or the read-back failed; monitor: started but a
                              table no longer points here (or the local address vanished)
2      OCF_ERR_ARGS           bad invocation, or the config is invalid *on this node*
                              (this node is not one of the VIP's nodes, its ENI still has
                              source/dest check on, its interface does not exist)
3      OCF_ERR_UNIMPLEMENTED  an action this agent does not implement (promote, ...)
4      OCF_ERR_PERM           the identity may not make the call (IAM), or ``ip`` was refused
5      OCF_ERR_INSTALLED      the inventory file or ``ip`` is missing on this node
6      OCF_ERR_CONFIGURED     the resource's config is wrong everywhere (required parameter
                              missing or malformed, unknown VIP, invalid inventory, VIP
                              inside the VPC, another VPC routes the same VIP)
7      OCF_NOT_RUNNING        monitor: cleanly stopped (no state file: no API call at all)
=====  =====================  =========================================================

``monitor`` bounds the API rate: at most one ``DescribeRouteTables`` per ``monitor_interval``
seconds; within that it answers from the verdict cached in the state file (``OCF_CHECK_LEVEL``
10 or more forces a fresh read). The state file (``state_dir``) is written by ``start`` and
removed by ``stop``, so a probe on a node that never started the resource costs nothing.

The core returns an :class:`AgentResult`; only the CLI prints it.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from hybridctl.core.errors import HybridctlError, InputError, PartialFailure, PreconditionError, Problem, RemoteError

OCF_SUCCESS = 0
OCF_ERR_GENERIC = 1
OCF_ERR_ARGS = 2
OCF_ERR_UNIMPLEMENTED = 3
OCF_ERR_PERM = 4
OCF_ERR_INSTALLED = 5
OCF_ERR_CONFIGURED = 6
OCF_NOT_RUNNING = 7

AGENT_NAME = "hybridctl-vip"
AGENT_VERSION = "1.0"
ACTIONS = ("start", "stop", "monitor", "meta-data", "validate-all", "usage", "help")
DEFAULT_STATE_DIR = "/run/resource-agents"
# Checks whose failure is about this node only: Pacemaker bans the node, not the resource.
NODE_LOCAL_CHECKS = frozenset({"source-dest-check", "eni-in-vpc"})


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # string | integer | boolean
    required: bool
    default: str
    shortdesc: str
    longdesc: str
    unique: bool = False


PARAMS = (
    Param("inventory", "string", True, "", "Inventory file", "Path of the hybridctl inventory (YAML) on this node."),
    Param("vip", "string", True, "", "VIP name", "Name of the entry under `vips:` in the inventory.", unique=True),
    Param(
        "node",
        "string",
        False,
        "",
        "This node's name",
        "This node's name among the VIP's nodes. Default: the cluster's node name (OCF_RESKEY_CRM_meta_on_node), "
        "else the host name.",
    ),
    Param(
        "interface",
        "string",
        False,
        "",
        "Interface for VIP/32",
        "Interface start adds VIP/32 to and stop removes it from. Default: the node's `interface` in the inventory; "
        "'none' disables address management.",
    ),
    Param(
        "monitor_interval",
        "integer",
        False,
        "",
        "Seconds between API reads",
        "monitor reads the route tables at most once per this many seconds and otherwise answers from the cached "
        "verdict. Default: the VIP's monitor_interval in the inventory (10).",
    ),
    Param(
        "allow_collisions",
        "boolean",
        False,
        "false",
        "Proceed despite other VPCs",
        "Start even when a route table of another VPC in the account and region routes the same VIP "
        "(that table is never touched).",
    ),
    Param(
        "state_dir",
        "string",
        False,
        "",
        "State directory",
        f"Where the state file lives. Default: $HA_RSCTMP, else {DEFAULT_STATE_DIR}.",
    ),
)


def meta_data() -> str:
    """The agent's meta-data XML, per the OCF resource agent API (ra-api-1.dtd)."""
    lines = [
        '<?xml version="1.0"?>',
        '<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">',
        f'<resource-agent name="{AGENT_NAME}" version="{AGENT_VERSION}">',
        "  <version>1.1</version>",
        '  <longdesc lang="en">Moves an AWS virtual IP that lies outside its VPC by pointing VIP/32 in every '
        "route table that holds it (and every declared one) at this node's ENI, in parallel, verified by "
        "reading back; checks for other VPCs routing the same VIP and for source/destination check first.</longdesc>",
        '  <shortdesc lang="en">AWS route-table virtual IP (hybridctl)</shortdesc>',
        "  <parameters>",
    ]
    for p in PARAMS:
        unique = ' unique="1"' if p.unique else ' unique="0"'
        default = f' default="{escape(p.default)}"' if p.default else ""
        lines += [
            f'    <parameter name="{p.name}" required="{int(p.required)}"{unique}>',
            f'      <longdesc lang="en">{escape(p.longdesc)}</longdesc>',
            f'      <shortdesc lang="en">{escape(p.shortdesc)}</shortdesc>',
            f'      <content type="{p.type}"{default}/>',
            "    </parameter>",
        ]
    lines += [
        "  </parameters>",
        "  <actions>",
        '    <action name="start" timeout="60s"/>',
        '    <action name="stop" timeout="30s"/>',
        '    <action name="monitor" timeout="30s" interval="20s" depth="0"/>',
        '    <action name="meta-data" timeout="5s"/>',
        '    <action name="validate-all" timeout="20s"/>',
        "  </actions>",
        "</resource-agent>",
    ]
    return "\n".join(lines) + "\n"


# Pacemaker finds ocf:PROVIDER:TYPE at $OCF_ROOT/resource.d/PROVIDER/TYPE.
DEFAULT_AGENT_DIR = Path("/usr/lib/ocf/resource.d/hybridctl")
AGENT_TYPE = "vip"


def default_executable() -> Path | None:
    """The ``hybridctl`` console script of this installation (next to its interpreter), else on PATH."""
    import shutil

    beside = Path(sys.executable).parent / "hybridctl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("hybridctl")
    return Path(found).absolute() if found else None


def wrapper_script(executable: Path) -> str:
    """The executable a cluster manager runs as ``ocf:hybridctl:vip``.

    It calls hybridctl by absolute path: Pacemaker runs agents with a minimal PATH
    (/usr/sbin:/usr/bin:/sbin:/bin), where a pip, pipx or venv install is usually not found.
    """
    return (
        "#!/bin/sh\n"
        "# ocf:hybridctl:vip, written by `hybridctl vip install-agent` (docs/vip.md)\n"
        f'exec {shlex.quote(str(executable))} vip agent "$1"\n'
    )


def install_wrapper(directory: Path = DEFAULT_AGENT_DIR, executable: Path | None = None) -> Path:
    """Write :func:`wrapper_script` to ``directory/vip`` (mode 755); returns its path."""
    chosen = executable if executable is not None else default_executable()
    if chosen is None:
        raise InputError(
            [Problem("(flags)", "--hybridctl", "no hybridctl executable found", "pass --hybridctl /path/to/hybridctl")]
        )
    if not chosen.is_absolute() or not chosen.is_file() or not os.access(chosen, os.X_OK):
        raise InputError(
            [
                Problem(
                    "(flags)",
                    "--hybridctl",
                    f"{chosen} is not an absolute path to an executable file",
                    "pass the absolute path of the hybridctl executable",
                )
            ]
        )
    target = directory / AGENT_TYPE
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        tmp = target.with_name(f".{AGENT_TYPE}.tmp")
        tmp.write_text(wrapper_script(chosen), encoding="utf-8")
        tmp.chmod(0o755)  # ocf-tester (and the cluster's own user) run meta-data as non-root
        os.replace(tmp, target)
    except OSError as exc:
        raise PreconditionError(f"cannot write {target}: {exc.strerror or exc} (run as root?)") from None
    return target


USAGE = f"usage: hybridctl vip agent {{{'|'.join(ACTIONS)}}}  (parameters in OCF_RESKEY_*)\n"


@dataclass
class AgentResult:
    code: int
    stdout: str = ""
    log: list[str] = field(default_factory=list)


class AgentError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Config:
    inventory_path: Path
    vip_name: str
    node: str
    interface: str | None
    monitor_interval: float | None
    allow_collisions: bool
    state_dir: Path

    @property
    def state_file(self) -> Path:
        return self.state_dir / f"{AGENT_NAME}-{self.vip_name}.json"


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on", "y"):
        return True
    if lowered in ("0", "false", "no", "off", "n", ""):
        return False
    raise AgentError(OCF_ERR_CONFIGURED, f"OCF_RESKEY_{name}={value!r} is not a boolean (use true or false)")


def parse_env(env: Mapping[str, str], *, need_inventory: bool = True) -> Config:
    def get(name: str) -> str:
        return env.get(f"OCF_RESKEY_{name}", "").strip()

    vip = get("vip")
    if not vip:
        raise AgentError(OCF_ERR_CONFIGURED, "OCF_RESKEY_vip is required: the VIP's name in the inventory")
    inventory = get("inventory")
    if need_inventory and not inventory:
        raise AgentError(OCF_ERR_CONFIGURED, "OCF_RESKEY_inventory is required: the inventory file's path")
    interval: float | None = None
    if get("monitor_interval"):
        try:
            interval = float(get("monitor_interval"))
        except ValueError:
            raise AgentError(
                OCF_ERR_CONFIGURED, f"OCF_RESKEY_monitor_interval={get('monitor_interval')!r} is not a number"
            ) from None
        if interval < 0:
            raise AgentError(OCF_ERR_CONFIGURED, "OCF_RESKEY_monitor_interval must not be negative")
    node = get("node") or env.get("OCF_RESKEY_CRM_meta_on_node", "").strip() or socket.gethostname().split(".")[0]
    interface = get("interface") or None
    state_dir = get("state_dir") or env.get("HA_RSCTMP", "").strip() or DEFAULT_STATE_DIR
    return Config(
        inventory_path=Path(inventory),
        vip_name=vip,
        node=node,
        interface=interface,
        monitor_interval=interval,
        allow_collisions=_bool("allow_collisions", get("allow_collisions")),
        state_dir=Path(state_dir),
    )


def _code_for(error: BaseException) -> int:
    """OCF exit code of an exception from the core."""
    from hybridctl.features.vip.aws import AwsCallError
    from hybridctl.features.vip.checks import UnsafeError
    from hybridctl.features.vip.localaddr import AddressError
    from hybridctl.features.vip.ops import VipPartialFailure

    if isinstance(error, AgentError):
        return error.code
    if isinstance(error, UnsafeError):
        return OCF_ERR_ARGS if error.ids <= NODE_LOCAL_CHECKS else OCF_ERR_CONFIGURED
    if isinstance(error, AwsCallError) and error.permission:
        return OCF_ERR_PERM
    if isinstance(error, VipPartialFailure) and error.permission:
        return OCF_ERR_PERM
    if isinstance(error, AwsCallError) and error.code in ("NoCredentials", "NoRegion"):
        return OCF_ERR_CONFIGURED
    if isinstance(error, AddressError):
        return {
            "missing-tool": OCF_ERR_INSTALLED,
            "no-device": OCF_ERR_ARGS,
            "permission": OCF_ERR_PERM,
        }.get(error.kind, OCF_ERR_GENERIC)
    if isinstance(error, InputError):
        return OCF_ERR_CONFIGURED
    if isinstance(error, PartialFailure | RemoteError | HybridctlError):
        return OCF_ERR_GENERIC
    return OCF_ERR_GENERIC


class Agent:
    """One invocation. ``api_factory`` builds the AWS client from the inventory's settings."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.time,
        api_factory: Callable[[Any], Any] | None = None,
    ) -> None:
        self.env = env
        self.clock = clock
        self.api_factory = api_factory
        self.log: list[str] = []

    # -- helpers -----------------------------------------------------------------------------------

    def _load(self, config: Config) -> tuple[Any, Any]:
        """(inventory, vip); raises AgentError with the right code."""
        from hybridctl.core.inventory.load import load_inventory

        if not config.inventory_path.is_file():
            # Not on this node (yet): Pacemaker must not start it here, elsewhere may be fine.
            raise AgentError(OCF_ERR_INSTALLED, f"inventory {config.inventory_path} not found on this node")
        try:
            loaded = load_inventory(config.inventory_path)  # every section checked, `vips:` included
        except InputError as exc:
            raise AgentError(OCF_ERR_CONFIGURED, f"inventory: {exc}") from None
        vip = next((v for v in loaded.inventory.vips if v.name == config.vip_name), None)
        if vip is None:
            raise AgentError(OCF_ERR_CONFIGURED, f"no VIP '{config.vip_name}' in {config.inventory_path}")
        if config.node not in {n.name for n in vip.nodes}:
            raise AgentError(
                OCF_ERR_ARGS,
                f"this node '{config.node}' is not one of VIP {vip.name}'s nodes "
                f"({', '.join(n.name for n in vip.nodes)}); set OCF_RESKEY_node",
            )
        return loaded.inventory, vip

    def _interface(self, config: Config, vip: Any) -> str | None:
        value = config.interface or vip.node(config.node).interface
        return None if value in (None, "", "none") else value

    def _api(self, inventory: Any) -> Any:
        from hybridctl.features.vip.aws import AwsApi, AwsConfig

        if self.api_factory is not None:
            return self.api_factory(inventory)
        return AwsApi(AwsConfig.from_settings(inventory.aws))

    def _read_state(self, config: Config) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(config.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # Unreadable state = we cannot claim it runs; stop will remove it.
            return {"corrupt": True}
        return data

    def _write_state(self, config: Config, state: dict[str, Any]) -> None:
        config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        tmp = config.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, config.state_file)

    # -- actions -----------------------------------------------------------------------------------

    def validate_all(self) -> int:
        import shutil

        config = parse_env(self.env)
        _, vip = self._load(config)
        if self._interface(config, vip) and shutil.which("ip") is None:
            raise AgentError(OCF_ERR_INSTALLED, "ip (iproute2) is needed to add the VIP to the interface")
        return OCF_SUCCESS

    def start(self) -> int:
        from hybridctl.features.vip import localaddr, ops

        config = parse_env(self.env)
        inventory, vip = self._load(config)
        interface = self._interface(config, vip)
        if interface:
            # Before any route changes: a node that cannot hold the address must not take the traffic.
            localaddr.has_address(interface, vip.address)
        api = self._api(inventory)
        try:
            result = ops.move(api, vip, config.node, allow_collisions=config.allow_collisions)
        finally:
            api.close()
        for check in result.checks:
            if str(check.status) != "ok":
                self.log.append(f"WARNING: {check.id}: {check.message}")
        self.log.append(
            f"INFO: {vip.name} ({vip.address}) -> {config.node} {result.eni_id}: "
            f"{len(result.tables)} table(s) written in {result.write_seconds:.3f}s"
        )
        if interface:
            localaddr.add_address(interface, vip.address)
        now = self.clock()
        self._write_state(
            config,
            {
                "vip": vip.name,
                "address": str(vip.address),
                "node": config.node,
                "eni": result.eni_id,
                "region": result.region,
                "vpc": result.vpc_id,
                "interface": interface,
                "started_at": now,
                "checked_at": now,
                "verdict": OCF_SUCCESS,
                "message": "started",
            },
        )
        return OCF_SUCCESS

    def stop(self) -> int:
        from hybridctl.features.vip import localaddr

        # Stop needs no inventory: what start did is in the state file. Failing a stop gets a
        # node fenced, so a missing or broken state file is simply "stopped".
        config = parse_env(self.env, need_inventory=False)
        state = self._read_state(config)
        if state is None:
            return OCF_SUCCESS
        interface = state.get("interface")
        address = state.get("address")
        if interface and address:
            from ipaddress import IPv4Address

            localaddr.remove_address(str(interface), IPv4Address(str(address)))
        config.state_file.unlink(missing_ok=True)
        self.log.append(f"INFO: {config.vip_name} stopped on {state.get('node')}")
        return OCF_SUCCESS

    def monitor(self) -> int:
        from ipaddress import IPv4Address

        from hybridctl.features.vip import localaddr

        config = parse_env(self.env)
        state = self._read_state(config)
        if state is None:
            return OCF_NOT_RUNNING
        if state.get("corrupt"):
            self.log.append(f"ERROR: state file {config.state_file} is unreadable")
            return OCF_ERR_GENERIC
        interface = state.get("interface")
        if interface and not localaddr.has_address(str(interface), IPv4Address(str(state["address"]))):
            self.log.append(f"ERROR: {state['address']} is no longer on {interface}")
            return OCF_ERR_GENERIC
        inventory, vip = self._load(config)
        interval = config.monitor_interval if config.monitor_interval is not None else vip.monitor_interval
        depth = int(self.env.get("OCF_CHECK_LEVEL", "0") or 0)
        now = self.clock()
        age = now - float(state.get("checked_at", 0))
        if depth < 10 and 0 <= age < interval:
            return int(state.get("verdict", OCF_ERR_GENERIC))
        verdict, message = self._check_routes(inventory, vip, state)
        state.update(checked_at=now, verdict=verdict, message=message)
        self._write_state(config, state)
        if verdict != OCF_SUCCESS:
            self.log.append(f"ERROR: {message}")
        return verdict

    def _check_routes(self, inventory: Any, vip: Any, state: dict[str, Any]) -> tuple[int, str]:
        """One filtered DescribeRouteTables: every table of the VPC holding VIP/32 must point here."""
        api = self._api(inventory)
        try:
            tables = api.pages(
                "ec2",
                "describe_route_tables",
                "RouteTables",
                state.get("region"),
                Filters=[
                    {"Name": "vpc-id", "Values": [state["vpc"]]},
                    {"Name": "route.destination-cidr-block", "Values": [vip.destination]},
                ],
            )
        finally:
            api.close()
        wrong = []
        for table in tables:
            for route in table.get("Routes") or []:
                if route.get("DestinationCidrBlock") != vip.destination:
                    continue
                if route.get("NetworkInterfaceId") != state["eni"] or route.get("State", "active") != "active":
                    target = route.get("NetworkInterfaceId") or route.get("InstanceId") or route.get("GatewayId")
                    wrong.append(f"{table['RouteTableId']} -> {target} ({route.get('State')})")
        if not tables:
            return OCF_ERR_GENERIC, f"no route table of {state['vpc']} routes {vip.destination} any more"
        if wrong:
            return OCF_ERR_GENERIC, f"{vip.destination} no longer points here in: {', '.join(wrong)}"
        return OCF_SUCCESS, f"{len(tables)} table(s) point at {state['eni']}"

    # -- entry -------------------------------------------------------------------------------------

    def run(self, action: str | None) -> AgentResult:
        if action in (None, ""):
            return AgentResult(OCF_ERR_ARGS, USAGE, ["ERROR: no action given"])
        if action == "meta-data":
            return AgentResult(OCF_SUCCESS, meta_data())
        if action in ("usage", "help"):
            return AgentResult(OCF_SUCCESS, USAGE)
        handlers: dict[str, Callable[[], int]] = {
            "start": self.start,
            "stop": self.stop,
            "monitor": self.monitor,
            "validate-all": self.validate_all,
        }
        handler = handlers.get(str(action))
        if handler is None:
            return AgentResult(OCF_ERR_UNIMPLEMENTED, "", [f"ERROR: action '{action}' is not implemented"])
        try:
            code = handler()
        except Exception as exc:  # every failure becomes an OCF code; the cluster reads nothing else
            code = _code_for(exc)
            self.log.append(f"ERROR: {action}: {exc}")
            for target, why in getattr(exc, "results", {}).items():
                self.log.append(f"ERROR:   {target}: {why}")
        return AgentResult(code, "", self.log)


def run_agent(action: str | None, env: Mapping[str, str] | None = None, **kwargs: Any) -> AgentResult:
    return Agent(os.environ if env is None else env, **kwargs).run(action)
