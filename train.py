"""SeqGAN training on a Ray cluster: the script for ``ray submit`` and ``ray job submit``.

    ray submit cluster/cluster.yaml train.py -- --preset paper --num-mc-workers 4 --mc-worker-num-gpus 0.25
    ray job submit --address http://HEAD:8265 --working-dir . -- python train.py --preset paper ...

It takes the same options as ``seqgan-rl train`` (``python train.py --help``).
Without ``--address`` it joins the Ray cluster running on this machine or
named by ``RAY_ADDRESS`` (what ``ray submit`` and job submission give it), and
only starts a local Ray when there is none. Monte Carlo rollout workers are
Ray actors placed by their resources (``--mc-worker-num-cpus`` /
``--mc-worker-num-gpus``) with Ray's SPREAD strategy, so they go to different
nodes when the cluster has several; the discriminator actor takes
``--discriminator-num-gpus``.
"""

from __future__ import annotations

import sys


def join_running_cluster(argv: list[str]) -> None:
    """Connect to an existing Ray cluster (``address="auto"``) unless ``--address`` is given."""
    import ray

    if any(arg == "--address" or arg.startswith("--address=") for arg in argv) or ray.is_initialized():
        return
    try:
        ray.init(address="auto", log_to_driver=False)
    except ConnectionError:
        pass  # no cluster: `seqgan-rl train` starts a local one


def main(argv: list[str]) -> int:
    from seqgan_rl.commands.cli import main as cli_main

    if "-h" not in argv and "--help" not in argv:
        join_running_cluster(argv)
    return cli_main(["train", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
