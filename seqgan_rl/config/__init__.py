"""Every option of the MLE pretraining and SeqGAN training jobs, declared once, and their presets.

One frozen dataclass per job (cleanrl's ``Args`` pattern): each field is an
``option(default, doc, <checks>)`` and that declaration is the only one. The
``seqgan-rl`` flags (``pretrain``, ``train``, ``tune``) are generated from it
(``seqgan_rl.config.options``), ``config.json`` is its ``to_dict``, and the RLlib-side
settings carry the ``TrainConfig`` itself to the algorithm, the Learner and its
Monte Carlo piece (``seqgan_rl.rllib.settings``). Presets are named instances,
not copies of code (``PRESETS["paper"]``, ``TRAIN_PRESETS["cpu"]``).

``TrainConfig`` is made of groups, each a frozen dataclass of its own, as RLlib
groups an ``AlgorithmConfig``: ``schedule``, ``discriminator``, ``rollouts``,
``reward``, ``algorithm``, ``resources`` and ``mle`` (a ``PretrainConfig``), with
``precision`` and ``seed`` at the top. Code reads ``config.discriminator.d_steps``;
flags, overrides and Tune axes keep each option's one flat name (``d_steps``).

Adding an option: declare it in its group here, use it where it acts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from seqgan_rl.config.options import Options, flat_dict, group, option, with_overrides
from seqgan_rl.errors import ConfigError
from seqgan_rl.evaluation.bleu import SMOOTHING_METHODS
from seqgan_rl.mc.engine import DEFAULT_MAX_BATCH, DEFAULT_NUM_ROLLOUTS
from seqgan_rl.models.discriminator import PAPER_NUM_FILTERS
from seqgan_rl.models.ratio_discriminator import RATIO_OBJECTIVES, RATIO_STARTS

SEED_MAX = 2**31 - 1
"""The largest seed. RLlib seeds NumPy's global RNG with ``seed`` plus an EnvRunner's index (and 10**6 for an
evaluation one), and ``np.random.seed`` takes only [0, 2**32 - 1]: a negative seed, or one near the top,
would fail only once the adversarial phase starts, after the MLE phase."""

ALGORITHMS: tuple[str, ...] = ("seqgan", "ppo", "appo", "impala")
"""Generator optimisers ``seqgan-rl train --algo`` accepts."""

SCHEDULED_SAMPLING: tuple[str, ...] = ("none", "linear", "exponential", "inverse_sigmoid")
"""MLE input schedules: teacher forcing, or Bengio et al. (2015)'s decays (``seqgan_rl.mle.sampling_probability``)."""

REWARD_MODELS: tuple[str, ...] = ("discriminator", "dense", "ratio", "bleu", "constant", "ideal")
"""Named reward models (``seqgan_rl.rewards``); any other ``reward_model`` is a scorer ``module:function``."""

LEARNED_REWARD_MODELS: tuple[str, ...] = ("discriminator", "dense", "ratio")
"""Reward models trained against the generator in the discriminator actor: the paper's CNN, valued by the Monte
Carlo search, and the two that score every prefix in one pass (``DENSE_REWARD_MODELS``)."""

DENSE_REWARD_MODELS: tuple[str, ...] = ("dense", "ratio")
"""Learned reward models that score every prefix in one forward pass in the Learner, with no Monte Carlo search:
the causal LSTM classifier (docs/rewards.md, "Dense rewards") and the language model against the generator
(``seqgan_rl.models.ratio_discriminator``)."""

MONTE_CARLO_OPTIONS: tuple[str, ...] = ("num_rollouts", "rollout_beta", "rollout_mix_embedding", "num_mc_workers",
                                        "mc_worker_num_cpus", "mc_worker_num_gpus", "mc_max_batch",
                                        "score_precision", "discriminator")
"""Options of the Monte Carlo search and its CNN: ``DENSE_REWARD_MODELS`` run neither, so setting one of them
with it is refused (``refuse_monte_carlo_options``) rather than ignored."""

REWARD_TRANSFORMS: tuple[str, ...] = ("d", "2d-1", "log_d", "maligan")
"""What a score D becomes before it is averaged into Q (``seqgan_rl.rewards.transform_logits``): D itself (the
paper), 2D − 1 (ScratchGAN's centred reward), log D, or MaliGAN's D / (1 − D), normalised over the batch."""

DENSE_REWARDS: tuple[str, ...] = ("prefix", "increment")
"""A dense or ratio discriminator's reward of token t (``seqgan_rl.rewards.dense_values``): the score of the prefix
y_≤t itself, or how much token t changed it."""

BASELINES: tuple[str, ...] = ("none", "batch_mean", "ema", "prefix")
"""What SeqGAN's gradient subtracts from Q_t (``algo=seqgan`` only; the other algorithms have their own
advantages): nothing (the paper), the batch's mean Q at position t, an exponential moving average of it, or
the Monte Carlo value of the prefix before the token, Q_(t-1)."""


def check_reward_model_name(name: str) -> None:
    """Refuse a ``reward_model`` that is neither a named model nor ``module:function`` (nothing imported here)."""
    module, sep, function = name.partition(":")
    if name in REWARD_MODELS or (sep and module.strip() and function.strip() and ":" not in function):
        return
    raise ConfigError(f"unknown reward_model {name!r}; use one of {', '.join(REWARD_MODELS)} or a scorer "
                      "'module:function' (a callable mapping int64 token ids [M, T] to M rewards in [0, 1])")


@dataclass(frozen=True)
class PretrainConfig(Options):
    """MLE pretraining of the generator on the synthetic oracle (or a corpus)."""

    emb_dim: int = option(32, "generator embedding size (paper: 32)", gt=0)
    hidden_dim: int = option(32, "generator LSTM hidden size (paper: 32)", gt=0)
    batch_size: int = option(64, "sequences per MLE gradient step (paper: 64)", gt=0)
    lr: float = option(0.01, "MLE Adam learning rate (the original release: 0.01)", gt=0)
    grad_clip: float = option(5.0, "MLE global gradient-norm clip (the original release: 5.0)", gt=0)
    epochs: int = option(120, "MLE passes over the training sequences (the original release: 120)", gt=0)
    eval_every: int = option(5, "evaluate NLL-oracle / NLL-test every this many epochs (and after the last)", gt=0)
    num_train: int = option(10_000, "oracle sequences generated as training data when no --data is given "
                                    "(paper: 10,000)", gt=0)
    num_valid: int = option(10_000, "held-out oracle sequences (NLL-test) when no --data is given", ge=0)
    num_eval_samples: int = option(10_000, "generator samples scored by the oracle for one NLL-oracle "
                                           "(paper: 10,000)", gt=0)
    seed: int = option(0, "seeds the generator's initialisation, batching and sampling", ge=0, le=SEED_MAX)
    data_seed: int = option(1234, "seeds the oracle's samples used as training / held-out data", ge=0,
                            le=SEED_MAX)
    scheduled_sampling: str = option("none", "MLE inputs: none (teacher forcing: the previous real token) or a "
                                             "schedule of Bengio et al. (2015) under which each input is the "
                                             "model's own sample with a probability growing over the epochs to "
                                             "ss_final: linear, exponential or inverse_sigmoid",
                                     choices=SCHEDULED_SAMPLING)
    ss_final: float = option(0.25, "scheduled sampling: the probability of feeding the model's own sample in the "
                                   "last epoch", ge=0.0, le=1.0)



PRECISION_PARTS: dict[str, dict[str, str]] = {
    "exact": {"d_precision": "fp32", "score_precision": "fp32"},
    "fast": {"d_precision": "bf16", "score_precision": "int8"},
}
"""``--precision``'s modes: the value each part's own option takes under each (unless set on its own).
Each part still checks its device's hardware (``seqgan_rl.models.precision``)."""
PRECISIONS: tuple[str, ...] = tuple(PRECISION_PARTS)
FAST_MIN_FEATURES = 1_024
"""``fast`` lowers the discriminator's precision only from this many features (Σ num_filters) on. bf16
autocast and the int8 highway layer pay where the discriminator's GEMMs dominate its small ops: with the
paper's 1,720 features bf16 d-steps and int8 Monte Carlo scoring were faster than fp32; with the ``cpu``
preset's 430, bf16 d-steps were slower, int8 scoring no faster, and the whole preset took longer in
bf16/int8 than in fp32 (the measurements: docs/results.md, 'The cpu preset in both precision modes')."""


def discriminator_features(sizes: dict[str, Any]) -> int:
    """D, the pooled features of a discriminator built from ``sizes`` (``{}``: the paper's, 1,720)."""
    return sum(sizes.get("num_filters", PAPER_NUM_FILTERS))


PRESETS: dict[str, PretrainConfig] = {
    "paper": PretrainConfig(),
    "smoke": PretrainConfig(
        epochs=2, eval_every=1, num_train=1_000, num_valid=500, num_eval_samples=1_000
    ),
}
"""``paper``: the original release's MLE setting; ``smoke``: seconds, for tests and a first look."""


def get_preset(name: str) -> PretrainConfig:
    """Look up a preset by name with a clear error listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}") from None


CPU_DISCRIMINATOR: dict[str, Any] = {
    "emb_dim": 64,
    "filter_sizes": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20),
    "num_filters": (25, 50, 50, 50, 50, 25, 25, 25, 25, 25, 40, 40),
}
"""The paper's filter widths with a quarter of the filters (430 features): ~1/8 of the FLOPs."""


@dataclass(frozen=True)
class ScheduleOptions(Options):
    """How long the adversarial phase runs and how often it evaluates and checkpoints."""

    adversarial_batches: int = option(200, "adversarial batches = SeqGAN.train() iterations (paper: 200)", gt=0,
                                      flags=("--batches",))
    episodes_per_batch: int = option(64, "generated sequences per generator update (paper: 64)", gt=0)
    g_steps: int = option(1, "generator updates per adversarial batch, each on fresh episodes (paper: 1)", gt=0)
    eval_every: int = option(5, "evaluate NLL-oracle / NLL-test every this many adversarial batches "
                                "(the original: 5)", gt=0)
    checkpoint_every: int = option(10, "write a checkpoint every this many adversarial batches (and after the "
                                       "last)", gt=0)
    keep_checkpoints: int = option(2, "keep this many newest checkpoints (a resume falls back to an older one "
                                      "when the newest fails its manifest)", gt=0)
    info_samples: int = option(1_000, "the discriminator's information measure at every evaluation: this many "
                                      "held-out real and as many fresh generated sequences (0 = off)", ge=0)


@dataclass(frozen=True)
class DiscriminatorOptions(Options):
    """The discriminator: its training schedule (d-steps), optimiser, precision and sizes."""

    d_steps: int = option(5, "discriminator steps per adversarial batch, each on fresh negatives (paper: 5)", ge=0)
    d_epochs: int = option(3, "passes over real + negatives per d-step (paper: 3)", gt=0)
    d_batch_size: int = option(64, "discriminator minibatch size (paper: 64)", gt=0)
    d_num_negatives: int = option(10_000, "generated sequences per d-step (paper: 10,000, as many as real ones)",
                                  gt=0)
    d_fresh_real: bool = option(False, "oracle data only: each d-step's real sequences are fresh samples of the "
                                       "oracle (as many as its negatives) instead of the fixed training set, "
                                       "so the discriminator cannot memorise its positives")
    d_pretrain_rounds: int = option(50, "d-steps against the MLE generator before the adversarial phase "
                                        "(paper: 50)", ge=0)
    d_lr: float = option(1e-4, "discriminator Adam learning rate (paper: 1e-4)", gt=0)
    d_precision: str | None = option(None, "precision of the d-steps: fp32, or bf16 (autocast; float32 on a CPU "
                                           "without AVX512_BF16/AMX); unset: from --precision",
                                     choices=("fp32", "bf16"))
    cnn_sizes: dict[str, Any] = option(doc="Discriminator sizes as JSON (emb_dim, filter_sizes, num_filters, "
                                           "dropout_keep, l2_reg); empty = the paper's CNN", factory=dict,
                                       name="discriminator")
    dense_sizes: dict[str, Any] = option(doc="reward_model=dense: its sizes and regularisers as JSON (emb_dim, "
                                             "hidden_dim, num_layers, dropout_keep, l2_reg, layer_norm); "
                                             "empty = the defaults of DenseDiscriminator", factory=dict,
                                         name="dense_discriminator")
    ratio_objective: str = option("mle", "reward_model=ratio: how q learns in each d-step: mle (maximum "
                                         "likelihood on the real sequences; the negatives set only the "
                                         "reference) or nce (the discriminator's cross-entropy at every "
                                         "prefix, which fades as real and generated separate)",
                                  choices=RATIO_OBJECTIVES)
    ratio_start: str = option("generator", "reward_model=ratio: where q starts: generator (the MLE generator: D = "
                                           "1/2 everywhere, no information) or oracle (the synthetic oracle's "
                                           "weights: with a d_lr too small to move it, D*'s information through "
                                           "the ratio reward's one-pass path; oracle data only)",
                              choices=RATIO_STARTS)


@dataclass(frozen=True)
class RolloutOptions(Options):
    """The Monte Carlo search that values each token: its completions and rollout policy."""

    num_rollouts: int = option(DEFAULT_NUM_ROLLOUTS, "N, Monte Carlo completions per prefix (paper: 16)", gt=0)
    rollout_beta: float = option(0.8, "beta, weight kept on the old rollout-policy parameters per update "
                                      "(paper: 0.8)", ge=0.0, le=1.0, flags=("--beta",))
    rollout_mix_embedding: bool = option(False, "also mix the embedding table into the rollout policy (the "
                                                "original copies it)")
    mc_max_batch: int = option(DEFAULT_MAX_BATCH, "rollout rows advanced and scored together in a worker (bounds "
                                                  "memory)", gt=0)
    score_precision: str | None = option(None, "precision of the rollout workers' discriminator: fp32 or int8 "
                                               "(CPU; a GPU scores in fp32 with TF32); unset: from --precision",
                                         choices=("fp32", "int8"))


@dataclass(frozen=True)
class ResourceOptions(Options):
    """What the Ray actors and the Learner ask of the cluster, and how long a call on an actor may take."""

    discriminator_num_cpus: float = option(1.0, "CPUs of the discriminator actor", ge=0)
    discriminator_num_gpus: float = option(0.0, "GPUs of the discriminator actor", ge=0)
    num_mc_workers: int = option(0, "K Monte Carlo rollout actors; 0 computes Q in the Learner's process", ge=0)
    mc_worker_num_cpus: float = option(1.0, "CPUs of each rollout actor", ge=0)
    mc_worker_num_gpus: float = option(0.0, "GPUs of each rollout actor (0.25: four share a GPU)", ge=0)
    learner_num_gpus: float = option(0.0, "GPUs of the RLlib Learner (the generator's update); it runs in the driver "
                                          "process, so > 0 puts it on the GPU the driver sees (the CPU, with a "
                                          "warning, where the driver sees none)", ge=0)
    actor_timeout_s: float = option(600.0, "the longest one call on a Ray actor may take (a d-step, a Monte Carlo "
                                    "shard, a reward) before the actor is taken for hung, killed and replaced",
                                    gt=0)


@dataclass(frozen=True)
class RewardOptions(Options):
    """What scores a sequence and how the scores become the generator's rewards."""

    reward_model: str = option("discriminator", "what scores a finished sequence: discriminator (the paper's, "
                                                "trained against G), bleu (BLEU-n against the real training data: "
                                                "the paper's PG-BLEU), constant (--constant-reward for every "
                                                "sequence: the control), dense (a causal LSTM discriminator "
                                                "scoring every prefix in one pass, no Monte Carlo search), "
                                                "ratio (a language model q against G, logit log q - log p_G "
                                                "of every prefix: a learned discriminator in D*'s form; no "
                                                "Monte Carlo search), ideal (the optimal discriminator "
                                                "p_oracle/(p_oracle+p_G) of the current G; oracle data only) or a "
                                                "scorer 'module:function' mapping int64 ids [M, T] to M rewards in "
                                                "[0, 1]", check=check_reward_model_name)
    constant_reward: float = option(0.45, "reward_model=constant: the score of every sequence, hence Q_t for every "
                                          "token (the default: SeqGAN's mean Q over its first batches on the cpu "
                                          "preset); the control that isolates the sharpening of SeqGAN's "
                                          "unbaselined gradient", ge=0.0, le=1.0)
    ideal_noise: float = option(0.0, "reward_model=ideal: the standard deviation (nats) of a fixed error added "
                                     "to D*'s logit, sum_t e[t, y_t] with e ~ N(0, sigma^2/T) drawn once from the "
                                     "run's seed: the bound made as uninformative as a learned discriminator "
                                     "(eval/d_spearman falls below 1), wrong in a way the generator can learn",
                                ge=0.0)
    ideal_density: str = option("", "reward_model=ideal: the language model whose density stands for p_oracle in "
                                     "D*, an .npz in the oracle's layout (Oracle.save_npz) readable where the Monte "
                                     "Carlo search runs; empty: the data's oracle.npz. A q fitted to real data "
                                     "(benchmarks/discriminator_information.py --save-q) makes D* a frozen ratio "
                                     "discriminator valued through the search")
    reward_transform: str = option("d", "what each score D becomes before it is averaged into Q: d (the paper), "
                                        "2d-1 (ScratchGAN), log_d, or maligan (D/(1-D), normalised to mean 1 over "
                                        "the batch at each position; algo=seqgan)", choices=REWARD_TRANSFORMS)
    baseline: str = option("none", "algo=seqgan: subtracted from Q_t in the policy gradient: none (the paper), "
                                   "batch_mean (the batch's mean Q at position t), ema (an exponential moving "
                                   "average of that mean over batches, ScratchGAN's) or prefix (Q_(t-1), the "
                                   "Monte Carlo value of the prefix before the token; the batch's mean Q_1 for "
                                   "the first token)", choices=BASELINES)
    baseline_decay: float = option(0.9, "baseline=ema: weight kept on the average per batch", ge=0.0, le=0.999)
    dense_rewards: str = option("prefix", "reward_model=dense or ratio: token t's reward: prefix (f(D(y_1..y_t)), "
                                          "the prefix's own score) or increment (f(D(y_1..y_t)) - "
                                          "f(D(y_1..y_(t-1))): with --dense-gamma 1 they add up to the whole "
                                          "sequence's score minus the score of the prefix before the token)",
                                choices=DENSE_REWARDS)
    dense_gamma: float = option(0.0, "reward_model=dense or ratio: the discount of the per-prefix rewards "
                                     "f(D(y_1..y_t)): "
                                     "SeqGAN's Q_t is their discounted sum from t on, ppo/appo/impala get them as "
                                     "per-token rewards with this discount (0: Q_t is the prefix's own score; "
                                     "ScratchGAN discounts with a gamma below 1)", ge=0.0, le=1.0)
    bleu_n: int = option(2, "reward_model=bleu: the BLEU order n (weights 1/n over orders 1..n); on the oracle, "
                            "BLEU-3 is below 1e-10 for 93 % of the MLE generator's samples without smoothing",
                         ge=1, le=5)
    bleu_smoothing: str = option("none", "reward_model=bleu: none or an NLTK smoothing method (method1: "
                                         "Texygen's)", choices=("none", *SMOOTHING_METHODS))
    shaping: str = option("shaped", "ppo/appo/impala: Monte Carlo values as shaped rewards Q_t - Q_(t-1) "
                                    "(shaped) or only the discriminator's terminal reward (terminal)",
                          choices=("shaped", "terminal"), name="reward")
    kl_coef: float = option(0.0, "c: every token's reward loses c * (log G(y_t|y_<t) - log G_MLE(y_t|y_<t)), a KL "
                                 "penalty toward the starting (MLE) generator; 0 = the paper", ge=0)
    kl_target: float = option(0.0, "> 0: adapt kl_coef after every batch toward this KL per token (nats); "
                                   "0 = kl_coef fixed", ge=0)


@dataclass(frozen=True)
class AlgorithmOptions(Options):
    """The generator's optimiser in the adversarial phase and its settings (``None``: the algorithm's own
    default, ``ALGORITHM_DEFAULTS``, filled by ``TrainConfig.resolved``)."""

    algo: str = option("seqgan", "the generator's optimiser: seqgan (the paper's policy gradient) or an RLlib "
                                 "algorithm with the same env, module, rewards and discriminator",
                       choices=ALGORITHMS, noun="algorithm")
    adversarial_lr: float | None = option(None, "generator Adam learning rate in the adversarial phase", gt=0)
    grad_clip: float = option(5.0, "generator gradient-norm clip in the adversarial phase (the original "
                                   "release: 5.0)", gt=0)
    num_epochs: int | None = option(None, "ppo/appo: passes over each batch of episodes", gt=0)
    minibatches: int | None = option(None, "ppo/appo/impala: minibatches per pass over a batch of episodes (whole "
                                           "sequences each)", gt=0)
    clip_param: float | None = option(None, "ppo/appo: clip of the surrogate objective's probability ratio", gt=0)
    gae_lambda: float | None = option(None, "ppo: GAE's lambda", ge=0.0, le=1.0)
    vf_coef: float | None = option(None, "ppo/appo/impala: weight of the value loss", ge=0)
    entropy_coef: float | None = option(None, "ppo/appo/impala: weight of the entropy bonus", ge=0)
    vtrace_rho_clip: float | None = option(None, "appo/impala: V-trace's clip of the importance weights (rho-bar, "
                                                 "also for the policy gradient)", gt=0)
    target_update_freq: int | None = option(None, "appo: batches between copies of the generator to its target "
                                                  "network", gt=0)
    value_warmup_steps: int | None = option(None, "ppo/appo/impala: value-head updates on Monte Carlo returns of "
                                                  "samples of the starting generator, before the first policy update "
                                                  "(the policy unchanged)", ge=0)

    @staticmethod
    def default_note(name: str) -> str:
        """How ``--help`` shows a per-algorithm default: ``"seqgan 0.01, ppo 0.001, ..."``."""
        return ", ".join(f"{algo} {table[name][0]}" for algo, table in ALGORITHM_DEFAULTS.items() if name in table)


@dataclass(frozen=True)
class TrainConfig(Options):
    """Full SeqGAN training: MLE pretraining, discriminator pretraining, adversarial batches.

    Its options come in groups, as RLlib's ``AlgorithmConfig`` groups its own (``.training``,
    ``.resources``): ``config.discriminator.d_steps``, ``config.reward.reward_model``. Every option keeps
    one flat name, unique across the groups (``seqgan_rl.config.options.flat_names``): its flag
    (``--d-steps``), its ``with_overrides`` keyword and its Tune grid axis (``d_steps``).
    """

    mle: PretrainConfig = group(PretrainConfig, "the MLE phase (skipped when a generator checkpoint is given)",
                                prefixed=True)
    schedule: ScheduleOptions = group(ScheduleOptions, "the adversarial phase's length, evaluations and checkpoints")
    discriminator: DiscriminatorOptions = group(DiscriminatorOptions, "the discriminator: d-steps, optimiser, "
                                                                      "precision, sizes")
    rollouts: RolloutOptions = group(RolloutOptions, "the Monte Carlo search: completions per prefix, rollout "
                                                     "policy, scoring")
    reward: RewardOptions = group(RewardOptions, "the reward model and how its scores become rewards")
    algorithm: AlgorithmOptions = group(AlgorithmOptions, "the generator's optimiser and its settings (unset: "
                                                          "the algorithm's default, in brackets)")
    resources: ResourceOptions = group(ResourceOptions, "the actors' and the Learner's CPUs and GPUs, and their "
                                                        "deadline")
    precision: str = option("exact", "the run's arithmetic: exact (float32 everywhere) or fast (bf16 d-steps "
                                     "and int8 Monte Carlo scoring where the hardware has them, for a "
                                     "discriminator of >= 1,024 features, where they are faster; "
                                     "docs/algorithms.md gives the tolerances)", choices=PRECISIONS)
    seed: int = option(0, "seeds RLlib, the discriminator, the rollouts and the evaluation samples", ge=0,
                       le=SEED_MAX)

    def resolved(self) -> TrainConfig:
        """A copy whose per-algorithm options left at ``None`` hold ``ALGORITHM_DEFAULTS[algo]``'s values,
        and whose ``d_precision`` / ``score_precision`` left at ``None`` follow ``precision``.

        Called once, where a run starts (``seqgan_rl.experiment.run``, a Tune trial's pre-flight check,
        ``SeqGANConfig``); what runs it downstream refuses an unresolved config (``check_resolved``).
        Options that ``algo`` does not use stay ``None``. A run writes the resolved options to its
        ``config.json``, so a resumed run uses the values it started with.
        """
        filled = self._unresolved()
        return with_overrides(self, filled, check=False) if filled else self

    def check_resolved(self) -> TrainConfig:
        """Raise ``ConfigError`` unless ``resolved()`` has nothing left to fill; return self.

        The RLlib settings, the algorithm's build and the Learner read the options as they are: one left
        at ``None`` there would be RLlib's own default, not the one this project chose for the algorithm.
        """
        unfilled = sorted(self._unresolved())
        if unfilled:
            raise ConfigError(f"an unresolved TrainConfig ({', '.join(unfilled)} left unset): call "
                              "TrainConfig.resolved() where the run starts")
        return self

    def _unresolved(self) -> dict[str, Any]:
        """Flat name → the value ``resolved`` gives each option left at ``None`` that it fills."""
        current = flat_dict(self)
        wanted = {name: value for name, (value, _) in ALGORITHM_DEFAULTS.get(self.algorithm.algo, {}).items()}
        if self.precision in PRECISIONS:  # an unknown one is reported by validate()
            wanted.update(self.precision_parts())
        return {name: value for name, value in wanted.items() if current[name] is None}

    def validate(self) -> TrainConfig:
        """Each option's own checks, then the rules that tie the reward options to the algorithm."""
        super().validate()
        algo, reward = self.algorithm.algo, self.reward
        if reward.baseline != "none" and algo != "seqgan":
            raise ConfigError(f"baseline={reward.baseline!r} is for algo=seqgan (its gradient has no baseline); "
                              f"algo={algo!r} computes its own advantages: use baseline=none")
        if reward.reward_transform == "maligan" and algo != "seqgan":
            raise ConfigError(f"reward_transform='maligan' is MaliGAN's estimator for algo=seqgan; with algo={algo!r} "
                              "use d, 2d-1 or log_d")
        if reward.shaping == "terminal" and algo != "seqgan":
            if reward.reward_transform != "d":
                raise ConfigError(f"reward_transform={reward.reward_transform!r} transforms the Monte Carlo values; "
                                  "reward=terminal has none: use reward=shaped or reward_transform=d")
            if reward.reward_model == "ideal":
                raise ConfigError("reward_model='ideal' is computed from the current generator in the Learner's Monte "
                                  "Carlo step; reward=terminal skips it: use reward=shaped")
        if reward.ideal_noise > 0 and reward.reward_model != "ideal":
            raise ConfigError(f"ideal_noise={reward.ideal_noise} is an error added to the ideal discriminator; "
                              f"reward_model={reward.reward_model!r} has none: use reward_model=ideal or ideal_noise=0")
        if reward.reward_model in DENSE_REWARD_MODELS:
            self._check_dense()
        if reward.dense_rewards == "increment" and reward.reward_transform == "maligan":
            raise ConfigError("dense_rewards='increment' takes differences of prefix scores; MaliGAN's normalised "
                              "weights are not scores: use reward_transform d, 2d-1 or log_d, or "
                              "dense_rewards=prefix")
        if reward.reward_model == "ratio" and self.discriminator.d_steps == 0:
            raise ConfigError("reward_model='ratio' scores against the generator of the latest d-step; d_steps=0 "
                              "would leave it at the MLE generator: use d_steps >= 1")
        if reward.reward_model == "ratio" and self.discriminator.d_pretrain_rounds == 0:
            raise ConfigError("reward_model='ratio' takes its reference generator from a d-step; d_pretrain_rounds=0 "
                              "would score the first batch against no generator: use d_pretrain_rounds >= 1")
        if reward.ideal_density and reward.reward_model != "ideal":
            raise ConfigError(f"ideal_density={reward.ideal_density!r} is the density of the ideal discriminator; "
                              f"reward_model={reward.reward_model!r} has none: use reward_model=ideal or leave "
                              "ideal_density empty")
        if reward.ideal_density and not Path(reward.ideal_density).is_absolute():
            raise ConfigError(f"ideal_density={reward.ideal_density!r} must be an absolute path: it is read where the "
                              "Monte Carlo search runs and when the run is resumed, from any directory")
        if self.discriminator.ratio_start != "generator" and reward.reward_model != "ratio":
            raise ConfigError(f"ratio_start={self.discriminator.ratio_start!r} is where the ratio discriminator's q "
                              f"starts; reward_model={reward.reward_model!r} has no q: use reward_model=ratio or "
                              "ratio_start=generator")
        return self

    def _check_dense(self) -> None:
        """A reward model of ``DENSE_REWARD_MODELS`` runs no Monte Carlo search and no reduced precision."""
        reward_model = self.reward.reward_model
        for name in ("num_mc_workers", "mc_worker_num_gpus"):
            if getattr(self.resources, name) > 0:
                raise ConfigError(f"reward_model={reward_model!r} scores every prefix in the Learner and "
                                  f"runs no Monte Carlo search: {name}={getattr(self.resources, name)} would start "
                                  "rollout workers for nothing; use 0")
        if self.discriminator.d_precision == "bf16" or self.rollouts.score_precision == "int8":
            raise ConfigError(f"reward_model={reward_model!r}: its LSTM trains and scores in fp32; use "
                              "d_precision=fp32 and score_precision=fp32 (or precision=exact)")

    def precision_parts(self) -> dict[str, str]:
        """What ``precision`` asks of ``d_precision`` and ``score_precision``: ``PRECISION_PARTS[precision]``,
        except that ``fast`` keeps a discriminator narrower than ``FAST_MIN_FEATURES`` in fp32 (there its
        reduced precision is slower), and the dense discriminator always (its LSTM has no reduced path)."""
        if self.precision == "fast" and (self.reward.reward_model in DENSE_REWARD_MODELS or
                                         discriminator_features(self.discriminator.cnn_sizes) < FAST_MIN_FEATURES):
            return PRECISION_PARTS["exact"]
        return PRECISION_PARTS[self.precision]


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # a GPU job: the discriminator actor shares the GPU
    "paper": TrainConfig().with_overrides(discriminator_num_gpus=0.5),
    "cpu": TrainConfig(mle=replace(PRESETS["paper"], eval_every=10)).with_overrides(
        adversarial_batches=100, d_steps=1, d_epochs=1, d_num_negatives=5_000, d_pretrain_rounds=10,
        discriminator=CPU_DISCRIMINATOR, eval_every=10, checkpoint_every=20,
    ),
    "smoke": TrainConfig(mle=PRESETS["smoke"]).with_overrides(
        adversarial_batches=3, episodes_per_batch=16, d_steps=1, d_epochs=1,
        d_num_negatives=200, d_pretrain_rounds=1, num_rollouts=4, eval_every=1, checkpoint_every=2,
        discriminator={"emb_dim": 16, "filter_sizes": (1, 2, 3, 5), "num_filters": (8, 8, 8, 8)},
    ),
}
"""``paper``: the original release's whole schedule (a GPU job: the discriminator actor asks for half a
GPU; an actor without one computes on the CPU); ``cpu``: the same MLE phase and
generator, a narrower discriminator and a lighter d-schedule, 100 adversarial batches (sized for a
2-core CPU; its time: docs/results.md, 'The cpu preset in both precision modes'); ``smoke``: the
shortest run through every phase, for tests and a first look."""


ALGORITHM_DEFAULTS: dict[str, dict[str, tuple[Any, str]]] = {
    "seqgan": {
        "adversarial_lr": (0.01, "the original release's Adam step on the summed loss -sum_t log G * Q_t"),
    },
    "ppo": {
        "adversarial_lr": (1e-3, "4 epochs x 4 minibatches = 16 Adam steps per batch: a tenth of SeqGAN's step"),
        "num_epochs": (4, "reuses each batch of 64 sequences as PPO does (Schulman et al., 2017: 3-10)"),
        "minibatches": (4, "16 sequences per minibatch, 16 updates per batch with the clip keeping them close"),
        "clip_param": (0.2, "the PPO paper's value"),
        "gae_lambda": (0.0, "with shaped rewards a token's advantage is its own Monte Carlo increment Q_t - Q_(t-1) "
                             "(plus V(s_(t+1)) - V(s_t)); a larger lambda adds the later tokens' noise"),
        "vf_coef": (0.5, "the value head has its own parameters (it reads the LSTM's state without moving it)"),
        "entropy_coef": (0.0, "SeqGAN has none; NLL-oracle rewards a sharper generator"),
        "value_warmup_steps": (10, "the first advantages use a fitted value head (10 x 64 sequences), not a "
                                   "zero one"),
    },
    "appo": {
        "adversarial_lr": (1e-3, "as PPO: several Adam steps per batch with a clipped ratio"),
        "num_epochs": (2, "two passes over each batch (APPO is asynchronous: fewer reuses than PPO)"),
        "minibatches": (2, "two minibatches of 32 sequences per pass"),
        "clip_param": (0.2, "the PPO paper's value"),
        "vf_coef": (0.5, "as PPO"),
        "entropy_coef": (0.0, "as SeqGAN"),
        "vtrace_rho_clip": (1.0, "IMPALA's rho-bar"),
        "target_update_freq": (1, "the target network follows the generator after every batch"),
        "value_warmup_steps": (10, "as PPO"),
    },
    "impala": {
        "adversarial_lr": (1e-3, "V-trace's advantages are not normalised: a small step per update"),
        "minibatches": (2, "two updates of 32 sequences per batch"),
        "vf_coef": (0.5, "as PPO"),
        "entropy_coef": (0.0, "as SeqGAN"),
        "vtrace_rho_clip": (1.0, "IMPALA's rho-bar"),
        "value_warmup_steps": (10, "as PPO"),
    },
}
"""Each algorithm's values of the options it uses, with the reason for each (``TrainConfig.resolved``;
any of them can be set on the command line or in a Tune grid)."""


def refuse_monte_carlo_options(reward_model: str, given: Iterable[str], where: str = "") -> None:
    """Raise if options of the Monte Carlo search (``MONTE_CARLO_OPTIONS``) were given with a reward model of
    ``DENSE_REWARD_MODELS``, which runs no search, or the dense discriminator's sizes with ``ratio`` (it has the
    generator's): they would be ignored. ``given`` are the option names set explicitly (flags, a Tune grid's
    axes); ``where`` says where, for the message."""
    if reward_model not in DENSE_REWARD_MODELS:
        return
    ignored = MONTE_CARLO_OPTIONS + (("dense_discriminator",) if reward_model == "ratio" else ())
    named = [name for name in ignored if name in set(given)]
    if named:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in named)
        sizes = ("--dense-discriminator sets the dense discriminator's sizes" if reward_model == "dense" else
                 "the ratio discriminator has the generator's sizes")
        raise ConfigError(f"reward_model={reward_model!r} scores every prefix in one pass and runs no Monte Carlo "
                          f"search: {flags}{f' ({where})' if where else ''} would do nothing; drop "
                          f"{'it' if len(named) == 1 else 'them'} ({sizes})")


def get_train_preset(name: str) -> TrainConfig:
    """Look up a training preset by name with a clear error listing the known ones."""
    try:
        return TRAIN_PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(sorted(TRAIN_PRESETS))}") from None
