"""Cluster launcher configs, KubeRay manifests and the Docker image, checked without a cluster.

* ``cluster/*.yaml`` go through what ``ray up`` does before it contacts a cloud: Ray fills in
  its defaults (``prepare_config``) and validates the result against the cluster-config schema
  shipped in the wheel (``validate_config`` with ``ray-schema.json``).
* ``cluster/kuberay/*.yaml`` are validated against the KubeRay v1 fields they use
  (``tests/data/kuberay_v1_manifests.yaml``, written for this project, in every checkout) and,
  where ``../shared/data/kuberay/`` holds them, against the ``v1`` OpenAPI schema of KubeRay's
  CustomResourceDefinitions; both made as strict as ``kubectl apply``'s default field
  validation: an object schema with ``properties`` accepts no other field. The CEL rules
  (``x-kubernetes-validations``) are not evaluated.
* ``docker/Dockerfile`` is parsed, not built: base image, COPY sources, pinned installs and
  ``.dockerignore``.

Each validator is also shown to reject a broken copy, so a passing test means something.
"""

from __future__ import annotations

import copy
import posixpath
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from seqgan_rl.commands.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_CONFIGS = ("cluster/cluster.yaml", "cluster/local.yaml")
KUBERAY = {"raycluster.yaml": "ray.io_rayclusters.yaml", "rayjob.yaml": "ray.io_rayjobs.yaml"}
"""Our manifest -> the CRD file that defines its kind."""
FAST_YAML = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader where PyYAML has it: the CRD files are 40,000 lines."""

Location = tuple[str | int, ...]
"""A location in a parsed YAML document: keys and list indices."""


def load_yaml(relative: str) -> dict[str, Any]:
    """A YAML file of the repository, parsed."""
    return yaml.safe_load((ROOT / relative).read_text())


def pins() -> dict[str, str]:
    """``constraints.txt`` as {package: version}."""
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pinned[name.strip()] = version.strip()
    return pinned


def set_at(document: Any, path: Location, value: Any) -> None:
    """Set ``document[path[0]][path[1]]...`` to ``value``."""
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


# --------------------------------------------------------------------------- Ray cluster launcher


def ray_up_validation(config: dict[str, Any]) -> dict[str, Any]:
    """Ray's own checks of ``ray up`` short of the cloud: defaults filled in, then the schema."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
def test_cluster_config_passes_rays_schema(name: str) -> None:
    """Ray's defaults and schema accept the file, and it allows worker nodes."""
    prepared = ray_up_validation(load_yaml(name))
    assert prepared["max_workers"] >= 1, "a cluster with no worker node"
    assert any(t["max_workers"] >= 1 for t in prepared["available_node_types"].values())


@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
@pytest.mark.parametrize(("path", "value"), [
    (("max_worker",), 4),                          # a misspelled top-level key
    (("docker", "run_options"), "--gpus all"),     # a string where the schema wants a list
], ids=["unknown-key", "wrong-type"])
def test_broken_cluster_config_is_rejected(name: str, path: Location, value: Any) -> None:
    """The same validation refuses an unknown key and a wrongly typed value."""
    config = load_yaml(name)
    set_at(config, path, value)
    with pytest.raises(jsonschema.ValidationError):
        ray_up_validation(config)


def test_cloud_cluster_autoscales_gpu_rollout_nodes() -> None:
    """The head keeps its GPU out of Ray; GPU worker nodes scale between min and max."""
    config = load_yaml("cluster/cluster.yaml")
    node_types = config["available_node_types"]
    assert node_types[config["head_node_type"]]["resources"]["GPU"] == 0, "the head's GPU is the driver's"
    gpu_types = [t for t in node_types.values() if t["resources"].get("GPU", 0) >= 1]
    assert gpu_types and all(t["min_workers"] < t["max_workers"] for t in gpu_types)
    with pytest.raises(jsonschema.ValidationError):  # Ray advertises whole GPUs per node
        broken = copy.deepcopy(config)
        set_at(broken, ("available_node_types", "gpu_rollout", "resources", "GPU"), 0.5)
        ray_up_validation(broken)


@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
def test_cluster_config_installs_the_synced_repo_with_the_pins(name: str) -> None:
    """Every node installs the synced repository with constraints.txt and runs our image with GPUs."""
    config = load_yaml(name)
    remote = next(r for r, local in config["file_mounts"].items() if (ROOT / local).resolve() == ROOT)
    assert f"pip install --no-cache-dir -q -c {remote}/constraints.txt -e {remote}" in config["setup_commands"]
    assert config["docker"]["image"] == image_name()
    assert "--gpus all" in config["docker"]["run_options"]


# --------------------------------------------------------------------------------------- KubeRay


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI schema where objects with ``properties`` refuse other fields.

    That is what the API server does under ``kubectl apply``'s default strict field validation
    (unknown fields are errors) and what plain JSON Schema does not.
    """
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: strict(value) for key, value in schema.items()}
    if ("properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        closed["additionalProperties"] = False
    return closed


def schema_nodes(schema: Any) -> Iterator[dict[str, Any]]:
    """Every object in a schema, depth first."""
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from schema_nodes(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from schema_nodes(item)


@dataclass(frozen=True)
class CustomResource:
    """One KubeRay kind as the API server checks it: ``apiVersion``, ``kind`` and the strict v1 schema."""

    api_version: str
    kind: str
    schema: dict[str, Any]

    def validate(self, manifest: dict[str, Any]) -> None:
        """Raise ``jsonschema.ValidationError`` where the API server would refuse ``manifest``."""
        if manifest.get("apiVersion") != self.api_version or manifest.get("kind") != self.kind:
            raise jsonschema.ValidationError(f"not a {self.api_version} {self.kind}")
        name = manifest.get("metadata", {}).get("name", "")
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) or len(name) > 63:
            raise jsonschema.ValidationError(f"metadata.name {name!r} is not a DNS-1123 label")
        jsonschema.Draft7Validator(self.schema).validate(manifest)


SHIPPED_SCHEMA = ROOT / "tests" / "data" / "kuberay_v1_manifests.yaml"
"""The KubeRay v1 fields our manifests use, as a JSON Schema written for this project (every checkout)."""


@pytest.fixture(scope="session", params=["shipped", "crd"])
def kuberay(request: pytest.FixtureRequest) -> dict[str, CustomResource]:
    """Our manifest's file name -> the kind as the API server checks it: from the schema shipped in
    tests/data (always), and from KubeRay's own CRDs where ../shared/data/kuberay holds them."""
    if request.param == "shipped":
        document = yaml.load(SHIPPED_SCHEMA.read_text(), Loader=FAST_YAML)
        return {manifest: CustomResource("ray.io/v1", kind, strict(
                    {**document["kinds"][kind], "definitions": document["definitions"]}))
                for manifest, kind in (("raycluster.yaml", "RayCluster"), ("rayjob.yaml", "RayJob"))}
    folder = request.getfixturevalue("shared_data_dir") / "kuberay"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: KubeRay's CRD schemas are not in this checkout (the shipped subset runs)")
    kinds = {}
    for manifest, crd_file in KUBERAY.items():
        crd = yaml.load((folder / crd_file).read_text(), Loader=FAST_YAML)
        (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        kinds[manifest] = CustomResource(f"{crd['spec']['group']}/v1", crd["spec"]["names"]["kind"],
                                         strict(v1["schema"]["openAPIV3Schema"]))
    return kinds


@pytest.mark.parametrize("manifest", KUBERAY)
def test_kuberay_manifest_passes_the_crd_schema(manifest: str, kuberay: dict[str, CustomResource]) -> None:
    """The API server would accept the manifest."""
    kuberay[manifest].validate(load_yaml(f"cluster/kuberay/{manifest}"))


WORKER = ("workerGroupSpecs", 0)
WORKER_CPU = (*WORKER, "template", "spec", "containers", 0, "resources", "limits", "cpu")


@pytest.mark.parametrize(("manifest", "path", "value"), [
    ("raycluster.yaml", ("spec", "enableInTreeAutoscalling"), True),
    ("raycluster.yaml", ("spec", *WORKER, "maxReplicas"), "4"),
    ("raycluster.yaml", ("spec", *WORKER_CPU), "8 cores"),
    ("raycluster.yaml", ("metadata", "name"), "SeqGAN_RL"),
    ("raycluster.yaml", ("kind",), "RayJob"),
    ("rayjob.yaml", ("spec", "shutdownAfterJobFinish"), True),
    ("rayjob.yaml", ("spec", "backoffLimit"), "0"),
    ("rayjob.yaml", ("spec", "rayClusterSpec", *WORKER, "rayStartParams", "num-gpus"), 1),
], ids=["misspelled-field", "wrong-type", "bad-quantity", "bad-name", "wrong-kind", "job-misspelled-field",
        "job-wrong-type", "job-start-param-not-string"])
def test_broken_kuberay_manifest_is_rejected(manifest: str, path: Location, value: Any,
                                             kuberay: dict[str, CustomResource]) -> None:
    """Misspelled fields, wrong types, bad quantities and names are refused."""
    document = load_yaml(f"cluster/kuberay/{manifest}")
    set_at(document, path, value)
    with pytest.raises(jsonschema.ValidationError):
        kuberay[manifest].validate(document)


@pytest.mark.parametrize(("quantity", "valid"), [
    ("2", True), (2, True), ("8Gi", True), ("500m", True), (0.5, False), ("8 GB", False),
])
def test_resource_quantities_are_int_or_string(quantity: Any, valid: bool,
                                               kuberay: dict[str, CustomResource]) -> None:
    """Resource quantities may be integers or quantity strings, nothing else."""
    cluster = kuberay["raycluster.yaml"]
    int_or_string = [n for n in schema_nodes(cluster.schema) if n.get("x-kubernetes-int-or-string")]
    # jsonschema ignores the extension itself; the CRD spells it out as anyOf, which it checks.
    assert int_or_string and all(n["anyOf"] == [{"type": "integer"}, {"type": "string"}] for n in int_or_string)
    document = load_yaml("cluster/kuberay/raycluster.yaml")
    set_at(document, ("spec", *WORKER_CPU), quantity)
    if valid:
        cluster.validate(document)
    else:
        with pytest.raises(jsonschema.ValidationError):
            cluster.validate(document)


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a RayCluster spec's head and worker groups."""
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    return [c for group in groups for c in group["template"]["spec"]["containers"]]


def test_kuberay_cluster_matches_the_pins_and_the_job_runs_train_py() -> None:
    """Both manifests run the pinned Ray in our image; the job runs the image's train.py onto the runs volume."""
    cluster, job = load_yaml("cluster/kuberay/raycluster.yaml"), load_yaml("cluster/kuberay/rayjob.yaml")
    spec = cluster["spec"]
    assert job["spec"]["rayClusterSpec"] == spec, "rayjob.yaml's cluster drifted from raycluster.yaml"
    assert spec["rayVersion"] == pins()["ray"]
    assert {c["image"] for c in containers(spec)} == {image_name()}
    assert spec["enableInTreeAutoscaling"] is True
    for group in spec["workerGroupSpecs"]:
        assert group["minReplicas"] < group["maxReplicas"]
        (container,) = group["template"]["spec"]["containers"]
        assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1

    python, script, *args = shlex.split(job["spec"]["entrypoint"])
    assert python == "python" and script == posixpath.join(workdir(), "train.py")
    assert "train.py" in copied_sources()
    options = build_parser().parse_args(["train", *args])  # exits (fails) on an unknown option
    assert options.preset == "paper"
    # a retried job (a lost head pod) resumes the run from the persistent volume instead of losing it
    assert options.resume_existing and job["spec"]["backoffLimit"] > 0
    head = spec["headGroupSpec"]["template"]["spec"]
    (mount,) = head["containers"][0]["volumeMounts"]
    assert str(options.run_dir).startswith(mount["mountPath"] + "/"), "runs must go to the persistent volume"
    (volume,) = [v for v in head["volumes"] if v["name"] == mount["name"]]
    claim = load_yaml("cluster/kuberay/runs-pvc.yaml")
    assert claim["kind"] == "PersistentVolumeClaim"
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert job["spec"]["shutdownAfterJobFinishes"] is True


# ---------------------------------------------------------------------------------------- Docker


def dockerfile() -> list[tuple[str, str]]:
    """``docker/Dockerfile`` as (INSTRUCTION, arguments): continuations joined, ARG defaults substituted."""
    text = re.sub(r"\\\n", " ", (ROOT / "docker" / "Dockerfile").read_text())
    build_args: dict[str, str] = {}
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        rest = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: build_args.get(m[1] or m[2], m[0]), rest.strip())
        if keyword.upper() == "ARG" and "=" in rest:
            name, default = rest.split("=", 1)
            build_args[name] = default
        instructions.append((keyword.upper(), rest))
    return instructions


def instructions(keyword: str) -> list[str]:
    """The arguments of every ``keyword`` instruction of the Dockerfile, in order."""
    return [rest for kw, rest in dockerfile() if kw == keyword]


def workdir() -> str:
    """The Dockerfile's (last) WORKDIR."""
    return instructions("WORKDIR")[-1]


def copied_sources() -> list[str]:
    """The local paths the Dockerfile COPYs (flags and destinations left out)."""
    sources = []
    for rest in instructions("COPY"):
        words = [w for w in shlex.split(rest) if not w.startswith("--")]
        sources += words[:-1]
    return sources


def pip_installs() -> list[str]:
    """Every ``pip install`` command of the Dockerfile's RUN instructions."""
    commands = [c.strip() for rest in instructions("RUN") for c in rest.split("&&")]
    return [c for c in commands if c.startswith("pip install")]


def image_name() -> str:
    """The image name that docker/README.md's ``docker build`` command tags."""
    match = re.search(r"docker build -f docker/Dockerfile -t (\S+) \.", (ROOT / "docker" / "README.md").read_text())
    assert match, "docker/README.md has no `docker build -f docker/Dockerfile -t NAME .` command"
    return match[1]


def test_base_image_is_the_pinned_ray_on_python_311_with_the_torch_cuda() -> None:
    """FROM is rayproject/ray at the ray pin on Python 3.11, and torch comes for its CUDA."""
    (base,) = instructions("FROM")
    match = re.fullmatch(r"rayproject/ray:(?P<ray>\d+\.\d+\.\d+)-py3(?P<minor>\d+)-(?P<cuda>cu\d+)", base)
    assert match, f"FROM {base}: not a rayproject/ray:<version>-py3XX-cuXXX image"
    assert match["ray"] == pins()["ray"] and match["minor"] == "11"
    (torch_install,) = [c for c in pip_installs() if re.search(r"\btorch\b", c)]
    assert f"--index-url https://download.pytorch.org/whl/{match['cuda']} " in torch_install


def test_dockerfile_copies_only_existing_paths() -> None:
    """Every COPY source exists in the repository."""
    sources = copied_sources()
    assert sources
    missing = [s for s in sources if not (ROOT / s).exists()]
    assert not missing, f"COPY sources missing from the repository: {missing}"


def test_pip_installs_use_the_constraints_file() -> None:
    """Every pip install is constrained by constraints.txt, so versions equal the README's."""
    installs = pip_installs()
    assert installs and all(" -c constraints.txt " in f"{c} " for c in installs), installs
    assert "constraints.txt" in copied_sources() and workdir() == "/home/ray/seqgan-rl"
    assert any(c.endswith(" .") for c in installs), "the package itself is installed"


def dockerignored(path: str) -> bool:
    """Whether Docker leaves ``path`` (relative to the context) out, by ``.dockerignore``.

    Docker's rules: patterns are anchored at the context root, ``*`` and ``?`` stay within one
    path segment, ``**`` spans any number, a path is out when it or a parent directory matches,
    the last matching line wins and ``!`` brings a path back.
    """
    candidates = ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 2)]
    ignored = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
        if any(re.fullmatch(glob_regex(pattern), c) for c in candidates):
            ignored = not keep
    return ignored


def glob_regex(pattern: str) -> str:
    """A ``.dockerignore`` pattern as a regular expression over '/'-separated paths."""
    wildcards = (("**/", "(?:.*/)?"), ("**", ".*"), ("*", "[^/]*"), ("?", "[^/]"))  # longest first
    regex, i = [], 0
    while i < len(pattern):
        for wildcard, translation in wildcards:
            if pattern.startswith(wildcard, i):
                regex.append(translation)
                i += len(wildcard)
                break
        else:
            regex.append(re.escape(pattern[i]))
            i += 1
    return "".join(regex)


def test_dockerignore_keeps_what_the_image_copies_and_drops_local_state() -> None:
    """The build context has every copied source file and none of .venv, runs, data, .git."""
    needed = []
    for source in copied_sources():
        path = ROOT / source
        files = [path] if path.is_file() else [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
        needed += [f.relative_to(ROOT).as_posix() for f in files]
    assert needed and not [f for f in needed if dockerignored(f)]
    for local in (".venv/bin/python", "runs/seqgan-paper/metrics.jsonl", ".git/HEAD", "data/train.parquet",
                  "seqgan_rl/__pycache__/cli.cpython-311.pyc", "checkpoints/g.pt", "runs"):
        assert dockerignored(local), local
