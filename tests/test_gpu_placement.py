"""GPU placement, proven on a simulated GPU cluster, and the cluster files checked against the train commands.

Ray accepts logical GPUs on machines without one (``ray start --num-gpus 3``):
it places actors by them and gives each actor its GPU ids
(``CUDA_VISIBLE_DEVICES``) exactly as on a real GPU node; only torch finds no
CUDA there. A head offering no GPU and two such "GPU" worker nodes, each a
real ``ray start --block`` process (as ``test_cluster_job.py``), run
``train.py`` as a job; Ray's state API then says where each actor ran (its
node, its resources, and its ``repr``, which names its Ray GPUs and torch
device) and each actor's own log holds its warnings.

Three GPUs per worker node: the job's driver holds one (``--entrypoint-num-gpus
1``, for the Learner), the discriminator actor one, the four rollout workers two
(0.5 each), and whichever node the scheduler gives the driver and the
discriminator, each node keeps a GPU for two of the rollout workers.
"""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from conftest import SMALL
from ray_nodes import free_port, start_node, stop_nodes

from seqgan_rl.commands.cli import build_parser
from seqgan_rl.config import TrainConfig, get_train_preset
from seqgan_rl.config.options import option_overrides
from seqgan_rl.models.oracle import Oracle

ROOT = Path(__file__).resolve().parents[1]
GPUS_PER_NODE = 3
FALLBACK = "holds Ray GPU(s)"
"""Start of the warning of an actor that holds a GPU torch cannot use (``seqgan_rl.distributed.devices``)."""


@dataclass(frozen=True)
class JobRun:
    """A finished job: its status, its driver's job id (its actors'), its submission id and its logs."""

    status: str
    job_id: str
    submission_id: str
    logs: str


@dataclass
class GpuCluster:
    """The running simulated cluster: its job server, GCS and nodes."""

    dashboard: str
    gcs: str
    headers: dict[str, str]
    head_id: str
    worker_ids: set[str]
    tmp: Path

    def client(self) -> Any:
        from ray.job_submission import JobSubmissionClient

        return JobSubmissionClient(self.dashboard, headers=self.headers)

    def run_job(self, args: str, *, timeout_s: float, **submit: Any) -> JobRun:
        """Submit ``train.py ARGS`` and wait for its end."""
        from ray.job_submission import JobStatus

        client = self.client()
        entrypoint = f"cd {ROOT} && {sys.executable} train.py {args}"
        submission = client.submit_job(entrypoint=entrypoint, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
                                       **submit)
        deadline = time.monotonic() + timeout_s
        while (status := client.get_job_status(submission)) not in {JobStatus.SUCCEEDED, JobStatus.FAILED,
                                                                    JobStatus.STOPPED}:
            assert time.monotonic() < deadline, f"the job did not end in {timeout_s:g} s"
            time.sleep(1)
        return JobRun(status, client.get_job_info(submission).job_id, submission, client.get_job_logs(submission))


STATE_API = """
import dataclasses, json, sys
from ray.util import state
kind, kwargs = sys.argv[1], json.loads(sys.argv[2])
if "filters" in kwargs:
    kwargs["filters"] = [tuple(f) for f in kwargs["filters"]]
result = getattr(state, kind)(**kwargs)
print(json.dumps("".join(result) if kind == "get_log" else [dataclasses.asdict(item) for item in result], default=str))
"""


def state_api(cluster: GpuCluster, kind: str, **kwargs: Any) -> Any:
    """``ray.util.state.<kind>(**kwargs)`` against the test cluster, in a fresh process with its token.

    Not in this process: Ray caches the token of the first cluster it talked to (the local Ray of
    other tests), and a later call with another token fails authentication."""
    token = cluster.headers["Authorization"].removeprefix("Bearer ")
    result = subprocess.run([sys.executable, "-c", STATE_API, kind, json.dumps(kwargs)], capture_output=True,
                            text=True, timeout=120,
                            env={**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
    if result.returncode != 0:
        raise RuntimeError(f"ray.util.state.{kind} failed: {result.stderr[-2000:]}")
    data = json.loads(result.stdout.splitlines()[-1])
    return data if kind == "get_log" else [SimpleNamespace(**item) for item in data]


def wait_for_nodes(cluster: GpuCluster, count: int, nodes: list[subprocess.Popen]) -> list[Any]:
    deadline = time.monotonic() + 120
    while True:
        try:
            alive = [n for n in state_api(cluster, "list_nodes", address=cluster.dashboard, detail=True)
                     if n.state == "ALIVE"]
            if len(alive) == count:
                return alive
        except Exception:  # the head's state API is not up yet
            pass
        if time.monotonic() > deadline or any(node.poll() is not None for node in nodes):
            logs = "\n".join(p.read_text()[-1500:] for p in sorted(cluster.tmp.glob("*.log")))
            pytest.fail(f"the cluster did not come up with {count} nodes:\n{logs}")
        time.sleep(1)


@pytest.fixture(scope="module")
def gpu_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpuCluster]:
    """A head with 1 CPU and no GPU, two worker nodes with 4 CPUs and 3 logical GPUs each; token auth
    (Ray 2.60's default) with a fresh token, as ``test_cluster_job.py``."""
    tmp = tmp_path_factory.mktemp("gpu_cluster")
    token = secrets.token_hex(32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "token")
        patch.setenv("RAY_AUTH_TOKEN", token)
        gcs, dashboard = free_port(), free_port()
        nodes = [start_node(["--head", "--num-cpus=1", "--num-gpus=0", f"--port={gcs}", "--include-dashboard=true",
                             f"--dashboard-port={dashboard}", "--dashboard-host=127.0.0.1",
                             f"--ray-client-server-port={free_port()}"], tmp / "head.log")]
        try:
            cluster = GpuCluster(f"http://127.0.0.1:{dashboard}", f"127.0.0.1:{gcs}",
                                 {"Authorization": f"Bearer {token}"}, "", set(), tmp)
            (head,) = wait_for_nodes(cluster, 1, nodes)
            for i in range(2):  # one at a time: nodes starting together may pick the same free port
                nodes.append(start_node(["--address", cluster.gcs, "--num-cpus=4", f"--num-gpus={GPUS_PER_NODE}"],
                                        tmp / f"worker{i}.log"))
                alive = wait_for_nodes(cluster, 2 + i, nodes)
            cluster.head_id = head.node_id
            cluster.worker_ids = {n.node_id for n in alive} - {head.node_id}
            yield cluster
        finally:
            stop_nodes(nodes)


def placement(actor: Any) -> tuple[str, list[str]]:
    """(torch device, Ray GPU ids) from an actor's repr, ``Name(device=cpu, ray_gpus=['0'])``."""
    match = re.fullmatch(r"\w+\(device=(\S+), ray_gpus=(\[.*\]|None)\)", actor.repr_name or "")
    assert match, f"{actor.class_name} {actor.actor_id}: unexpected repr {actor.repr_name!r}"
    return match.group(1), ast.literal_eval(match.group(2)) or []


def warnings_in_log(cluster: GpuCluster, actor: Any) -> list[str]:
    """The fallback warnings in the actor's stderr (its worker's log file, read through the state API)."""
    lines = state_api(cluster, "get_log", address=cluster.gcs, actor_id=actor.actor_id, suffix="err",
                      tail=-1).splitlines()
    return [line for line in lines if FALLBACK in line]


@pytest.mark.slow
def test_train_job_places_actors_on_logical_gpus_and_falls_back_to_cpu(gpu_cluster: GpuCluster,
                                                                       tmp_path: Path) -> None:
    from ray.job_submission import JobStatus

    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    run_dir = tmp_path / "run"
    job = gpu_cluster.run_job(
        f"--preset smoke --batches 1 --oracle-params {tmp_path / 'small.npz'} --run-dir {run_dir} "
        "--num-mc-workers 4 --mc-worker-num-gpus 0.5 --discriminator-num-gpus 1 --learner-num-gpus 1 --no-progress",
        timeout_s=400, entrypoint_num_gpus=1)
    assert job.status == JobStatus.SUCCEEDED, job.logs[-4000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [0, 1] and records[1]["train/mc_worker_nodes"] == 2

    actors = state_api(gpu_cluster, "list_actors", address=gpu_cluster.dashboard, detail=True, limit=1000,
                       filters=[("job_id", "=", job.job_id)], raise_on_missing_output=False)
    workers = [a for a in actors if a.class_name == "MonteCarloWorker"]
    (disc,) = [a for a in actors if a.class_name == "DiscriminatorActor"]
    assert len(workers) == 4 and len(actors) == 5, [a.class_name for a in actors]
    assert all(w.required_resources == {"CPU": 1.0, "GPU": 0.5} for w in workers)
    assert disc.required_resources == {"CPU": 1.0, "GPU": 1.0}
    # two rollout workers per logical GPU, on both GPU nodes; the discriminator alone on a GPU of its own
    shares = Counter((w.node_id, gpu) for w in workers for gpu in placement(w)[1])
    assert sorted(shares.values()) == [2, 2] and {node for node, _ in shares} == gpu_cluster.worker_ids
    (disc_gpu,) = placement(disc)[1]
    assert (disc.node_id, disc_gpu) not in shares
    # no actor on the head, which offers no GPU; every actor on the CPU, with one warning naming its GPU
    assert all(a.node_id in gpu_cluster.worker_ids for a in actors)
    for actor in actors:
        device, gpus = placement(actor)
        assert device == "cpu"
        (warning,) = warnings_in_log(gpu_cluster, actor)
        assert f"{FALLBACK} {gpus}" in warning and "torch sees no CUDA device" in warning

    # the driver (the Learner) held the entrypoint's GPU on a GPU node, and fell back once
    (supervisor,) = state_api(gpu_cluster, "list_actors", address=gpu_cluster.dashboard, detail=True,
                              raise_on_missing_output=False,
                              filters=[("name", "=", f"_ray_internal_job_actor_{job.submission_id}")])
    assert supervisor.required_resources == {"GPU": 1.0} and supervisor.node_id in gpu_cluster.worker_ids
    assert job.logs.count("the Learner asks for 1 GPU(s) (--learner-num-gpus)") == 1, job.logs[-3000:]


@pytest.mark.slow
def test_a_dense_discriminator_job_starts_no_rollout_worker_and_places_its_actor_on_a_gpu(gpu_cluster: GpuCluster,
                                                                                         tmp_path: Path) -> None:
    """``--reward-model dense``: the discriminator actor on a logical GPU of its own, its prefixes scored by the
    Learner (the entrypoint's GPU), no Monte Carlo rollout worker anywhere."""
    from ray.job_submission import JobStatus

    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    run_dir = tmp_path / "run"
    job = gpu_cluster.run_job(
        f"--preset smoke --batches 1 --oracle-params {tmp_path / 'small.npz'} --run-dir {run_dir} "
        "--reward-model dense --discriminator-num-gpus 1 --learner-num-gpus 1 --no-progress",
        timeout_s=400, entrypoint_num_gpus=1)
    assert job.status == JobStatus.SUCCEEDED, job.logs[-4000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [0, 1] and "train/mc_worker_nodes" not in records[1]
    actors = state_api(gpu_cluster, "list_actors", address=gpu_cluster.dashboard, detail=True, limit=1000,
                       filters=[("job_id", "=", job.job_id)], raise_on_missing_output=False)
    (disc,) = actors
    assert disc.class_name == "DiscriminatorActor" and disc.required_resources == {"CPU": 1.0, "GPU": 1.0}
    device, gpus = placement(disc)
    assert disc.node_id in gpu_cluster.worker_ids and len(gpus) == 1 and device == "cpu"
    assert job.logs.count("the Learner asks for 1 GPU(s) (--learner-num-gpus)") == 1, job.logs[-3000:]


@pytest.mark.slow
def test_a_request_the_cluster_can_never_hold_is_refused_before_any_actor(gpu_cluster: GpuCluster,
                                                                          tmp_path: Path) -> None:
    """No autoscaler can add nodes to ``ray start`` nodes: actors needing more GPUs than they have would
    wait for ever, so the run stops with what they need and what the nodes have, before starting any."""
    from ray.job_submission import JobStatus

    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    job = gpu_cluster.run_job(
        f"--preset smoke --oracle-params {tmp_path / 'small.npz'} --run-dir {tmp_path / 'run'} --no-progress "
        "--mle-epochs 1 --num-mc-workers 4 --mc-worker-num-gpus 2 --discriminator-num-gpus 4", timeout_s=180)
    assert job.status == JobStatus.FAILED
    assert ("error: the Ray cluster can never start this run's actors (the discriminator and 4 rollout worker(s)): "
            "they need 12 GPUs and its 3 node(s) have 6; the discriminator actor needs 4 GPUs and no node has more "
            "than 3, and no autoscaler can add nodes") in job.logs, job.logs[-3000:]
    assert not state_api(gpu_cluster, "list_actors", address=gpu_cluster.dashboard,
                         filters=[("job_id", "=", job.job_id)], raise_on_missing_output=False)


# ------------------------------------------------------------------ the cluster files and the train commands


def train_options(args: list[str]) -> TrainConfig:
    """The ``TrainConfig`` a ``train.py ARGS`` command runs with (its preset and flags, parsed as train does)."""
    parsed = build_parser().parse_args(["train", *args])
    assert parsed.preset != "auto", f"name the preset (auto depends on the driver's GPU): {args}"
    return get_train_preset(parsed.preset).with_overrides(**option_overrides(parsed, TrainConfig))


def demand(options: TrainConfig) -> list[dict[str, float]]:
    """The Ray resources of the run's actors: the discriminator and the K rollout workers."""
    resources = options.resources
    return [{"CPU": resources.discriminator_num_cpus, "GPU": resources.discriminator_num_gpus},
            *[{"CPU": resources.mc_worker_num_cpus, "GPU": resources.mc_worker_num_gpus}] * resources.num_mc_workers]


@dataclass(frozen=True)
class Capacity:
    """What a cluster file offers the actors: one GPU worker node's resources, at most ``max_nodes`` of them,
    and the GPUs of the head, which Ray does not schedule (the driver's)."""

    node: dict[str, float]
    max_nodes: int
    driver_gpus: int

    def check(self, options: TrainConfig, where: str) -> None:
        actors = demand(options)
        for resources in actors:  # each actor on one node
            assert all(resources[k] <= self.node.get(k, 0) for k in resources), (where, resources, self.node)
        for name in ("CPU", "GPU"):  # all of them on the nodes the autoscaler may add
            need = round(sum(r[name] for r in actors), 4)
            assert need <= self.max_nodes * self.node.get(name, 0), (where, name, need, self)
        assert options.resources.learner_num_gpus <= self.driver_gpus, (where, "the Learner's GPU is the head's")


def launcher_capacity() -> Capacity:
    config = yaml.safe_load((ROOT / "cluster/cluster.yaml").read_text())
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    (gpu_type,) = [t for t in types.values() if t is not head]
    instance_gpus = {"g5.2xlarge": (8, 1)}  # vCPUs, GPUs of the instance types the file names
    cpus, gpus = instance_gpus[gpu_type["node_config"]["InstanceType"]]
    assert gpu_type["resources"] == {"CPU": cpus, "GPU": gpus}, "Ray must advertise what the instance has"
    assert head["resources"]["GPU"] == 0 and "--num-gpus=0" in " ".join(config["head_start_ray_commands"])
    return Capacity(gpu_type["resources"], min(gpu_type["max_workers"], config["max_workers"]),
                    instance_gpus[head["node_config"]["InstanceType"]][1])


def kuberay_capacity(spec: dict[str, Any]) -> Capacity:
    def limits(group: dict[str, Any]) -> dict[str, Any]:
        (container,) = group["template"]["spec"]["containers"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == container["resources"]["requests"][
            "nvidia.com/gpu"], "Kubernetes needs GPU requests equal to limits"
        return container["resources"]["limits"]

    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0", "the head's GPU is the driver's, not Ray's"
    (group,) = spec["workerGroupSpecs"]
    pod = limits(group)
    node = {"CPU": float(pod["cpu"]), "GPU": float(group["rayStartParams"].get("num-gpus", pod["nvidia.com/gpu"]))}
    assert node["GPU"] == pod["nvidia.com/gpu"], "Ray must advertise the pod's GPUs"
    return Capacity(node, group["maxReplicas"], int(limits(head)["nvidia.com/gpu"]))


KUBERAY_TRAIN = "/home/ray/seqgan-rl/train.py"
"""Where the image holds ``train.py``: commands naming it run on the KubeRay cluster."""


def documented_commands(relative: str) -> dict[str, list[list[str]]]:
    """The arguments of every complete ``train.py`` command in a file, by the cluster it is for ("kuberay"
    when it runs the image's copy, else "launcher"); shell continuations joined, YAML comment prefixes
    dropped, fragments with ``...`` skipped."""
    text = re.sub(r"\\\n\s*(#\s*)?", " ", (ROOT / relative).read_text())
    commands: dict[str, list[list[str]]] = {"launcher": [], "kuberay": []}
    for line in text.splitlines():
        match = re.search(r"(\S*train\.py) (?:-- )?(--preset [^`]*)", line)
        if match and "..." not in match.group(2):
            commands["kuberay" if match.group(1) == KUBERAY_TRAIN else "launcher"].append(shlex.split(match.group(2)))
    return commands


def test_cluster_files_hold_what_their_train_commands_ask_for() -> None:
    """The launcher's GPU node type and the KubeRay worker group offer what the documented commands and the
    RayJob's entrypoint ask for: every actor fits one node, all of them the nodes the autoscaler may add,
    and a Learner on a GPU has the head's."""
    documented = [documented_commands(name) for name in ("cluster/cluster.yaml", "cluster/README.md",
                                                         "docs/cluster.md", "README.md",
                                                         "cluster/kuberay/raycluster.yaml")]
    job = yaml.safe_load((ROOT / "cluster/kuberay/rayjob.yaml").read_text())["spec"]
    _, script, *entrypoint = shlex.split(job["entrypoint"])
    assert script == KUBERAY_TRAIN
    launcher_commands = [args for found in documented for args in found["launcher"]]
    kuberay_commands = [entrypoint, *(args for found in documented for args in found["kuberay"])]
    assert len(launcher_commands) >= 4 and len(kuberay_commands) >= 3
    launcher = launcher_capacity()
    for args in launcher_commands:
        launcher.check(train_options(args), " ".join(args))
    raycluster = yaml.safe_load((ROOT / "cluster/kuberay/raycluster.yaml").read_text())["spec"]
    for spec in (raycluster, job["rayClusterSpec"]):
        for args in kuberay_commands:
            kuberay_capacity(spec).check(train_options(args), " ".join(args))
    options = train_options(entrypoint)  # the RayJob's run gives the discriminator and the rollouts GPUs
    assert options.resources.discriminator_num_gpus > 0 and options.resources.mc_worker_num_gpus > 0


def test_capacity_check_rejects_a_command_that_does_not_fit() -> None:
    """The check above means something: more GPUs than the launcher's nodes, or a GPU Learner on a GPU-less head."""
    launcher = launcher_capacity()
    with pytest.raises(AssertionError):
        launcher.check(train_options(["--preset", "paper", "--num-mc-workers", "9", "--mc-worker-num-gpus", "0.5"]),
                       "too many")
    with pytest.raises(AssertionError):
        Capacity(launcher.node, launcher.max_nodes, 0).check(
            train_options(["--preset", "paper", "--learner-num-gpus", "1"]), "no head GPU")


def test_learner_without_cuda_runs_on_cpu_after_one_warning() -> None:
    """``--learner-num-gpus`` where the driver sees no CUDA: RLlib would stop at its GPU lookup; the Learner
    runs on the CPU instead, and says so once however often the config is built."""
    script = ("import logging\n"
              "logging.basicConfig(format='%(levelname)s %(message)s')\n"
              "from seqgan_rl.rllib.seqgan import SeqGANConfig\n"
              "configs = [SeqGANConfig().training(learner_num_gpus=1.0) for _ in range(3)]\n"
              "print([(c.options.resources.learner_num_gpus, c.num_gpus_per_learner) for c in configs])\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[(1.0, 0.0), (1.0, 0.0), (1.0, 0.0)]"
    assert result.stderr.count("WARNING the Learner asks for 1 GPU(s)") == 1, result.stderr[-2000:]


def test_shortfall_names_the_resources_and_the_autoscaler_report_is_read() -> None:
    from seqgan_rl.experiment.ray_session import cluster_shortfall, report_can_add_nodes

    nodes = [{"CPU": 1.0}, {"CPU": 4.0, "GPU": 1.0}, {"CPU": 4.0, "GPU": 1.0}]
    fits = [("the discriminator actor", {"CPU": 1.0, "GPU": 0.2}),
            *[("a rollout worker", {"CPU": 1.0, "GPU": 0.2})] * 4]
    assert cluster_shortfall(fits, nodes[:2]) == []  # 5 x 0.2 GPUs: one GPU, in Ray's 1/10,000 units
    too_many = [("a rollout worker", {"CPU": 1.0, "GPU": 1.5})] * 2
    assert cluster_shortfall(too_many, nodes) == ["they need 3 GPUs and its 3 node(s) have 2",
                                                  "a rollout worker needs 1.5 GPUs and no node has more than 1"]
    node = "ab" * 28
    mirrored = {"autoscaler_report": {"node_type_mapping": {node: f"node_{node}"}}}
    launched = {"autoscaler_report": {"node_type_mapping": {node: "head", "cd" * 28: "gpu_rollout"}}}
    assert report_can_add_nodes(mirrored) is False and report_can_add_nodes(launched) is True
    assert report_can_add_nodes({}) is None and report_can_add_nodes({"load_metrics_report": {}}) is None
