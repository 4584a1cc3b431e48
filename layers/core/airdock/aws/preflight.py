"""What can be checked before an environment's services are touched: that its subnets are in the
deployment's VPC, and that the image of its Airflow version was pushed. Failures are
ProvisioningErrors saying what to fix."""
from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from airdock.core.errors import ProvisioningError
from airdock.core.models import Environment

_ECR_IMAGE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<repo>[^:@]+)$")


def subnets(ec2: Any, env: Environment) -> list[dict[str, Any]]:
    ids = list(env.NetworkConfiguration.SubnetIds)
    try:
        return list(ec2.describe_subnets(SubnetIds=ids)["Subnets"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
            raise ProvisioningError("INCOMPATIBLE_NETWORK",
                                    f"Subnets {ids} were not found: {exc.response['Error'].get('Message', '')}") from None
        raise


def subnet_cidrs(ec2: Any, env: Environment) -> list[str]:
    """The IPv4 and IPv6 ranges of the environment's subnets (where its tasks get addresses)."""
    cidrs: set[str] = set()
    for subnet in subnets(ec2, env):
        if subnet.get("CidrBlock"):
            cidrs.add(subnet["CidrBlock"])
        cidrs |= {a["Ipv6CidrBlock"] for a in subnet.get("Ipv6CidrBlockAssociationSet", [])
                  if a.get("Ipv6CidrBlock") and a.get("Ipv6CidrBlockState", {}).get("State", "associated") == "associated"}
    return sorted(cidrs)


def check_network(ec2: Any, env: Environment, vpc_id: str) -> None:
    found = subnets(ec2, env)
    vpcs = {s["VpcId"] for s in found}
    if vpcs != {vpc_id}:
        raise ProvisioningError(
            "INCOMPATIBLE_NETWORK",
            f"The subnets {list(env.NetworkConfiguration.SubnetIds)} must be in the VPC {vpc_id} this Airdock "
            f"deployment runs in (they are in {sorted(vpcs)}).",
        )


def check_image(ecr: Any, repository: str, env: Environment) -> None:
    match = _ECR_IMAGE.match(repository)
    if not match:
        return  # not ECR (e.g. a public registry): ECS reports a missing image itself
    try:
        ecr.describe_images(repositoryName=match["repo"], registryId=match["account"],
                            imageIds=[{"imageTag": env.AirflowVersion}])
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ImageNotFoundException", "RepositoryNotFoundException"):
            raise ProvisioningError(
                "IMAGE_NOT_FOUND",
                f"There is no image {repository}:{env.AirflowVersion}. Build images/airflow/Dockerfile with "
                f"--build-arg AIRFLOW_VERSION={env.AirflowVersion} and push it with that tag "
                "(README, 'Deploy to AWS').",
            ) from None
        raise
