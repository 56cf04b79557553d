"""The synthetic oracle ("target LSTM") of the paper's synthetic experiment.

The oracle is an LSTM language model with fixed random parameters; 10,000 of
its samples are SeqGAN's "real" data and NLL-oracle (the oracle's negative
log-likelihood of the generator's samples) measures how well G matches it.

The oracle's equations are exactly PyTorch's LSTM (gates i, f, o, candidate c̃;
c' = f·c + i·c̃; h' = o·tanh(c')), so ``Oracle`` is a frozen ``Generator``:
``from_npz`` maps the original release's parameters (row-vector convention,
``x W + h U + b``; layout in ``../shared/data/README.md``) onto PyTorch's
layout (``W_ih`` rows ordered i, f, g, o and applied as ``W x``).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from seqgan_rl.errors import DataError
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.storage.files import atomic_path

ORACLE_ARRAY_NAMES: tuple[str, ...] = (
    "g_embeddings", "Wi", "Ui", "bi", "Wf", "Uf", "bf", "Wog", "Uog", "bog", "Wc", "Uc", "bc", "Wo", "bo",
)
"""Names in the ``.npz`` layout, in the order of the original release's pickle list."""

PAPER_ORACLE_SEED = 88
"""Seed of a fresh N(0, 1) oracle when the original file is absent (the original release's seed)."""


def default_data_dir() -> Path | None:
    """Where the shared read-only data lives: ``$SEQGAN_RL_SHARED_DATA`` or ``../shared/data``.

    ``../shared/data`` is looked up next to this source checkout and next to
    the current directory; ``None`` when neither exists.
    """
    env = os.environ.get("SEQGAN_RL_SHARED_DATA")
    if env:
        return Path(env)
    for root in (Path(__file__).resolve().parents[1], Path.cwd()):
        candidate = root.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def default_oracle_params() -> Path | None:
    """The original oracle's ``oracle_lstm_params.npz`` if it is present, else ``None``."""
    data_dir = default_data_dir()
    if data_dir is None:
        return None
    path = data_dir / "oracle_lstm_params.npz"
    return path if path.is_file() else None


class Oracle(Generator):
    """A frozen ``Generator`` with the oracle's parameters (no gradients)."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__(config, init_std=None)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def random(cls, config: GeneratorConfig | None = None, seed: int = PAPER_ORACLE_SEED) -> Oracle:
        """A fresh oracle: every parameter ~ N(0, 1), as the paper draws it.

        Only the original file reproduces the paper's figures; a fresh oracle
        gives a different (but comparable in kind) task. ``config``: the paper's sizes when not given.
        """
        oracle = cls(config if config is not None else GeneratorConfig())
        rng = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in oracle.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=rng))
            oracle.lstm.bias_hh_l0.zero_()  # one bias per gate, as the original
        return oracle

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], source: str = "<arrays>", seq_len: int = 20) -> Oracle:
        """Build from the named arrays of the ``.npz`` layout (see module docstring).

        ``seq_len`` is not a parameter of the LSTM but of the experiment (the
        paper's is 20); ``from_npz`` reads it from an optional ``seq_len``
        entry that ``save_npz`` writes.
        """
        missing = [name for name in ORACLE_ARRAY_NAMES if name not in arrays]
        if missing:
            raise DataError(f"{source}: oracle parameters lack {', '.join(missing)}")
        emb = np.asarray(arrays["g_embeddings"])
        if emb.ndim != 2:
            raise DataError(f"{source}: g_embeddings must be 2-D [vocab, emb], got shape {emb.shape}")
        vocab_size, emb_dim = emb.shape
        hidden_dim = np.asarray(arrays["Ui"]).shape[0]
        expected = {
            "g_embeddings": (vocab_size, emb_dim),
            **{f"W{g}": (emb_dim, hidden_dim) for g in ("i", "f", "og", "c")},
            **{f"U{g}": (hidden_dim, hidden_dim) for g in ("i", "f", "og", "c")},
            **{f"b{g}": (hidden_dim,) for g in ("i", "f", "og", "c")},
            "Wo": (hidden_dim, vocab_size),
            "bo": (vocab_size,),
        }
        for name, shape in expected.items():
            array = np.asarray(arrays[name])
            if array.shape != shape:
                raise DataError(f"{source}: {name} has shape {array.shape}, expected {shape}")
            if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
                raise DataError(f"{source}: {name} must hold finite floats (dtype {array.dtype})")

        def t(name: str) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(arrays[name], dtype=np.float32))

        oracle = cls(GeneratorConfig(vocab_size=vocab_size, seq_len=seq_len, emb_dim=emb_dim, hidden_dim=hidden_dim))
        gate_order = ("i", "f", "c", "og")  # PyTorch's i, f, g (candidate), o
        with torch.no_grad():
            oracle.embedding.weight.copy_(t("g_embeddings"))
            oracle.lstm.weight_ih_l0.copy_(torch.cat([t(f"W{g}").t() for g in gate_order]))
            oracle.lstm.weight_hh_l0.copy_(torch.cat([t(f"U{g}").t() for g in gate_order]))
            oracle.lstm.bias_ih_l0.copy_(torch.cat([t(f"b{g}") for g in gate_order]))
            oracle.lstm.bias_hh_l0.zero_()
            oracle.output.weight.copy_(t("Wo").t())
            oracle.output.bias.copy_(t("bo"))
        return oracle

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str]) -> Oracle:
        """Load the original release's oracle (``oracle_lstm_params.npz``)."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: oracle parameter file not found")
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError) as error:
            raise DataError(f"{path}: not a readable .npz file ({error})") from error
        seq_len = arrays.pop("seq_len", np.array(20))
        if seq_len.shape != () or not np.issubdtype(seq_len.dtype, np.integer) or int(seq_len) <= 0:
            raise DataError(f"{path}: seq_len must be a positive integer scalar, got {seq_len!r}")
        return cls.from_arrays(arrays, source=str(path), seq_len=int(seq_len))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The inverse of ``from_arrays``: named float32 arrays in the ``.npz`` layout."""
        hidden = self.config.hidden_dim
        gates = dict(zip(("i", "f", "c", "og"), range(4)))

        def block(weight: torch.Tensor, gate: str) -> np.ndarray:
            index = gates[gate]
            return weight[index * hidden : (index + 1) * hidden].detach().cpu().numpy()

        lstm = self.lstm
        bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach()
        arrays = {"g_embeddings": self.embedding.weight.detach().cpu().numpy()}
        for gate in ("i", "f", "og", "c"):
            arrays[f"W{gate}"] = block(lstm.weight_ih_l0, gate).T
            arrays[f"U{gate}"] = block(lstm.weight_hh_l0, gate).T
            arrays[f"b{gate}"] = block(bias, gate)
        arrays["Wo"] = self.output.weight.detach().cpu().numpy().T
        arrays["bo"] = self.output.bias.detach().cpu().numpy()
        return {name: np.ascontiguousarray(array, dtype=np.float32) for name, array in arrays.items()}

    def save_npz(self, path: str | os.PathLike[str]) -> None:
        """Write the parameters in the ``.npz`` layout plus ``seq_len`` (atomically)."""
        with atomic_path(path) as tmp, tmp.open("wb") as stream:
            np.savez(stream, **self.to_arrays(), seq_len=np.array(self.seq_len, dtype=np.int64))


class _ArrayListUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild NumPy arrays (and the lists holding them).

    A pickle can run arbitrary code on load; this one refuses every global
    except the few NumPy needs to reconstruct an ndarray.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle API
        if (module, name) in self._ALLOWED:
            module = module.replace("numpy.core.", "numpy._core.")
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only NumPy float arrays are accepted")


def convert_oracle_pickle(pickle_path: str | os.PathLike[str], npz_path: str | os.PathLike[str]) -> Oracle:
    """Convert the authors' ``save/target_params_py3.pkl`` into the ``.npz`` layout.

    The pickle is a list of 15 float arrays in ``ORACLE_ARRAY_NAMES`` order; it
    is loaded with an unpickler that accepts nothing else.

    Returns:
        The loaded oracle (already validated).
    """
    pickle_path = Path(pickle_path)
    if not pickle_path.is_file():
        raise DataError(f"{pickle_path}: file not found")
    try:
        with pickle_path.open("rb") as handle:
            params = _ArrayListUnpickler(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as error:
        raise DataError(f"{pickle_path}: not an oracle parameter pickle ({error})") from error
    if not isinstance(params, list) or len(params) != len(ORACLE_ARRAY_NAMES):
        raise DataError(
            f"{pickle_path}: expected a list of {len(ORACLE_ARRAY_NAMES)} arrays, got "
            f"{type(params).__name__}{'' if not isinstance(params, list) else f' of length {len(params)}'}"
        )
    for index, array in enumerate(params):
        if not isinstance(array, np.ndarray):
            raise DataError(f"{pickle_path}: item {index} is {type(array).__name__}, expected a NumPy array")
    oracle = Oracle.from_arrays(dict(zip(ORACLE_ARRAY_NAMES, params)), source=str(pickle_path))
    oracle.save_npz(npz_path)
    return oracle
