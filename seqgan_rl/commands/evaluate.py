"""``seqgan-rl evaluate``: BLEU, Self-BLEU, distinct-n, NLL of generated text; temperature sweeps.

The metrics themselves are ``seqgan_rl.evaluation.text_quality``; this module reads the
flags, picks the references, prints the table and, with ``--json``, one JSON
object whose ``results`` list has one record per input (and temperature),
whether one input was given or several.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqgan_rl.commands.common import device_flag
from seqgan_rl.errors import ConfigError
from seqgan_rl.evaluation.bleu import SELF_BLEU_SUBSETS, SMOOTHING_METHODS

if TYPE_CHECKING:
    from seqgan_rl.evaluation.text_quality import ScoringProtocol


def evaluate(args: argparse.Namespace) -> dict[str, Any] | None:
    from seqgan_rl.evaluation.text_quality import evaluate_checkpoint, plot_sweep, read_sentences, text_metrics

    checkpoints, sample_files = labelled(args.checkpoint or []), labelled(args.samples or [])
    if not checkpoints and not sample_files:
        raise ConfigError("evaluate needs --checkpoint (sample from a generator) or --samples FILE (score a file)")
    temperatures = parse_temperatures(args.temperatures) if args.temperatures else [args.temperature]
    if not args.temperature > 0:
        raise ConfigError(f"--temperature must be > 0, got {args.temperature}")
    if args.temperatures and not checkpoints:
        raise ConfigError("--temperatures samples a generator at each temperature: give --checkpoint")
    if args.limit is not None and args.limit < 2:
        raise ConfigError(f"--limit must be >= 2 (Self-BLEU needs two sentences), got {args.limit}")
    protocol = resolve_protocol(args)
    references_path, references = read_references(args, checkpoints)
    records = []
    for label, path in sample_files:
        sentences = read_sentences(path, tokenization=args.tokenize, lowercase=args.lowercase,
                                   vocab_path=args.vocab)[: args.limit]
        records.append({"label": label, "samples": str(path),
                        **text_metrics(sentences, references, protocol=protocol, seed=args.seed)})
    for label, path in checkpoints:
        for record in evaluate_checkpoint(
                path, temperatures, references=references, num_samples=args.n, seed=args.seed, protocol=protocol,
                vocab_path=args.vocab, test_data=args.test_data, oracle_params=args.oracle_params,
                device=device_flag(args.device)):
            records.append({"label": label, **record})
    summary: dict[str, Any] = {
        "references": None if references_path is None else str(references_path),
        "num_references": None if references is None else len(references), "protocol": protocol.name,
        "scoring": protocol.describe(), "results": records}
    shown = records
    if len({label for label, _ in checkpoints}) < len(checkpoints):  # seeds of one model under one label
        shown = summary["over_seeds"] = over_seeds(records)
    print(describe_scoring(protocol))
    print(format_table(shown))
    if args.temperatures:
        summary["plot"] = str(plot_sweep(shown, args.plot or Path("temperature_sweep.png"), order=args.plot_order))
        print(f"plot: {summary['plot']}")
    return summary if args.json else None


def resolve_protocol(args: argparse.Namespace) -> ScoringProtocol:
    """``--protocol``'s scoring choices, with those given explicitly (``--smoothing``, ...) in their place.

    Raises:
        ConfigError: an unknown protocol or a bad ``--self-bleu-sample-size``, naming the option.
    """
    from seqgan_rl.evaluation.text_quality import scoring_protocol

    protocol = scoring_protocol(args.protocol)
    overrides: dict[str, Any] = {}
    if args.smoothing is not None:
        overrides["smoothing"] = None if args.smoothing == "none" else args.smoothing
    if args.self_bleu_sample_size is not None:
        overrides["self_bleu_sample_size"] = parse_sample_size(args.self_bleu_sample_size)
    if args.self_bleu_subset is not None:
        overrides["self_bleu_subset"] = args.self_bleu_subset
    return protocol.with_overrides(**overrides)


def parse_sample_size(text: str) -> int | None:
    """``--self-bleu-sample-size``: a whole number >= 1, or ``all`` (None).

    Raises:
        ConfigError: anything else.
    """
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"--self-bleu-sample-size must be a whole number >= 1 or 'all', got {text!r}")
    return value


def describe_scoring(protocol: ScoringProtocol) -> str:
    """One line above the table: the protocol and what it resolved to, so a pasted table says how it was scored."""
    size = protocol.self_bleu_sample_size
    if size is None:
        self_bleu = "all samples"
    elif protocol.self_bleu_subset == "truncate":
        self_bleu = f"the first {size} samples among themselves"
    else:
        self_bleu = f"{size} random samples, each against all"
    overridden = f" (set by option: {', '.join(protocol.overridden)})" if protocol.overridden else ""
    return (f"protocol {protocol.name}: smoothing {protocol.smoothing or 'none'}, BLEU-2..5 with uniform weights "
            f"against all references, Self-BLEU of {self_bleu}{overridden}")


def read_references(args: argparse.Namespace, checkpoints: list[tuple[str, Path]]) -> tuple[Path | None, Any]:
    """``--references``, else the first checkpoint's held-out split (``valid.parquet`` beside its data), else none."""
    from seqgan_rl.evaluation.bleu import BleuReferences
    from seqgan_rl.evaluation.text_quality import read_sentences
    from seqgan_rl.runs import find_data_dir, resolve_generator_file

    references_path = args.references
    if references_path is None and checkpoints:
        data_dir = find_data_dir(resolve_generator_file(checkpoints[0][1]))
        if data_dir is not None and (data_dir / "valid.parquet").is_file() and (data_dir / "vocab.json").is_file():
            references_path = data_dir / "valid.parquet"
    if references_path is None:
        return None, None
    return references_path, BleuReferences(read_sentences(references_path, tokenization=args.tokenize,
                                                          lowercase=args.lowercase, vocab_path=args.vocab,
                                                          keep_blank=False))


def parse_temperatures(text: str) -> list[float]:
    """``"0.5,0.7,1.0"`` -> [0.5, 0.7, 1.0]; every value finite and > 0.

    Raises:
        ConfigError: a value is not a number or not > 0.
    """
    values = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise ConfigError(f"--temperatures: {item!r} is not a number (expected e.g. 0.5,0.7,1.0)") from None
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"--temperatures: every temperature must be finite and > 0, got {item!r}")
        values.append(value)
    return values


COLUMNS = ("label", "temperature", "bleu2", "bleu3", "bleu4", "bleu5", "self_bleu2", "self_bleu3", "self_bleu4",
           "self_bleu5", "distinct1", "distinct2", "avg_length", "nll_test", "nll_oracle")


def over_seeds(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (label, temperature) of records that share them (checkpoints given one label: seeds of one
    model): each metric's mean, its sample standard deviation under ``<metric>_sd``, and ``seeds``."""
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["label"], record.get("temperature")), []).append(record)
    merged = []
    for (label, temperature), group in groups.items():
        record: dict[str, Any] = {"label": label, "temperature": temperature, "seeds": len(group)}
        for column in COLUMNS[2:]:
            values = [r[column] for r in group if isinstance(r.get(column), (int, float))]
            if len(values) == len(group):
                record[column] = statistics.fmean(values)
                record[f"{column}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
        merged.append(record)
    return merged


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of the records (columns that no record has are left out); a metric with a standard
    deviation over seeds (``over_seeds``) as mean ± sd."""
    columns = [c for c in COLUMNS + ("seeds",) if any(c in r for r in records)]

    def number(value: float) -> str:
        return f"{value:.3f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"

    def cell(record: dict[str, Any], column: str) -> str:
        value = record.get(column)
        if value is None:
            return "-"
        if isinstance(value, float):
            spread = record.get(f"{column}_sd")
            return number(value) if spread is None else f"{number(value)} ± {number(spread)}"
        return str(value)

    rows = [[cell(r, c) for c in columns] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def labelled(items: Sequence[str]) -> list[tuple[str, Path]]:
    """``LABEL=PATH`` or ``PATH`` items -> (label, path); a bare path is labelled by its run directory's name."""
    out = []
    for item in items:
        label, sep, path = item.partition("=")
        if not sep:
            path = item
            resolved = Path(item)
            label = (resolved if resolved.is_dir() else resolved.parent).name or resolved.name
            if resolved.is_file() and resolved.parent.name in ("mle", "checkpoints"):
                label = f"{resolved.parent.parent.name}/{resolved.parent.name}"
        out.append((label, Path(path)))
    return out



def add_parser(sub: Any) -> None:
    ev = sub.add_parser("evaluate", help="BLEU, Self-BLEU, distinct-n, NLL of generated text; temperature sweeps")
    ev.add_argument("--checkpoint", action="append", metavar="[LABEL=]PATH",
                    help="generator checkpoint or run directory to sample from (repeatable; checkpoints given one "
                         "LABEL are seeds of one model: the table and the plot show their mean ± sd)")
    ev.add_argument("--samples", action="append", metavar="[LABEL=]FILE",
                    help="generated sentences to score instead: text, one per line, or a .parquet token table "
                         "(repeatable)")
    ev.add_argument("--limit", type=int, help="score only the first N sentences of each --samples file")
    ev.add_argument("--references", type=Path,
                    help="reference corpus: text (one sentence per line) or .parquet token table (default: the "
                         "first checkpoint's held-out split, valid.parquet beside its training data)")
    ev.add_argument("--tokenize", choices=("whitespace", "word", "char"), default="whitespace",
                    help="how text files become tokens: whitespace (already tokenised), or prepare-data's word/char")
    ev.add_argument("--lowercase", action="store_true", help="lower-case text files before tokenising")
    ev.add_argument("--vocab", type=Path, help="vocab.json for token tables / checkpoints (default: found)")
    ev.add_argument("--n", type=int, default=1000, help="sentences sampled per checkpoint and temperature")
    ev.add_argument("--temperature", type=float, default=1.0)
    ev.add_argument("--temperatures", metavar="T1,T2,...",
                    help="sweep these temperatures and plot quality vs diversity")
    ev.add_argument("--plot", type=Path, help="PNG of the sweep (default: temperature_sweep.png)")
    ev.add_argument("--plot-order", type=int, default=4, choices=(2, 3, 4, 5), help="BLEU order plotted")
    ev.add_argument("--protocol", default="none", metavar="NAME",
                    help="named scoring choices (smoothing, Self-BLEU subset), stated in the output: none (this "
                         "project's defaults), paper (SeqGAN's), texygen (NLTK method1 smoothing, as Texygen's "
                         "published tables); the options below override them (default: none)")
    ev.add_argument("--smoothing", choices=("none", *SMOOTHING_METHODS),
                    help="NLTK smoothing method for BLEU and Self-BLEU (default: the protocol's)")
    ev.add_argument("--self-bleu-sample-size", metavar="N|all",
                    help="Self-BLEU of this many samples (default: the protocol's)")
    ev.add_argument("--self-bleu-subset", choices=SELF_BLEU_SUBSETS,
                    help="which samples --self-bleu-sample-size scores: sample (drawn at random, each against all "
                         "the others) or truncate (the first N, each against the rest of them, as Texygen) "
                         "(default: the protocol's)")
    ev.add_argument("--test-data", type=Path, help="held-out token table for NLL-test (default: the run's)")
    ev.add_argument("--oracle-params", type=Path, help="oracle .npz for NLL-oracle (default: the run's, if any)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--json", action="store_true",
                    help="print the results as one JSON object on the last line ({..., \"results\": [...]})")
    ev.set_defaults(handler=evaluate)
