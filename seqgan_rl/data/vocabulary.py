"""Token vocabulary mapping corpus tokens to the integer ids the models use.

The three special tokens have fixed ids so that models, token tables and
vocabulary files agree without extra bookkeeping:

* ``<pad>`` = 0: fills sequences after ``<eos>``; it is also the generator's
  start input (the oracle of the synthetic experiment uses token 0 the same way);
* ``<unk>`` = 1: replaces tokens that are not in the vocabulary;
* ``<eos>`` = 2: ends every text sequence.

Corpus tokens follow, sorted by descending frequency and then
lexicographically, so building twice from the same corpus gives identical ids.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.storage.files import atomic_path

__all__ = ["EOS_TOKEN", "PAD_TOKEN", "SPECIAL_TOKENS", "UNK_TOKEN", "Vocabulary"]

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
EOS_TOKEN = "<eos>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, UNK_TOKEN, EOS_TOKEN)

_FILE_FORMAT = "seqgan-rl-vocab"
_FILE_VERSION = 1


def _token_list_problem(tokens: Sequence[object]) -> str | None:
    """Describe why ``tokens`` is not a valid vocabulary, or return None if it is."""
    for index, token in enumerate(tokens):
        if not isinstance(token, str):
            return f"token at id {index} is {type(token).__name__} {token!r}, expected a string"
    for index, special in enumerate(SPECIAL_TOKENS):
        if index >= len(tokens) or tokens[index] != special:
            found = repr(tokens[index]) if index < len(tokens) else "nothing"
            return f"special token {special!r} must have id {index}, found {found} there"
    first_id: dict[object, int] = {}
    for index, token in enumerate(tokens):
        if token in first_id:
            return f"duplicate token {token!r} at ids {first_id[token]} and {index}"
        first_id[token] = index
    return None


class Vocabulary:
    """Bidirectional mapping between string tokens and integer ids.

    Instances are immutable; create them with :meth:`build` from a corpus or
    :meth:`load` from a file written by :meth:`save`.
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        """Wrap an explicit id-ordered token list (id ``i`` is ``tokens[i]``).

        Raises:
            ValueError: the specials are not at ids 0-2, a token is repeated,
                or an entry is not a string.
        """
        problem = _token_list_problem(tokens)
        if problem is not None:
            raise ValueError(f"invalid vocabulary: {problem}")
        self._tokens: tuple[str, ...] = tuple(tokens)
        self._ids: dict[str, int] = {token: index for index, token in enumerate(self._tokens)}

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Sequence[str]],
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> Vocabulary:
        """Count tokens over a corpus and keep the frequent ones.

        Args:
            token_lists: the corpus, one token sequence per sentence. Tokens equal
                to a special token's string are not counted (they already have
                their fixed id).
            min_freq: keep only tokens seen at least this many times.
            max_size: upper bound on the total vocabulary size, the three
                specials included (the size the model's embedding will have);
                the least frequent tokens are dropped first. None: no bound.

        Raises:
            ConfigError: ``min_freq < 1`` or ``max_size < 3``.
        """
        if min_freq < 1:
            raise ConfigError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < len(SPECIAL_TOKENS):
            raise ConfigError(
                f"max_size must be >= {len(SPECIAL_TOKENS)} (room for the special tokens "
                f"{', '.join(SPECIAL_TOKENS)}), got {max_size}"
            )
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        kept = sorted(
            (token for token, count in counts.items() if count >= min_freq),
            key=lambda token: (-counts[token], token),
        )
        if max_size is not None:
            kept = kept[: max_size - len(SPECIAL_TOKENS)]
        return cls((*SPECIAL_TOKENS, *kept))

    def __len__(self) -> int:
        return len(self._tokens)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self._tokens == other._tokens

    def __hash__(self) -> int:
        return hash(self._tokens)

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)})"

    @property
    def tokens(self) -> tuple[str, ...]:
        """All tokens in id order (``tokens[i]`` has id ``i``)."""
        return self._tokens

    @property
    def pad_id(self) -> int:
        """Id of ``<pad>`` (0), also the generator's start input."""
        return 0

    @property
    def unk_id(self) -> int:
        """Id of ``<unk>`` (1), used for tokens outside the vocabulary."""
        return 1

    @property
    def eos_id(self) -> int:
        """Id of ``<eos>`` (2), which ends every text sequence."""
        return 2

    def token_to_id(self, token: str) -> int:
        """Id of ``token``; ``unk_id`` if the token is not in the vocabulary."""
        return self._ids.get(token, self.unk_id)

    def id_to_token(self, token_id: int) -> str:
        """Token with id ``token_id``.

        Raises:
            DataError: the id is outside ``[0, len(self))``, which means the ids
                come from a model or table built for another vocabulary.
        """
        index = int(token_id)
        if not 0 <= index < len(self._tokens):
            raise DataError(
                f"token id {index} is outside the vocabulary of size {len(self._tokens)}"
            )
        return self._tokens[index]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Map tokens to ids, unknown tokens to ``unk_id``. No ``<eos>`` is added."""
        unk = self.unk_id
        return [self._ids.get(token, unk) for token in tokens]

    def decode(self, ids: Iterable[int], strip_special: bool = True) -> list[str]:
        """Map ids (e.g. one generated row, shape [seq_len]) back to tokens.

        Args:
            ids: token ids; numpy integers are accepted.
            strip_special: stop at the first ``<eos>`` (excluded) and drop
                ``<pad>``, giving the readable sentence. ``<unk>`` is kept so
                unknown words stay visible. False: return every token as is.

        Raises:
            DataError: an id is outside the vocabulary.
        """
        words: list[str] = []
        for token_id in ids:
            index = int(token_id)
            if strip_special and index == self.eos_id:
                break
            if strip_special and index == self.pad_id:
                continue
            words.append(self.id_to_token(index))
        return words

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON, atomically (a crash leaves no partial file).

        Layout: ``{"format": "seqgan-rl-vocab", "version": 1, "tokens": [...]}``
        with ``tokens[i]`` the token of id ``i``.
        """
        payload = {"format": _FILE_FORMAT, "version": _FILE_VERSION, "tokens": list(self._tokens)}
        with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
            json.dump(payload, handle, ensure_ascii=False, indent=0)
            handle.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocabulary:
        """Read a vocabulary written by :meth:`save`.

        Raises:
            DataError: naming the file, when it is missing, not UTF-8 JSON, not a
                seqgan-rl vocabulary (``format`` key), of an unknown version, or
                its token list is invalid (duplicates, specials not at ids 0-2).
        """
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"vocabulary file not found: {source}") from None
        except IsADirectoryError:
            raise DataError(f"vocabulary path is a directory, not a file: {source}") from None
        except UnicodeDecodeError as exc:
            raise DataError(f"{source}: not a vocabulary file (not UTF-8 text: {exc.reason})") from None
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{source}: not a vocabulary file (invalid JSON at line {exc.lineno}, "
                f"column {exc.colno}: {exc.msg})"
            ) from None
        if not isinstance(payload, dict) or payload.get("format") != _FILE_FORMAT:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise DataError(
                f"{source}: not a seqgan-rl vocabulary file (field 'format' is {found!r}, "
                f"expected {_FILE_FORMAT!r})"
            )
        if payload.get("version") != _FILE_VERSION:
            raise DataError(
                f"{source}: unsupported vocabulary file version {payload.get('version')!r} "
                f"(field 'version'; this seqgan-rl reads version {_FILE_VERSION})"
            )
        tokens = payload.get("tokens")
        if not isinstance(tokens, list):
            raise DataError(
                f"{source}: field 'tokens' must be a list of strings, found {type(tokens).__name__}"
            )
        problem = _token_list_problem(tokens)
        if problem is not None:
            raise DataError(f"{source}: invalid field 'tokens': {problem}")
        return cls(tokens)
