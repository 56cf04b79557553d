"""Real Ray nodes for the multi-node tests: each ``ray start --block`` is a child process of the test.

Terminating the process stops exactly that node (unlike ``ray stop``, which would also stop a Ray
that another test or program runs on this machine). Every node gets its own free ports for the
agents that Ray would otherwise give the same default ports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_node(args: list[str], log: Path, *, object_store_bytes: int = 100_000_000,
               own_session: bool = False) -> subprocess.Popen:
    """``ray start --block ARGS`` on 127.0.0.1, its output to ``log`` (``RAY_AUTH_*`` from the environment).

    ``own_session``: the node's processes (its raylet, its workers and actors) in a process group of their
    own, so ``lose_node`` can kill them all at once, as a machine that goes away."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats",
                             f"--object-store-memory={object_store_bytes}", "--node-ip-address=127.0.0.1",
                             f"--dashboard-agent-listen-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
                             f"--metrics-export-port={free_port()}", *args],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=own_session)


def lose_node(node: subprocess.Popen) -> None:
    """SIGKILL every process of a node started with ``own_session``: no goodbye to the cluster."""
    os.killpg(node.pid, signal.SIGKILL)
    node.wait(timeout=60)


def stop_nodes(nodes: Iterable[subprocess.Popen]) -> None:
    """Terminate the nodes (workers before the head), killing any that has not exited within 60 s."""
    nodes = list(nodes)
    for node in reversed(nodes):
        node.terminate()
    for node in nodes:
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            node.kill()
