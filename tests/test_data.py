"""Reading arXiv records, formatting, splitting and writing them."""

from __future__ import annotations

import gzip
import json
import random
import warnings
import zipfile

import pytest
from helpers import to_jsonl_bytes

import charrnn
from charrnn import (
    CharVocab,
    DataError,
    EncodedCorpus,
    ReadStats,
    format_record,
    iter_records,
    load_records,
    load_texts,
    normalize_whitespace,
    split_records,
    write_records,
)


def ids(records):
    return [r["id"] for r in records]


# ------------------------------------------------------------------ formats
def test_reads_jsonl(tiny_jsonl, tiny_records):
    assert load_records(tiny_jsonl) == tiny_records


def test_reads_json_lines_with_json_suffix(tmp_path, tiny_records):
    path = tmp_path / "arxiv-metadata-oai-snapshot.json"
    path.write_bytes(to_jsonl_bytes(tiny_records))
    assert load_records(path) == tiny_records


def test_reads_gzip(tmp_path, tiny_records):
    path = tmp_path / "data.jsonl.gz"
    path.write_bytes(gzip.compress(to_jsonl_bytes(tiny_records)))
    assert load_records(path) == tiny_records


def test_reads_the_json_member_of_a_zip(tmp_path, tiny_records):
    path = tmp_path / "arxiv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("README.txt", "not data")
        archive.writestr("arxiv-metadata-oai-snapshot.json", to_jsonl_bytes(tiny_records))
    assert load_records(path) == tiny_records


def test_the_largest_json_member_of_a_zip_is_the_data(tmp_path, tiny_records):
    """One rule, for the reader and for prepare's progress bar alike."""
    from charrnn.data import largest_json_member
    from charrnn.scale.prepared.write import _stream_size

    path = tmp_path / "arxiv.zip"
    data = to_jsonl_bytes(tiny_records)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("index.json", "{}")
        archive.writestr("folder.json/", "")
        archive.writestr("big.txt", b"x" * (2 * len(data)))
        archive.writestr("arxiv-metadata-oai-snapshot.JSON", data)
    with zipfile.ZipFile(path) as archive:
        assert largest_json_member(archive).filename == "arxiv-metadata-oai-snapshot.JSON"
    assert load_records(path) == tiny_records
    assert _stream_size(path) == len(data)


def test_zip_without_json_member_raises(tmp_path):
    path = tmp_path / "empty.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("README.txt", "not data")
    with pytest.raises(DataError, match="no .json or .jsonl"):
        load_records(path)


def test_invalid_zip_raises(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(DataError, match="not a valid zip"):
        load_records(path)


def test_reads_a_json_array_file(tmp_path, tiny_records):
    path = tmp_path / "array.json"
    path.write_text(json.dumps(tiny_records, indent=2), encoding="utf-8")
    assert load_records(path) == tiny_records


def test_json_array_skips_items_without_text(tmp_path, tiny_records):
    path = tmp_path / "array.json"
    path.write_text(json.dumps([tiny_records[0], {"title": "no abstract"}, 7, tiny_records[1]]),
                    encoding="utf-8")
    stats = ReadStats()
    with pytest.warns(UserWarning, match="malformed"):
        records = load_records(path, stats=stats)
    assert records == tiny_records[:2]
    assert stats.malformed == 2 and stats.first_bad_line == 2


def test_truncated_gzip_raises_data_error(tmp_path, tiny_records):
    # An unreadable data file is a DataError ("missing, unreadable or holds
    # no usable record"), so the CLI reports it in one line.
    blob = gzip.compress(to_jsonl_bytes(tiny_records * 20))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(DataError) as info:
        load_records(path)
    assert str(path) in str(info.value)


def test_record_with_a_lone_surrogate_escape_does_not_break_encoding(write_jsonl, tiny_records):
    # "\ud83d" is valid JSON (half of an emoji's UTF-16 pair) and does occur
    # in scraped metadata. One such record must not make the whole corpus
    # impossible to encode: skip it as malformed or encode it as <unk>.
    path = write_jsonl([*tiny_records, '{"id": "s", "title": "Broken emoji \\ud83d here", '
                                       '"abstract": "A lone surrogate \\ud83d.", "categories": "cs.LG"}'])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        texts = load_texts(path)
        vocab = CharVocab.from_texts(texts)
        corpus = EncodedCorpus.from_texts(texts, vocab)
    assert len(corpus) == len(texts) >= len(tiny_records)
    assert vocab.decode(corpus.record(0)) == texts[0]


# --------------------------------------------------------------- bad input
def test_malformed_lines_are_skipped_counted_and_warned(write_jsonl, tiny_records):
    path = write_jsonl([
        tiny_records[0],                                     # line 1
        tiny_records[1],                                     # line 2
        '{"title": "cut off in the midd',                    # line 3: not JSON
        "",                                                  # line 4: blank, ignored
        json.dumps({"title": 3, "abstract": "x"}),           # line 5: title not a string
        json.dumps({"title": "only a title"}),               # line 6: no abstract
        tiny_records[2],                                     # line 7
    ])
    stats = ReadStats()
    with pytest.warns(UserWarning, match="skipped 3 malformed line.*line 3"):
        records = load_records(path, stats=stats)
    assert ids(records) == ids(tiny_records[:3])
    assert stats.malformed == 3
    assert stats.first_bad_line == 3
    assert stats.records == 3
    assert stats.lines == 6  # non-blank lines
    assert "3 malformed line(s) skipped (first at line 3)" in stats.summary()


def test_first_bad_line_counts_physical_lines(write_jsonl, tiny_records):
    path = write_jsonl([tiny_records[0], "", "", "not json", tiny_records[1]])
    stats = ReadStats()
    with pytest.warns(UserWarning):
        load_records(path, stats=stats)
    assert stats.first_bad_line == 4


def test_iter_records_counts_without_warning(write_jsonl, tiny_records, recwarn):
    path = write_jsonl([tiny_records[0], "garbage"])
    stats = ReadStats()
    assert ids(iter_records(path, stats=stats)) == [tiny_records[0]["id"]]
    assert stats.malformed == 1
    assert len(recwarn) == 0


def test_file_without_usable_records_raises_naming_the_file(write_jsonl):
    path = write_jsonl(["garbage", "{also garbage", json.dumps({"id": "x"})])
    with pytest.warns(UserWarning, match="malformed"), pytest.raises(DataError) as info:
        load_records(path)
    assert str(path) in str(info.value)
    assert "no usable record" in str(info.value)


def test_empty_file_raises(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="no usable record") as info:
        load_records(path)
    assert str(path) in str(info.value)


def test_missing_file_raises(tmp_path):
    path = tmp_path / "nowhere.jsonl"
    with pytest.raises(DataError, match="no such file") as info:
        load_records(path)
    assert str(path) in str(info.value)


def test_directory_raises(tmp_path):
    with pytest.raises(DataError, match="directory"):
        load_records(tmp_path)


@pytest.mark.parametrize("kwargs", [{"limit": 0}, {"sample": 0}, {"limit": -3}])
def test_non_positive_limit_or_sample_raises(tiny_jsonl, kwargs):
    with pytest.raises(ValueError):
        load_records(tiny_jsonl, **kwargs)


# -------------------------------------------------------------- filtering
def test_category_filter_exact_code(tiny_jsonl):
    assert ids(load_records(tiny_jsonl, categories=["cs.LG"])) == ["test-0001", "test-0004"]


def test_category_filter_matches_secondary_categories(tiny_jsonl):
    assert ids(load_records(tiny_jsonl, categories=["stat.ML"])) == ["test-0001"]


def test_category_filter_archive_prefix(tiny_jsonl):
    got = ids(load_records(tiny_jsonl, categories=["cs"]))
    # cs.LG, cs.DS, cs.AI, cs.CL -- but not the invented archive "cs2".
    assert got == ["test-0001", "test-0004", "test-0008", "test-0010", "test-0012"]
    assert "test-0005" not in got


def test_category_prefix_is_not_a_string_prefix(tiny_jsonl):
    # "cs.L" is not a category, and must not match cs.LG.
    with pytest.raises(DataError, match="categories"):
        load_records(tiny_jsonl, categories=["cs.L"])


def test_category_filter_takes_several_codes(tiny_jsonl):
    got = ids(load_records(tiny_jsonl, categories=["quant-ph", "math"]))
    assert got == ["test-0002", "test-0006", "test-0008"]


def test_category_filter_counts_rejected_records(tiny_jsonl):
    stats = ReadStats()
    load_records(tiny_jsonl, categories=["hep-th"], stats=stats)
    assert stats.records == 1 and stats.filtered_out == 11


def test_category_filter_with_no_match_raises(tiny_jsonl):
    with pytest.raises(DataError, match="categories"):
        load_records(tiny_jsonl, categories=["q-fin"])


# ----------------------------------------------------------- limit, sample
def test_limit_keeps_the_first_records(tiny_jsonl, tiny_records):
    assert load_records(tiny_jsonl, limit=4) == tiny_records[:4]


def test_limit_applies_after_the_category_filter(tiny_jsonl):
    assert ids(load_records(tiny_jsonl, categories=["cs"], limit=2)) == ["test-0001", "test-0004"]


def test_sample_returns_exactly_k_in_file_order(tiny_jsonl, tiny_records):
    sample = load_records(tiny_jsonl, sample=5, seed=3)
    assert len(sample) == 5
    order = ids(tiny_records)
    positions = [order.index(i) for i in ids(sample)]
    assert positions == sorted(positions)
    assert len(set(positions)) == 5


def test_sample_is_deterministic_for_a_seed(tiny_jsonl):
    assert load_records(tiny_jsonl, sample=5, seed=7) == load_records(tiny_jsonl, sample=5, seed=7)


def test_sample_differs_between_seeds():
    # C(150, 10) possible samples: two seeds agreeing would be a bug.
    a = ids(load_records(sample=10, seed=1))
    b = ids(load_records(sample=10, seed=2))
    assert a != b


def test_sample_larger_than_file_returns_everything(tiny_jsonl, tiny_records):
    assert load_records(tiny_jsonl, sample=100) == tiny_records


def test_sample_reaches_the_whole_file():
    # Over many seeds, records from the end of the file get sampled too
    # (a reservoir that stopped early would never pick them).
    seen = set()
    for seed in range(30):
        seen.update(ids(load_records(sample=5, seed=seed)))
    numbers = sorted(int(i.split("-")[1]) for i in seen)
    assert numbers[-1] > 140 and numbers[0] < 10


# ------------------------------------------------------------- formatting
def test_format_record_normalises_kaggle_whitespace():
    record = {"title": "Noncommutative Spaces Have the Approximation Property Uniformly in\n  $p$",
              "abstract": "  We show that every algebra\nhas the property.\n  Indented line.\n"}
    assert format_record(record) == ("Noncommutative Spaces Have the Approximation Property Uniformly "
                                     "in $p$ ; We show that every algebra has the property. Indented line.")


def test_format_record_single_line_record():
    assert format_record({"title": "A Title", "abstract": "An abstract."}) == "A Title ; An abstract."


def test_normalize_whitespace_collapses_tabs_and_runs():
    assert normalize_whitespace(" a\t\tb \r\n c  ") == "a b c"


def test_load_texts_of_the_embedded_corpus():
    texts = load_texts()
    assert len(texts) == 150
    for text in texts:
        assert " ; " in text
        assert "\n" not in text and "  " not in text and text == text.strip()


# ---------------------------------------------------------------- splitting
def test_split_is_disjoint_and_complete():
    records = load_records()
    train, val = split_records(records, 0.2)
    assert set(ids(train)).isdisjoint(ids(val))
    assert sorted(ids(train) + ids(val)) == sorted(ids(records))
    assert 0.05 * len(records) < len(val) < 0.4 * len(records)


def test_split_is_deterministic():
    records = load_records()
    assert split_records(records, 0.1) == split_records(records, 0.1)


def test_split_does_not_depend_on_record_order():
    records = load_records()
    shuffled = records[:]
    random.Random(5).shuffle(shuffled)
    train_a, val_a = split_records(records, 0.1)
    train_b, val_b = split_records(shuffled, 0.1)
    assert set(ids(val_a)) == set(ids(val_b))
    assert set(ids(train_a)) == set(ids(train_b))


def test_split_of_a_subset_agrees_with_the_full_split():
    records = load_records()
    _, val_full = split_records(records, 0.2)
    subset = records[::3]
    _, val_subset = split_records(subset, 0.2)
    assert set(ids(val_subset)) == set(ids(val_full)) & set(ids(subset))


def test_split_validation_is_never_empty(tiny_records):
    for n in range(2, 6):
        train, val = split_records(tiny_records[:n], 0.01)
        assert len(val) >= 1 and len(train) + len(val) == n


def test_split_with_zero_fraction_keeps_everything_for_training(tiny_records):
    train, val = split_records(tiny_records, 0.0)
    assert train == tiny_records and val == []


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_split_rejects_invalid_fraction(tiny_records, fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        split_records(tiny_records, fraction)


# ------------------------------------------------------------------ writing
def test_write_records_round_trip(tmp_path, tiny_records):
    path = tmp_path / "out.jsonl"
    extra = [dict(r, note="dropped") for r in tiny_records]
    assert write_records(extra, path) == len(tiny_records)
    assert load_records(path) == tiny_records
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary file left


def test_write_records_keeps_non_ascii(tmp_path):
    record = {"id": "x", "title": "Erdős–Rényi", "abstract": "Poincaré", "categories": "math.CO"}
    path = tmp_path / "out.jsonl"
    write_records([record], path)
    assert "Erdős–Rényi" in path.read_text(encoding="utf-8")
    assert load_records(path) == [record]


def test_write_records_failure_leaves_existing_file(tmp_path, tiny_records):
    path = tmp_path / "out.jsonl"
    write_records(tiny_records, path)
    before = path.read_bytes()

    def broken():
        yield tiny_records[0]
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_records(broken(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_default_corpus_is_the_packaged_file():
    path = charrnn.default_corpus_path()
    assert path.is_file()
    assert len(load_records(path)) == 150


# ------------------------------------------------------- the optional parser
# Lines a JSON-lines reader meets, damaged ones included, and the ones where
# orjson and json disagree (orjson refuses them; json's verdict must stand).
PARSER_LINES = [
    b'{"id": "1", "title": "T", "abstract": "A"}',
    b'{"id": "1", "title": "T\\u00e9 \\ud83d\\ude00", "abstract": "A"}\r',
    b'{"id": "1", "title": "T", "abstract": "A", "x": NaN}',
    b'{"id": "1", "title": "T", "abstract": "A", "x": 1e400}',
    b'{"id": "1", "title": "T", "abstract": "A", "x": "\\ud83d"}',
    b'{"id": "1", "title": "\\ud83d", "abstract": "A"}',
    b'\xef\xbb\xbf{"id": "1", "title": "T", "abstract": "A"}',
    b'{"id": "1", "title": "T\xff", "abstract": "A"}',
    b'{"id": "1", "title": "T", "abstract": "A"',
    b'{"id": "1", "title": "T", "abstract": "A"} trailing',
    b'{"id": "1", "title": 5, "abstract": "A"}',
    b'["not", "a", "record"]',
    b'{"x": ' + b"[" * 1100 + b"]" * 1100 + b"}",
]


@pytest.mark.parametrize("line", PARSER_LINES)
def test_orjson_reads_every_line_as_json_does(line, monkeypatch):
    pytest.importorskip("orjson")
    from charrnn import data

    fast = data.parse_record(line)
    monkeypatch.setattr(data, "_fast_loads", None)
    assert fast == data.parse_record(line)
