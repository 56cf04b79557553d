"""Joining a Ray cluster or starting a local Ray for a run, and refusing runs that cannot start."""

from __future__ import annotations

import os
import socket
from typing import Any

from seqgan_rl.errors import ConfigError

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


def check_local_resources(algo_config: Any) -> None:
    """Refuse a run whose actors cannot all start on the local Ray we started.

    Ray waits forever for resources a cluster lacks (an autoscaler may add
    them); on a local Ray nothing will, so an actor asking for more CPUs or
    GPUs than it has would hang the run without a word. Counted: the
    discriminator actor and the K Monte Carlo rollout workers (the EnvRunner
    and the Learner run in this process), a lower bound of what is needed.
    """
    import ray

    from seqgan_rl.rllib.adversarial import seqgan_settings

    settings = seqgan_settings(algo_config)
    options = settings.options
    workers = 0 if settings.reward == "terminal" else options.num_mc_workers
    need = {"CPU": options.discriminator_num_cpus + workers * options.mc_worker_num_cpus,
            "GPU": options.discriminator_num_gpus + workers * options.mc_worker_num_gpus}
    have = ray.cluster_resources()
    short = [f"{amount:g} {name}s (it has {have.get(name, 0.0):g})" for name, amount in need.items()
             if amount > have.get(name, 0.0)]
    if short:
        raise ConfigError(
            f"the local Ray cannot start this run's actors (the discriminator and {workers} rollout worker(s)): "
            f"they need {' and '.join(short)}; lower --num-mc-workers, --mc-worker-num-cpus, --mc-worker-num-gpus "
            "or --discriminator-num-gpus, or raise --num-cpus")
