"""The oracle reproduces the original release's equations; loading and conversion are safe."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SMALL

from seqgan_rl.errors import DataError
from seqgan_rl.models.oracle import ORACLE_ARRAY_NAMES, Oracle, convert_oracle_pickle


def _reference_log_probs(p: dict[str, np.ndarray], tokens: np.ndarray) -> np.ndarray:
    """The gate equations of ../shared/data/README.md in NumPy (float64), per-token log-probabilities."""

    def sigmoid(x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-x))

    p = {k: v.astype(np.float64) for k, v in p.items()}
    batch, length = tokens.shape
    h = np.zeros((batch, p["Ui"].shape[0]))
    c = np.zeros_like(h)
    previous = np.zeros(batch, dtype=np.int64)  # start token 0
    out = np.zeros((batch, length))
    for t in range(length):
        x = p["g_embeddings"][previous]
        i = sigmoid(x @ p["Wi"] + h @ p["Ui"] + p["bi"])
        f = sigmoid(x @ p["Wf"] + h @ p["Uf"] + p["bf"])
        o = sigmoid(x @ p["Wog"] + h @ p["Uog"] + p["bog"])
        candidate = np.tanh(x @ p["Wc"] + h @ p["Uc"] + p["bc"])
        c = f * c + i * candidate
        h = o * np.tanh(c)
        logits = h @ p["Wo"] + p["bo"]
        top = logits.max(1, keepdims=True)
        log_z = top[:, 0] + np.log(np.exp(logits - top).sum(1))
        out[:, t] = logits[np.arange(batch), tokens[:, t]] - log_z
        previous = tokens[:, t]
    return out


def test_original_oracle_matches_the_readme_equations(original_oracle_path: Path) -> None:
    with np.load(original_oracle_path) as npz:
        params = {name: npz[name] for name in npz.files}
    oracle = Oracle.from_npz(original_oracle_path)
    assert (oracle.vocab_size, oracle.config.emb_dim, oracle.config.hidden_dim) == (5000, 32, 32)
    tokens = oracle.sample(64, generator=torch.Generator().manual_seed(0))
    expected = _reference_log_probs(params, tokens.numpy())
    assert np.allclose(oracle.log_prob(tokens).double().numpy(), expected, atol=2e-4)


def test_original_oracle_entropy_rate(original_oracle_path: Path) -> None:
    """The README measured the oracle's own NLL per token at about 5.75."""
    oracle = Oracle.from_npz(original_oracle_path)
    samples = oracle.sample(2000, generator=torch.Generator().manual_seed(0))
    assert 5.6 < oracle.nll(samples) < 5.9


def test_random_oracle_round_trips_and_matches_equations(tmp_path: Path) -> None:
    oracle = Oracle.random(SMALL, seed=11)
    arrays = oracle.to_arrays()
    assert set(arrays) == set(ORACLE_ARRAY_NAMES)
    tokens = torch.randint(0, SMALL.vocab_size, (10, SMALL.seq_len))
    assert np.allclose(oracle.log_prob(tokens).double().numpy(), _reference_log_probs(arrays, tokens.numpy()),
                       atol=2e-4)
    oracle.save_npz(tmp_path / "o.npz")
    loaded = Oracle.from_npz(tmp_path / "o.npz")
    assert all(torch.equal(a, b) for a, b in zip(oracle.state_dict().values(), loaded.state_dict().values()))
    assert not any(p.requires_grad for p in loaded.parameters())
    assert not torch.equal(Oracle.random(SMALL, seed=12).output.weight, oracle.output.weight)


def test_bad_oracle_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        Oracle.from_npz(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz"):
        Oracle.from_npz(tmp_path / "junk.npz")
    arrays = Oracle.random(SMALL).to_arrays()
    arrays["Wo"] = arrays["Wo"][:, :-1]
    np.savez(tmp_path / "shape.npz", **arrays)
    with pytest.raises(DataError, match=r"Wo has shape \(16, 96\), expected \(16, 97\)"):
        Oracle.from_npz(tmp_path / "shape.npz")
    del arrays["bo"]
    np.savez(tmp_path / "missing_bo.npz", **arrays)
    with pytest.raises(DataError, match="lack bo"):
        Oracle.from_npz(tmp_path / "missing_bo.npz")


def test_convert_oracle_pickle(tmp_path: Path) -> None:
    oracle = Oracle.random(SMALL, seed=4)
    arrays = oracle.to_arrays()
    with (tmp_path / "target_params_py3.pkl").open("wb") as stream:
        pickle.dump([arrays[name] for name in ORACLE_ARRAY_NAMES], stream)
    converted = convert_oracle_pickle(tmp_path / "target_params_py3.pkl", tmp_path / "out.npz")
    loaded = Oracle.from_npz(tmp_path / "out.npz")
    for name, value in loaded.to_arrays().items():
        assert np.array_equal(value, arrays[name]), name
    assert converted.vocab_size == SMALL.vocab_size


class _Exploit:
    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (os.system, ("touch PWNED",))


def test_convert_oracle_refuses_code_and_wrong_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps([_Exploit()]))
    with pytest.raises(DataError, match="only NumPy float arrays"):
        convert_oracle_pickle(tmp_path / "evil.pkl", tmp_path / "out.npz")
    assert not (tmp_path / "PWNED").exists()
    (tmp_path / "short.pkl").write_bytes(pickle.dumps([np.zeros(3, np.float32)]))
    with pytest.raises(DataError, match="list of 15 arrays"):
        convert_oracle_pickle(tmp_path / "short.pkl", tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()
