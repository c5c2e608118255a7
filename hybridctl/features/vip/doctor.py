"""``hybridctl doctor``: can each node and each feature do its job? Pass, warn or fail, with the fix.

What the seeds check by hand before a route-table VIP can fail over (000-003), automated:

- AWS, for whoever runs hybridctl: a region is configured; credentials work (``sts``); the EC2
  API answers within a bound; the identity's policy allows every action of every feature the
  inventory uses (``iam:SimulatePrincipalPolicy`` on the principal).
- Per VIP: the names resolve; the safety checks (:mod:`hybridctl.features.vip.safety`); the EC2 endpoint
  (:func:`hybridctl.features.vip.endpoint.endpoint_checks`) and the API answering through it.
- Per node: its instance profile association is ``associated``; the profile's role allows what
  the OCF agent calls (simulated on the real route table ARNs); source/dest check is off.
- Azure, when configured: credentials present, a token within the bound, ARM answering.

Checks never raise for a remote failure: that failure *is* the verdict.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hybridctl.backends import clouds
from hybridctl.core.errors import HybridctlError, RemoteError
from hybridctl.features.vip import endpoint as endpoint_mod
from hybridctl.features.vip import iam, safety
from hybridctl.features.vip.aws import AwsApi, AwsCallError, AwsConfig
from hybridctl.features.vip.checks import Check, Status, fail, ok, warn, worst
from hybridctl.features.vip.context import NodeEni, VipContext
from hybridctl.features.vip.read import read_context

T = TypeVar("T")
DEFAULT_BOUND = 60.0  # seeds 001: "if there is no answer within a minute, the path is missing"


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return worst(self.checks)

    def as_dict(self) -> dict[str, object]:
        counts = {s.value: sum(1 for c in self.checks if c.status is s) for s in Status}
        return {"status": str(self.status), "counts": counts, "checks": [c.as_dict() for c in self.checks]}


class _Timeout(Exception):
    pass


def bounded(fn: Callable[[], T], seconds: float) -> tuple[T, float]:
    """Run ``fn`` with a hard deadline (a daemon thread: a hung DNS lookup cannot hold us)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, name="doctor-bounded", daemon=True)
    thread.start()
    thread.join(seconds)
    elapsed = time.monotonic() - started
    if thread.is_alive():
        raise _Timeout(f"no answer within {seconds:.0f}s")
    if "error" in box:
        raise box["error"]
    return box["value"], elapsed


def _principal_arn(caller_arn: str) -> str:
    """The IAM principal to simulate for an STS caller ARN (assumed roles -> their role)."""
    if ":assumed-role/" in caller_arn:
        account = caller_arn.split(":")[4]
        role = caller_arn.split(":assumed-role/", 1)[1].split("/")[0]
        return f"arn:aws:iam::{account}:role/{role}"
    return caller_arn


def simulate(
    api: AwsApi,
    principal: str,
    permissions: tuple[iam.Permission, ...],
    region: str,
    account: str,
    concrete: dict[str, list[str]] | None = None,
) -> list[str]:
    """Actions (with their resource) the principal's policies do not allow.

    ``concrete`` maps a resource template to real ARNs (e.g. the VIP's route tables), so a policy
    scoped to specific tables is judged on them.
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for permission in permissions:
        arns: list[str] = []
        for template in permission.resources:
            if template == iam.ANY:
                arns.append("*")
            elif concrete and template in concrete:
                arns.extend(concrete[template])
            else:
                arns.append(template.format(region=region, account=account))
        groups.setdefault(tuple(sorted(set(arns))), []).append(permission.action)
    denied: list[str] = []
    for resources, actions in groups.items():
        results = api.pages(
            "iam",
            "simulate_principal_policy",
            "EvaluationResults",
            None,
            PolicySourceArn=principal,
            ActionNames=sorted(set(actions)),
            ResourceArns=list(resources),
        )
        for result in results:
            decisions = [r.get("EvalResourceDecision") for r in result.get("ResourceSpecificResults") or []]
            if result.get("EvalDecision") != "allowed" or any(d != "allowed" for d in decisions if d):
                resource = result.get("EvalResourceName") or ",".join(resources)
                denied.append(f"{result['EvalActionName']} on {resource}: {result.get('EvalDecision')}")
    return sorted(set(denied))


class Doctor:
    def __init__(self, inventory: Any, *, bound: float = DEFAULT_BOUND, api: AwsApi | None = None) -> None:
        self.inventory = inventory
        self.bound = bound
        self.api = api or AwsApi(AwsConfig.from_settings(inventory.aws))
        # For the latency probe: one attempt, timeouts at the bound (retries would hide a dead path).
        self.probe_api = AwsApi(
            AwsConfig.from_settings(inventory.aws, max_attempts=1, connect_timeout=bound, read_timeout=bound)
        )
        self.report = DoctorReport()
        self.account = "*"

    def add(self, *checks: Check) -> None:
        self.report.checks.extend(checks)

    def uses_aws(self) -> bool:
        return bool(self.inventory.vips) or any(s.kind == "aws" for s in self.inventory.sites)

    def run(self) -> DoctorReport:
        try:
            if self.uses_aws():
                self.aws()
            if self.inventory.azure is not None:
                self.azure()
        finally:
            self.api.close()
            self.probe_api.close()
        return self.report

    # -- AWS, for whoever runs hybridctl -------------------------------------------------------------

    def aws(self) -> None:
        default = self.inventory.aws.region if self.inventory.aws else None
        try:
            # aws.region, else the profile's or the environment's (as the SDK and the CLI read it).
            region = self.api.region(default)
        except RemoteError:
            self.add(
                fail(
                    "aws-region",
                    "aws",
                    "no region configured (inventory, profile or AWS_REGION)",
                    "set aws.region (the seeds' `aws configure` region step)",
                )
            )
            return
        self.add(ok("aws-region", "aws", f"region {region}"))
        # The API probe first: when the path is missing, that is the finding, not the credentials.
        self.api_latency(region)
        try:
            ident, _ = bounded(lambda: self.probe_api.call("sts", "get_caller_identity", region), self.bound)
        except (HybridctlError, _Timeout) as exc:
            self.add(
                fail(
                    "aws-credentials",
                    "aws",
                    f"credentials not usable: {exc}",
                    "set aws.profile / aws.credentials_file, or run on an instance with a role",
                )
            )
            return
        self.account = str(ident.get("Account", "*"))
        caller = str(ident.get("Arn", ""))
        self.add(ok("aws-credentials", "aws", f"calling as {caller}"))
        self.operator_permissions(caller, region)
        for vip in self.inventory.vips:
            self.vip(vip)

    def api_latency(self, region: str) -> None:
        url = self.probe_api.config.endpoint_url or f"https://ec2.{region}.amazonaws.com"
        started = time.monotonic()
        try:
            _, elapsed = bounded(lambda: self.probe_api.call("ec2", "describe_vpcs", region, MaxResults=5), self.bound)
        except AwsCallError as exc:
            if exc.code in (None, "Unreachable", "NoCredentials", "NoRegion"):
                self.add(
                    fail(
                        "ec2-api",
                        "aws",
                        f"the EC2 API at {url} did not answer: {exc}",
                        "give the caller a path to the API: internet/NAT, or `hybridctl endpoint ensure` (in the VPC)",
                    )
                )
            else:
                # An AWS error answer still proves the path: the credentials check says the rest.
                elapsed = time.monotonic() - started
                self.add(ok("ec2-api", "aws", f"EC2 API at {url} answered ({exc.code}) in {elapsed * 1000:.0f} ms"))
            return
        except (HybridctlError, _Timeout) as exc:
            self.add(
                fail(
                    "ec2-api",
                    "aws",
                    f"the EC2 API at {url} did not answer: {exc}",
                    "give the caller a path to the API: internet/NAT, or `hybridctl endpoint ensure` (inside the VPC)",
                )
            )
            return
        self.add(
            ok("ec2-api", "aws", f"EC2 API at {url} answered in {elapsed * 1000:.0f} ms (bound {self.bound:.0f}s)")
        )

    def operator_permissions(self, caller: str, region: str) -> None:
        principal = _principal_arn(caller)
        for feature, permissions in iam.features(self.inventory, "operator").items():
            subject = f"feature {feature}"
            try:
                denied = simulate(self.api, principal, permissions, region, self.account)
            except AwsCallError as exc:
                hint = (
                    "the caller may not call iam:SimulatePrincipalPolicy"
                    if exc.permission
                    else "IAM does not know the principal (root, federated or a test identity?)"
                )
                # One warning for all features: the same simulation would fail for each.
                self.add(
                    warn(
                        "iam-caller",
                        f"caller {principal}",
                        f"cannot simulate its policy: {hint}",
                        "compare the caller's policy with `hybridctl iam-policy` by hand",
                        exc.message,
                    )
                )
                return
            if denied:
                self.add(
                    fail(
                        f"iam-{feature.lower()}",
                        subject,
                        f"{principal} may not make {len(denied)} call(s)",
                        "attach the statements of `hybridctl iam-policy` to the caller",
                        *denied,
                    )
                )
            else:
                self.add(ok(f"iam-{feature.lower()}", subject, f"{principal} may make all {len(permissions)} call(s)"))

    # -- per VIP and node ----------------------------------------------------------------------------

    def vip(self, vip: Any) -> None:
        subject = f"vip {vip.name}"
        try:
            ctx = read_context(self.api, vip)
        except HybridctlError as exc:
            self.add(fail("vip-resolve", subject, str(exc), "correct the VIP's names in the inventory"))
            return
        self.add(ok("vip-resolve", subject, f"{vip.address} in {ctx.vpc_id}, {len(ctx.wanted)} table(s) to hold it"))
        self.add(*safety.run(ctx, None, allow_collisions=vip.allow_collisions))
        self.endpoint(vip, ctx)
        for name, node in ctx.nodes.items():
            self.node(vip, ctx, name, node)

    def endpoint(self, vip: Any, ctx: VipContext) -> None:
        try:
            state = endpoint_mod.read_state(self.api, [vip])
        except HybridctlError as exc:
            self.add(warn("endpoint", f"endpoint {ctx.vpc_id}", f"cannot read: {exc}", "see the error"))
            return
        self.add(*endpoint_mod.endpoint_checks(state))
        if state.endpoint is None:
            return
        subject = f"endpoint {ctx.vpc_id}"
        if self.probe_api.config.endpoint_url:
            self.add(
                warn(
                    "ec2-api-endpoint",
                    subject,
                    f"not probed: aws.endpoint_url ({self.probe_api.config.endpoint_url}) overrides the API address",
                    "run doctor on a node without aws.endpoint_url to test the private path",
                )
            )
            return
        names = [d["DnsName"] for d in state.endpoint.get("DnsEntries") or [] if not str(d["DnsName"]).startswith("*")]
        if not names:
            return
        url = f"https://{names[0]}"
        probe = AwsApi(
            AwsConfig.from_settings(
                self.inventory.aws, max_attempts=1, connect_timeout=self.bound, read_timeout=self.bound
            )
        )
        try:
            _, elapsed = bounded(
                lambda: probe.client("ec2", ctx.region, endpoint_url=url).describe_vpcs(MaxResults=5), self.bound
            )
            self.add(ok("ec2-api-endpoint", subject, f"EC2 API through {names[0]} answered in {elapsed * 1000:.0f} ms"))
        except Exception as exc:  # DNS, TLS, timeout: all mean "not from here"
            self.add(
                warn(
                    "ec2-api-endpoint",
                    subject,
                    f"EC2 API through {names[0]} not reachable from here: {exc}",
                    "expected outside the VPC; run `hybridctl doctor` on a node to test the private path",
                )
            )
        finally:
            probe.close()

    def node(self, vip: Any, ctx: VipContext, name: str, node: NodeEni) -> None:
        subject = f"node {vip.name}/{name}"
        self.add(*(dataclasses.replace(c, subject=subject) for c in safety.eni_checks(ctx, node)))
        if node.instance_id is None:
            self.add(fail("instance-profile", subject, f"{node.id} is attached to no instance", "attach it"))
            return
        try:
            associations = self.api.pages(
                "ec2",
                "describe_iam_instance_profile_associations",
                "IamInstanceProfileAssociations",
                ctx.region,
                Filters=[{"Name": "instance-id", "Values": [node.instance_id]}],
            )
        except HybridctlError as exc:
            self.add(fail("instance-profile", subject, f"cannot read: {exc}", "see the error"))
            return
        live = [a for a in associations if a.get("State") in ("associated", "associating")]
        fix = f"attach an instance profile whose role has `hybridctl iam-policy --role node` to {node.instance_id}"
        if not live:
            self.add(fail("instance-profile", subject, f"{node.instance_id} has no instance profile", fix))
            return
        association = live[0]
        profile_arn = str(association["IamInstanceProfile"]["Arn"])
        if association["State"] != "associated":
            self.add(
                warn("instance-profile", subject, f"{profile_arn} is {association['State']}", "wait a few seconds")
            )
        else:
            self.add(ok("instance-profile", subject, f"{node.instance_id}: {profile_arn} associated"))
        self.node_permissions(vip, ctx, subject, profile_arn)

    def node_permissions(self, vip: Any, ctx: VipContext, subject: str, profile_arn: str) -> None:
        profile_name = profile_arn.rsplit("/", 1)[-1]
        try:
            profile = self.api.call("iam", "get_instance_profile", None, InstanceProfileName=profile_name)
        except AwsCallError as exc:
            self.add(
                warn("node-iam", subject, f"cannot read {profile_name}: {exc.message}", "allow iam:GetInstanceProfile")
            )
            return
        roles = profile["InstanceProfile"].get("Roles") or []
        if not roles:
            self.add(
                fail("node-iam", subject, f"{profile_name} holds no role", "add the node role to the instance profile")
            )
            return
        role_arn = str(roles[0]["Arn"])
        account = ctx.owner_id or self.account
        permissions = iam.VIP_NODE + (iam.VIP_NODE_TGW if vip.transit_gateway else ())
        concrete = {iam.ROUTE_TABLE: [f"arn:aws:ec2:{ctx.region}:{account}:route-table/{t}" for t in ctx.wanted]}
        if ctx.tgw is not None:
            concrete[iam.TGW_ROUTE_TABLE] = [
                f"arn:aws:ec2:{ctx.region}:{account}:transit-gateway-route-table/{ctx.tgw.route_table_id}"
            ]
            concrete[iam.TGW_ATTACHMENT] = [
                f"arn:aws:ec2:{ctx.region}:{account}:transit-gateway-attachment/{ctx.tgw.attachment_id}"
            ]
        try:
            denied = simulate(self.api, role_arn, permissions, ctx.region, account, concrete)
        except AwsCallError as exc:
            self.add(
                warn(
                    "node-iam",
                    subject,
                    f"could not simulate {role_arn}: {exc.message}",
                    "allow iam:SimulatePrincipalPolicy",
                )
            )
            return
        if denied:
            self.add(
                fail(
                    "node-iam",
                    subject,
                    f"role {role_arn} may not make {len(denied)} call(s) the agent needs",
                    "attach `hybridctl iam-policy --role node` to the role",
                    *denied,
                )
            )
        else:
            self.add(ok("node-iam", subject, f"role {role_arn} allows all {len(permissions)} agent call(s)"))

    # -- Azure ---------------------------------------------------------------------------------------

    def azure(self) -> None:
        from hybridctl.core.secrets import SecretStore, check_resolvable

        settings = self.inventory.azure
        subject = "azure"
        try:
            import azure.identity  # noqa: F401  (only: is it there?)
        except ImportError:
            self.add(fail("azure-sdk", subject, "azure-identity is not installed", "pip install azure-identity"))
            return
        if clouds.uses_service_principal(settings):
            why = None if settings.client_secret == "generate" else check_resolvable(settings.client_secret)
            if why:
                self.add(
                    fail("azure-credentials", subject, f"azure.client_secret: {why}", "set the secret it refers to")
                )
                return
        store = SecretStore.for_inventory(self.inventory.name, self.inventory.secrets.store)
        arm = clouds.ArmClient("azure.mgmt.network.NetworkManagementClient", settings, store, timeout=self.bound)
        try:
            self._azure_checks(arm)
        finally:
            arm.close()

    def _azure_checks(self, arm: clouds.ArmClient) -> None:
        settings = arm.settings
        subject = "azure"
        try:
            credential = arm.credential()
        except RemoteError as exc:
            self.add(fail("azure-credentials", subject, exc.message, exc.hint or "set the secret it refers to"))
            return
        if clouds.uses_service_principal(settings):
            self.add(
                ok("azure-credentials", subject, f"service principal {settings.client_id} in {settings.tenant_id}")
            )
        else:
            self.add(
                warn(
                    "azure-credentials",
                    subject,
                    "no service principal in the inventory: the SDK's default chain is used",
                    "set azure.tenant_id, client_id and client_secret for a predictable identity",
                )
            )
        base = clouds.arm_base(settings)
        try:
            _, elapsed = bounded(lambda: credential.get_token(f"{base}/.default"), self.bound)
            self.add(ok("azure-token", subject, f"token in {elapsed * 1000:.0f} ms"))
        except Exception as exc:  # the SDK raises many types; all mean "no token"
            self.add(
                fail(
                    "azure-token",
                    subject,
                    f"no token: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                    "check azure.tenant_id / client_id / client_secret and azure.authority",
                )
            )
            return
        client = arm.client()
        try:
            _, elapsed = bounded(lambda: next(iter(client.virtual_networks.list_all()), None), self.bound)
            self.add(ok("azure-arm", subject, f"ARM at {base} answered in {elapsed * 1000:.0f} ms"))
        except Exception as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.add(
                fail(
                    "azure-arm",
                    subject,
                    f"ARM at {base} did not answer: {text}",
                    "check azure.subscription_id, the identity's role and the path to ARM",
                )
            )


def run(inventory: Any, *, bound: float = DEFAULT_BOUND, api: AwsApi | None = None) -> DoctorReport:
    return Doctor(inventory, bound=bound, api=api).run()
