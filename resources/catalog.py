"""Catalogs clients discover valid values from: AWS region codes and instance types."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    code: str
    name: str


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mb: int

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]


REGIONS: dict[str, Region] = {
    region.code: region
    for region in (
        Region("us-east-1", "US East (N. Virginia)"),
        Region("us-east-2", "US East (Ohio)"),
        Region("us-west-1", "US West (N. California)"),
        Region("us-west-2", "US West (Oregon)"),
        Region("ca-central-1", "Canada (Central)"),
        Region("sa-east-1", "South America (São Paulo)"),
        Region("eu-west-1", "Europe (Ireland)"),
        Region("eu-west-2", "Europe (London)"),
        Region("eu-west-3", "Europe (Paris)"),
        Region("eu-central-1", "Europe (Frankfurt)"),
        Region("eu-north-1", "Europe (Stockholm)"),
        Region("eu-south-1", "Europe (Milan)"),
        Region("ap-south-1", "Asia Pacific (Mumbai)"),
        Region("ap-northeast-1", "Asia Pacific (Tokyo)"),
        Region("ap-northeast-2", "Asia Pacific (Seoul)"),
        Region("ap-southeast-1", "Asia Pacific (Singapore)"),
        Region("ap-southeast-2", "Asia Pacific (Sydney)"),
        Region("me-south-1", "Middle East (Bahrain)"),
        Region("af-south-1", "Africa (Cape Town)"),
    )
}

INSTANCE_TYPES: dict[str, InstanceType] = {
    kind.name: kind
    for kind in (
        InstanceType("t2.nano", 1, 512),
        InstanceType("t2.micro", 1, 1024),
        InstanceType("t2.small", 1, 2048),
        InstanceType("t2.medium", 2, 4096),
        InstanceType("t2.large", 2, 8192),
        InstanceType("t2.xlarge", 4, 16384),
        InstanceType("t2.2xlarge", 8, 32768),
        InstanceType("t3.nano", 2, 512),
        InstanceType("t3.micro", 2, 1024),
        InstanceType("t3.small", 2, 2048),
        InstanceType("t3.medium", 2, 4096),
        InstanceType("t3.large", 2, 8192),
        InstanceType("t3.xlarge", 4, 16384),
        InstanceType("t3.2xlarge", 8, 32768),
        InstanceType("m5.large", 2, 8192),
        InstanceType("m5.xlarge", 4, 16384),
        InstanceType("m5.2xlarge", 8, 32768),
        InstanceType("m5.4xlarge", 16, 65536),
        InstanceType("m5.8xlarge", 32, 131072),
        InstanceType("m5.12xlarge", 48, 196608),
        InstanceType("m5.16xlarge", 64, 262144),
        InstanceType("m5.24xlarge", 96, 393216),
        InstanceType("c5.large", 2, 4096),
        InstanceType("c5.xlarge", 4, 8192),
        InstanceType("c5.2xlarge", 8, 16384),
        InstanceType("c5.4xlarge", 16, 32768),
        InstanceType("c5.9xlarge", 36, 73728),
        InstanceType("c5.12xlarge", 48, 98304),
        InstanceType("c5.18xlarge", 72, 147456),
        InstanceType("c5.24xlarge", 96, 196608),
    )
}
