"""Tests of the vocabulary, the Parquet token tables and text corpus preparation.

Every bad-input test writes a real file (with pyarrow directly, or raw bytes)
and checks both the error type and that the message points at the problem.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqgan_rl.data.tables import iterate_minibatches, read_token_table, write_token_table
from seqgan_rl.data.text import prepare_text_dataset, tokenize_line
from seqgan_rl.data.vocabulary import Vocabulary
from seqgan_rl.errors import ConfigError, DataError, SeqGANError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

VALID_METADATA = {
    b"seqgan_rl.format": b"token-table",
    b"seqgan_rl.version": b"1",
    b"seqgan_rl.vocab_size": b"10",
    b"seqgan_rl.seq_len": b"3",
}


def write_raw(
    path: Path,
    column: pa.Array,
    metadata: dict[bytes, bytes] | None = VALID_METADATA,
    name: str = "tokens",
    row_group_size: int | None = None,
) -> Path:
    """Write a one-column Parquet file with pyarrow directly, bypassing all validation."""
    table = pa.table({name: column})
    if metadata is not None:
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


# ---------------------------------------------------------------- errors


def test_error_hierarchy() -> None:
    assert issubclass(DataError, SeqGANError) and issubclass(DataError, ValueError)
    assert issubclass(ConfigError, SeqGANError) and issubclass(ConfigError, ValueError)


# ---------------------------------------------------------------- token tables


def test_token_table_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 5000, size=(257, 20), dtype=np.int64)
    path = tmp_path / "oracle.parquet"
    write_token_table(path, tokens, 5000, {"source": "oracle samples", "oracle": "target_lstm"})

    table = read_token_table(path)
    assert table.tokens.dtype == np.int32
    np.testing.assert_array_equal(table.tokens, tokens)
    assert (table.vocab_size, table.seq_len, len(table)) == (5000, 20, 257)
    assert table.metadata == {"source": "oracle samples", "oracle": "target_lstm"}

    schema = pq.read_schema(path)
    assert schema.names == ["tokens"]
    assert schema.field("tokens").type.value_type == pa.int32()
    assert schema.metadata[b"seqgan_rl.format"] == b"token-table"
    assert schema.metadata[b"seqgan_rl.version"] == b"1"
    assert schema.metadata[b"seqgan_rl.vocab_size"] == b"5000"
    assert schema.metadata[b"seqgan_rl.seq_len"] == b"20"


def test_read_accepts_matching_or_larger_consumer_vocab(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_token_table(path, np.array([[1, 2, 0]]), vocab_size=5000)
    assert read_token_table(path, vocab_size=5000, seq_len=3).vocab_size == 5000
    assert read_token_table(path, vocab_size=7000).vocab_size == 5000


def test_read_rejects_table_vocab_larger_than_consumer(tmp_path: Path) -> None:
    path = tmp_path / "big_vocab.parquet"
    write_token_table(path, np.array([[6999, 2, 0]]), vocab_size=7000)
    with pytest.raises(DataError, match=r"big_vocab\.parquet.*7000.*seqgan_rl\.vocab_size.*5000"):
        read_token_table(path, vocab_size=5000)


def test_read_rejects_seq_len_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "len20.parquet"
    write_token_table(path, np.zeros((2, 20), dtype=np.int32), vocab_size=10)
    with pytest.raises(DataError, match=r"len20\.parquet.*20.*seqgan_rl\.seq_len.*21"):
        read_token_table(path, seq_len=21)


def test_write_is_atomic_and_failed_write_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.parquet"
    write_token_table(path, np.array([[1, 2]]), vocab_size=3)
    assert [p.name for p in path.parent.iterdir()] == ["t.parquet"]

    with pytest.raises(DataError):
        write_token_table(path, np.array([[1, 9]]), vocab_size=3)
    assert [p.name for p in path.parent.iterdir()] == ["t.parquet"]
    np.testing.assert_array_equal(read_token_table(path).tokens, [[1, 2]])


@pytest.mark.parametrize(
    ("tokens", "pattern"),
    [
        (np.array([1, 2, 3]), r"2-D.*shape \(3,\)"),
        (np.array([[0.0, 1.0]]), r"integer dtype.*float64"),
        (np.zeros((0, 5), dtype=np.int32), r"no sequences"),
        (np.array([[0, 1], [2, 10]]), r"row 1 \(0-based\), position 1: token id 10 is outside \[0, 10\)"),
        (np.array([[0, -1]]), r"row 0 \(0-based\), position 1: token id -1"),
    ],
)
def test_write_rejects_bad_tokens(tmp_path: Path, tokens: np.ndarray, pattern: str) -> None:
    path = tmp_path / "bad.parquet"
    with pytest.raises(DataError, match=r"bad\.parquet.*" + pattern):
        write_token_table(path, tokens, vocab_size=10)
    assert not list(tmp_path.iterdir())


def test_write_rejects_reserved_metadata(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="seqgan_rl.seq_len.*reserved"):
        write_token_table(tmp_path / "t.parquet", np.array([[0]]), 2, {"seqgan_rl.seq_len": "5"})


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not found: .*nope\.parquet"):
        read_token_table(tmp_path / "nope.parquet")


def test_read_garbage_bytes(tmp_path: Path) -> None:
    path = tmp_path / "garbage.parquet"
    path.write_bytes(b"this is not parquet at all, just some bytes" * 10)
    with pytest.raises(DataError, match=r"garbage\.parquet: not a Parquet file or the file is corrupt"):
        read_token_table(path)


def test_read_truncated_parquet(tmp_path: Path) -> None:
    path = tmp_path / "cut.parquet"
    write_token_table(path, np.arange(400).reshape(40, 10), vocab_size=400)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cut\.parquet: not a Parquet file or the file is corrupt"):
        read_token_table(path)


def test_read_missing_tokens_column(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "ids.parquet", pa.array([[1, 2, 3]]), name="ids")
    with pytest.raises(DataError, match=r"ids\.parquet: no column 'tokens' \(columns found: \['ids'\]\)"):
        read_token_table(path)


@pytest.mark.parametrize(
    ("column", "found"),
    [
        (pa.array([["a", "b", "c"]]), "list<element: string>"),
        (pa.array([7], type=pa.int64()), "int64"),
        (pa.array([[1.0, 2.0, 3.0]]), "list<element: double>"),
    ],
)
def test_read_wrong_column_type(tmp_path: Path, column: pa.Array, found: str) -> None:
    path = write_raw(tmp_path / "typed.parquet", column)
    with pytest.raises(DataError) as info:
        read_token_table(path)
    message = str(info.value)
    assert "typed.parquet" in message and "column 'tokens'" in message
    assert f"type {found}" in message and "expected list<int32>" in message


@pytest.mark.parametrize(
    "list_type",
    [
        pa.list_(pa.int8()),
        pa.list_(pa.int16()),
        pa.list_(pa.int64()),
        pa.large_list(pa.int64()),
        pa.list_(pa.uint16()),
    ],
)
def test_read_accepts_other_integer_list_types(tmp_path: Path, list_type: pa.DataType) -> None:
    path = write_raw(tmp_path / "t.parquet", pa.array([[1, 2, 3], [9, 0, 4]], type=list_type))
    table = read_token_table(path)
    assert table.tokens.dtype == np.int32
    np.testing.assert_array_equal(table.tokens, [[1, 2, 3], [9, 0, 4]])


def test_read_without_metadata(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "plain.parquet", pa.array([[1, 2, 3]]), metadata=None)
    pattern = r"plain\.parquet: not a seqgan-rl token table.*'seqgan_rl\.format' is missing"
    with pytest.raises(DataError, match=pattern):
        read_token_table(path)


def test_read_missing_vocab_size_metadata(tmp_path: Path) -> None:
    metadata = {k: v for k, v in VALID_METADATA.items() if k != b"seqgan_rl.vocab_size"}
    path = write_raw(tmp_path / "novocab.parquet", pa.array([[1, 2, 3]]), metadata=metadata)
    with pytest.raises(DataError, match=r"novocab\.parquet: missing schema metadata 'seqgan_rl\.vocab_size'"):
        read_token_table(path)


def test_read_unsupported_version(tmp_path: Path) -> None:
    metadata = {**VALID_METADATA, b"seqgan_rl.version": b"2"}
    path = write_raw(tmp_path / "v2.parquet", pa.array([[1, 2, 3]]), metadata=metadata)
    with pytest.raises(DataError, match=r"v2\.parquet: unsupported token table version '2'"):
        read_token_table(path)


def test_read_null_row(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "nulls.parquet", pa.array([[1, 2, 3], [4, 5, 6], None, None]))
    with pytest.raises(DataError, match=r"nulls\.parquet: row 2 \(0-based\) of column 'tokens' is null"):
        read_token_table(path)


def test_read_null_token_id(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "nullid.parquet", pa.array([[1, 2, 3], [4, None, 6]]))
    with pytest.raises(DataError, match=r"nullid\.parquet: row 1 \(0-based\), position 1 .*null"):
        read_token_table(path)


def test_read_row_longer_than_seq_len(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "long.parquet", pa.array([[1, 2, 3], [1, 2, 3, 4, 5]]))
    with pytest.raises(DataError) as info:
        read_token_table(path)
    message = str(info.value)
    assert "long.parquet: row 1 (0-based)" in message and "column 'tokens'" in message
    assert "has 5 tokens, expected 3" in message
    assert "sequence longer than the configured length" in message


def test_read_row_shorter_than_seq_len(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "short.parquet", pa.array([[1, 2], [1, 2, 3]]))
    pattern = r"short\.parquet: row 0 \(0-based\).*has 2 tokens, expected 3.*shorter"
    with pytest.raises(DataError, match=pattern):
        read_token_table(path)


@pytest.mark.parametrize(("bad_id", "position"), [(10, 2), (-3, 0)])
def test_read_token_id_out_of_range(tmp_path: Path, bad_id: int, position: int) -> None:
    row = [1, 2, 3]
    row[position] = bad_id
    path = write_raw(tmp_path / "range.parquet", pa.array([[0, 0, 0], row]))
    with pytest.raises(DataError) as info:
        read_token_table(path)
    message = str(info.value)
    assert f"range.parquet: row 1 (0-based), position {position}" in message
    assert f"token id {bad_id} is outside [0, 10)" in message and "vocab_size 10" in message


def test_read_reports_rows_across_row_groups(tmp_path: Path) -> None:
    rows = [[1, 2, 3]] * 25 + [[1, 2, 11]]
    path = write_raw(tmp_path / "groups.parquet", pa.array(rows), row_group_size=4)
    assert pq.ParquetFile(path).num_row_groups > 1
    with pytest.raises(DataError, match=r"row 25 \(0-based\), position 2 .*token id 11"):
        read_token_table(path)


def test_read_empty_table(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "empty.parquet", pa.array([], type=pa.list_(pa.int32())))
    with pytest.raises(DataError, match=r"empty\.parquet: no sequences"):
        read_token_table(path)


# ---------------------------------------------------------------- vocabulary


def test_vocabulary_build_order_and_specials() -> None:
    vocab = Vocabulary.build([["b", "a", "c"], ["c", "a", "d"], ["c"]])
    assert vocab.tokens == ("<pad>", "<unk>", "<eos>", "c", "a", "b", "d")
    assert (vocab.pad_id, vocab.unk_id, vocab.eos_id) == (0, 1, 2)
    assert len(vocab) == 7
    assert vocab.token_to_id("c") == 3 and vocab.id_to_token(6) == "d"
    assert vocab.token_to_id("zebra") == vocab.unk_id


def test_vocabulary_min_freq_and_max_size() -> None:
    corpus = [["a", "a", "a", "b", "b", "c", "<eos>"]]
    assert Vocabulary.build(corpus, min_freq=2).tokens[3:] == ("a", "b")
    assert Vocabulary.build(corpus, max_size=4).tokens == ("<pad>", "<unk>", "<eos>", "a")
    with pytest.raises(ConfigError, match="min_freq"):
        Vocabulary.build(corpus, min_freq=0)
    with pytest.raises(ConfigError, match="max_size"):
        Vocabulary.build(corpus, max_size=2)


def test_vocabulary_encode_decode() -> None:
    vocab = Vocabulary.build([["a", "man", "riding"]])
    ids = vocab.encode(["a", "horse", "riding"])
    assert ids == [vocab.token_to_id("a"), vocab.unk_id, vocab.token_to_id("riding")]
    row = np.array([*ids, vocab.eos_id, vocab.pad_id, vocab.token_to_id("man")], dtype=np.int32)
    assert vocab.decode(row) == ["a", "<unk>", "riding"]
    assert vocab.decode([vocab.pad_id, *ids]) == ["a", "<unk>", "riding"]
    assert vocab.decode(row, strip_special=False) == ["a", "<unk>", "riding", "<eos>", "<pad>", "man"]
    with pytest.raises(DataError, match="token id 99 is outside the vocabulary of size 6"):
        vocab.decode([99])


def test_vocabulary_save_load_round_trip(tmp_path: Path) -> None:
    vocab = Vocabulary.build([["床", "前", "明", "月", "光"], ["Ünïcode", "a"]])
    path = tmp_path / "vocab.json"
    vocab.save(path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["format"] == "seqgan-rl-vocab" and payload["version"] == 1
    assert payload["tokens"] == list(vocab.tokens)
    assert Vocabulary.load(path) == vocab
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]


def vocab_file_bytes(version: object = 1, tokens: object = ("<pad>", "<unk>", "<eos>")) -> bytes:
    """A vocabulary file with the right format key and the given version and tokens."""
    payload = {"format": "seqgan-rl-vocab", "version": version, "tokens": tokens}
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"{not json", r"invalid JSON at line 1"),
        (b"\xff\xfe garbage", r"not UTF-8"),
        (b'["<pad>", "<unk>", "<eos>"]', r"field 'format' is 'list'"),
        (b'{"format": "word2vec", "version": 1, "tokens": []}', r"field 'format' is 'word2vec'"),
        (vocab_file_bytes(version=7), r"unsupported vocabulary file version 7"),
        (vocab_file_bytes(tokens="abc"), r"field 'tokens' must be a list"),
        (
            vocab_file_bytes(tokens=["<pad>", "<unk>", "<eos>", "a", "b", "a"]),
            r"duplicate token 'a' at ids 3 and 5",
        ),
        (
            vocab_file_bytes(tokens=["<unk>", "<pad>", "<eos>", "a"]),
            r"special token '<pad>' must have id 0, found '<unk>'",
        ),
        (vocab_file_bytes(tokens=["<pad>", "<unk>"]), r"'<eos>' must have id 2, found nothing"),
        (vocab_file_bytes(tokens=["<pad>", "<unk>", "<eos>", 5]), r"token at id 3 is int 5"),
    ],
)
def test_vocabulary_load_rejects_malformed_file(tmp_path: Path, content: bytes, pattern: str) -> None:
    path = tmp_path / "vocab.json"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"vocab\.json.*" + pattern):
        Vocabulary.load(path)


def test_vocabulary_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"vocabulary file not found: .*missing\.json"):
        Vocabulary.load(tmp_path / "missing.json")


# ---------------------------------------------------------------- tokenisation


def test_tokenize_word_level() -> None:
    assert tokenize_line("A man, riding.", "word") == ["a", "man", ",", "riding", "."]
    assert tokenize_line("  Don't   stop!\n", "word") == ["don", "'", "t", "stop", "!"]
    assert tokenize_line("Café naïve 2x", "word", lowercase=False) == ["Café", "naïve", "2x"]


def test_tokenize_char_level() -> None:
    assert tokenize_line("秦 川 雄 帝 宅 ， 函 \n", "char") == ["秦", "川", "雄", "帝", "宅", "，", "函"]
    assert tokenize_line("Ab c", "char") == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="level must be 'word' or 'char'"):
        tokenize_line("x", "subword")  # type: ignore[arg-type]


# ---------------------------------------------------------------- text datasets


def permutation_corpus() -> list[str]:
    """24 distinct lines using the same four words, so any train split knows every word."""
    return [" ".join(words) for words in itertools.permutations(["red", "green", "blue", "cat"])]


def decode_rows(table_path: Path, vocab: Vocabulary) -> list[str]:
    return [" ".join(vocab.decode(row)) for row in read_token_table(table_path).tokens]


def test_prepare_text_dataset_splits(tmp_path: Path) -> None:
    lines = permutation_corpus()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(lines) + "\n   \n", encoding="utf-8")

    summary = prepare_text_dataset(corpus, tmp_path / "out", valid_fraction=0.25, seed=3)
    assert summary["num_train"] == 18 and summary["num_valid"] == 6
    assert summary["seq_len"] == 5 and summary["vocab_size"] == 7
    assert summary["truncated"] == 0 and summary["unknown_rate_valid"] == 0.0
    assert summary["level"] == "word"
    vocab = Vocabulary.load(tmp_path / "out" / "vocab.json")
    train = decode_rows(tmp_path / "out" / "train.parquet", vocab)
    valid = decode_rows(tmp_path / "out" / "valid.parquet", vocab)
    assert not set(train) & set(valid)
    assert sorted(train + valid) == sorted(lines)

    table = read_token_table(tmp_path / "out" / "train.parquet", vocab_size=len(vocab), seq_len=5)
    assert (table.tokens[:, 4] == vocab.eos_id).all()
    assert table.metadata["split"] == "train" and table.metadata["source"] == "corpus.txt"

    again = prepare_text_dataset(corpus, tmp_path / "again", valid_fraction=0.25, seed=3)
    assert again["num_valid"] == 6
    assert decode_rows(tmp_path / "again" / "valid.parquet", vocab) == valid
    prepare_text_dataset(corpus, tmp_path / "other", valid_fraction=0.25, seed=4)
    assert decode_rows(tmp_path / "other" / "valid.parquet", vocab) != valid


def test_prepare_vocabulary_from_train_split_only(tmp_path: Path) -> None:
    lines = [f"the cat number{i}" for i in range(10)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines), encoding="utf-8")

    summary = prepare_text_dataset(corpus, tmp_path / "out", valid_fraction=0.2, seed=0)
    vocab = Vocabulary.load(tmp_path / "out" / "vocab.json")
    train = decode_rows(tmp_path / "out" / "train.parquet", vocab)
    valid = decode_rows(tmp_path / "out" / "valid.parquet", vocab)
    assert len(valid) == 2 and valid == ["the cat <unk>", "the cat <unk>"]
    assert set(vocab.tokens[3:]) == {"the", "cat"} | {line.split()[2] for line in train}
    assert summary["vocab_size"] == 3 + 2 + 8
    assert summary["unknown_rate_valid"] == pytest.approx(2 / 6)


def test_prepare_truncation_and_padding(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one two three four five\nshort\none two three\n", encoding="utf-8")
    summary = prepare_text_dataset(corpus, tmp_path / "out", max_len=4, valid_fraction=0.0)
    assert summary["seq_len"] == 4 and summary["truncated"] == 1
    assert summary["num_valid"] == 0 and summary["valid_path"] is None
    assert summary["unknown_rate_valid"] is None
    assert not (tmp_path / "out" / "valid.parquet").exists()
    vocab = Vocabulary.load(tmp_path / "out" / "vocab.json")
    tokens = read_token_table(tmp_path / "out" / "train.parquet").tokens
    ids = vocab.token_to_id
    np.testing.assert_array_equal(
        tokens,
        [
            [ids("one"), ids("two"), ids("three"), vocab.eos_id],
            [ids("short"), vocab.eos_id, vocab.pad_id, vocab.pad_id],
            [ids("one"), ids("two"), ids("three"), vocab.eos_id],
        ],
    )


def test_prepare_small_valid_fraction_still_holds_out_one_line(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b\nc d\ne f\n", encoding="utf-8")
    summary = prepare_text_dataset(corpus, tmp_path / "out", valid_fraction=0.01)
    assert (summary["num_train"], summary["num_valid"]) == (2, 1)


def test_prepare_char_level(tmp_path: Path) -> None:
    corpus = tmp_path / "poems.txt"
    corpus.write_text("床 前 明 月 光 ，\n疑 是 地 上 霜 。\n举 头 望 明 月 ，\n", encoding="utf-8")
    summary = prepare_text_dataset(corpus, tmp_path / "out", level="char", valid_fraction=0.0)
    assert summary["seq_len"] == 7 and summary["num_train"] == 3
    vocab = Vocabulary.load(tmp_path / "out" / "vocab.json")
    assert vocab.tokens[3:5] == ("明", "月")
    assert decode_rows(tmp_path / "out" / "train.parquet", vocab)[1] == "疑 是 地 上 霜 。"


def test_prepare_empty_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "blank.txt"
    corpus.write_text("\n  \n\t\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"blank\.txt: the corpus is empty"):
        prepare_text_dataset(corpus, tmp_path / "out")


def test_prepare_missing_corpus(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"text corpus not found: .*absent\.txt"):
        prepare_text_dataset(tmp_path / "absent.txt", tmp_path / "out")


def test_prepare_invalid_utf8(tmp_path: Path) -> None:
    corpus = tmp_path / "latin1.txt"
    corpus.write_bytes("fine line\ncaf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt, line 2 \(1-based\): not valid UTF-8 \(byte 0xe9"):
        prepare_text_dataset(corpus, tmp_path / "out")


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"max_len": 1}, "max_len must be >= 2"),
        ({"min_freq": 0}, "min_freq must be >= 1"),
        ({"valid_fraction": 1.0}, r"valid_fraction must be in \[0, 1\)"),
        ({"valid_fraction": -0.1}, r"valid_fraction must be in \[0, 1\)"),
        ({"level": "bpe"}, "level must be"),
    ],
)
def test_prepare_rejects_bad_options(tmp_path: Path, options: dict, pattern: str) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b\nc d\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=pattern):
        prepare_text_dataset(corpus, tmp_path / "out", **options)


def test_prepare_image_coco(tmp_path: Path) -> None:
    corpus = SHARED_DATA / "image_coco_train.txt"
    if not corpus.is_file():
        pytest.skip(f"real corpus not available at {corpus}")
    summary = prepare_text_dataset(corpus, tmp_path / "coco", valid_fraction=0.1, seed=0)
    # 10,000 captions: `wc -l` (and the data README) say 9,999 because the last
    # line has no trailing newline; it must not be dropped.
    assert summary["num_train"] + summary["num_valid"] == 10_000
    assert summary["num_valid"] == 1000
    assert 2000 < summary["vocab_size"] < 8000
    assert 20 <= summary["seq_len"] <= 60 and summary["truncated"] == 0
    assert 0.0 < summary["unknown_rate_valid"] < 0.05
    train = read_token_table(tmp_path / "coco" / "train.parquet", vocab_size=summary["vocab_size"])
    assert train.tokens.shape == (summary["num_train"], summary["seq_len"])
    vocab = Vocabulary.load(tmp_path / "coco" / "vocab.json")
    assert vocab.tokens[3] == "a"


# ---------------------------------------------------------------- minibatches


def test_iterate_minibatches_in_order() -> None:
    tokens = np.arange(30, dtype=np.int32).reshape(10, 3)
    batches = list(iterate_minibatches(tokens, 4, shuffle=False, rng=None))
    assert [b.shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    np.testing.assert_array_equal(np.concatenate(batches), tokens)


def test_iterate_minibatches_shuffled_is_reproducible_permutation() -> None:
    tokens = np.arange(30, dtype=np.int32).reshape(10, 3)
    first = np.concatenate(list(iterate_minibatches(tokens, 3, shuffle=True, rng=np.random.default_rng(5))))
    second = np.concatenate(list(iterate_minibatches(tokens, 3, shuffle=True, rng=np.random.default_rng(5))))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, tokens)
    np.testing.assert_array_equal(first[np.argsort(first[:, 0])], tokens)


def test_iterate_minibatches_rejects_bad_arguments() -> None:
    tokens = np.zeros((4, 2), dtype=np.int32)
    with pytest.raises(ConfigError, match="batch_size must be >= 1"):
        iterate_minibatches(tokens, 0, shuffle=False, rng=None)
    with pytest.raises(ConfigError, match="shuffle=True needs an rng"):
        iterate_minibatches(tokens, 2, shuffle=True, rng=None)
