"""``capacity verify``: run real replicas in a sandbox cgroup sized like the target machine.

The sandbox (:class:`Sandbox`) is a parent cgroup with the target's CPU quota and memory
limit; :func:`measure` ramps the replica count in it and :func:`verify` compares the measured
capacity with the count the collector, profile model and solver predict.
"""

from ._predict import collect_profile, predict, predict_from_profiles
from ._probe import CommandProbe, HttpProbe, Probe, ProbeResult
from ._ramp import DEFAULT_MAX_THROTTLED, measure, verify
from ._result import VERIFY_SCHEMA_VERSION, MethodPrediction, Prediction, Step, VerifyResult
from ._sandbox import (
    SANDBOX_LABEL,
    SANDBOX_PREFIX,
    Sandbox,
    SandboxCounters,
    SandboxError,
    host_limits,
    leftover_sandboxes,
)
from ._workload import VERIFY_LABEL, ContainerState, Replicas, Workload

__all__ = [
    "DEFAULT_MAX_THROTTLED",
    "SANDBOX_LABEL",
    "SANDBOX_PREFIX",
    "VERIFY_LABEL",
    "VERIFY_SCHEMA_VERSION",
    "CommandProbe",
    "ContainerState",
    "HttpProbe",
    "MethodPrediction",
    "Prediction",
    "Probe",
    "ProbeResult",
    "Replicas",
    "Sandbox",
    "SandboxCounters",
    "SandboxError",
    "Step",
    "VerifyResult",
    "Workload",
    "collect_profile",
    "host_limits",
    "leftover_sandboxes",
    "measure",
    "predict",
    "predict_from_profiles",
    "verify",
]
