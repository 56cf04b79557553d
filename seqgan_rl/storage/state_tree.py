"""Nested state (RLlib's ``get_state`` trees) as tensors and plain data: loadable with ``weights_only=True``.

``Algorithm.get_state()`` returns a tree of dicts, lists and tuples whose
leaves are NumPy arrays and scalars, tensors, numbers, strings and a few
containers (``collections.deque``, sets). RLlib writes it with cloudpickle,
which runs whatever a file names when it is read back. ``encode`` maps the
tree onto what ``torch.load(weights_only=True)`` accepts (tensors, dicts,
lists, tuples, numbers, strings, bytes, ``None``): each array becomes a tensor
tagged with its NumPy dtype, each other container a tagged dict;
``decode`` is its exact inverse. A leaf of any other type is refused with
its path in the tree, so a state that cannot be stored safely is found when it
is saved, not silently pickled.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch

from seqgan_rl.errors import DataError

TAG = "__seqgan_rl_state_type__"
"""Key of a tagged dict (a NumPy array or scalar, a deque, a set); no state key of RLlib's or ours."""

PLAIN = (bool, int, float, str, bytes, type(None))


def encode(tree: Any, path: str = "state") -> Any:
    """``tree`` with every NumPy array, NumPy scalar, deque and set replaced by a tagged dict of tensors
    and plain data.

    Raises:
        TypeError: naming the path of a leaf of another type (``state/learner_group/...``).
    """
    if isinstance(tree, np.generic):  # before PLAIN: np.float64 is a float
        return {TAG: "scalar", "dtype": tree.dtype.str, "value": tree.item()}
    if isinstance(tree, PLAIN) or isinstance(tree, torch.Tensor):
        return tree
    if isinstance(tree, np.ndarray):
        if tree.dtype.kind not in "biufc":
            raise TypeError(f"{path}: a NumPy array of dtype {tree.dtype} cannot be stored without pickle")
        return {TAG: "ndarray", "dtype": tree.dtype.str, "data": torch.from_numpy(
            np.array(tree, dtype=tree.dtype.newbyteorder("="), order="C"))}  # torch holds native byte order
    if isinstance(tree, dict):
        if TAG in tree:
            raise TypeError(f"{path}: a dict with the reserved key {TAG!r}")
        for key in tree:
            if not isinstance(key, PLAIN):
                raise TypeError(f"{path}: a dict key of type {type(key).__name__} ({key!r})")
        return {key: encode(value, f"{path}/{key}") for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        items = [encode(value, f"{path}/{index}") for index, value in enumerate(tree)]
        return items if isinstance(tree, list) else tuple(items)
    if isinstance(tree, deque):
        return {TAG: "deque", "maxlen": tree.maxlen, "items": [encode(v, f"{path}/{i}") for i, v in enumerate(tree)]}
    if isinstance(tree, (set, frozenset)):
        return {TAG: "set", "frozen": isinstance(tree, frozenset),
                "items": [encode(v, f"{path}/{i}") for i, v in enumerate(sorted(tree, key=repr))]}
    raise TypeError(f"{path}: a {type(tree).__module__}.{type(tree).__qualname__} cannot be stored without pickle")


def decode(tree: Any, path: str = "state") -> Any:
    """Inverse of ``encode``.

    Raises:
        DataError: a tagged dict of an unknown type (a file of another version).
    """
    if isinstance(tree, dict):
        kind = tree.get(TAG)
        if kind is None:
            return {key: decode(value, f"{path}/{key}") for key, value in tree.items()}
        if kind == "ndarray":
            return tree["data"].numpy().astype(np.dtype(tree["dtype"]), copy=False)  # the byte order as saved
        if kind == "scalar":
            return np.dtype(tree["dtype"]).type(tree["value"])
        if kind == "deque":
            return deque((decode(v, path) for v in tree["items"]), maxlen=tree["maxlen"])
        if kind == "set":
            items = (decode(v, path) for v in tree["items"])
            return frozenset(items) if tree["frozen"] else set(items)
        raise DataError(f"{path}: a stored value of unknown type {kind!r}")
    if isinstance(tree, list):
        return [decode(value, f"{path}/{index}") for index, value in enumerate(tree)]
    if isinstance(tree, tuple):
        return tuple(decode(value, f"{path}/{index}") for index, value in enumerate(tree))
    return tree
