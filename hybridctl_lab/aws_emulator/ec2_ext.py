"""EC2 actions moto 5.2.1 lacks or gets wrong, implemented as AWS documents them.

Each override subclasses moto's own ``EC2Response`` so request parsing and response
serialisation stay moto's (driven by botocore's service model), and works on moto's
backend objects so every other moto action sees the same state. Where moto is only
missing a validation, the override validates and then calls moto's implementation.
What each fixes is listed in docs/aws-emulator.md and next to the method.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from functools import lru_cache
from typing import Any, cast

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError, FilterNotImplementedError
from moto.ec2.models.vpcs import VPCEndPoint
from moto.ec2.responses import EC2Response
from moto.ec2.utils import random_vpc_ep_id

from .backends import route_state, route_target_eni
from .paging import Page, PageError, apply_filters, paginate
from .protocol import service_model


def _ec2_error(code: str, message: str) -> EC2ClientError:
    return EC2ClientError(code, message)


def _truthy(value: Any) -> bool:
    # moto stores VPC attributes as whatever the request carried (bool or "true"/"false").
    return value is True or str(value).lower() == "true"


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


# --------------------------------------------------------------------------- IP bookkeeping


def _eni_ips(eni: Any) -> set[str]:
    ips = {a.get("PrivateIpAddress") for a in eni.private_ip_addresses if a.get("PrivateIpAddress")}
    if eni.private_ip_address:
        ips.add(eni.private_ip_address)
    return ips


def used_ips(backend: Any, subnet_id: str) -> set[str]:
    """Every private IPv4 address held by an ENI in the subnet (instances' ENIs included)."""
    used: set[str] = set()
    for eni in backend.enis.values():
        if eni.subnet is not None and eni.subnet.id == subnet_id:
            used |= _eni_ips(eni)
    return used


def reserved_ips(cidr: str) -> set[str]:
    """AWS reserves the network address, +1 (router), +2 (DNS), +3 and the broadcast address."""
    net = ipaddress.ip_network(cidr)
    base = int(net.network_address)
    return {str(ipaddress.ip_address(base + i)) for i in range(4)} | {str(net.broadcast_address)}


def check_requested_ip(backend: Any, subnet: Any, ip: str) -> None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise _ec2_error("InvalidParameterValue", f"Invalid IPv4 address: {ip}") from None
    if address not in ipaddress.ip_network(subnet.cidr_block):
        raise _ec2_error("InvalidParameterValue", "Address does not fall within the subnet's address range")
    if ip in reserved_ips(subnet.cidr_block):
        raise _ec2_error("InvalidParameterValue", f"Address {ip} is in subnet's reserved address range")
    if ip in used_ips(backend, subnet.id):
        raise _ec2_error("InvalidIPAddress.InUse", f"Address {ip} is in use.")


def allocate_ips(backend: Any, subnet: Any, count: int, exclude: set[str] | None = None) -> list[str]:
    """The ``count`` lowest free addresses of the subnet (AWS picks any free one)."""
    taken = used_ips(backend, subnet.id) | reserved_ips(subnet.cidr_block) | (exclude or set())
    free: list[str] = []
    for host in ipaddress.ip_network(subnet.cidr_block).hosts():
        if str(host) not in taken:
            free.append(str(host))
            if len(free) == count:
                return free
    raise _ec2_error(
        "InsufficientFreeAddressesInSubnet",
        f"There are not enough free addresses in subnet '{subnet.id}' to satisfy the requested number of instances.",
    )


def sync_subnet_ip_book(backend: Any, subnet: Any) -> None:
    """Make moto's per-subnet instance IP book know about every ENI address.

    moto allocates instance addresses from ``Subnet._subnet_ips`` only, which ENIs created
    with CreateNetworkInterface never enter, so an instance could get an ENI's address.
    """
    for ip in used_ips(backend, subnet.id):
        subnet._subnet_ips.setdefault(ip, None)
        subnet._unused_ips.discard(ip)


@lru_cache(maxsize=32)
def _max_results_bounds(operation: str) -> tuple[int | None, int | None]:
    """MaxResults limits from botocore's EC2 model (e.g. 5..100 for DescribeRouteTables)."""
    model = service_model("ec2")
    shape = model.operation_model(operation).input_shape if model is not None else None
    if shape is None or "MaxResults" not in shape.members:
        return None, None
    meta = shape.members["MaxResults"].metadata
    return meta.get("min"), meta.get("max")


# --------------------------------------------------------------------------- route rendering


def render_route(route: Any, backend: Any) -> dict[str, Any]:
    """A route as DescribeRouteTables shows it on AWS.

    AWS resolves an instance target to its primary ENI and an ENI target attached to an
    instance to that instance, and shows both (with ``InstanceOwnerId``).
    """
    out: dict[str, Any] = {}
    if route.destination_cidr_block:
        out["DestinationCidrBlock"] = route.destination_cidr_block
    if route.destination_ipv6_cidr_block:
        out["DestinationIpv6CidrBlock"] = route.destination_ipv6_cidr_block
    if route.destination_prefix_list is not None:
        out["DestinationPrefixListId"] = route.destination_prefix_list.id
    if route.gateway_id:
        out["GatewayId"] = route.gateway_id
    eni = route_target_eni(route, backend)
    if eni is not None:
        out["NetworkInterfaceId"] = eni.id
        instance = route.instance if route.instance is not None else eni.instance
        if instance is not None:
            out["InstanceId"] = instance.id
            out["InstanceOwnerId"] = backend.account_id
    for key, value in (
        ("NatGatewayId", route.nat_gateway_id),
        ("TransitGatewayId", route.transit_gateway_id),
        ("EgressOnlyInternetGatewayId", route.egress_only_internet_gateway_id),
        ("VpcPeeringConnectionId", route.vpc_peering_connection_id),
        ("CarrierGatewayId", route.carrier_gateway_id),
    ):
        if value:
            out[key] = value
    out["Origin"] = route.origin
    out["State"] = route_state(route, backend)
    return out


def _route_values(rt: Any, backend: Any, key: str) -> list[str]:
    return [str(r[key]) for r in (render_route(x, backend) for x in rt.routes) if key in r]


# --------------------------------------------------------------------------- TGW routes


def _tgw_attachment_ref(attachment: Any) -> dict[str, str]:
    return {
        "ResourceId": attachment.resource_id,
        "TransitGatewayAttachmentId": attachment.id,
        "ResourceType": attachment.resource_type,
    }


def _static_tgw_route(cidr: str, attachment: Any | None, blackhole: bool) -> dict[str, Any]:
    route: dict[str, Any] = {
        "DestinationCidrBlock": cidr,
        "Type": "static",
        "State": "blackhole" if blackhole else "active",
        # moto's own (unused by us) code paths read these lowercase keys; keep them valid.
        "destinationCidrBlock": cidr,
        "type": "static",
        "state": "blackhole" if blackhole else "active",
    }
    if attachment is not None and not blackhole:
        route["TransitGatewayAttachments"] = [_tgw_attachment_ref(attachment)]
    return route


def _public_tgw_route(route: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in route.items() if k[:1].isupper()}


class ExtEC2Response(EC2Response):
    """moto's EC2 responder plus the overrides below (see module docstring)."""

    # ----------------------------------------------------------------- helpers

    def _page(self, items: list[Any], operation: str) -> Page:
        minimum, maximum = _max_results_bounds(operation)
        try:
            return paginate(
                items,
                self._get_int_param("MaxResults"),
                self._get_param("NextToken"),
                minimum=minimum,
                maximum=maximum,
            )
        except PageError as exc:
            name = exc.field if exc.field == "NextToken" else _lower_first(exc.field)
            raise _ec2_error(
                "InvalidParameterValue", f"Value ( {exc.value} ) for parameter {name} is invalid. {exc}"
            ) from None

    def _filter(
        self,
        objects: list[Any],
        method: str,
        extra: dict[str, Callable[[Any], Any]] | None = None,
    ) -> list[Any]:
        extra = extra or {}

        def getter(obj: Any, name: str) -> Any:
            if name in extra:
                return extra[name](obj)
            try:
                return obj.get_filter_value(name, method)
            except FilterNotImplementedError:
                raise _ec2_error("InvalidParameterValue", f"The filter '{name}' is invalid") from None

        return apply_filters(objects, self._filters_from_querystring(), getter)

    # ----------------------------------------------------------------- route tables

    def describe_route_tables(self) -> ActionResult:
        """moto: no route.network-interface-id/instance-id/state/origin filters (500), routes
        to instances lack NetworkInterfaceId, MaxResults/NextToken ignored."""
        backend = self.ec2_backend
        tables = backend.describe_route_tables(self._get_param("RouteTableIds", []), None)

        def route_key(key: str) -> Callable[[Any], Any]:
            return lambda rt: _route_values(rt, backend, key)

        extra: dict[str, Callable[[Any], Any]] = {
            "route.network-interface-id": route_key("NetworkInterfaceId"),
            "route.instance-id": route_key("InstanceId"),
            "route.state": route_key("State"),
            "route.origin": route_key("Origin"),
            "route.destination-cidr-block": route_key("DestinationCidrBlock"),
            "route.destination-ipv6-cidr-block": route_key("DestinationIpv6CidrBlock"),
            "route.destination-prefix-list-id": route_key("DestinationPrefixListId"),
            "route.gateway-id": route_key("GatewayId"),
            "route.nat-gateway-id": route_key("NatGatewayId"),
            "route.transit-gateway-id": route_key("TransitGatewayId"),
            "route.egress-only-internet-gateway-id": route_key("EgressOnlyInternetGatewayId"),
            "route.vpc-peering-connection-id": route_key("VpcPeeringConnectionId"),
            "route.carrier-gateway-id": route_key("CarrierGatewayId"),
            "owner-id": lambda rt: backend.account_id,
            "association.gateway-id": lambda rt: [t for t in rt._associations.values() if not t.startswith("subnet-")],
        }
        tables = self._filter(list(tables), "DescribeRouteTables", extra)
        page = self._page(tables, "DescribeRouteTables")
        rendered = [
            {
                "RouteTableId": rt.id,
                "VpcId": rt.vpc_id,
                "OwnerId": backend.account_id,
                "Associations": rt.associations,
                "PropagatingVgws": [],
                "Routes": [render_route(r, backend) for r in rt.routes],
                "Tags": [{"Key": t["key"], "Value": t["value"]} for t in rt.get_tags()],
            }
            for rt in page.items
        ]
        result: dict[str, Any] = {"RouteTables": rendered}
        if page.next_token:
            result["NextToken"] = page.next_token
        return ActionResult(result)

    def _validate_route_target(self, route_table: Any) -> None:
        backend = self.ec2_backend
        eni_id = self._get_param("NetworkInterfaceId")
        instance_id = self._get_param("InstanceId")
        tgw_id = self._get_param("TransitGatewayId")
        if eni_id:
            eni = backend.get_network_interface(eni_id)
            if eni.subnet.vpc_id != route_table.vpc_id:
                raise _ec2_error(
                    "InvalidParameterValue",
                    f"route table {route_table.id} and network interface {eni_id} belong to different networks",
                )
        if instance_id:
            instance = backend.get_instance(instance_id)
            if len(instance.nics) > 1:
                raise _ec2_error(
                    "InvalidInstanceID",
                    f"There are multiple interfaces attached to instance '{instance_id}'. "
                    "Please specify an interface ID for the operation instead.",
                )
            if instance.vpc_id != route_table.vpc_id:
                raise _ec2_error(
                    "InvalidParameterValue",
                    f"route table {route_table.id} and instance {instance_id} belong to different networks",
                )
        if tgw_id and tgw_id not in backend.transit_gateways:
            raise _ec2_error("InvalidTransitGatewayID.NotFound", f"The transitGateway ID '{tgw_id}' does not exist.")

    def create_route(self) -> ActionResult:
        """moto: a route with NetworkInterfaceId silently overwrote an existing route for the same
        destination (AWS: RouteAlreadyExists), and ENIs/instances of other VPCs were accepted."""
        backend = self.ec2_backend
        route_table = backend.get_route_table(self._get_param("RouteTableId"))
        cidr = self._get_param("DestinationCidrBlock")
        if cidr:
            try:
                wanted = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise _ec2_error(
                    "InvalidParameterValue",
                    f"Value ({cidr}) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block.",
                ) from None
            for route in route_table.routes:
                if route.destination_cidr_block and ipaddress.ip_network(route.destination_cidr_block) == wanted:
                    raise _ec2_error("RouteAlreadyExists", f"The route identified by {cidr} already exists.")
        self._validate_route_target(route_table)
        return super().create_route()

    def replace_route(self) -> ActionResult:
        """moto accepted ENIs/instances of other VPCs and unknown transit gateways."""
        route_table = self.ec2_backend.get_route_table(self._get_param("RouteTableId"))
        self._validate_route_target(route_table)
        return super().replace_route()

    # ----------------------------------------------------------------- ENIs and instances

    def describe_network_interfaces(self) -> ActionResult:
        """moto ignored MaxResults/NextToken and had no private-dns-name filter."""
        backend = self.ec2_backend
        enis = backend.get_all_network_interfaces(self._get_param("NetworkInterfaceIds", []), None)
        extra: dict[str, Callable[[Any], Any]] = {
            "private-dns-name": lambda e: getattr(e, "private_dns_name", None),
            "requester-managed": lambda e: bool(e.requester_managed),
        }
        enis = self._filter(list(enis), "DescribeNetworkInterfaces", extra)
        page = self._page(enis, "DescribeNetworkInterfaces")
        result: dict[str, Any] = {"NetworkInterfaces": page.items}
        if page.next_token:
            result["NextToken"] = page.next_token
        return ActionResult(result)

    def create_network_interface(self) -> ActionResult:
        """moto accepted addresses outside the subnet, reserved or already in use, and picked
        random (colliding, even reserved) addresses when none was given."""
        backend = self.ec2_backend
        subnet = backend.get_subnet(self._get_param("SubnetId"))
        primary = self._get_param("PrivateIpAddress")
        listed = [a.get("PrivateIpAddress") for a in self._get_param("PrivateIpAddresses", []) or []]
        requested = [ip for ip in [primary, *listed] if ip]
        for ip in dict.fromkeys(requested):
            check_requested_ip(backend, subnet, ip)
        secondary = int(self._get_param("SecondaryPrivateIpAddressCount") or 0)
        if not requested:
            primary = allocate_ips(backend, subnet, 1)[0]
            self.params["PrivateIpAddress"] = primary
        if secondary:
            extra = allocate_ips(backend, subnet, secondary, exclude=set(requested) | {primary})
            first = primary or requested[0]
            self.params["PrivateIpAddresses"] = [{"Primary": True, "PrivateIpAddress": first}] + [
                {"Primary": False, "PrivateIpAddress": ip} for ip in extra
            ]
            self.params["PrivateIpAddress"] = first
            self.params.pop("SecondaryPrivateIpAddressCount", None)
        return super().create_network_interface()

    def run_instances(self) -> ActionResult:
        """moto could give an instance an address already held by an ENI, and failed with a 500
        on an explicit address in use; addresses outside the subnet were accepted."""
        backend = self.ec2_backend
        subnet_id = self._get_param("SubnetId")
        explicit = self._get_param("PrivateIpAddress")
        for nic in self._get_param("NetworkInterfaces", []) or []:
            if int(nic.get("DeviceIndex", 0)) == 0:
                subnet_id = subnet_id or nic.get("SubnetId")
                explicit = explicit or nic.get("PrivateIpAddress")
        if subnet_id:
            subnet = backend.get_subnet(subnet_id)
            if explicit:
                check_requested_ip(backend, subnet, explicit)
            else:
                allocate_ips(backend, subnet, int(self._get_param("MaxCount") or 1))  # capacity check
            sync_subnet_ip_book(backend, subnet)
        return super().run_instances()

    def modify_instance_attribute(self) -> ActionResult:
        """AWS's instance SourceDestCheck is the primary ENI's; moto kept two separate flags."""
        result = super().modify_instance_attribute()
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        primary = instance.nics.get(0)
        if primary is not None:
            primary.source_dest_check = instance.source_dest_check
        return result

    def modify_network_interface_attribute(self) -> ActionResult:
        """Keep the attached instance's SourceDestCheck equal to its primary ENI's (see above)."""
        result = super().modify_network_interface_attribute()
        eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
        if eni.instance is not None and eni.device_index == 0:
            eni.instance.source_dest_check = eni.source_dest_check
        return result

    # ----------------------------------------------------------------- security groups

    def _authorize(self, egress: bool) -> ActionResult:
        backend = self.ec2_backend
        authorize = backend.authorize_security_group_egress if egress else backend.authorize_security_group_ingress
        revoke = backend.revoke_security_group_egress if egress else backend.revoke_security_group_ingress
        created: list[Any] = []
        done: list[dict[str, Any]] = []
        try:
            for kwargs in self._process_rules_from_querystring():
                rules, _ = authorize(**kwargs)
                created.extend(rules)
                done.append(kwargs)
        except Exception:
            # AWS applies the whole request or nothing (e.g. one duplicate rule fails it all).
            for kwargs in reversed(done):
                args = {k: v for k, v in kwargs.items() if k != "sgrule_tags"}
                try:
                    revoke(**args)
                except Exception:  # best effort undo: the original error is the one to report
                    continue
            raise
        return ActionResult({"Return": True, "SecurityGroupRules": created})

    def authorize_security_group_ingress(self) -> ActionResult:
        """moto returned only the last IpPermission's rules and was not atomic."""
        self.error_on_dryrun()
        return self._authorize(egress=False)

    def authorize_security_group_egress(self) -> ActionResult:
        """Same defects as ingress."""
        self.error_on_dryrun()
        return self._authorize(egress=True)

    def describe_security_groups(self) -> ActionResult:
        """moto ignored MaxResults/NextToken."""
        result = super().describe_security_groups()
        return self._paginate_result(result, "SecurityGroups", "DescribeSecurityGroups")

    def describe_security_group_rules(self) -> ActionResult:
        """moto ignored MaxResults/NextToken."""
        result = super().describe_security_group_rules()
        return self._paginate_result(result, "SecurityGroupRules", "DescribeSecurityGroupRules")

    def describe_vpcs(self) -> ActionResult:
        """moto ignored MaxResults/NextToken (hybridctl's AWS adapter pages it)."""
        return self._paginate_result(super().describe_vpcs(), "Vpcs", "DescribeVpcs")

    def describe_subnets(self) -> ActionResult:
        """moto ignored MaxResults/NextToken (hybridctl's AWS adapter pages it)."""
        return self._paginate_result(super().describe_subnets(), "Subnets", "DescribeSubnets")

    def _paginate_result(self, result: ActionResult, key: str, operation: str) -> ActionResult:
        body = dict(result.result)  # type: ignore[call-overload]
        page = self._page(list(body[key]), operation)
        body[key] = page.items
        if page.next_token:
            body["NextToken"] = page.next_token
        return ActionResult(body)

    # ----------------------------------------------------------------- VPC endpoints

    def create_vpc_endpoint(self) -> ActionResult:
        """Interface endpoints: moto gave the ENIs random 10.x addresses outside the subnet, the
        default security group on the ENIs whatever was asked, no default SG on the endpoint,
        malformed DNS names, and accepted unknown services and private DNS in a VPC without
        enableDnsSupport+enableDnsHostnames. Gateway endpoints stay moto's."""
        endpoint_type = self._get_param("VpcEndpointType") or "Gateway"
        if endpoint_type.lower() != "interface":
            return super().create_vpc_endpoint()
        self.error_on_dryrun()
        backend = self.ec2_backend
        vpc = backend.get_vpc(self._get_param("VpcId"))
        service_name = self._get_param("ServiceName")
        backend.describe_vpc_endpoint_services([service_name], [], None, None, self.region)
        subnet_ids: list[str] = self._get_param("SubnetIds", []) or []
        subnets = [backend.get_subnet(s) for s in subnet_ids]
        zones: dict[str, str] = {}
        for subnet in subnets:
            if subnet.vpc_id != vpc.id:
                raise _ec2_error(
                    "InvalidParameter", f"The subnet ID '{subnet.id}' does not belong to the VPC '{vpc.id}'."
                )
            if subnet.availability_zone in zones:
                raise _ec2_error(
                    "DuplicateSubnetsInSameZone",
                    f"Found another VPC endpoint subnet in the availability zone of {subnet.id}. "
                    "VPC endpoint subnets should be in different availability zones supported by "
                    "the VPC endpoint service.",
                )
            zones[subnet.availability_zone] = subnet.id
        private_dns = self._get_param("PrivateDnsEnabled")
        private_dns = True if private_dns is None else bool(private_dns)
        if private_dns and not (_truthy(vpc.enable_dns_support) and _truthy(vpc.enable_dns_hostnames)):
            raise _ec2_error(
                "InvalidParameter",
                "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC "
                f"attributes set to true for {vpc.id}",
            )
        group_ids: list[str] = self._get_param("SecurityGroupIds", []) or []
        for gid in group_ids:
            if backend.get_security_group_from_id(gid) is None:
                raise _ec2_error("InvalidGroup.NotFound", f"The security group '{gid}' does not exist")
        if not group_ids:
            group_ids = [backend.get_default_security_group(vpc.id).id]

        endpoint_id = random_vpc_ep_id()
        eni_ids = []
        for subnet in subnets:
            ip = allocate_ips(backend, subnet, 1)[0]
            eni = backend.create_network_interface(
                subnet, ip, group_ids=group_ids, description=f"VPC Endpoint Interface {endpoint_id}"
            )
            eni.interface_type = "vpc_endpoint"
            eni.requester_managed = True
            eni.status = "in-use"
            eni_ids.append(eni.id)

        short = service_name.split(".")[-1]
        suffix = secrets.token_hex(4)
        zone_id = "Z" + secrets.token_hex(6).upper()
        dns_entries = [
            {"DnsName": f"{endpoint_id}-{suffix}.{short}.{self.region}.vpce.amazonaws.com", "HostedZoneId": zone_id}
        ] + [
            {
                "DnsName": f"{endpoint_id}-{suffix}-{az}.{short}.{self.region}.vpce.amazonaws.com",
                "HostedZoneId": zone_id,
            }
            for az in zones
        ]
        if private_dns:
            dns_entries.append({"DnsName": f"{short}.{self.region}.amazonaws.com", "HostedZoneId": zone_id})

        tags = {}
        for spec in self._get_param("TagSpecifications", []) or []:
            tags.update({t["Key"]: t["Value"] for t in spec.get("Tags", [])})
        endpoint = cast(Any, VPCEndPoint)(
            backend,
            endpoint_id,
            vpc.id,
            service_name,
            "Interface",
            self._get_param("PolicyDocument"),
            [],
            subnet_ids,
            eni_ids,
            dns_entries=dns_entries,
            client_token=self._get_param("ClientToken"),
            security_group_ids=group_ids,
            tags=tags,
            private_dns_enabled=private_dns,
        )
        backend.vpc_end_points[endpoint_id] = endpoint
        return ActionResult({"VpcEndpoint": endpoint})

    # ----------------------------------------------------------------- transit gateway routes

    def _tgw_table(self) -> Any:
        table_id = self._get_param("TransitGatewayRouteTableId")
        table = self.ec2_backend.transit_gateways_route_tables.get(table_id)
        if table is None or table.state == "deleted":
            raise _ec2_error(
                "InvalidRouteTableID.NotFound",
                f"Transit Gateway Route Table {table_id} was deleted or does not exist.",
            )
        return table

    def _tgw_attachment(self) -> Any | None:
        attachment_id = self._get_param("TransitGatewayAttachmentId")
        if not attachment_id:
            return None
        attachment = self.ec2_backend.transit_gateway_attachments.get(attachment_id)
        if attachment is None or attachment.state == "deleted":
            raise _ec2_error(
                "InvalidTransitGatewayAttachmentID.NotFound",
                f"Transit Gateway Attachment {attachment_id} was deleted or does not exist.",
            )
        return attachment

    def _tgw_cidr(self) -> str:
        cidr = self._get_param("DestinationCidrBlock")
        try:
            return str(ipaddress.ip_network(cidr, strict=True))
        except ValueError:
            raise _ec2_error(
                "InvalidParameterValue",
                f"Value ({cidr}) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block.",
            ) from None

    def _put_tgw_route(self, table: Any, cidr: str) -> ActionResult:
        """Create or replace a static route to the request's attachment (or a blackhole)."""
        blackhole = bool(self._get_param("Blackhole"))
        attachment = self._tgw_attachment()
        if attachment is None and not blackhole:
            raise _ec2_error("MissingParameter", "Either TransitGatewayAttachmentId or Blackhole must be specified.")
        table.routes[cidr] = _static_tgw_route(cidr, attachment, blackhole)
        return ActionResult({"Route": _public_tgw_route(table.routes[cidr])})

    def create_transit_gateway_route(self) -> ActionResult:
        """moto dropped the attachment from the route (TransitGatewayAttachments came back empty),
        silently replaced an existing route and failed with a 500 on an unknown table."""
        table = self._tgw_table()
        cidr = self._tgw_cidr()
        if cidr in table.routes:
            raise _ec2_error(
                "RouteAlreadyExists", f"Route {cidr} already exists in Transit Gateway Route Table {table.id}."
            )
        return self._put_tgw_route(table, cidr)

    def replace_transit_gateway_route(self) -> ActionResult:
        """Not implemented in moto."""
        table = self._tgw_table()
        cidr = self._tgw_cidr()
        if cidr not in table.routes:
            raise _ec2_error(
                "InvalidRoute.NotFound",
                f"No route with destination-cidr-block {cidr} in Transit Gateway Route Table {table.id}.",
            )
        return self._put_tgw_route(table, cidr)

    def delete_transit_gateway_route(self) -> ActionResult:
        """moto failed with a 500 on an unknown route or table."""
        table = self._tgw_table()
        cidr = self._tgw_cidr()
        route = table.routes.pop(cidr, None)
        if route is None:
            raise _ec2_error(
                "InvalidRoute.NotFound",
                f"No route with destination-cidr-block {cidr} in Transit Gateway Route Table {table.id}.",
            )
        deleted = {**_public_tgw_route(route), "State": "deleted"}
        return ActionResult({"Route": deleted})

    def _propagated_routes(self, table: Any) -> list[dict[str, Any]]:
        backend = self.ec2_backend
        routes: list[dict[str, Any]] = []
        for propagation in table.route_table_propagation:
            attachment = backend.transit_gateway_attachments.get(propagation.transitGatewayAttachmentId)
            if attachment is None or attachment.resource_type != "vpc" or attachment.state == "deleted":
                continue
            vpc = backend.vpcs.get(attachment.resource_id)
            if vpc is None:
                continue
            cidrs = [vpc.cidr_block] + [
                c["cidr_block"] for c in vpc.get_cidr_block_association_set() if c["cidr_block"] != vpc.cidr_block
            ]
            for cidr in cidrs:
                if cidr in table.routes:
                    continue  # a static route for the same prefix takes precedence
                routes.append(
                    {
                        "DestinationCidrBlock": cidr,
                        "TransitGatewayAttachments": [_tgw_attachment_ref(attachment)],
                        "Type": "propagated",
                        "State": "active",
                    }
                )
        return routes

    def search_transit_gateway_routes(self) -> ActionResult:
        """moto ignored the attachment.* and route-search.longest-prefix/subnet-of/supernet-of
        filters, returned no propagated routes, never set AdditionalRoutesAvailable."""
        table = self._tgw_table()
        routes = [_public_tgw_route(r) for r in table.routes.values()] + self._propagated_routes(table)
        # moto annotates filter values as str; they are lists of str.
        filters = cast(dict[str, list[str]], self._filters_from_querystring())

        def nets(values: list[str]) -> list[Any]:
            try:
                return [ipaddress.ip_network(v, strict=False) for v in values]
            except ValueError:
                raise _ec2_error("InvalidParameterValue", f"Invalid CIDR in filter values: {values}") from None

        def keep(route: dict[str, Any]) -> bool:
            dest = ipaddress.ip_network(route["DestinationCidrBlock"])
            atts = route.get("TransitGatewayAttachments", [])
            for name, values in filters.items():
                if name == "type" and route["Type"] not in values:
                    return False
                if name == "state" and route["State"] not in values:
                    return False
                if name == "route-search.exact-match" and not any(dest == n for n in nets(values)):
                    return False
                if name == "route-search.subnet-of-match" and not any(
                    dest.version == n.version and dest.subnet_of(n) for n in nets(values)
                ):
                    return False
                if name == "route-search.supernet-of-match" and not any(
                    dest.version == n.version and dest.supernet_of(n) for n in nets(values)
                ):
                    return False
                if name == "attachment.transit-gateway-attachment-id" and not any(
                    a["TransitGatewayAttachmentId"] in values for a in atts
                ):
                    return False
                if name == "attachment.resource-id" and not any(a["ResourceId"] in values for a in atts):
                    return False
                if name == "attachment.resource-type" and not any(a["ResourceType"] in values for a in atts):
                    return False
                if name not in {
                    "type",
                    "state",
                    "route-search.exact-match",
                    "route-search.subnet-of-match",
                    "route-search.supernet-of-match",
                    "route-search.longest-prefix-match",
                    "attachment.transit-gateway-attachment-id",
                    "attachment.resource-id",
                    "attachment.resource-type",
                }:
                    raise _ec2_error("InvalidParameterValue", f"The filter '{name}' is invalid")
            return True

        selected = [r for r in routes if keep(r)]
        if "route-search.longest-prefix-match" in filters:
            targets = nets(list(filters["route-search.longest-prefix-match"]))
            best: list[dict[str, Any]] = []
            for target in targets:
                covering = [
                    r
                    for r in selected
                    if ipaddress.ip_network(r["DestinationCidrBlock"]).version == target.version
                    and target.subnet_of(ipaddress.ip_network(r["DestinationCidrBlock"]))
                ]
                if covering:
                    best.append(max(covering, key=lambda r: ipaddress.ip_network(r["DestinationCidrBlock"]).prefixlen))
            selected = best
        selected.sort(key=lambda r: ipaddress.ip_network(r["DestinationCidrBlock"]))
        max_results = self._get_int_param("MaxResults")
        if max_results is not None and not 5 <= max_results <= 1000:
            raise _ec2_error(
                "InvalidParameterValue",
                f"Value ( {max_results} ) for parameter maxResults is invalid. Parameter must be between 5 and 1000.",
            )
        limit = max_results if max_results is not None else 1000
        return ActionResult({"Routes": selected[:limit], "AdditionalRoutesAvailable": len(selected) > limit})

    def create_transit_gateway_vpc_attachment(self) -> ActionResult:
        """AWS propagates a new attachment into the default propagation route table when the
        transit gateway has DefaultRouteTablePropagation enabled; moto did not."""
        result = super().create_transit_gateway_vpc_attachment()
        attachment = result.result["TransitGatewayVpcAttachment"]  # type: ignore[index]
        tgw = self.ec2_backend.transit_gateways[attachment.transit_gateway_id]
        options = tgw.options or {}
        table_id = options.get("PropagationDefaultRouteTableId")
        if options.get("DefaultRouteTablePropagation", "enable") == "enable" and table_id:
            self.ec2_backend.enable_transit_gateway_route_table_propagation(attachment.id, table_id)
        return result


#: The EC2 actions the middleware routes to :class:`ExtEC2Response` (all others go to moto).
OVERRIDDEN_ACTIONS = frozenset(
    {
        "DescribeRouteTables",
        "CreateRoute",
        "ReplaceRoute",
        "DescribeNetworkInterfaces",
        "CreateNetworkInterface",
        "RunInstances",
        "ModifyInstanceAttribute",
        "ModifyNetworkInterfaceAttribute",
        "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress",
        "DescribeSecurityGroups",
        "DescribeSecurityGroupRules",
        "DescribeVpcs",
        "DescribeSubnets",
        "CreateVpcEndpoint",
        "CreateTransitGatewayRoute",
        "ReplaceTransitGatewayRoute",
        "DeleteTransitGatewayRoute",
        "SearchTransitGatewayRoutes",
        "CreateTransitGatewayVpcAttachment",
    }
)

__all__ = ["OVERRIDDEN_ACTIONS", "ExtEC2Response"]
