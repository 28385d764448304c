"""VPC over the environment's availability zones: public and private subnets, NAT per setting."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from kit.environments import NetworkSettings


@dataclass(frozen=True)
class NetworkArgs:
    name: str
    settings: NetworkSettings


def subnet_cidrs(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """(private, public) CIDRs, one of each per zone, cut from `cidr` in equal blocks."""
    network = ipaddress.ip_network(cidr)
    blocks = [str(block) for block in network.subnets(new_prefix=network.prefixlen + 3)]
    return blocks[:zones], blocks[zones : 2 * zones]


def vpc_only_firewall(
    resource_name: str,
    description: str,
    vpc_id: pulumi.Input[str],
    vpc_cidr: str,
    port: int,
    opts: pulumi.ResourceOptions,
) -> aws.ec2.SecurityGroup:
    """A security group that admits TCP on ``port`` from inside the VPC only (pods get VPC
    addresses from the VPC CNI), for the data stores."""
    return aws.ec2.SecurityGroup(
        resource_name,
        description=description,
        vpc_id=vpc_id,
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_blocks=[vpc_cidr],
                description="VPC",
            )
        ],
        opts=opts,
    )


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    cidr: str
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        zones = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOptions(parent=self))
        private_cidrs, public_cidrs = subnet_cidrs(settings.cidr, settings.availability_zones)

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=settings.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": args.name},
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": args.name}, opts=child)
        public_routes = aws.ec2.RouteTable(
            f"{name}-public", vpc_id=vpc.id, tags={"Name": f"{args.name}-public"}, opts=child
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_routes.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
            opts=child,
        )

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        for index in range(settings.availability_zones):
            zone = zones.names.apply(lambda names, i=index: names[i])
            public = aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=vpc.id,
                cidr_block=public_cidrs[index],
                availability_zone=zone,
                # Internet-facing load balancers (the Gateway's) land here; nodes never do.
                map_public_ip_on_launch=False,
                tags={"Name": f"{args.name}-public-{index}", "kubernetes.io/role/elb": "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}", subnet_id=public.id, route_table_id=public_routes.id, opts=child
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                cidr_block=private_cidrs[index],
                availability_zone=zone,
                tags={"Name": f"{args.name}-private-{index}", "kubernetes.io/role/internal-elb": "1"},
                opts=child,
            )
            public_subnets.append(public)
            private_subnets.append(private)

        # One NAT gateway (cheap, a single point of failure) or one per zone (each zone's egress
        # survives the loss of another zone).
        nat_count = 1 if settings.nat == "single" else settings.availability_zones
        nat_gateways = []
        for index in range(nat_count):
            address = aws.ec2.Eip(
                f"{name}-nat-{index}", domain="vpc", tags={"Name": f"{args.name}-nat-{index}"}, opts=child
            )
            nat_gateways.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{index}",
                    subnet_id=public_subnets[index].id,
                    allocation_id=address.allocation_id,
                    tags={"Name": f"{args.name}-nat-{index}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
                )
            )
        for index, private in enumerate(private_subnets):
            routes = aws.ec2.RouteTable(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                tags={"Name": f"{args.name}-private-{index}"},
                opts=child,
            )
            aws.ec2.Route(
                f"{name}-private-{index}-default",
                route_table_id=routes.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat_gateways[index % nat_count].id,
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}", subnet_id=private.id, route_table_id=routes.id, opts=child
            )

        self.vpc_id = vpc.id
        self.cidr = settings.cidr
        self.private_subnet_ids = [subnet.id for subnet in private_subnets]
        self.public_subnet_ids = [subnet.id for subnet in public_subnets]
        self.register_outputs({"vpcId": vpc.id, "privateSubnetIds": self.private_subnet_ids})
