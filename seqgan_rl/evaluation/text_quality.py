"""Quality and diversity of generated text, over sampling temperatures (``seqgan-rl evaluate``).

What is measured, for a set of generated sentences (from a checkpoint, sampled
here, or from a text file):

* **BLEU-2..5** (quality): every generated sentence against the *whole*
  reference corpus, averaged over sentences, as the SeqGAN paper and Texygen
  do (``seqgan_rl.evaluation.bleu``: NLTK's numbers, without its cost);
* **Self-BLEU-2..5** (diversity, lower = more diverse): every generated
  sentence against all the other generated ones;
* **distinct-n** (diversity): distinct n-grams / all n-grams over the whole set;
* **average length** in tokens (a model can win BLEU by writing short, safe
  sentences);
* for checkpoints, **NLL-test** (the model's NLL per token of the held-out
  split, at the sampling temperature) and, on oracle data, **NLL-oracle**.

How BLEU and Self-BLEU are scored (smoothing, which samples Self-BLEU scores)
is a named :class:`ScoringProtocol` (``none``, ``paper``, ``texygen``), stated
with the figures, because published tables differ in exactly these choices.

A single temperature hides the trade-off between quality and diversity:
lowering the temperature raises BLEU and Self-BLEU together, so "GAN beats MLE"
at temperature 1 can be a temperature effect (Caccia et al., "Language GANs
Falling Short", 2020). ``evaluate_checkpoint`` evaluates a checkpoint at
several temperatures and ``plot_sweep`` plots BLEU against Self-BLEU and
against NLL-test, one curve per checkpoint.

Token conventions: generated rows are decoded with the run's vocabulary up to
their first ``<eos>`` (``<pad>`` dropped, ``<unk>`` kept as a token); text
files are split on whitespace by default (text that is already tokenised,
e.g. written by ``seqgan-rl sample``), or tokenised as ``prepare-data`` does
(``word`` / ``char``); a ``.parquet`` token table is decoded with the
``vocab.json`` beside it. Character-level corpora are scored per character.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqgan_rl.data.oracle_data import load_oracle
from seqgan_rl.data.tables import read_token_table
from seqgan_rl.data.text import read_text_lines, tokenize_line
from seqgan_rl.data.vocabulary import Vocabulary
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.evaluation.bleu import BleuReferences, self_bleu
from seqgan_rl.evaluation.generation import TextDecoder
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.runs import find_data_dir, load_generator, resolve_generator_file, run_record

TOKENIZATIONS: tuple[str, ...] = ("whitespace", "word", "char")
"""How lines of a text file become tokens: split on whitespace, or ``prepare-data``'s word / char tokeniser."""

BLEU_ORDERS = range(2, 6)
DISTINCT_ORDERS = range(1, 5)


@dataclass(frozen=True)
class ScoringProtocol:
    """A named set of BLEU and Self-BLEU scoring choices, stated with every figure scored under it.

    Published BLEU tables of text generators differ in choices that move the
    numbers more than the models differ: NLTK's ``method1`` smoothing lifts the
    BLEU-4 of a sentence without a matching 4-gram from almost 0 to tenths (on
    Image COCO captions, BLEU-5 from 0.131 to 0.248), and Self-BLEU of the first
    500 of 10,000 captions among themselves (Texygen's code default) is 0.311
    at order 4 where all 10,000 give 0.575. A figure is comparable only to one
    scored the same way, so the choices travel with the name.

    Common to every protocol: BLEU-2..5 with uniform weights 1/n, each sample
    against *all* the references (the held-out split unless ``--references``
    names a file), sentence scores averaged over the samples; Self-BLEU-2..5 the
    same with the other samples as references. The protocols differ in the
    fields below. See :data:`PROTOCOLS`.
    """

    name: str
    smoothing: str | None
    """``None`` or an NLTK ``SmoothingFunction`` method name, for BLEU and Self-BLEU alike."""
    self_bleu_sample_size: int | None
    """Self-BLEU of this many samples; ``None``: all."""
    self_bleu_subset: str
    """How those samples are picked: one of :data:`seqgan_rl.evaluation.bleu.SELF_BLEU_SUBSETS` (checked when
    scoring)."""
    source: str
    """Where the choices come from (a paper, a file of a repository)."""
    overridden: tuple[str, ...] = ()
    """The choices set explicitly in place of the protocol's (an option wins over the protocol)."""

    def with_overrides(self, **choices: Any) -> ScoringProtocol:
        """The protocol with the given choices in place of its own, each named in ``overridden``.

        Args:
            choices: any of ``smoothing``, ``self_bleu_sample_size``, ``self_bleu_subset``.

        Raises:
            ConfigError: not one of those choices (the values are checked when scoring).
        """
        unknown = sorted(set(choices) - set(OVERRIDABLE_CHOICES))
        if unknown:
            raise ConfigError(f"not a scoring choice: {', '.join(unknown)}; use {', '.join(OVERRIDABLE_CHOICES)}")
        overridden = tuple(name for name in OVERRIDABLE_CHOICES if name in choices or name in self.overridden)
        return replace(self, **choices, overridden=overridden)

    def describe(self) -> dict[str, Any]:
        """Every resolved choice (not the name), for the JSON output: how the figures beside it were scored."""
        return {
            "smoothing": self.smoothing or "none",
            "bleu_orders": list(BLEU_ORDERS),
            "bleu_weights": "uniform 1/n",
            "bleu_references": "all",
            "self_bleu_sample_size": self.self_bleu_sample_size or "all",
            "self_bleu_subset": self.self_bleu_subset,
            "overridden": list(self.overridden),
            "source": self.source,
        }


OVERRIDABLE_CHOICES: tuple[str, ...] = ("smoothing", "self_bleu_sample_size", "self_bleu_subset")
"""The fields of :class:`ScoringProtocol` an explicit option may set."""

PROTOCOLS: dict[str, ScoringProtocol] = {
    protocol.name: protocol
    for protocol in (
        ScoringProtocol(
            "none", smoothing=None, self_bleu_sample_size=None, self_bleu_subset="sample",
            source="no published protocol: this project's defaults, each choice from its option"),
        ScoringProtocol(
            "paper", smoothing=None, self_bleu_sample_size=None, self_bleu_subset="sample",
            source="Yu et al., SeqGAN (AAAI 2017): BLEU against the held-out data, no smoothing named (the "
                   "authors' release has no BLEU code); Self-BLEU postdates the paper and is scored over all "
                   "samples"),
        ScoringProtocol(
            "texygen", smoothing="method1", self_bleu_sample_size=None, self_bleu_subset="truncate",
            source="Zhu et al., Texygen (SIGIR 2018), github.com/geek-ai/Texygen utils/metrics/Bleu.py, "
                   "SelfBleu.py, bleu_eval.py, docs/evaluation.md: NLTK sentence_bleu with "
                   "SmoothingFunction().method1, against the whole reference file and Self-BLEU over all "
                   "samples (get_score(is_fast=False), which reproduces its published tables; a sample size "
                   "truncates to the first N samples, as its is_fast=True default does with N = 500)"),
    )
}
"""The named protocols of ``seqgan-rl evaluate --protocol`` (docs/evaluation.md tabulates them)."""

DEFAULT_PROTOCOL = "none"


def scoring_protocol(name: str) -> ScoringProtocol:
    """The protocol called ``name`` (``--protocol``).

    Raises:
        ConfigError: no protocol has that name.
    """
    if name not in PROTOCOLS:
        raise ConfigError(f"--protocol: unknown scoring protocol {name!r}; use one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def read_sentences(
    path: str | Path,
    *,
    tokenization: str = "whitespace",
    lowercase: bool = False,
    vocab_path: str | Path | None = None,
    keep_blank: bool = True,
) -> list[list[str]]:
    """Sentences (lists of tokens) of a text file (one per line) or a ``.parquet`` token table.

    Args:
        path: a UTF-8 text file, or a token table decoded with ``vocab_path``
            (default: ``vocab.json`` in the same directory).
        tokenization: one of :data:`TOKENIZATIONS` (text files).
        lowercase: lower-case text lines before tokenising (``word`` / ``char``).
        keep_blank: keep blank lines as empty sentences (a generated sentence
            can be empty; a reference cannot, so references pass False).

    Raises:
        DataError: the file is missing, not UTF-8 (line named), holds no sentence,
            or a token table has no vocabulary to decode it.
        ConfigError: an unknown ``tokenization``.
    """
    if tokenization not in TOKENIZATIONS:
        raise ConfigError(f"tokenization must be one of {', '.join(TOKENIZATIONS)}, got {tokenization!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    if path.suffix == ".parquet":
        vocab_file = Path(vocab_path) if vocab_path is not None else path.parent / "vocab.json"
        if not vocab_file.is_file():
            raise DataError(f"{path}: a token table needs its vocabulary to be read as text; {vocab_file} not found "
                            "(give --vocab)")
        table = read_token_table(path)
        vocab = Vocabulary.load(vocab_file)
        if len(vocab) != table.vocab_size:
            raise DataError(f"{vocab_file}: {len(vocab)} tokens, {path} has vocabulary size {table.vocab_size}")
        sentences = [vocab.decode(row) for row in table.tokens]
        if not keep_blank:
            sentences = [sentence for sentence in sentences if sentence]
    else:
        sentences = []
        for line in read_text_lines(path):
            if tokenization == "whitespace":
                tokens = (line.lower() if lowercase else line).split()
            else:
                tokens = tokenize_line(line, tokenization, lowercase)  # type: ignore[arg-type]
            if tokens or keep_blank:
                sentences.append(tokens)
    if not any(sentences):
        raise DataError(f"{path}: no sentence with at least one token")
    return sentences


def distinct_n(sentences: Sequence[Sequence[str]], n: int) -> float:
    """Distinct-n (Li et al., 2016): distinct n-grams / all n-grams over ``sentences``; 0 when there are none."""
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    grams: Counter[tuple[str, ...]] = Counter()
    for sentence in sentences:
        grams.update(tuple(sentence[i : i + n]) for i in range(len(sentence) - n + 1))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def text_metrics(
    samples: Sequence[Sequence[str]],
    references: BleuReferences | None = None,
    *,
    protocol: ScoringProtocol = PROTOCOLS[DEFAULT_PROTOCOL],
    seed: int = 0,
) -> dict[str, float]:
    """BLEU-2..5 (with references), Self-BLEU-2..5, distinct-1..4 and average length of ``samples``.

    Args:
        samples: generated sentences, each a list of tokens.
        references: the reference corpus, prepared once (``BleuReferences``).
        protocol: how BLEU and Self-BLEU are scored (smoothing, Self-BLEU's subset).
        seed: seeds the random Self-BLEU subset (``self_bleu_subset="sample"``).

    Returns:
        ``bleu2``..``bleu5`` (when references are given), ``self_bleu2``..``self_bleu5``,
        ``distinct1``..``distinct4``, ``avg_length``, ``num_samples``.
    """
    if len(samples) == 0:
        raise DataError("no samples to evaluate")
    metrics: dict[str, float] = {}
    if references is not None:
        scores = references.score(samples, max_n=max(BLEU_ORDERS), min_n=min(BLEU_ORDERS),
                                  smoothing=protocol.smoothing)
        metrics.update({f"bleu{n}": scores[n] for n in BLEU_ORDERS})
    if len(samples) >= 2:
        scores = self_bleu(samples, max_n=max(BLEU_ORDERS), min_n=min(BLEU_ORDERS), smoothing=protocol.smoothing,
                           sample_size=protocol.self_bleu_sample_size, seed=seed, subset=protocol.self_bleu_subset)
        metrics.update({f"self_bleu{n}": scores[n] for n in BLEU_ORDERS})
    metrics.update({f"distinct{n}": distinct_n(samples, n) for n in DISTINCT_ORDERS})
    metrics["avg_length"] = float(np.mean([len(sentence) for sentence in samples]))
    metrics["num_samples"] = len(samples)
    return metrics


@dataclass(frozen=True)
class CheckpointData:
    """What a checkpoint is evaluated against besides references: held-out tokens and the oracle."""

    test_tokens: torch.Tensor | None
    """[n, T] held-out sequences for NLL-test (the run's ``valid.parquet`` unless given)."""
    test_path: Path | None
    oracle: Oracle | None
    """The synthetic oracle for NLL-oracle: the one given, else the run's (``oracle.npz`` beside its data,
    or the oracle a ``pretrain`` run sampled its data from)."""


def checkpoint_data(
    generator_file: Path,
    vocab_size: int,
    seq_len: int,
    *,
    test_data: str | Path | None = None,
    oracle_params: str | Path | None = None,
) -> CheckpointData:
    """Held-out tokens and oracle of a checkpoint's run (explicit paths win over the run's data directory).

    Raises:
        DataError: a file does not match the generator's vocabulary or length.
    """
    data_dir = find_data_dir(generator_file)
    test_path = Path(test_data) if test_data is not None else None
    if test_path is None and data_dir is not None and (data_dir / "valid.parquet").is_file():
        test_path = data_dir / "valid.parquet"
    test_tokens = None
    if test_path is not None:
        table = read_token_table(test_path)
        if table.vocab_size != vocab_size or table.seq_len != seq_len:
            raise DataError(f"{test_path}: vocabulary/length {table.vocab_size}/{table.seq_len}, the generator's "
                            f"are {vocab_size}/{seq_len}")
        test_tokens = torch.from_numpy(table.tokens.astype(np.int64))
    oracle, oracle_source = None, None
    record = run_record(generator_file)
    if oracle_params is not None:
        oracle, oracle_source = Oracle.from_npz(oracle_params), str(oracle_params)
    elif data_dir is not None and (data_dir / "oracle.npz").is_file():
        oracle, oracle_source = Oracle.from_npz(data_dir / "oracle.npz"), str(data_dir / "oracle.npz")
    elif record is not None and record.get("data_dir") is None:  # trained on oracle samples drawn on the fly
        oracle, oracle_source = load_oracle(record.get("oracle_params"))
    if oracle is not None and (oracle.vocab_size != vocab_size or oracle.seq_len != seq_len):
        raise DataError(f"{oracle_source}: oracle vocabulary/length {oracle.vocab_size}/{oracle.seq_len}, the "
                        f"generator's are {vocab_size}/{seq_len}")
    return CheckpointData(test_tokens, test_path, oracle)


def evaluate_checkpoint(
    checkpoint: str | Path,
    temperatures: Sequence[float],
    *,
    references: BleuReferences | None,
    num_samples: int = 1000,
    seed: int = 0,
    protocol: ScoringProtocol = PROTOCOLS[DEFAULT_PROTOCOL],
    vocab_path: str | Path | None = None,
    test_data: str | Path | None = None,
    oracle_params: str | Path | None = None,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Sample ``num_samples`` sentences at each temperature and measure them (one record per temperature).

    Each temperature samples with a fresh ``torch.Generator`` seeded by
    ``seed``, so a record does not depend on which other temperatures were asked.
    """
    if num_samples < 2:
        raise ConfigError(f"--n must be >= 2 (Self-BLEU needs two sentences), got {num_samples}")
    generator_file = resolve_generator_file(checkpoint)
    generator = load_generator(generator_file, device)
    decoder = TextDecoder.for_generator(generator_file, generator.vocab_size, vocab_path)
    data = checkpoint_data(generator_file, generator.vocab_size, generator.seq_len, test_data=test_data,
                           oracle_params=oracle_params)
    if data.oracle is not None:
        data.oracle.to(device)
    records = []
    for temperature in temperatures:
        rng = torch.Generator(device=device).manual_seed(seed)
        with torch.no_grad():
            tokens = generator.sample(num_samples, temperature=temperature, generator=rng)  # (n, T)
        record: dict[str, Any] = {"checkpoint": str(generator_file), "temperature": temperature}
        record.update(text_metrics(decoder.tokens(tokens.cpu().numpy()), references, protocol=protocol, seed=seed))
        if data.test_tokens is not None:
            record["nll_test"] = generator.nll(data.test_tokens.to(device), temperature=temperature)
        if data.oracle is not None:
            record["nll_oracle"] = data.oracle.nll(tokens)
        records.append(record)
    return records


def plot_sweep(records: Sequence[dict[str, Any]], path: str | Path, order: int = 4) -> Path:
    """Quality against diversity, one curve per label, points annotated with their temperature (bars: the
    standard deviation over seeds, where the records are ``over_seeds``'s).

    Left: BLEU-n against Self-BLEU-n (up and to the left is better); right:
    BLEU-n against NLL-test (up and to the left is better), when NLL-test is known.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bleu_key, self_key = f"bleu{order}", f"self_bleu{order}"
    if not all(bleu_key in r for r in records):
        raise ConfigError("the temperature plot needs BLEU: give --references (or a run with a validation split)")
    panels = [(self_key, f"Self-BLEU-{order} (lower = more diverse)")]
    if all("nll_test" in r for r in records):
        panels.append(("nll_test", "NLL-test (nats/token, lower = better coverage)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    labels = list(dict.fromkeys(r["label"] for r in records))
    for ax, (x_key, x_label) in zip(axes[0], panels):
        for label in labels:
            points = sorted((r for r in records if r["label"] == label), key=lambda r: r["temperature"])
            xs, ys = [p[x_key] for p in points], [p[bleu_key] for p in points]
            line = ax.plot(xs, ys, marker="o", label=label)[0]
            if all(f"{bleu_key}_sd" in p for p in points):  # seeds of one model: their standard deviation
                ax.errorbar(xs, ys, xerr=[p[f"{x_key}_sd"] for p in points], yerr=[p[f"{bleu_key}_sd"] for p in points],
                            fmt="none", ecolor=line.get_color(), alpha=0.6, capsize=2)
            for x, y, p in zip(xs, ys, points):
                ax.annotate(f"{p['temperature']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(x_label)
        ax.set_ylabel(f"BLEU-{order} (higher = better quality)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Quality vs diversity over sampling temperature (labels: temperature)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


