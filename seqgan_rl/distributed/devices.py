"""Which torch device a process of a run computes on: the one place that decides it.

Ray does the bookkeeping of GPUs: an actor started with ``num_gpus=0.5`` is
given (a share of) one GPU, named in ``ray.get_runtime_context().get_accelerator_ids()``
and in ``CUDA_VISIBLE_DEVICES``, so ``cuda:0`` inside the actor is that GPU.
The rules, for the discriminator actor, the Monte Carlo rollout workers and
the Learner:

* a Ray actor that holds GPUs computes on ``cuda:0`` when torch sees CUDA; when
  it does not (a logical GPU of ``ray start --num-gpus`` on a machine without
  one, a driver or torch build without CUDA) it computes on the CPU and says so
  once, in one logged warning naming the GPUs Ray gave it;
* a Ray actor that holds no GPU computes on the CPU, even when torch sees one:
  since Ray 2.60, ``num_gpus=0`` no longer hides a node's GPUs from an actor,
  and a GPU the scheduler did not give this actor is another's (one warning
  when it sees one, naming the option that would give it a share);
* the driver (``train.py``: MLE, evaluation, the Learner, the in-process pool
  of ``--num-mc-workers 0``) is not placed by Ray's GPU accounting: it owns the
  GPUs its process sees (a head whose GPU is hidden from Ray with
  ``--num-gpus=0``, or the GPU a job got with ``--entrypoint-num-gpus``), so it
  computes on ``cuda:0`` when torch sees CUDA. The Learner moves to it only when
  ``--learner-num-gpus`` asks (``learner_gpus``).

Each actor's device and GPUs are part of its ``repr``
(``actor_description``), which Ray shows in ``ray list actors --detail``
and the dashboard: where the work ran can be read off a live cluster.
"""

from __future__ import annotations

import logging
import os
import threading

import ray
import torch

from seqgan_rl.models.precision import bf16_supported_on, enable_fast_matmul, hardware_summary

logger = logging.getLogger(__name__)

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, message: str) -> None:
    """Log ``message`` as a warning the first time ``key`` is seen in this process (an actor is one process)."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning(message)


def ray_gpu_ids() -> list[str] | None:
    """The GPU ids Ray gave this process if it is a Ray actor (``[]``: none), ``None`` outside one."""
    if not ray.is_initialized():
        return None
    context = ray.get_runtime_context()
    if context.get_actor_id() is None:
        return None
    return [str(i) for i in context.get_accelerator_ids().get("GPU", [])]


def _cuda_missing() -> str:
    """Why torch cannot use CUDA here, for the warnings."""
    cuda = torch.version.cuda
    built = f"torch {torch.__version__}, built {f'with CUDA {cuda}' if cuda else 'without CUDA'}"
    return f"torch sees no CUDA device ({built}; CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})"


def process_device(role: str, *, option: str) -> torch.device:
    """The device ``role`` (e.g. "the discriminator actor") computes on in this process (module rules).

    ``option`` names the flag that gives ``role`` GPUs (``--discriminator-num-gpus``), for the warnings.
    """
    held = ray_gpu_ids()
    cuda = torch.cuda.is_available()
    if held is None:  # the driver: the GPUs it sees are its own
        return torch.device("cuda", 0) if cuda else torch.device("cpu")
    if held and cuda:
        return torch.device("cuda", 0)  # CUDA_VISIBLE_DEVICES lists only this actor's GPUs
    if held:
        warn_once(f"fallback:{role}", f"{role} holds Ray GPU(s) {held} but {_cuda_missing()}: it runs on the CPU")
    elif cuda:
        warn_once(f"unreserved:{role}", f"{role} sees a CUDA device but Ray gave it no GPU ({option} 0): it runs on "
                                        f"the CPU, leaving the GPU to the actors Ray gave it to; set {option} to "
                                        "give it a share")
    return torch.device("cpu")


def resolve_device(device: str, role: str, *, option: str) -> torch.device:
    """``"auto"``: ``process_device(role, option=option)``; another name is taken as given (``"cpu"``, ``"cuda:1"``)."""
    return process_device(role, option=option) if device == "auto" else torch.device(device)


def score_precision_on(device: torch.device, precision: str, role: str) -> str:
    """The discriminator's scoring precision ``role`` can use on ``device``: "int8" is a CPU path (the int8
    GEMM of ``torch_ops.int8_matmul``), so on a GPU it becomes "fp32" with TF32 matmuls, with one warning."""
    if precision == "int8" and device.type != "cpu":
        warn_once(f"int8:{role}", f"score_precision int8 is a CPU path (int8 GEMM): {role} on {device} scores in fp32 "
                                  "with TF32 matmuls")
        enable_fast_matmul(device)
        return "fp32"
    return precision


def train_precision_on(device: torch.device, precision: str, role: str) -> str:
    """The d-steps' precision ``role`` can use on ``device``: "bf16" autocast where bfloat16 is native (a CPU
    with AVX512_BF16/AMX, a GPU that supports it), else "fp32" with one warning (emulated bfloat16 is slower
    than float32)."""
    if precision == "bf16" and not bf16_supported_on(device):
        warn_once(f"bf16:{role}", f"d_precision bf16: {role} on {device} has no native bfloat16 "
                                  f"({hardware_summary()}): its d-steps run in fp32")
        return "fp32"
    return precision


def learner_gpus(requested: float) -> float:
    """The GPUs the RLlib Learner may use in this process for ``--learner-num-gpus requested``.

    The Learner runs in the driver (``num_learners=0``), which no Ray GPU
    accounting places: RLlib then puts it on ``cuda:0`` if asked for any GPU,
    and stops with an assertion where there is none. Where the driver sees no
    CUDA the request becomes 0 (the Learner on the CPU) with one warning.
    """
    if requested <= 0 or torch.cuda.is_available():
        return requested
    warn_once("fallback:learner", f"the Learner asks for {requested:g} GPU(s) (--learner-num-gpus) but "
                                  f"{_cuda_missing()} in the driver process: it runs on the CPU")
    return 0.0


def sampling_chunk_rows(device: torch.device, cpu_rows: int) -> int:
    """Rows per chunk of the fused projection + sampling step of the Monte Carlo engine on ``device``.

    ``cpu_rows`` (512) keeps a chunk's [rows, V] logits in a CPU's cache. A GPU
    has no such cache to fit and pays a kernel launch per chunk, so there a
    chunk is 8,192 rows (a 164 MB workspace at V = 5,000; the paper batch's
    19,456 rollout rows in 3 chunks instead of 76). Chosen, not yet measured on
    a GPU: ``benchmarks/gpu_acceptance.py`` times both.
    """
    return cpu_rows if device.type == "cpu" else 8192


def actor_description(role: str, device: torch.device) -> str:
    """``role`` with its device and Ray GPUs, e.g. ``MonteCarloWorker(device=cpu, ray_gpus=['0'])``: an actor's
    ``repr``, which Ray keeps with the actor (``ray list actors --detail``, the dashboard)."""
    return f"{role}(device={device}, ray_gpus={ray_gpu_ids()})"
