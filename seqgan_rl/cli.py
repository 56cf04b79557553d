"""``seqgan-rl``: the command line.

Sub-commands:

* ``prepare-data``: tokenise a text corpus, or sample the oracle, into Parquet
  token tables (``train.parquet``, ``valid.parquet``) in a directory.
* ``convert-oracle``: turn the authors' ``target_params_py3.pkl`` into ``.npz``.
* ``pretrain``: MLE pretraining of the generator (preset ``paper`` or ``smoke``).
* ``train``: the whole SeqGAN experiment on Ray (MLE, discriminator pretraining,
  adversarial batches), presets ``paper`` / ``cpu`` / ``smoke``, ``--resume``.
* ``sample``: generated sequences from a checkpoint, as text or Parquet.
* ``evaluate``: BLEU / Self-BLEU / distinct-n / NLL of a checkpoint's samples
  or of a text file, and quality-diversity sweeps over temperatures.
* ``tune``: a Ray Tune grid over training options, NLL-oracle as the metric.

Every user-facing error (bad data, impossible config) is printed as one line
naming the file / row / field, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from seqgan_rl.config import ALGORITHMS, PRESETS, TRAIN_PRESETS, get_preset, get_train_preset
from seqgan_rl.errors import SeqGANError


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SeqGANError(f"--device {name}: CUDA is not available on this machine")
    return name


def _cmd_prepare_data(args: argparse.Namespace) -> dict:
    from seqgan_rl.errors import ConfigError

    if bool(args.text) == bool(args.oracle):
        raise ConfigError("prepare-data needs exactly one of --text FILE or --oracle")
    if args.text:
        from seqgan_rl.data import prepare_text_dataset

        return dict(prepare_text_dataset(
            args.text, args.out, level=args.level, max_len=args.max_len, min_freq=args.min_freq,
            valid_fraction=args.valid_fraction, seed=args.seed, lowercase=not args.keep_case,
        ))
    from seqgan_rl.pretrain import load_oracle, write_oracle_dataset

    if args.num_train <= 0 or args.num_valid < 0:
        raise ConfigError(f"--num-train must be > 0 and --num-valid >= 0, got {args.num_train}, {args.num_valid}")
    oracle, source = load_oracle(args.oracle_params)
    return write_oracle_dataset(args.out, oracle, source, args.num_train, args.num_valid, args.seed)


def _cmd_convert_oracle(args: argparse.Namespace) -> dict:
    from seqgan_rl.oracle import convert_oracle_pickle

    oracle = convert_oracle_pickle(args.pickle, args.out)
    return {"out": str(args.out), "vocab_size": oracle.vocab_size, "emb_dim": oracle.config.emb_dim,
            "hidden_dim": oracle.config.hidden_dim}


def _cmd_pretrain(args: argparse.Namespace) -> dict:
    from seqgan_rl.pretrain import run_pretraining

    config = get_preset(args.preset).with_overrides(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, eval_every=args.eval_every,
        num_eval_samples=args.num_eval_samples,
    )
    run_dir = args.run_dir or Path("runs") / f"pretrain-{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    return run_pretraining(
        config, run_dir, data_dir=args.data, oracle_params=args.oracle_params, device=_device(args.device),
        progress=not args.no_progress,
    )


RESUME_OPTIONS = frozenset({"resume", "batches", "address", "num_cpus", "device", "no_progress"})
"""``train`` options that may go with ``--resume``: a resumed run keeps its own configuration and data."""


def _refuse_run_options_on_resume(args: argparse.Namespace) -> None:
    """Raise if ``--resume`` comes with an option it would ignore (the run's config.json decides them)."""
    from seqgan_rl.errors import ConfigError

    defaults = vars(build_parser().parse_args(["train"]))
    given = [f"--{name.replace('_', '-')}" for name, value in vars(args).items()
             if name in defaults and name not in RESUME_OPTIONS and value != defaults[name]]
    if given:
        raise ConfigError(f"--resume continues {args.resume} with its own configuration and data; "
                          f"{', '.join(given)} cannot change them (only --batches may be raised)")


def _cmd_train(args: argparse.Namespace) -> dict:
    from seqgan_rl.train import run_training

    if args.resume:
        _refuse_run_options_on_resume(args)
    device = _device(args.device)
    preset = args.preset
    if preset == "auto":
        preset = "paper" if device.startswith("cuda") else "cpu"
    config = get_train_preset(preset).with_overrides(
        adversarial_batches=args.batches, num_rollouts=args.num_rollouts, rollout_beta=args.beta,
        d_steps=args.d_steps, d_epochs=args.d_epochs, d_pretrain_rounds=args.d_pretrain_rounds,
        num_mc_workers=args.num_mc_workers, mc_worker_num_cpus=args.mc_worker_num_cpus,
        mc_worker_num_gpus=args.mc_worker_num_gpus, discriminator_num_gpus=args.discriminator_num_gpus,
        score_precision=args.score_precision, eval_every=args.eval_every, checkpoint_every=args.checkpoint_every,
        seed=args.seed, mle_epochs=args.mle_epochs, algo=args.algo, reward=args.reward, d_precision=args.d_precision,
    )
    if args.resume:
        run_dir = args.resume
    else:
        run_dir = args.run_dir or Path("runs") / f"seqgan-{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    summary = run_training(
        config, run_dir, data_dir=args.data, oracle_params=args.oracle_params,
        generator_checkpoint=args.generator_checkpoint, address=args.address, num_cpus=args.num_cpus,
        device=device, resume=args.resume is not None, resume_batches=args.batches if args.resume else None,
        progress=not args.no_progress,
    )
    return summary if args.resume else {"preset": preset, **summary}  # a resumed run's preset is not known


def _cmd_tune(args: argparse.Namespace) -> dict:
    import ray

    from seqgan_rl.tune import parse_grid, tune_seqgan

    base = get_train_preset(args.preset).with_overrides(adversarial_batches=args.batches,
                                                        eval_every=args.eval_every)
    grid = parse_grid(args.grid)
    if not ray.is_initialized():
        if args.address:
            from seqgan_rl.train import check_reachable

            check_reachable(args.address)  # ray.init would retry a dead address for many minutes
        ray.init(address=args.address or "local", num_cpus=None if args.address else args.num_cpus,
                 include_dashboard=False, log_to_driver=False)
    results = tune_seqgan(base, grid, generator_checkpoint=args.generator_checkpoint,
                          storage_path=args.storage_path, oracle_params=args.oracle_params,
                          num_samples=args.num_samples, max_concurrent_trials=args.max_concurrent_trials)
    best = results.get_best_result()
    return {"best_config": best.config, "best_nll_oracle": best.metrics.get("nll_oracle"),
            "trials": [{"config": r.config, "nll_oracle": r.metrics.get("nll_oracle"),
                        "nll_test": r.metrics.get("nll_test")} for r in results],
            "storage_path": str(args.storage_path)}


def _cmd_sample(args: argparse.Namespace) -> dict:
    from seqgan_rl.sample import write_samples

    return write_samples(args.checkpoint, args.out, args.n, temperature=args.temperature, seed=args.seed,
                         vocab_path=args.vocab, device=_device(args.device))


def _cmd_evaluate(args: argparse.Namespace) -> dict | None:
    from seqgan_rl.bleu import BleuReferences
    from seqgan_rl.errors import ConfigError
    from seqgan_rl.evaluate import (evaluate_checkpoint, format_table, labelled, parse_temperatures, plot_sweep,
                                    read_sentences, text_metrics)
    from seqgan_rl.sample import find_data_dir, resolve_generator_file

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
    references_path = args.references
    if references_path is None and checkpoints:  # the first checkpoint's held-out split
        data_dir = find_data_dir(resolve_generator_file(checkpoints[0][1]))
        if data_dir is not None and (data_dir / "valid.parquet").is_file() and (data_dir / "vocab.json").is_file():
            references_path = data_dir / "valid.parquet"
    references = None
    if references_path is not None:
        references = BleuReferences(read_sentences(references_path, tokenization=args.tokenize,
                                                   lowercase=args.lowercase, vocab_path=args.vocab, keep_blank=False))
    records = []
    for label, path in sample_files:
        sentences = read_sentences(path, tokenization=args.tokenize, lowercase=args.lowercase,
                                   vocab_path=args.vocab)[: args.limit]
        records.append({"label": label, "samples": str(path), **text_metrics(
            sentences, references, smoothing=args.smoothing, self_bleu_sample_size=args.self_bleu_sample_size,
            seed=args.seed)})
    for label, path in checkpoints:
        for record in evaluate_checkpoint(
                path, temperatures, references=references, num_samples=args.n, seed=args.seed,
                smoothing=args.smoothing, self_bleu_sample_size=args.self_bleu_sample_size, vocab_path=args.vocab,
                test_data=args.test_data, oracle_params=args.oracle_params, device=_device(args.device)):
            records.append({"label": label, **record})
    common = {"references": None if references_path is None else str(references_path),
              "num_references": None if references is None else len(references), "smoothing": args.smoothing}
    summary: dict = {**common, **records[0]} if len(records) == 1 else {**common, "results": records}
    if args.temperatures:
        plot = args.plot or Path("temperature_sweep.png")
        summary["plot"] = str(plot_sweep(records, plot, order=args.plot_order))
    print(format_table(records))
    if "plot" in summary:
        print(f"plot: {summary['plot']}")
    return summary if args.json else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqgan-rl", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    prep = sub.add_parser("prepare-data", help="tokenise a corpus or sample the oracle into Parquet token tables")
    prep.add_argument("--out", type=Path, required=True, help="output directory")
    prep.add_argument("--text", type=Path, help="UTF-8 text corpus, one sequence per line")
    prep.add_argument("--level", choices=("word", "char"), default="word", help="tokenisation level (text)")
    prep.add_argument("--max-len", type=int, help="sequence length incl. <eos> (text; default: longest line + 1)")
    prep.add_argument("--min-freq", type=int, default=1, help="rarer tokens become <unk> (text)")
    prep.add_argument("--valid-fraction", type=float, default=0.1, help="held-out share (text)")
    prep.add_argument("--keep-case", action="store_true", help="do not lower-case (text)")
    prep.add_argument("--oracle", action="store_true", help="sample the synthetic oracle instead of a corpus")
    prep.add_argument("--oracle-params", type=Path,
                      help="oracle .npz (default: ../shared/data/oracle_lstm_params.npz if present, else a fresh "
                           "N(0,1) oracle whose figures are not the paper's)")
    prep.add_argument("--num-train", type=int, default=10_000, help="oracle training sequences")
    prep.add_argument("--num-valid", type=int, default=10_000, help="held-out oracle sequences (NLL-test)")
    prep.add_argument("--seed", type=int, default=1234, help="split / sampling seed")
    prep.set_defaults(handler=_cmd_prepare_data)

    conv = sub.add_parser("convert-oracle", help="convert the authors' target_params_py3.pkl into .npz")
    conv.add_argument("pickle", type=Path, help="save/target_params_py3.pkl of the original SeqGAN release")
    conv.add_argument("--out", type=Path, required=True, help="output .npz path")
    conv.set_defaults(handler=_cmd_convert_oracle)

    pre = sub.add_parser("pretrain", help="MLE pretraining of the generator")
    pre.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="named configuration")
    pre.add_argument("--data", type=Path, help="directory from prepare-data (default: sample the oracle)")
    pre.add_argument("--oracle-params", type=Path, help="oracle .npz (default: the original file if present)")
    pre.add_argument("--run-dir", type=Path, help="where metrics, plot and checkpoint go (default: runs/...)")
    pre.add_argument("--epochs", type=int)
    pre.add_argument("--batch-size", type=int)
    pre.add_argument("--lr", type=float)
    pre.add_argument("--seed", type=int)
    pre.add_argument("--eval-every", type=int)
    pre.add_argument("--num-eval-samples", type=int)
    pre.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    pre.add_argument("--no-progress", action="store_true", help="no progress bar")
    pre.set_defaults(handler=_cmd_pretrain)

    train = sub.add_parser("train", help="SeqGAN training on Ray: MLE, discriminator pretraining, adversarial")
    train.add_argument("--preset", choices=["auto", *sorted(TRAIN_PRESETS)], default="auto",
                       help="named configuration; auto = paper with a GPU, cpu without")
    train.add_argument("--algo", choices=ALGORITHMS, help="the generator's optimiser (default: seqgan)")
    train.add_argument("--reward", choices=("shaped", "terminal"),
                       help="ppo/appo/impala: Monte Carlo values as shaped rewards (default) or terminal only")
    train.add_argument("--data", type=Path, help="directory from prepare-data (default: sample the oracle)")
    train.add_argument("--oracle-params", type=Path, help="oracle .npz (default: the original file if present)")
    train.add_argument("--generator-checkpoint", type=Path, help="start from this MLE checkpoint (skips MLE)")
    train.add_argument("--run-dir", type=Path, help="where everything goes (default: runs/seqgan-<preset>-<time>)")
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR from its "
                       "latest checkpoint (with its own configuration; --batches may raise its length)")
    train.add_argument("--address", help="join this Ray cluster (default: $RAY_ADDRESS, else a local Ray)")
    train.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    train.add_argument("--batches", type=int, help="adversarial batches")
    train.add_argument("--mle-epochs", type=int)
    train.add_argument("--num-rollouts", type=int, help="N, Monte Carlo completions per prefix")
    train.add_argument("--beta", type=float, help="rollout-policy update weight")
    train.add_argument("--d-steps", type=int)
    train.add_argument("--d-epochs", type=int)
    train.add_argument("--d-pretrain-rounds", type=int)
    train.add_argument("--num-mc-workers", type=int, help="K Monte Carlo rollout actors (0: in-process)")
    train.add_argument("--mc-worker-num-cpus", type=float)
    train.add_argument("--mc-worker-num-gpus", type=float)
    train.add_argument("--discriminator-num-gpus", type=float)
    train.add_argument("--score-precision", choices=("fp32", "int8"), help="rollout workers' discriminator")
    train.add_argument("--d-precision", choices=("fp32", "bf16"), help="d-steps (bf16: autocast)")
    train.add_argument("--eval-every", type=int)
    train.add_argument("--checkpoint-every", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (MLE phase, evaluation)")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.set_defaults(handler=_cmd_train)

    tune = sub.add_parser("tune", help="Ray Tune grid over training options (metric: NLL-oracle)")
    tune.add_argument("--generator-checkpoint", type=Path, required=True, help="MLE checkpoint every trial starts from")
    tune.add_argument("--grid", action="append", required=True, metavar="FIELD=V1,V2",
                      help="a TrainConfig field and its values (repeatable), e.g. rollout_beta=0.6,0.8")
    tune.add_argument("--preset", choices=sorted(TRAIN_PRESETS), default="cpu", help="the base configuration")
    tune.add_argument("--batches", type=int, help="adversarial batches per trial")
    tune.add_argument("--eval-every", type=int)
    tune.add_argument("--num-samples", type=int, default=1, help="repeats of the grid")
    tune.add_argument("--max-concurrent-trials", type=int, default=1)
    tune.add_argument("--oracle-params", type=Path)
    tune.add_argument("--storage-path", type=Path, default=Path("runs") / "tune")
    tune.add_argument("--address", help="join this Ray cluster (default: a local Ray)")
    tune.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    tune.set_defaults(handler=_cmd_tune)

    ev = sub.add_parser("evaluate", help="BLEU, Self-BLEU, distinct-n, NLL of generated text; temperature sweeps")
    ev.add_argument("--checkpoint", action="append", metavar="[LABEL=]PATH",
                    help="generator checkpoint or run directory to sample from (repeatable)")
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
    ev.add_argument("--temperatures", metavar="T1,T2,...", help="sweep these temperatures and plot quality vs diversity")
    ev.add_argument("--plot", type=Path, help="PNG of the sweep (default: temperature_sweep.png)")
    ev.add_argument("--plot-order", type=int, default=4, choices=(2, 3, 4, 5), help="BLEU order plotted")
    ev.add_argument("--smoothing", choices=("method1", "method2", "method3", "method4"),
                    help="NLTK smoothing method for BLEU and Self-BLEU (default: none, as the paper and Texygen)")
    ev.add_argument("--self-bleu-sample-size", type=int, help="Self-BLEU of this many sentences (default: all)")
    ev.add_argument("--test-data", type=Path, help="held-out token table for NLL-test (default: the run's)")
    ev.add_argument("--oracle-params", type=Path, help="oracle .npz for NLL-oracle (default: the run's, if any)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--json", action="store_true", help="print the results as a JSON object on the last line")
    ev.set_defaults(handler=_cmd_evaluate)

    sample = sub.add_parser("sample", help="write generated sequences from a checkpoint")
    sample.add_argument("--checkpoint", type=Path, required=True,
                        help="generator.pt of a train run, checkpoint.pt of a pretrain run, or a run directory")
    sample.add_argument("--out", type=Path, required=True, help="output: .parquet (token table) or text")
    sample.add_argument("--n", type=int, default=1000, help="number of sequences")
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--vocab", type=Path, help="vocab.json to decode text (default: found from the run's data)")
    sample.add_argument("--device", default="auto")
    sample.set_defaults(handler=_cmd_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; prints the command's summary as JSON on its last line."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        summary = args.handler(args)
    except SeqGANError as error:
        print(f"seqgan-rl {args.command}: error: {error}", file=sys.stderr)
        return 2
    if summary is not None:
        print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
