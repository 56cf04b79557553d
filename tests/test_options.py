"""Every option is declared once and wired: a walk over every field of ``TrainConfig`` / ``PretrainConfig``.

For each field the walk checks that it is reachable from the command line
(``train``, ``pretrain``, ``tune``), that it round-trips through ``config.json``,
that it arrives unchanged in the RLlib config and in the Learner's Monte Carlo
piece (RLlib's own names included, ``RLLIB_OPTIONS``), and that some code of
``seqgan_rl`` reads it. A field added to the dataclass alone fails the last
check until the code where it acts reads it.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL

from seqgan_rl.commands.cli import build_parser
from seqgan_rl.config import PRESETS, TRAIN_PRESETS, PretrainConfig, TrainConfig
from seqgan_rl.config.options import (
    Options,
    flat_dict,
    flat_field,
    flat_names,
    group,
    option,
    option_overrides,
    optional_type,
)
from seqgan_rl.errors import ConfigError

PACKAGE = Path(__file__).resolve().parent.parent / "seqgan_rl"
DECLARATIONS = {PACKAGE / "config" / "__init__.py", PACKAGE / "config" / "options.py"}
"""The files that declare the options: reading a field there does not wire it."""


def leaf_fields(cls: type) -> list[tuple[str, type, dataclasses.Field]]:
    """(flat name, owning class, field) for every option, those of a group by their flat name (``d_steps``,
    ``mle_epochs``)."""
    return [(name, *flat_field(cls, name)) for name in flat_names(cls)]


TRAIN_FIELDS = leaf_fields(TrainConfig)
PRETRAIN_FIELDS = leaf_fields(PretrainConfig)


def other_value(cls: type, f: dataclasses.Field) -> Any:
    """A valid value of the field that differs from its default (and from every preset's)."""
    kind = typing.get_type_hints(cls)[f.name]
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    meta = f.metadata
    if default is None and meta.get("choices"):  # set elsewhere when unset (d_precision from precision)
        return meta["choices"][-1]
    if default is None:  # a per-algorithm option (T | None): a value within its bounds
        kind = optional_type(kind)
        default = 0.25 if kind is float else 3
        return default if meta.get("le") is not None else default * 3 + (0.5 if kind is float else 0)
    if meta.get("choices"):
        return next(c for c in reversed(meta["choices"]) if c != default)
    if kind is bool:
        return not default
    if kind is str:  # a free-form string: reward_model, a name or module:function
        return "bleu"
    if typing.get_origin(kind) is dict:
        return {"emb_dim": 8, "filter_sizes": (1, 2), "num_filters": (4, 4)}
    if kind is float:
        return default / 2 + 0.1 if meta.get("le") is not None else default * 3 + 0.5
    return default + 1 if meta.get("le") is not None else default + 7


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def everything_changed() -> TrainConfig:
    """A ``TrainConfig`` whose every field (nested ones too) differs from the default."""
    return TrainConfig().with_overrides(**{name: other_value(cls, f) for name, cls, f in TRAIN_FIELDS})


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@pytest.mark.parametrize(("name", "cls", "f"), TRAIN_FIELDS, ids=[n for n, _, _ in TRAIN_FIELDS])
def test_every_train_option_is_a_flag_of_train_and_tune(name: str, cls: type, f: dataclasses.Field) -> None:
    value = other_value(cls, f)
    for command in (["train", "--preset", "smoke"], ["tune", "--generator-checkpoint", "g.pt", "--grid", "seed=1,2"]):
        args = build_parser().parse_args([*command, flag(name), as_text(value)])
        config = TRAIN_PRESETS["smoke"].with_overrides(**option_overrides(args, TrainConfig))
        assert flat_dict(config)[name] == value, (command[0], name)


@pytest.mark.parametrize(("name", "cls", "f"), PRETRAIN_FIELDS, ids=[n for n, _, _ in PRETRAIN_FIELDS])
def test_every_pretrain_option_is_a_flag_of_pretrain(name: str, cls: type, f: dataclasses.Field) -> None:
    value = other_value(cls, f)
    args = build_parser().parse_args(["pretrain", flag(name), as_text(value)])
    assert getattr(PRESETS["paper"].with_overrides(**option_overrides(args, PretrainConfig)), name) == value


def test_help_shows_each_option_with_its_doc_and_the_presets_values(capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "2000")  # no wrapping inside hyphenated words
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, _, f in TRAIN_FIELDS:
        assert flag(name) in text, name
        assert " ".join(f.metadata["doc"].split()) in text, name
    assert "--batches" in text and "--beta" in text  # the short spellings stay
    assert "[paper 200, cpu 100, smoke 3]" in text  # what --adversarial-batches overrides, per preset
    assert "{fp32,bf16}" in text  # choices come from the declaration


def test_config_json_round_trip_keeps_every_field() -> None:
    config = everything_changed()
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    for name, _, _ in TRAIN_FIELDS:  # every field really differs from the default
        assert flat_dict(config)[name] != flat_dict(TrainConfig())[name], name
    with pytest.raises(ConfigError, match="unknown config field"):
        TrainConfig.from_dict({**config.to_dict(), "no_such_option": 1})


@pytest.fixture(scope="module")
def run_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    from seqgan_rl.data.tables import write_token_table
    from seqgan_rl.models.generator import Generator
    from seqgan_rl.models.oracle import Oracle
    from seqgan_rl.storage.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("options")
    write_token_table(root / "real.parquet", Oracle.random(SMALL, seed=3).sample(50).numpy(), SMALL.vocab_size)
    save_checkpoint(root / "mle.pt", "mle", {"generator": Generator(SMALL).state_dict(),
                                              "generator_config": SMALL.__dict__})
    return str(root / "real.parquet"), str(root / "mle.pt")


@pytest.mark.parametrize("algo", ["seqgan", "ppo", "appo", "impala"])
def test_every_option_arrives_unchanged_in_the_rllib_config_and_the_learner(run_inputs, algo: str) -> None:
    from seqgan_rl.rllib.adversarial import monte_carlo_pieces, seqgan_settings
    from seqgan_rl.rllib.build import build_algorithm_config
    from seqgan_rl.rllib.settings import RLLIB_OPTIONS
    from seqgan_rl_envs import TokenGenerationEnv

    # 72 sequences: the changed minibatches (9) must divide them; SeqGAN's baselines are its own
    own = {} if algo == "seqgan" else {"baseline": "none", "reward_transform": "log_d"}
    # ideal_noise, ideal_density and ratio_start are refused beside the changed reward_model (bleu): they act on
    # the ideal and the ratio discriminator only; dense_rewards=increment beside seqgan's changed transform
    # (maligan), whose weights are not scores
    config = everything_changed().with_overrides(algo=algo, reward="shaped", discriminator={}, episodes_per_batch=72,
                                                 ideal_noise=0.0, ideal_density="", ratio_start="generator",
                                                 dense_rewards="prefix",
                                                 **own)
    real, mle = run_inputs
    algo_config = build_algorithm_config(config, SMALL, mle, real, discriminator_threads=1)
    algo_config.validate()
    assert seqgan_settings(algo_config).options == config  # what the AdversarialMixin reads
    for name, attribute in RLLIB_OPTIONS.items():
        assert getattr(algo_config, attribute) == flat_dict(config)[name], name
    env = TokenGenerationEnv(vocab_size=SMALL.vocab_size, seq_len=SMALL.seq_len, scorer=lambda tokens: 0.5)
    spaces = (env.observation_space, env.action_space)
    learner = algo_config.build_learner(env=None, spaces={"__env__": spaces, "default_policy": spaces})
    learner.build()
    [piece] = monte_carlo_pieces(learner)
    assert piece.options == config  # what the Learner's Monte Carlo piece reads
    assert learner.config.lr == config.algorithm.adversarial_lr
    assert learner.config.grad_clip == config.algorithm.grad_clip
    rllib_names = {  # each algorithm's own options, under RLlib's names
        "ppo": {"num_epochs": "num_epochs", "clip_param": "clip_param", "gae_lambda": "lambda_",
                "vf_coef": "vf_loss_coeff", "entropy_coef": "entropy_coeff"},
        "appo": {"num_epochs": "num_epochs", "clip_param": "clip_param", "vf_coef": "vf_loss_coeff",
                 "entropy_coef": "entropy_coeff", "vtrace_rho_clip": "vtrace_clip_rho_threshold",
                 "target_update_freq": "target_network_update_freq"},
        "impala": {"vf_coef": "vf_loss_coeff", "entropy_coef": "entropy_coeff",
                   "vtrace_rho_clip": "vtrace_clip_pg_rho_threshold"},
    }.get(algo, {})
    for name, attribute in rllib_names.items():
        assert getattr(algo_config, attribute) == flat_dict(config)[name], name
    if algo != "seqgan":
        assert algo_config.minibatch_size == 72 // config.algorithm.minibatches * SMALL.seq_len


def test_rllib_names_of_options_cannot_be_set_behind_their_back(run_inputs) -> None:
    from seqgan_rl.rllib.seqgan import SeqGANConfig

    real, mle = run_inputs
    config = SeqGANConfig().generator(SMALL, checkpoint=mle).training(real_data=real, seed=3)
    with pytest.raises(ConfigError, match="lr are the options adversarial_lr"):
        config.training(lr=0.5)
    config.debugging(seed=4)
    with pytest.raises(ConfigError, match="seed=4 differs from the option seed=3"):
        config.validate()


def attributes_read(path: Path) -> set[str]:
    return {node.attr for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Attribute)}


def test_every_option_is_read_by_the_code_where_it_acts() -> None:
    """A field declared in config.py that no code outside the declarations reads is not wired."""
    from seqgan_rl.rllib.settings import RLLIB_OPTIONS

    read: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path not in DECLARATIONS:
            read |= attributes_read(path)
    unread = [name for name, _, f in TRAIN_FIELDS + PRETRAIN_FIELDS
              if f.name not in read and f.name not in RLLIB_OPTIONS]
    assert not unread, f"options declared but read nowhere: {unread}"


def test_checks_come_from_the_declarations() -> None:
    for bad, message in [({"rollout_beta": 1.5}, r"rollout_beta must be in \[0, 1\], got 1.5"),
                         ({"d_steps": -1}, "d_steps must be >= 0, got -1"),
                         ({"mle_lr": 0.0}, "lr must be > 0, got 0.0"),
                         ({"score_precision": "fp8"}, "score_precision must be one of 'fp32', 'int8', got 'fp8'"),
                         ({"algo": "sac"}, "unknown algorithm 'sac'; known: seqgan, ppo, appo, impala"),
                         ({"no_such": 1}, "unknown config field")]:
        with pytest.raises(ConfigError, match=message):
            TrainConfig().with_overrides(**bad)


def test_the_docs_table_of_per_algorithm_defaults_is_the_code_s() -> None:
    """docs/algorithms.md lists ALGORITHM_DEFAULTS row by row (value and reason), nothing more, nothing less."""
    from seqgan_rl.config import ALGORITHM_DEFAULTS

    text = (Path(__file__).resolve().parent.parent / "docs" / "algorithms.md").read_text()
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|"))
            for line in text.splitlines() if line.startswith("| `") and line.count("|") == 5}
    expected = {(f"`{algo}`", f"`{name}`", f"{value}", reason)
                for algo, table in ALGORITHM_DEFAULTS.items() for name, (value, reason) in table.items()}
    assert rows == expected


@dataclasses.dataclass(frozen=True)
class FirstGroup(Options):
    steps: int = option(1, "steps of the first group")


@dataclasses.dataclass(frozen=True)
class SecondGroup(Options):
    count: int = option(1, "a count that a flag would name as the first group's steps", name="steps")


@dataclasses.dataclass(frozen=True)
class ClashingGroups(Options):
    first: FirstGroup = group(FirstGroup, "the first")
    second: SecondGroup = group(SecondGroup, "the second")


def test_every_option_has_one_flat_name_across_the_groups() -> None:
    """A flag, an override and a grid axis name one option: the groups' names never repeat, and a declaration
    that would repeat one is refused."""
    types = typing.get_type_hints(TrainConfig)
    groups = [types[f.name] for f in dataclasses.fields(TrainConfig) if dataclasses.is_dataclass(types[f.name])]
    count = sum(len(dataclasses.fields(g)) for g in groups) + len(dataclasses.fields(TrainConfig)) - len(groups)
    assert len(flat_names(TrainConfig)) == count == len(TRAIN_FIELDS)
    assert flat_names(TrainConfig)["d_steps"] == ("discriminator", "d_steps")
    assert flat_names(TrainConfig)["discriminator"] == ("discriminator", "cnn_sizes")
    assert flat_names(TrainConfig)["reward"] == ("reward", "shaping")
    assert flat_names(TrainConfig)["mle_epochs"] == ("mle", "epochs")
    with pytest.raises(TypeError, match=r"steps declared twice \(first.steps and second.count\)"):
        flat_names(ClashingGroups)


def test_flat_overrides_reach_their_group() -> None:
    config = TrainConfig().with_overrides(d_steps=3, reward="terminal", discriminator={"emb_dim": 8}, mle_epochs=2,
                                          num_mc_workers=2, algo="ppo", seed=4, adversarial_batches=7)
    assert (config.discriminator.d_steps, config.reward.shaping, config.discriminator.cnn_sizes) == \
        (3, "terminal", {"emb_dim": 8})
    assert (config.mle.epochs, config.resources.num_mc_workers, config.algorithm.algo, config.seed) == (2, 2, "ppo", 4)
    assert config.schedule.adversarial_batches == 7
    untouched = TrainConfig()
    assert config.rollouts == untouched.rollouts and config.mle.lr == untouched.mle.lr  # the rest as it was
    with pytest.raises(ConfigError, match="d_steps must be >= 0, got -1"):
        config.with_overrides(d_steps=-1)


def test_config_json_holds_the_groups_and_reads_back() -> None:
    config = TRAIN_PRESETS["cpu"]
    saved = json.loads(json.dumps(config.to_dict()))
    assert set(saved) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert saved["discriminator"]["d_steps"] == 1 and saved["schedule"]["adversarial_batches"] == 100
    assert saved["discriminator"]["cnn_sizes"]["num_filters"] == list(config.discriminator.cnn_sizes["num_filters"])
    assert TrainConfig.from_dict(saved) == config


def test_the_flat_config_json_of_a_run_from_before_the_groups_still_reads() -> None:
    """``tests/data/flat_run_config.json``: the options of ``test_resume``'s runs as the flat ``config.json``
    of the version before the groups held them (``test_resume`` resumes a run from it)."""
    flat = json.loads((Path(__file__).resolve().parent / "data" / "flat_run_config.json").read_text())
    args = build_parser().parse_args(["train", "--preset", "smoke", "--eval-every", "3", "--checkpoint-every", "3",
                                      "--seed", "7", "--kl-coef", "0.05", "--kl-target", "0.02", "--reward-model",
                                      "dense", "--dense-gamma", "0.5", "--reward-transform", "log_d", "--baseline",
                                      "ema", "--batches", "2"])
    expected = TRAIN_PRESETS["smoke"].with_overrides(**option_overrides(args, TrainConfig)).resolved()
    assert TrainConfig.from_dict(flat) == expected
    assert flat_dict(expected) == {**{k: v for k, v in flat.items() if k != "mle"},
                                   **{f"mle_{k}": v for k, v in flat["mle"].items()},
                                   "discriminator": expected.discriminator.cnn_sizes,  # tuples, not JSON lists
                                   "ratio_start": "generator", "ideal_density": ""}  # options newer than the file
    with pytest.raises(ConfigError, match="unknown config field"):
        TrainConfig.from_dict({**flat, "no_such_option": 1})


def test_the_options_are_resolved_where_the_run_starts_and_refused_unresolved_downstream(run_inputs) -> None:
    from seqgan_rl.experiment.run import starting_options
    from seqgan_rl.rllib.build import algorithm_training, build_algorithm_config
    from seqgan_rl.rllib.settings import SeqGANSettings, apply_rllib_options

    unresolved = TrainConfig().with_overrides(algo="ppo")
    resolved = starting_options(unresolved)
    assert (resolved.algorithm.num_epochs, resolved.discriminator.d_precision) == (4, "fp32")
    assert resolved.resolved() is resolved and resolved.check_resolved() is resolved  # nothing left to fill
    real, mle = run_inputs
    for downstream in (lambda: SeqGANSettings(unresolved, real, SMALL.__dict__),
                       lambda: algorithm_training(unresolved, 64 * SMALL.seq_len, SMALL.seq_len),
                       lambda: build_algorithm_config(unresolved, SMALL, mle, real, discriminator_threads=1),
                       lambda: apply_rllib_options(object(), unresolved)):
        with pytest.raises(ConfigError, match=r"an unresolved TrainConfig \(.*num_epochs.*\).*resolved\(\) where "
                                              "the run starts"):
            downstream()
    assert SeqGANSettings(resolved, real, SMALL.__dict__).options is resolved


def test_only_where_a_run_starts_resolves_the_options() -> None:
    """``TrainConfig.resolved`` is called where a run starts (the run's options, a Tune trial's pre-flight check,
    the ``SeqGANConfig`` a run built with RLlib's API starts from), nowhere downstream of them."""
    callers = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")
               if any(isinstance(node, ast.Attribute) and node.attr == "resolved"
                      for node in ast.walk(ast.parse(path.read_text())))}
    assert callers == {"experiment/run.py", "experiment/preflight.py", "rllib/seqgan.py"}
