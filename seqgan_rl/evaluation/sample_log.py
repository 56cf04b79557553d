"""The generator's text at each evaluation: a few decoded samples to ``samples.txt`` and TensorBoard.

NLL figures say how far training has come, not what the generator writes; a
few of its sequences beside them show mode collapse, repetition or broken
endings as they appear. Both phases show them: ``pretrain_mle`` per evaluated
epoch, the adversarial phase per evaluated batch.

The sequences are decoded as ``seqgan-rl sample`` decodes them
(``seqgan_rl.evaluation.generation.TextDecoder``): words of the run's vocabulary, up to
``<eos>``, for a text corpus; space-separated token ids for the synthetic
oracle. They are drawn with an RNG of their own, seeded from (seed, step)
alone, so showing them changes nothing that training or evaluation draws
(runs stay reproducible and resume exactly) and a resumed run shows the same
samples as the run that never stopped.

``samples.txt`` holds one block per evaluation, a header line then one
sample per line, indented by two spaces, and a blank line::

    == adversarial iteration 10 ==
      the man rides a horse .
      a dog on the beach .

TensorBoard gets the same lines as text (tag ``samples``) in
``tensorboard/samples/``, beside the run's scalars in ``tensorboard/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from seqgan_rl.evaluation.event_files import EventWriter
from seqgan_rl.evaluation.generation import TextDecoder
from seqgan_rl.models.generator import Generator
from seqgan_rl.storage.files import atomic_path

NUM_SHOWN_SAMPLES = 5
"""Sequences shown per evaluation: enough to see variety, few enough to read at a glance."""

SAMPLES_FILE = "samples.txt"
TENSORBOARD_TAG = "samples"
INDENT = "  "
HEADER = re.compile(r"^== (\S+) (\S+) (\d+) ==$")


def samples_seed(seed: int, step: int) -> int:
    """The seed of the samples shown at ``step``: a child of the (seed, step) sequence, apart from any other stream."""
    return int(np.random.SeedSequence([seed, step], spawn_key=(0,)).generate_state(1)[0])


@torch.no_grad()
def shown_samples(generator: Generator, decoder: TextDecoder, seed: int, step: int,
                  num: int = NUM_SHOWN_SAMPLES) -> list[str]:
    """``num`` sequences of ``generator`` drawn with their own RNG (``samples_seed``), one decoded line each.

    Draws nothing from the global RNGs. The tokens are [num, T] int64 on the generator's device.
    """
    rng = torch.Generator(device=generator.device).manual_seed(samples_seed(seed, step))
    tokens = generator.sample(num, generator=rng)  # (num, T)
    return decoder.lines(tokens.cpu().numpy())


class SampleLog:
    """One phase's shown samples: appended to ``<run_dir>/samples.txt`` and written as TensorBoard text.

    ``phase`` and ``step_name`` label each block (``mle``/``epoch``, ``adversarial``/``iteration``);
    ``seed`` is the run's seed, from which each step's samples are drawn (``samples_seed``).
    """

    def __init__(self, run_dir: str | Path, phase: str, step_name: str, decoder: TextDecoder, seed: int) -> None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / SAMPLES_FILE
        self.phase, self.step_name, self.decoder, self.seed = phase, step_name, decoder, seed
        self.writer = EventWriter(run_dir / "tensorboard" / "samples")

    @classmethod
    def for_run(cls, run_dir: str | Path, phase: str, step_name: str, generator_file: str | Path, vocab_size: int,
                seed: int) -> SampleLog:
        """The samples of the run whose generator is (or will be) ``generator_file``, decoded with that run's
        vocabulary (found through the run's ``config.json``, as ``seqgan-rl sample`` finds it)."""
        return cls(run_dir, phase, step_name, TextDecoder.for_generator(Path(generator_file), vocab_size), seed)

    def write(self, generator: Generator, step: int) -> list[str]:
        """Show ``generator``'s samples of ``step`` (a samples.txt block, a TensorBoard text); returns the lines."""
        lines = shown_samples(generator, self.decoder, self.seed, step)
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(format_block(self.phase, self.step_name, step, lines))
        # an indented Markdown code block: one sample per line, and <unk>, <eos> shown rather than taken for HTML
        self.writer.add_text(TENSORBOARD_TAG, "\n".join(f"    {line}" for line in lines), step)
        return lines

    def close(self) -> None:
        self.writer.close()


def format_block(phase: str, step_name: str, step: int, lines: list[str]) -> str:
    """One evaluation's block of samples.txt: its header, the lines indented, a blank line."""
    return f"== {phase} {step_name} {step} ==\n" + "".join(f"{INDENT}{line}\n" for line in lines) + "\n"


def read_samples(path: str | Path) -> list[tuple[str, str, int, list[str]]]:
    """The blocks of a ``samples.txt``: (phase, step name, step, lines) each, in file order."""
    blocks: list[tuple[str, str, int, list[str]]] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        header = HEADER.match(line)
        if header is not None:
            blocks.append((header.group(1), header.group(2), int(header.group(3)), []))
        elif line.startswith(INDENT) and blocks:
            blocks[-1][3].append(line[len(INDENT):])
    return blocks


def trim_samples(path: str | Path, step: int) -> None:
    """Keep the blocks of a ``samples.txt`` up to ``step`` (where a resumed run continues), dropping later ones
    (and a block a crash cut short after it)."""
    path = Path(path)
    if not path.is_file():
        return
    kept = [block for block in read_samples(path) if block[2] <= step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(format_block(*block) for block in kept), encoding="utf-8")
