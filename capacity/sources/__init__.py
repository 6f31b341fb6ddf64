"""Where samples come from: Docker discovery, cgroup and /proc readers, the stats API
fallback, the host through /proc (its totals each round) and psutil (its capacity), and
per-container disk usage.

The names are imported on first use (PEP 562, see :mod:`capacity._lazy`): importing a
submodule such as ``capacity.sources._limits`` runs this file, and must not pay for the docker
SDK (0.1 s) when no engine is asked, e.g. ``capacity report --demo``.
"""

from typing import TYPE_CHECKING

from .._lazy import attach

if TYPE_CHECKING:
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
    from ._docker import (
        DEFAULT_DOCKER_URL,
        connect,
        container_info,
        list_containers,
        service_of,
    )
    from ._docker_api import (
        StatsApiReader,
        counters_from_stats,
    )
    from ._host import (
        HostFacts,
        HostReader,
        host_facts,
    )
    from ._procnet import (
        NetDevCounters,
        net_namespace_inode,
        parse_net_dev,
        read_net_dev,
    )
    from ._types import (
        COMPOSE_PROJECT_LABEL,
        COMPOSE_SERVICE_LABEL,
        ContainerCounters,
        ContainerInfo,
        CounterReader,
        HostCounters,
    )

#: public name -> the private module that defines it, imported on first access
_LAZY = {
    "CgroupLocation": "._cgroup",
    "CgroupReader": "._cgroup",
    "cgroup_version": "._cgroup",
    "cgroupfs_readable": "._cgroup",
    "locate_cgroup": "._cgroup",
    "parse_proc_cgroup": "._cgroup",
    "DEFAULT_DISK_USAGE_INTERVAL_S": "._disk_usage",
    "DiskUsage": "._disk_usage",
    "disk_usage": "._disk_usage",
    "disk_usage_bytes": "._disk_usage",
    "tree_size_bytes": "._disk_usage",
    "DEFAULT_DOCKER_URL": "._docker",
    "connect": "._docker",
    "container_info": "._docker",
    "list_containers": "._docker",
    "service_of": "._docker",
    "StatsApiReader": "._docker_api",
    "counters_from_stats": "._docker_api",
    "HostFacts": "._host",
    "HostReader": "._host",
    "host_facts": "._host",
    "NetDevCounters": "._procnet",
    "net_namespace_inode": "._procnet",
    "parse_net_dev": "._procnet",
    "read_net_dev": "._procnet",
    "COMPOSE_PROJECT_LABEL": "._types",
    "COMPOSE_SERVICE_LABEL": "._types",
    "ContainerCounters": "._types",
    "ContainerInfo": "._types",
    "CounterReader": "._types",
    "HostCounters": "._types",
}

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


__getattr__, __dir__ = attach(__name__, _LAZY, globals())
