"""Where samples come from: Docker discovery, cgroup and /proc readers, the stats API
fallback, the host through /proc (its totals each round) and psutil (its capacity), and
per-container disk usage."""

from ._cgroup import (
    CgroupLocation,
    CgroupReader,
    cgroup_version,
    cgroupfs_readable,
    locate_cgroup,
    parse_proc_cgroup,
)
from ._disk_usage import (
    DEFAULT_DISK_USAGE_INTERVAL_S,
    DiskUsage,
    disk_usage,
    disk_usage_bytes,
    tree_size_bytes,
)
from ._docker import DEFAULT_DOCKER_URL, connect, container_info, list_containers, service_of
from ._docker_api import StatsApiReader, counters_from_stats
from ._host import HostFacts, HostReader, host_facts
from ._procnet import NetDevCounters, net_namespace_inode, parse_net_dev, read_net_dev
from ._types import (
    COMPOSE_PROJECT_LABEL,
    COMPOSE_SERVICE_LABEL,
    ContainerCounters,
    ContainerInfo,
    CounterReader,
    HostCounters,
)

__all__ = [
    "COMPOSE_PROJECT_LABEL",
    "COMPOSE_SERVICE_LABEL",
    "DEFAULT_DISK_USAGE_INTERVAL_S",
    "DEFAULT_DOCKER_URL",
    "CgroupLocation",
    "CgroupReader",
    "ContainerCounters",
    "ContainerInfo",
    "CounterReader",
    "DiskUsage",
    "HostCounters",
    "HostFacts",
    "HostReader",
    "NetDevCounters",
    "StatsApiReader",
    "cgroup_version",
    "cgroupfs_readable",
    "connect",
    "container_info",
    "counters_from_stats",
    "disk_usage",
    "disk_usage_bytes",
    "host_facts",
    "list_containers",
    "locate_cgroup",
    "net_namespace_inode",
    "parse_net_dev",
    "parse_proc_cgroup",
    "read_net_dev",
    "service_of",
    "tree_size_bytes",
]
