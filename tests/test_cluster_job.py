"""``train.py`` on a real two-node Ray cluster on this machine, submitted through the job submission API.

Two ``ray start`` processes (a head and a worker node, each a raylet with its
own CPUs) form the cluster; the job runs ``train.py`` with the smoke preset and
two Monte Carlo rollout workers, which the SPREAD strategy places on both nodes.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SMALL
from ray_nodes import free_port, lose_node, start_node, stop_nodes

from seqgan_rl.models.oracle import Oracle

ROOT = Path(__file__).resolve().parents[1]
@pytest.fixture()
def two_node_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                     ) -> Iterator[tuple[str, dict[str, str], subprocess.Popen]]:
    """A head and a worker node as separate processes; yields the job server's address, the auth headers
    and the worker node's ``ray start`` (in a session of its own: ``lose_node`` kills the whole node).

    Ray 2.60 clusters require token authentication by default: the nodes get a
    fresh token through ``RAY_AUTH_TOKEN``, as the nodes of a real cluster do,
    and the client sends it explicitly (this process may already hold the token
    of the tests' local Ray).
    """
    token = secrets.token_hex(32)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", token)
    headers = {"Authorization": f"Bearer {token}"}
    gcs, dashboard = free_port(), free_port()
    nodes = [start_node(["--head", "--num-cpus=2", f"--port={gcs}", "--include-dashboard=true",
                         f"--dashboard-port={dashboard}", "--dashboard-host=127.0.0.1",
                         f"--ray-client-server-port={free_port()}"], tmp_path / "head.log",
                        object_store_bytes=150_000_000)]
    try:
        address = f"http://127.0.0.1:{dashboard}"
        from ray.job_submission import JobSubmissionClient

        deadline = time.monotonic() + 120
        while True:
            try:
                JobSubmissionClient(address, headers=headers).list_jobs()
                break
            except Exception:
                if time.monotonic() > deadline or nodes[0].poll() is not None:
                    pytest.fail(f"the head node did not come up:\n{(tmp_path / 'head.log').read_text()[-3000:]}")
                time.sleep(1)
        nodes.append(start_node(["--address", f"127.0.0.1:{gcs}", "--num-cpus=2"], tmp_path / "worker.log",
                                object_store_bytes=150_000_000, own_session=True))
        yield address, headers, nodes[1]
    finally:
        stop_nodes(nodes)


@pytest.mark.slow
def test_train_py_job_on_two_nodes_spreads_rollout_workers_and_survives_losing_one(
        two_node_cluster: tuple[str, dict[str, str], subprocess.Popen], tmp_path: Path) -> None:
    """The job's rollout workers go to both nodes; after the first batch every process of the worker node is
    killed with SIGKILL (its raylet, its rollout worker, its actors), and the run goes on on the head to its
    end: the lost actors are replaced there (it has room: 0.5 CPU per rollout worker)."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    address, headers, worker_node = two_node_cluster
    client = JobSubmissionClient(address, headers=headers)
    deadline = time.monotonic() + 60
    while len([n for n in client._do_request("GET", "/nodes?view=summary").json()["data"]["summary"]
               if n["raylet"]["state"] == "ALIVE"]) < 2:
        assert time.monotonic() < deadline, "the worker node did not join"
        time.sleep(1)
    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    run_dir = tmp_path / "run"
    entrypoint = (f"cd {ROOT} && {sys.executable} train.py --preset smoke --oracle-params {tmp_path / 'small.npz'} "
                  f"--run-dir {run_dir} --batches 3 --checkpoint-every 1 --num-mc-workers 2 --mc-worker-num-cpus 0.5 "
                  "--device cpu --no-progress")
    job = client.submit_job(entrypoint=entrypoint)
    deadline = time.monotonic() + 600
    metrics = run_dir / "metrics.jsonl"
    while (status := client.get_job_status(job)) not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        assert time.monotonic() < deadline, "the job did not finish in 10 minutes"
        if worker_node.poll() is None and metrics.is_file() and '"iteration": 1' in metrics.read_text():
            lose_node(worker_node)
        time.sleep(0.2)
    assert worker_node.poll() is not None, "the job ended before the worker node could be lost"
    logs = client.get_job_logs(job)
    assert status == JobStatus.SUCCEEDED, logs[-4000:]
    summary = json.loads(logs.strip().splitlines()[-1])
    assert summary["adversarial_batches"] == 3
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["iteration"] for r in records] == [0, 1, 2, 3]
    assert records[1]["train/mc_worker_nodes"] == 2  # rollout workers on both nodes
    last = records[-1]
    replaced = last["train/mc_worker_restarts"] + last.get("train/discriminator_restarts", 0.0)
    assert replaced >= 1, [(r["iteration"], r.get("train/mc_worker_restarts")) for r in records]
    assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["iteration"] == 3
    assert (run_dir / "generator.pt").is_file()
