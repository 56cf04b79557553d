"""``seqgan_rl.storage.state_tree``: RLlib's state trees stored without pickle, restored exactly."""

from __future__ import annotations

import io
from collections import deque

import numpy as np
import pytest
import torch

from seqgan_rl.errors import DataError
from seqgan_rl.storage.state_tree import TAG, decode, encode


def weights_only_round_trip(tree: object) -> object:
    buffer = io.BytesIO()
    torch.save(encode(tree), buffer)
    buffer.seek(0)
    return decode(torch.load(buffer, weights_only=True))


def test_every_kind_of_leaf_comes_back_with_its_type_and_value() -> None:
    tree = {
        "weights": {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(3, dtype=">f8")},
        "counts": [np.int64(7), np.float32(0.5), np.float64(0.25), np.bool_(True), np.uint64(2**63 + 1)],
        "rng": (np.random.default_rng(0).bit_generator.state, torch.get_rng_state()),
        "window": deque([1.0, 2.0], maxlen=5), "seen": {3, 1}, "frozen": frozenset({"a"}),
        "plain": [None, True, 3, 2.5, "x", b"\x00\x01"], 4: "an int key",
        "half": np.array([1.5], dtype=np.float16), "flags": np.array([True, False]),
    }
    back = weights_only_round_trip(tree)
    assert back.keys() == tree.keys()
    for name in ("w", "b"):
        assert back["weights"][name].dtype == tree["weights"][name].dtype
        np.testing.assert_array_equal(back["weights"][name], tree["weights"][name])
    assert [type(v) for v in back["counts"]] == [type(v) for v in tree["counts"]]
    assert back["counts"] == tree["counts"] and back["counts"][4] == np.uint64(2**63 + 1)
    assert back["rng"][0] == tree["rng"][0] and torch.equal(back["rng"][1], tree["rng"][1])
    assert isinstance(back["rng"], tuple)
    assert back["window"] == tree["window"] and back["window"].maxlen == 5
    assert back["seen"] == {1, 3} and back["frozen"] == frozenset({"a"}) and isinstance(back["frozen"], frozenset)
    assert back["plain"] == tree["plain"] and back[4] == "an int key"
    assert back["half"].dtype == np.float16 and back["flags"].dtype == np.bool_


def test_decoded_arrays_do_not_alias_the_saved_tree() -> None:
    array = np.ones(3)
    encoded = encode({"a": array})
    array[0] = 5.0
    assert decode(encoded)["a"][0] == 1.0


@pytest.mark.parametrize(("tree", "path"), [
    ({"learner": {"module": object()}}, "state/learner/module: a builtins.object"),
    ({"a": [1, np.array(["x"], dtype=object)]}, "state/a/1: a NumPy array of dtype object"),
    ({"a": {(1, 2): 3}}, "state/a: a dict key of type tuple"),
    ({"a": {TAG: "ndarray"}}, "state/a: a dict with the reserved key"),
])
def test_what_only_pickle_could_store_is_refused_naming_its_path(tree: object, path: str) -> None:
    with pytest.raises(TypeError, match=path.replace("(", r"\(")):
        encode(tree)


def test_a_tag_of_another_version_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="state/x: a stored value of unknown type 'tensorflow'"):
        decode({"x": {TAG: "tensorflow"}})
