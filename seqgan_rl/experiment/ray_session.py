"""Joining a Ray cluster or starting a local Ray for a run, and refusing runs that cannot start."""

from __future__ import annotations

import json
import logging
import os
import socket
from typing import Any

from seqgan_rl.errors import ConfigError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
"""How long the cluster address may take to accept a TCP connection before ``train`` gives up."""


def check_reachable(address: str) -> None:
    """Fail in seconds on a cluster address that nothing answers at.

    ``ray.init(address=...)`` retries a dead address for many minutes (Ray
    2.60: 20 attempts of ~40 s each), logging warnings but raising nothing, so
    a typo in ``--address`` would look like a hang. A plain TCP connection to
    the GCS port (or the Ray Client port of a ``ray://`` address) says at once
    whether anything listens there. ``auto`` (the cluster this machine last
    started) is left to Ray.
    """
    if address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"Ray address {address!r} is not HOST:PORT (or ray://HOST:PORT)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {reason} (is `ray start --head` running "
                          "there, and the port open?)") from None


def cluster_address(address: str | None) -> str | None:
    """The cluster to join: ``address``, else ``RAY_ADDRESS``, else ``None`` (a local Ray, also for "local")."""
    cluster = address or os.environ.get("RAY_ADDRESS")
    return None if cluster in (None, "", "local") else cluster


def connect_ray(address: str | None, num_cpus: int | None) -> bool:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), else start a local Ray. True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    cluster = cluster_address(address)
    if cluster is not None:
        check_reachable(cluster)  # again: the MLE phase before this may have taken hours
        try:
            ray.init(address=cluster, log_to_driver=False)
        except (ConnectionError, RuntimeError) as error:  # RuntimeError: "Failed to connect to GCS"
            first_line = next(iter(str(error).strip().splitlines()), type(error).__name__)
            raise ConfigError(f"cannot join the Ray cluster at {cluster!r}: {first_line}") from None
        return False
    # address="local": always a new local instance, never a stale cluster another process left behind
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return True


RESOURCE_UNIT = 1e-4
"""Ray counts fractional resources in units of 1/10,000: ``4 * 0.2 + 0.2`` GPUs fit one GPU."""

Demand = list[tuple[str, dict[str, float]]]
"""The actors a run starts, each as (what it is, its Ray resources {"CPU": x, "GPU": y})."""


def run_actors(algo_config: Any) -> tuple[int, Demand]:
    """The rollout workers' count and every actor of a run with its resources: the discriminator actor
    (none with a fixed reward model) and the K Monte Carlo rollout workers (the EnvRunner and the
    Learner run in the driver process)."""
    from seqgan_rl.rllib.adversarial import seqgan_settings

    settings = seqgan_settings(algo_config)
    resources = settings.options.resources
    workers = 0 if settings.reward == "terminal" else resources.num_mc_workers
    worker = ("a rollout worker", {"CPU": resources.mc_worker_num_cpus, "GPU": resources.mc_worker_num_gpus})
    discriminator = [("the discriminator actor", {"CPU": resources.discriminator_num_cpus,
                                                  "GPU": resources.discriminator_num_gpus})]
    return workers, [*(discriminator if settings.uses_discriminator else []), *[worker] * workers]


def _total(actors: Demand, name: str) -> float:
    return round(sum(resources[name] for _, resources in actors), 4)


def _exceeds(need: float, have: float) -> bool:
    return need > have + RESOURCE_UNIT / 2


def local_ray_resources(num_cpus: int | None) -> dict[str, float] | None:
    """The CPUs and GPUs a local Ray started here with ``num_cpus`` would have, without starting it.

    Ray resolves a new node's resources with its ``ResourceAndLabelSpec``
    (the container-aware CPU count, the GPUs that ``CUDA_VISIBLE_DEVICES``
    leaves visible); asking it the same way takes a fraction of a second
    where starting a Ray takes seconds, so a run that cannot fit is refused
    before any. ``None`` if this Ray cannot say (its private API moved): the
    check then runs on the started Ray (``preflight.check_resources``).
    """
    try:
        from ray._private.resource_and_label_spec import ResourceAndLabelSpec

        spec = ResourceAndLabelSpec(num_cpus=num_cpus).resolve(is_head=True, node_ip_address="127.0.0.1")
        resources = spec.to_resource_dict()
    except Exception:  # noqa: BLE001 (any failure of a private API means: ask the started Ray instead)
        return None
    return {"CPU": float(resources.get("CPU", 0.0)), "GPU": float(resources.get("GPU", 0.0))}


def check_local_resources(algo_config: Any, have: dict[str, float] | None = None) -> None:
    """Refuse a run whose actors cannot all start on the local Ray we start (``have``: its resources, by
    default those of the started Ray).

    Ray waits forever for resources a cluster lacks (an autoscaler may add
    them); on a local Ray nothing will, so an actor asking for more CPUs or
    GPUs than it has would hang the run without a word. Counted: the
    discriminator actor and the K Monte Carlo rollout workers (``run_actors``),
    a lower bound of what is needed.
    """
    import ray

    workers, actors = run_actors(algo_config)
    have = ray.cluster_resources() if have is None else have
    short = [f"{_total(actors, name):g} {name}s (it has {have.get(name, 0.0):g})" for name in ("CPU", "GPU")
             if _exceeds(_total(actors, name), have.get(name, 0.0))]
    if short:
        raise ConfigError(
            f"the local Ray cannot start this run's actors (the discriminator and {workers} rollout worker(s)): "
            f"they need {' and '.join(short)}; lower --num-mc-workers, --mc-worker-num-cpus, --mc-worker-num-gpus "
            "or --discriminator-num-gpus, or raise --num-cpus")


def report_can_add_nodes(status: dict[str, Any]) -> bool | None:
    """Whether the autoscaler that wrote ``status`` can add nodes: False, True, or None when it does not say.

    Every Ray head runs the autoscaler's monitor, which reports the type of
    each node (Ray 2.60's autoscaler v1, ``ray status``). Without a cluster
    config (``ray start --head`` alone, no ``--autoscaling-config``) it
    mirrors the nodes that joined, each as a type of its own,
    ``node_<node id>``, and never adds one; with one (``ray up``, KubeRay) the
    nodes carry the config's types (``head``, ``gpu_rollout``).
    """
    from ray.autoscaler._private.util import format_readonly_node_type

    node_types = (status.get("autoscaler_report") or {}).get("node_type_mapping") or {}
    if not node_types:
        return None
    return any(kind != format_readonly_node_type(node) for node, kind in node_types.items())


def autoscaler_can_add_nodes() -> bool | None:
    """``report_can_add_nodes`` of the joined cluster's latest autoscaler report (in the GCS's key-value
    store); None where there is none: an autoscaler v2, or a monitor that has not reported yet."""
    from ray._private.ray_constants import DEBUG_AUTOSCALING_STATUS
    from ray.experimental.internal_kv import _internal_kv_get

    raw = _internal_kv_get(DEBUG_AUTOSCALING_STATUS)
    return report_can_add_nodes(json.loads(raw)) if raw else None


def cluster_shortfall(actors: Demand, nodes: list[dict[str, float]]) -> list[str]:
    """What keeps ``actors`` from ever fitting on ``nodes`` (each node's total resources), in words.

    Two necessary conditions: the actors' sum of each resource within the
    nodes' sum, and each actor within the largest node (an actor's resources
    come from one node). Empty when both hold (a tighter packing may still
    fail: that is left to Ray's scheduler).
    """
    problems = []
    for name in ("CPU", "GPU"):
        need, have = _total(actors, name), round(sum(node.get(name, 0.0) for node in nodes), 4)
        if _exceeds(need, have):
            problems.append(f"they need {need:g} {name}s and its {len(nodes)} node(s) have {have:g}")
        largest = max((node.get(name, 0.0) for node in nodes), default=0.0)
        for what, resources in dict(actors).items():
            if _exceeds(resources[name], largest):
                problems.append(f"{what} needs {resources[name]:g} {name}s and no node has more than {largest:g}")
    return problems


def check_cluster_resources(algo_config: Any) -> None:
    """Refuse a run on a joined cluster that can never hold its actors, warn when they wait for nodes.

    A cluster whose autoscaler can add nodes (``cluster/cluster.yaml``,
    KubeRay) starts actors that do not fit yet as soon as it has added them,
    up to its ``max_workers`` / ``maxReplicas``, which are not visible from
    here: a warning says what is missing. A cluster of ``ray start`` nodes
    never grows: a run whose actors do not fit its nodes would wait forever,
    so it is refused with what they need and what the nodes have. Counted:
    the nodes' whole capacity, not what other jobs hold now.
    """
    import ray

    workers, actors = run_actors(algo_config)
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    problems = cluster_shortfall(actors, nodes)
    if not problems:
        return
    what = f"this run's actors (the discriminator and {workers} rollout worker(s))"
    if autoscaler_can_add_nodes() is False:
        raise ConfigError(
            f"the Ray cluster can never start {what}: {'; '.join(problems)}, and no autoscaler can add nodes (its "
            "nodes were started with `ray start`, without --autoscaling-config); lower --num-mc-workers, "
            "--mc-worker-num-cpus, --mc-worker-num-gpus or --discriminator-num-gpus, or add nodes")
    logger.warning("the Ray cluster cannot start %s yet: %s; they wait until its autoscaler adds nodes (if it "
                   "cannot, the run waits for ever: stop it and lower --num-mc-workers, --mc-worker-num-gpus or "
                   "--discriminator-num-gpus)", what, "; ".join(problems))
