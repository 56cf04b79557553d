"""One acceptance run for a GPU: the CUDA paths checked against the CPU, timed, and the paper preset estimated.

    python benchmarks/gpu_acceptance.py                   # on a GPU: the paper's sizes, a few minutes
    python benchmarks/gpu_acceptance.py --device cpu      # reduced counts, under a minute (what CI runs)

Written for a machine lent for minutes: one GPU, a bare CUDA image with torch,
numpy and pyarrow and nothing else (no Ray, tqdm or matplotlib, no network).
It imports only those and the Ray-free core of seqgan-rl (from the checkout:
no install needed), prints ONE JSON object (the last line of stdout; progress
goes to stderr) and exits with 1 if any check failed.

Checks, each on the device against the CPU, with the tolerance it states:

* ``sampling_chi_square``: the sampler's token frequencies against the float64
  softmax (Pearson chi-square, two temperatures), and its draws equal to the
  CPU's for the same uniforms;
* ``projection``: the fused projection + log-softmax (``seqgan_rl.models.projection``),
  values and gradients, against float64 on the CPU;
* ``monte_carlo_q``: Q of the paper's batch from the same uniforms equal to the
  CPU's, up to rollouts whose tokens diverged at a float rounding;
* ``discriminator_scores``, ``discriminator_d_step``: scores, and one d-step
  (loss, parameters after Adam);
* ``generator_mle_loss``: the MLE loss and its gradients (cuDNN's LSTM);
* ``d_round_bf16``: a d-round under bfloat16 autocast ends where the fp32 one does.

Timings (``..._measured_s``, medians where repeated): an MLE epoch, an
NLL-oracle and an NLL-test evaluation, sampling, one Monte Carlo batch of the
paper setting with the paper's discriminator (goal < 10 ms), one d-round
(goal <= 0.5 s; fp32 and bf16), one adversarial generator step (sample,
Monte Carlo Q, policy gradient, rollout update). From them the paper preset's
wall time is estimated (``paper_preset_estimated_s``; the core computation
only: RLlib's EnvRunner stepping and Ray's transfers are not in it), and if the
time budget allows a slice of the adversarial loop runs for real (without Ray)
to check the estimate. Peak GPU memory of each part is reported (null on CPU).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's seqgan_rl: a bare image has no installed copy
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import adversarial_g_step, generator_step, synchronize  # noqa: E402  (torch and the core only)

from seqgan_rl.config import PretrainConfig  # noqa: E402
from seqgan_rl.evaluation.nll import nll_oracle, nll_test  # noqa: E402
from seqgan_rl.mc import MonteCarloQ, RolloutPolicy  # noqa: E402
from seqgan_rl.models.categorical import SAMPLING_CHUNK_ROWS, sample_next_tokens  # noqa: E402
from seqgan_rl.models.discriminator import Discriminator, make_discriminator_optimizer, train_discriminator  # noqa: E402
from seqgan_rl.models.generator import Generator, GeneratorConfig  # noqa: E402
from seqgan_rl.models.oracle import PAPER_ORACLE_SEED, Oracle, default_oracle_params  # noqa: E402
from seqgan_rl.models.projection import linear_log_prob, linear_log_prob_sum  # noqa: E402

GPU_CHUNK_ROWS = 8192
"""Rows per sampling chunk of a rollout worker on a GPU (``seqgan_rl.distributed.devices.sampling_chunk_rows``,
which imports Ray; ``tests/test_gpu_acceptance.py`` keeps the two equal)."""

SCHEDULE = {"mle_epochs": 120, "mle_evaluations": 25, "d_pretrain_rounds": 50, "adversarial_batches": 200,
            "d_steps": 5, "adversarial_evaluations": 41}
"""The paper preset's schedule: evaluations every 5 MLE epochs (0..120) and every 5 batches (0..200)."""
GOALS_S = {"mc_batch_measured_s": 0.01, "d_round_measured_s": 0.5}


@dataclass(frozen=True)
class Setting:
    """Sizes of the run: the paper's generator everywhere; in ``reduced``, a narrower discriminator and fewer
    sequences (the CPU run, which exercises the script, not the GPU)."""

    name: str
    discriminator: dict[str, Any]  # ``Discriminator`` sizes ({}: the paper's CNN)
    num_train: int  # sequences of an MLE epoch
    num_eval: int  # NLL-oracle samples, NLL-test sequences, sampled sequences
    mc_batch: int  # B of a Monte Carlo batch
    num_rollouts: int  # N
    d_sequences: int  # real and as many fake sequences per d-round
    d_epochs: int
    chi_square_draws: int
    slice_batches: int
    slice_d_steps: int
    repeats: int


SETTINGS = {
    "paper": Setting("paper", {}, 10_000, 10_000, 64, 16, 10_000, 3, 2_000_000, 5, 5, 5),
    "reduced": Setting("reduced", {"emb_dim": 16, "filter_sizes": (1, 2, 3, 5, 10, 20), "num_filters": (8,) * 6},
                       640, 500, 8, 4, 256, 1, 20_000, 1, 1, 1),
}
MODEL = GeneratorConfig(vocab_size=5000, seq_len=20, emb_dim=32, hidden_dim=32)


def log(message: str) -> None:
    print(f"[gpu_acceptance] {message}", file=sys.stderr, flush=True)


class Recorder:
    """Times parts of the run and the peak GPU memory of each (``max_memory_allocated``, reset per part)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes: dict[str, int | None] = {}
        self.started = time.perf_counter()

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        log(f"{name} (at {self.elapsed_s:.1f} s)")
        synchronize(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        yield
        synchronize(self.device)
        self.peak_bytes[name] = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None

    def seconds(self, fn: Callable[[], Any], repeats: int) -> float:
        """Median wall time of ``fn()`` over ``repeats`` runs (after one untimed run)."""
        fn()
        times = []
        for _ in range(repeats):
            synchronize(self.device)
            start = time.perf_counter()
            fn()
            synchronize(self.device)
            times.append(time.perf_counter() - start)
        return statistics.median(times)


# ------------------------------------------------------------------------------------------------ checks


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> tuple[float, int]:
    """Pearson statistic of ``counts`` [V] against ``probs`` [V] over cells expecting >= 5 (the rest pooled)."""
    expected = probs.double() * counts.sum()
    big = expected >= 5
    stat = float((((counts[big].double() - expected[big]) ** 2) / expected[big]).sum())
    cells = int(big.sum())
    rest_expected, rest = float(expected[~big].sum()), float(counts[~big].double().sum())
    if rest_expected > 5:
        stat += (rest - rest_expected) ** 2 / rest_expected
        cells += 1
    return stat, cells - 1


def chi_square_p_value(stat: float, dof: int) -> float:
    """Upper tail of the chi-square distribution (Wilson-Hilferty's normal approximation; no scipy here)."""
    z = ((stat / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return 0.5 * math.erfc(z / math.sqrt(2))


def check_sampling(device: torch.device, setting: Setting) -> dict[str, Any]:
    """Frequencies of ``chi_square_draws`` draws from one softmax vs its float64 probabilities, and the
    device's draws vs the CPU's for the same uniforms over (up to) 20,000 different rows."""
    rng = torch.Generator().manual_seed(1)
    hidden = torch.randn(1, MODEL.hidden_dim, generator=rng)  # (1, H)
    weight_t = torch.randn(MODEL.hidden_dim, MODEL.vocab_size, generator=rng) * 0.5  # (H, V)
    bias = torch.randn(MODEL.vocab_size, generator=rng)  # (V,)
    tests = {}
    for temperature in (1.0, 0.7):
        probs = torch.softmax((hidden.double() @ weight_t.double() + bias.double())[0] / temperature, dim=0)
        draws = torch.Generator(device=device).manual_seed(2)
        counts = torch.zeros(MODEL.vocab_size, dtype=torch.long)
        for start in range(0, setting.chi_square_draws, 500_000):
            rows = min(500_000, setting.chi_square_draws - start)
            tokens = sample_next_tokens(hidden.to(device).expand(rows, -1), weight_t.to(device), bias.to(device),
                                        temperature=temperature, generator=draws)
            counts += torch.bincount(tokens, minlength=MODEL.vocab_size).cpu()
        stat, dof = chi_square(counts, probs)
        tests[f"temperature_{temperature:g}"] = {"statistic": stat, "dof": dof,
                                                 "p_value": chi_square_p_value(stat, dof),
                                                 "passed": stat < dof + 6 * math.sqrt(2 * dof)}
    rows = torch.randn(min(20_000, setting.chi_square_draws), MODEL.hidden_dim, generator=rng)  # (M, H)
    uniforms = torch.rand(rows.shape[0], generator=rng)  # one softmax per row, one uniform per row
    on_cpu = sample_next_tokens(rows, weight_t, bias, uniform=uniforms)
    on_device = sample_next_tokens(rows.to(device), weight_t.to(device), bias.to(device),
                                   uniform=uniforms.to(device)).cpu()
    agreement = float((on_cpu == on_device).double().mean())
    return {"tolerance": "statistic < dof + 6 sqrt(2 dof) (false alarm < 1e-6); same uniforms: >= 99.9 % of the "
                         "draws equal to the CPU's (they may differ only at a float rounding of a CDF boundary)",
            **tests, "same_uniforms_agreement": agreement,
            "passed": all(t["passed"] for t in tests.values()) and agreement >= 0.999}


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want| (float64, on the CPU)."""
    want = want.detach().double().cpu()
    return float((got.detach().double().cpu() - want).abs().max() / want.abs().max().clamp_min(1e-30))


def check_projection(device: torch.device) -> dict[str, Any]:
    """``linear_log_prob`` and ``linear_log_prob_sum`` in float32 on the device vs log_softmax in float64 on the
    CPU: an MLE batch (64 x 20 rows, V = 5,000, H = 32), values and gradients of all three inputs."""
    rng = torch.Generator().manual_seed(3)
    rows = 64 * MODEL.seq_len
    reference = [torch.randn(rows, MODEL.hidden_dim, generator=rng, dtype=torch.float64),
                 torch.randn(MODEL.vocab_size, MODEL.hidden_dim, generator=rng, dtype=torch.float64) * 0.3,
                 torch.randn(MODEL.vocab_size, generator=rng, dtype=torch.float64)]  # hidden, weight, bias
    targets = torch.randint(0, MODEL.vocab_size, (rows,), generator=rng)
    upstream = torch.randn(rows, generator=rng, dtype=torch.float64)
    for tensor in reference:
        tensor.requires_grad_(True)
    plain = torch.log_softmax(reference[0] @ reference[1].t() + reference[2], dim=1).gather(
        1, targets.unsqueeze(1)).squeeze(1)  # (R,)
    want_grads = torch.autograd.grad((plain * upstream).sum(), reference, retain_graph=True)
    inputs = [t.detach().float().to(device).requires_grad_(True) for t in reference]
    fused = linear_log_prob(*inputs, targets.to(device))  # (R,)
    grads = torch.autograd.grad((fused * upstream.float().to(device)).sum(), inputs)
    weights = torch.full((rows,), -1.0 / rows, dtype=torch.float64)
    summed = linear_log_prob_sum(*inputs, targets.to(device), weights.float().to(device))
    sum_grads = torch.autograd.grad(summed, inputs)
    want_sum_grads = torch.autograd.grad((plain * weights).sum(), reference)
    errors = {"values_max_abs": float((fused.detach().double().cpu() - plain.detach()).abs().max()),
              "gradients_max_relative": max(relative_error(g, w) for g, w in zip(grads, want_grads)),
              "sum_value_relative": relative_error(summed, (plain * weights).sum()),
              "sum_gradients_max_relative": max(relative_error(g, w) for g, w in zip(sum_grads, want_sum_grads))}
    passed = errors["values_max_abs"] <= 1e-4 and errors["sum_value_relative"] <= 1e-5 and max(
        errors["gradients_max_relative"], errors["sum_gradients_max_relative"]) <= 1e-4
    return {"tolerance": "log-probabilities within 1e-4 (absolute), the sum within 1e-5 and every gradient within "
                         "1e-4 of the largest (relative) of float64 on the CPU", **errors, "passed": passed}


def check_monte_carlo(device: torch.device, setting: Setting) -> dict[str, Any]:
    """Q of one batch from the same uniforms on the device and on the CPU (the setting's discriminator).

    A rollout token is drawn by comparing a uniform with a cumulative sum; float
    rounding differs between devices, so a draw at a CDF boundary may flip and
    that rollout continue differently. Such rollouts are found by comparing the
    rollouts themselves; Q may differ by 1/N per diverged rollout (a score is in
    [0, 1]) and by 1e-4 (float rounding) otherwise.
    """
    torch.manual_seed(4)
    policy = Generator(MODEL).eval()
    disc = Discriminator(MODEL.vocab_size, MODEL.seq_len, **setting.discriminator).eval()
    rng = torch.Generator().manual_seed(5)
    sequences = policy.sample(setting.mc_batch, generator=rng)  # (B, T)
    n = setting.num_rollouts
    uniforms = MonteCarloQ(n).draw_uniforms(setting.mc_batch, MODEL.seq_len, generator=rng)  # (B, T-1, N, T)
    engine_cpu = MonteCarloQ(n)
    q_cpu = engine_cpu(sequences, policy, disc, uniforms=uniforms)  # (B, T)
    rollouts_cpu = engine_cpu.rollouts(sequences, policy, uniforms)  # (T-1, B, N, T)
    policy_dev, disc_dev = copy.deepcopy(policy).to(device), copy.deepcopy(disc).to(device)
    engine_dev = MonteCarloQ(n, chunk_rows=GPU_CHUNK_ROWS if device.type == "cuda" else SAMPLING_CHUNK_ROWS)
    q_dev = engine_dev(sequences.to(device), policy_dev, disc_dev, uniforms=uniforms.to(device)).cpu()
    rollouts_dev = engine_dev.rollouts(sequences.to(device), policy_dev, uniforms.to(device)).cpu()
    diverged = (rollouts_cpu != rollouts_dev).any(dim=-1)  # (T-1, B, N)
    allowed = 1e-4 + diverged.sum(dim=-1).t().double() / n  # (B, T-1)
    difference = (q_dev - q_cpu).abs().double()  # (B, T)
    passed = bool((difference[:, :-1] <= allowed).all()) and float(difference[:, -1].max()) <= 1e-4 and float(
        diverged.double().mean()) <= 1e-3
    return {"tolerance": "|dQ| <= 1e-4 + (diverged rollouts of the prefix) / N, D(y) within 1e-4, at most 0.1 % of "
                         "the rollouts diverged", "batch": setting.mc_batch, "num_rollouts": n,
            "diverged_rollouts": int(diverged.sum()), "rollouts": int(diverged.numel()),
            "max_abs_q_difference": float(difference.max()), "passed": passed}


def check_discriminator(device: torch.device, setting: Setting) -> dict[str, Any]:
    """The discriminator's scores (``score``, the token-table path) and eval-mode ``forward`` on the device vs
    the CPU, for 2,048 random sequences."""
    torch.manual_seed(6)
    disc = Discriminator(MODEL.vocab_size, MODEL.seq_len, **setting.discriminator).eval()
    disc_dev = copy.deepcopy(disc).to(device)
    tokens = torch.randint(0, MODEL.vocab_size, (2048, MODEL.seq_len), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        score_cpu, score_dev = disc.score(tokens), disc_dev.score(tokens).cpu()
        forward_cpu = disc(tokens).softmax(dim=1)[:, 1]
        forward_dev = disc_dev(tokens).softmax(dim=1)[:, 1].cpu()
    errors = {"score_max_abs": float((score_dev - score_cpu).abs().max()),
              "forward_max_abs": float((forward_dev - forward_cpu).abs().max()),
              "score_vs_forward_on_device_max_abs": float((score_dev - forward_dev).abs().max())}
    return {"tolerance": "P(real) within 1e-4", **errors, "passed": max(errors.values()) <= 1e-4}


def check_d_step(device: torch.device, setting: Setting) -> dict[str, Any]:
    """One d-step (one epoch over 256 real + 256 fake, minibatches of 64: 8 Adam steps) from the same weights
    and shuffling, dropout off so that both runs see the same network.

    Adam's first steps move a parameter by about lr whatever the size of its
    gradient, so a gradient that is ~0 may point either way on either device:
    a parameter may then differ by up to 2·lr per step; all others agree to
    float rounding.
    """
    torch.manual_seed(8)
    disc = Discriminator(MODEL.vocab_size, MODEL.seq_len, **{**setting.discriminator, "dropout_keep": 1.0})
    disc_dev = copy.deepcopy(disc).to(device)
    data = torch.Generator().manual_seed(9)
    real = torch.randint(0, MODEL.vocab_size, (256, MODEL.seq_len), generator=data)
    fake = torch.randint(0, MODEL.vocab_size, (256, MODEL.seq_len), generator=data)
    lr, steps = 1e-4, 8
    stats = [train_discriminator(model, make_discriminator_optimizer(model, lr=lr), real, fake, epochs=1,
                                 batch_size=64, generator=torch.Generator().manual_seed(10))
             for model in (disc, disc_dev)]
    deltas = torch.cat([(a.detach() - b.detach().cpu()).abs().flatten()
                        for a, b in zip(disc.parameters(), disc_dev.parameters())])
    result = {"loss_cpu": stats[0]["loss"], "loss_device": stats[1]["loss"],
              "accuracy_cpu": stats[0]["accuracy"], "accuracy_device": stats[1]["accuracy"],
              "parameters_max_abs_difference": float(deltas.max()),
              "parameters_differing_by_over_1e-6": float((deltas > 1e-6).double().mean())}
    passed = (abs(stats[0]["loss"] - stats[1]["loss"]) <= 1e-4 * abs(stats[0]["loss"])
              and stats[0]["accuracy"] == stats[1]["accuracy"]
              and result["parameters_max_abs_difference"] <= 2 * lr * steps
              and result["parameters_differing_by_over_1e-6"] <= 1e-3)
    return {"tolerance": "loss within 1e-4 (relative), the same accuracy, parameters within 2 lr per step and at "
                         "most 0.1 % of them differing by more than 1e-6", **result, "passed": passed}


def check_generator(device: torch.device) -> dict[str, Any]:
    """The MLE loss of a batch of 64 and its gradients on the device vs the CPU. The teacher-forced LSTM runs
    in cuDNN, which PyTorch lets use TF32 on Ampere and later GPUs (``torch.backends.cudnn.allow_tf32``)."""
    torch.manual_seed(11)
    generator = Generator(MODEL)
    generator_dev = copy.deepcopy(generator).to(device)
    tokens = torch.randint(0, MODEL.vocab_size, (64, MODEL.seq_len), generator=torch.Generator().manual_seed(12))
    losses, grads = [], []
    for model in (generator, generator_dev):
        loss = model.mle_loss(tokens)
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
        losses.append(float(loss.detach()))
    errors = {"loss_relative": abs(losses[1] - losses[0]) / abs(losses[0]),
              "gradients_max_relative": max(relative_error(g, w) for g, w in zip(grads[1], grads[0]))}
    return {"tolerance": "loss within 1e-3 and gradients within 1e-2 of the largest (relative: TF32 in cuDNN's LSTM "
                         "keeps 10 mantissa bits)", "loss_cpu": losses[0], "loss_device": losses[1], **errors,
            "passed": errors["loss_relative"] <= 1e-3 and errors["gradients_max_relative"] <= 1e-2}


def run_checks(device: torch.device, setting: Setting, recorder: Recorder) -> dict[str, Any]:
    """Every check; one that raises fails with its error instead of stopping the run."""
    checks: dict[str, Callable[[], dict[str, Any]]] = {
        "sampling_chi_square": lambda: check_sampling(device, setting),
        "projection": lambda: check_projection(device),
        "monte_carlo_q": lambda: check_monte_carlo(device, setting),
        "discriminator_scores": lambda: check_discriminator(device, setting),
        "discriminator_d_step": lambda: check_d_step(device, setting),
        "generator_mle_loss": lambda: check_generator(device),
    }
    results = {}
    for name, check in checks.items():
        with recorder.part(f"check {name}"):
            try:
                results[name] = check()
            except Exception as error:  # a CUDA path that raises is a failed check, reported with the rest
                results[name] = {"passed": False, "error": f"{type(error).__name__}: {error}"}
        log(f"  {name}: {'passed' if results[name]['passed'] else 'FAILED'}")
    return results


# ------------------------------------------------------------------------------------------------ timings


@dataclass
class Models:
    """What the timed parts run on: oracle data on the device, a generator and its rollout policy, the
    setting's discriminator."""

    oracle: Oracle
    oracle_source: str
    train: torch.Tensor  # (num_train, T) on the CPU: an MLE epoch copies each minibatch over, as mle.py does
    valid: torch.Tensor  # (num_eval, T) on the device
    real: torch.Tensor  # (d_sequences, T) on the device
    generator: Generator
    rollout: RolloutPolicy
    discriminator: Discriminator
    engine: MonteCarloQ
    rng: torch.Generator


def build_models(device: torch.device, setting: Setting) -> Models:
    path = default_oracle_params()
    oracle = (Oracle.from_npz(path) if path else Oracle.random(MODEL, seed=PAPER_ORACLE_SEED)).to(device)
    rng = torch.Generator(device=device).manual_seed(13)
    torch.manual_seed(14)
    generator = Generator(MODEL).to(device)
    chunk_rows = GPU_CHUNK_ROWS if device.type == "cuda" else SAMPLING_CHUNK_ROWS
    return Models(oracle=oracle, oracle_source=str(path) if path else f"fresh N(0, 1) oracle, seed {PAPER_ORACLE_SEED}",
                  train=oracle.sample(setting.num_train, generator=rng).cpu(),
                  valid=oracle.sample(setting.num_eval, generator=rng),
                  real=oracle.sample(setting.d_sequences, generator=rng), generator=generator,
                  rollout=RolloutPolicy(generator, beta=0.8),
                  discriminator=Discriminator(MODEL.vocab_size, MODEL.seq_len, **setting.discriminator).to(device),
                  engine=MonteCarloQ(setting.num_rollouts, chunk_rows=chunk_rows), rng=rng)


def mle_epoch(models: Models, optimizer: torch.optim.Optimizer, steps: int | None = None) -> None:
    """One epoch of MLE as ``seqgan_rl.mle.pretrain_mle`` runs it (minibatches of 64 copied to the device,
    the MLE clip ``PretrainConfig.grad_clip``, fused Adam, the loss read back every step), or its first ``steps``
    minibatches."""
    generator = models.generator
    generator.train()
    order = torch.randperm(models.train.shape[0])
    batches = range(0, models.train.shape[0], 64)
    for start in list(batches)[:steps]:
        loss = generator.mle_loss(models.train[order[start:start + 64]].to(generator.device))
        generator_step(generator, optimizer, loss, PretrainConfig().grad_clip)
        loss.item()
    generator.eval()


def d_round(models: Models, disc: Discriminator, optimizer: torch.optim.Optimizer, setting: Setting,
            precision: str) -> dict[str, float]:
    """One d-round as the discriminator actor runs it: sample the negatives from G, train on them and as many
    real sequences for ``d_epochs`` epochs (minibatches of 64)."""
    fake = models.generator.sample(setting.d_sequences, generator=models.rng)  # (n, T)
    return train_discriminator(disc, optimizer, models.real, fake, epochs=setting.d_epochs, batch_size=64,
                               generator=torch.Generator().manual_seed(15), precision=precision)


def g_step(models: Models, optimizer: torch.optim.Optimizer, setting: Setting) -> None:
    """One adversarial generator step of the core loop on a batch of ``mc_batch`` (``_common.adversarial_g_step``)."""
    adversarial_g_step(models.generator, models.rollout, models.engine, models.discriminator.eval(), optimizer,
                       setting.mc_batch, models.rng)


def time_generator_parts(models: Models, setting: Setting, recorder: Recorder) -> dict[str, float]:
    generator, timings = models.generator, {}
    optimizer = torch.optim.Adam(generator.parameters(), lr=0.01, fused=True)
    with recorder.part("mle_epoch"):
        mle_epoch(models, optimizer, steps=5)  # warm-up
        timings["mle_epoch_measured_s"] = recorder.seconds(lambda: mle_epoch(models, optimizer), repeats=1)
    with recorder.part("nll_oracle_eval"):
        timings["nll_oracle_eval_measured_s"] = recorder.seconds(
            lambda: nll_oracle(generator, models.oracle, setting.num_eval, rng=models.rng), repeats=setting.repeats)
    with recorder.part("nll_test_eval"):
        timings["nll_test_eval_measured_s"] = recorder.seconds(lambda: nll_test(generator, models.valid),
                                                               repeats=setting.repeats)
    with recorder.part("sample"):
        timings["sample_measured_s"] = recorder.seconds(
            lambda: generator.sample(setting.num_eval, generator=models.rng), repeats=setting.repeats)
    return timings


def time_monte_carlo(models: Models, setting: Setting, recorder: Recorder) -> dict[str, float | None]:
    """The Monte Carlo batch with the paper discriminator (rollout workers' chunking), the rollouts alone,
    and on a GPU the same batch with the CPU's chunking (256 rows), to see what the larger chunks gain."""
    disc = models.discriminator.eval()
    sequences = models.generator.sample(setting.mc_batch, generator=models.rng)  # (B, T)
    policy = models.rollout.model
    timings: dict[str, float | None] = {}
    with recorder.part("mc_batch"):
        timings["mc_batch_measured_s"] = recorder.seconds(
            lambda: models.engine(sequences, policy, disc, generator=models.rng), repeats=setting.repeats)
        timings["mc_rollouts_only_measured_s"] = recorder.seconds(
            lambda: models.engine(sequences, policy, lambda t: torch.zeros(t.shape[0], device=t.device),
                                  generator=models.rng), repeats=setting.repeats)
        cpu_chunks = MonteCarloQ(setting.num_rollouts)
        timings["mc_batch_cpu_chunk_rows_measured_s"] = recorder.seconds(
            lambda: cpu_chunks(sequences, policy, disc, generator=models.rng),
            repeats=setting.repeats) if recorder.device.type == "cuda" else None
    return timings


def time_d_rounds(models: Models, setting: Setting, recorder: Recorder) -> tuple[dict[str, float], dict[str, Any]]:
    """A d-round in fp32 and in bf16 (autocast) from the same weights; the check that bf16 ends where fp32 does."""
    initial = copy.deepcopy(models.discriminator)
    warm = copy.deepcopy(initial)
    warm_optimizer = make_discriminator_optimizer(warm)
    for precision in ("fp32", "bf16"):  # kernels compiled and cached, autocast's included; not timed
        train_discriminator(warm, warm_optimizer, models.real[:64], models.real[64:128], epochs=1, precision=precision)
    timings, stats = {}, {}
    for precision, key in (("fp32", "d_round_measured_s"), ("bf16", "d_round_bf16_measured_s")):
        disc = copy.deepcopy(initial)
        optimizer = make_discriminator_optimizer(disc)
        with recorder.part(f"d_round_{precision}"):
            torch.manual_seed(16)  # the same dropout masks for both precisions
            start = time.perf_counter()
            stats[precision] = d_round(models, disc, optimizer, setting, precision)
            synchronize(recorder.device)
            timings[key] = time.perf_counter() - start
    loss = stats["fp32"]["loss"]
    check = {"tolerance": "final loss of the d-round within max(0.02, 1 %) of fp32's, accuracy within 0.02",
             "fp32": stats["fp32"], "bf16": stats["bf16"],
             "passed": abs(loss - stats["bf16"]["loss"]) <= max(0.02, 0.01 * abs(loss))
             and abs(stats["fp32"]["accuracy"] - stats["bf16"]["accuracy"]) <= 0.02}
    return timings, check


def estimate(timings: dict[str, float]) -> dict[str, float]:
    """The paper preset's wall time from the measured parts (``SCHEDULE``; d-rounds in fp32, as the preset)."""
    evaluation = timings["nll_oracle_eval_measured_s"] + timings["nll_test_eval_measured_s"]
    parts = {
        "mle_phase_estimated_s": SCHEDULE["mle_epochs"] * timings["mle_epoch_measured_s"]
        + SCHEDULE["mle_evaluations"] * evaluation,
        "d_pretrain_estimated_s": SCHEDULE["d_pretrain_rounds"] * timings["d_round_measured_s"],
        "adversarial_phase_estimated_s": SCHEDULE["adversarial_batches"] * (
            timings["adversarial_g_step_measured_s"] + SCHEDULE["d_steps"] * timings["d_round_measured_s"])
        + SCHEDULE["adversarial_evaluations"] * evaluation,
    }
    return {**parts, "paper_preset_estimated_s": sum(parts.values())}


def run_slice(models: Models, setting: Setting, recorder: Recorder, timings: dict[str, float],
              budget_s: float) -> dict[str, Any]:
    """``slice_batches`` adversarial batches of the core loop (g-step, ``slice_d_steps`` d-rounds), timed
    against the estimate from the parts; skipped when the budget would not hold it (1.5 x its estimate)."""
    estimated = setting.slice_batches * (timings["adversarial_g_step_measured_s"]
                                         + setting.slice_d_steps * timings["d_round_measured_s"])
    if recorder.elapsed_s + 1.5 * estimated > budget_s:
        return {"skipped": f"{recorder.elapsed_s:.0f} s spent; the slice (~{estimated:.0f} s) would pass the budget "
                           f"of {budget_s:.0f} s", "estimated_s": estimated}
    optimizer = torch.optim.Adam(models.generator.parameters(), lr=0.01)
    disc_optimizer = make_discriminator_optimizer(models.discriminator)
    with recorder.part("slice"):
        start = time.perf_counter()
        for _ in range(setting.slice_batches):
            g_step(models, optimizer, setting)
            for _ in range(setting.slice_d_steps):
                d_round(models, models.discriminator, disc_optimizer, setting, "fp32")
        synchronize(recorder.device)
        measured = time.perf_counter() - start
    return {"adversarial_batches": setting.slice_batches, "d_steps": setting.slice_d_steps, "measured_s": measured,
            "estimated_s": estimated, "measured_over_estimated": measured / estimated}


def run_timings(device: torch.device, setting: Setting, recorder: Recorder,
                budget_s: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every timed part, the estimate and the slice; returns them and the bf16 d-round check."""
    models = build_models(device, setting)
    timings: dict[str, Any] = {**time_generator_parts(models, setting, recorder),
                               **time_monte_carlo(models, setting, recorder)}
    d_timings, bf16_check = time_d_rounds(models, setting, recorder)
    timings.update(d_timings)
    optimizer = torch.optim.Adam(models.generator.parameters(), lr=0.01)
    with recorder.part("adversarial_g_step"):
        timings["adversarial_g_step_measured_s"] = recorder.seconds(lambda: g_step(models, optimizer, setting),
                                                                    repeats=setting.repeats)
    paper = setting.name == "paper"  # the goals and the estimate are the paper setting's
    result = {"oracle": models.oracle_source, "timings": timings,
              "goals": {key: {"goal_s": goal, "met": timings[key] <= goal if paper else None}
                        for key, goal in GOALS_S.items()},
              "estimate": estimate(timings),
              "estimate_basis": "the paper preset" if paper else "the paper schedule over this setting's reduced "
                                                                 "parts: not the paper preset's duration",
              "slice": run_slice(models, setting, recorder, timings, budget_s)}
    return result, bf16_check


# ------------------------------------------------------------------------------------------------ main


def environment(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on, and the torch settings that change CUDA results."""
    from seqgan_rl.models import torch_ops

    info: dict[str, Any] = {"device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda,
                            "torch_threads": torch.get_num_threads(),
                            "private_ops": {"softmax_": torch_ops.PRIVATE_SOFTMAX,
                                            "int8_matmul": torch_ops.PRIVATE_INT_MM},
                            "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_memory_bytes"] = torch.cuda.get_device_properties(device).total_memory
    return info


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="cuda, cuda:N, cpu or auto (cuda where there is one)")
    parser.add_argument("--setting", choices=sorted(SETTINGS), help="sizes (default: paper on a GPU, reduced on CPU)")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="wall time the run may take: the slice of the adversarial loop is skipped beyond it")
    parser.add_argument("--checks-only", action="store_true", help="the correctness checks alone (seconds)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    name = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device.replace("auto", "cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    setting = SETTINGS[args.setting or ("paper" if device.type == "cuda" else "reduced")]
    recorder = Recorder(device)
    log(f"device {device}, setting {setting.name}")
    checks = run_checks(device, setting, recorder)
    result: dict[str, Any] = {"environment": environment(device), "setting": asdict(setting), "checks": checks}
    if not args.checks_only:
        timed, checks["d_round_bf16"] = run_timings(device, setting, recorder, args.budget_s)
        result.update(timed)
    result["peak_memory_measured_bytes"] = recorder.peak_bytes
    result["all_checks_passed"] = all(check["passed"] for check in checks.values())
    result["failed_checks"] = [name for name, check in checks.items() if not check["passed"]]
    result["wall_measured_s"] = recorder.elapsed_s
    print(json.dumps(result))
    return 0 if result["all_checks_passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
