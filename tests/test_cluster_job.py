"""``train.py`` on a real two-node Ray cluster on this machine, submitted through the job submission API.

Two ``ray start`` processes (a head and a worker node, each a raylet with its
own CPUs) form the cluster; the job runs ``train.py`` with the smoke preset and
two Monte Carlo rollout workers, which the SPREAD strategy places on both nodes.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SMALL
from ray_nodes import free_port, start_node, stop_nodes

from seqgan_rl.models.oracle import Oracle

ROOT = Path(__file__).resolve().parents[1]
@pytest.fixture()
def two_node_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, str]]]:
    """A head and a worker node as separate processes; yields the job server's address and auth headers.

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
                                object_store_bytes=150_000_000))
        yield address, headers
    finally:
        stop_nodes(nodes)


@pytest.mark.slow
def test_train_py_job_on_two_nodes_spreads_rollout_workers(two_node_cluster: tuple[str, dict[str, str]],
                                                           tmp_path: Path) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    address, headers = two_node_cluster
    client = JobSubmissionClient(address, headers=headers)
    deadline = time.monotonic() + 60
    while len([n for n in client._do_request("GET", "/nodes?view=summary").json()["data"]["summary"]
               if n["raylet"]["state"] == "ALIVE"]) < 2:
        assert time.monotonic() < deadline, "the worker node did not join"
        time.sleep(1)
    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    run_dir = tmp_path / "run"
    entrypoint = (f"cd {ROOT} && {sys.executable} train.py --preset smoke --oracle-params {tmp_path / 'small.npz'} "
                  f"--run-dir {run_dir} --batches 2 --num-mc-workers 2 --mc-worker-num-cpus 1 --device cpu "
                  "--no-progress")
    job = client.submit_job(entrypoint=entrypoint)
    deadline = time.monotonic() + 600
    while (status := client.get_job_status(job)) not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        assert time.monotonic() < deadline, "the job did not finish in 10 minutes"
        time.sleep(2)
    logs = client.get_job_logs(job)
    assert status == JobStatus.SUCCEEDED, logs[-4000:]
    summary = json.loads(logs.strip().splitlines()[-1])
    assert summary["adversarial_batches"] == 2
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [0, 1, 2]
    assert all(r["train/mc_worker_nodes"] == 2 for r in records[1:])  # rollout workers on both nodes
    assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["iteration"] == 2
    assert (run_dir / "generator.pt").is_file()
