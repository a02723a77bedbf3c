"""Prepared datasets (charrnn.scale.prepared) and the `prepare DIR` / `download`
commands, on small invented snapshot files written under tmp_path."""

from __future__ import annotations

import gzip
import json
import os
import re
import stat
import sys
import warnings
import zipfile

import numpy as np
import pytest
import torch
from helpers import TINY_RECORDS, to_jsonl_bytes

import charrnn
from charrnn import data
from charrnn.cli import main
from charrnn.data import format_record, normalize_whitespace, split_records
from charrnn.errors import DataError
from charrnn.scale import download, prepared
from charrnn.scale.prepared import open_prepared, prepare_dataset

WORDS = "sparse attention graph spectral gauge neural operator quantum lattice phonon causal".split()


def invented(n: int, start: int = 0, extra: str = "") -> list[dict]:
    """``n`` invented records in the snapshot's shape (extra fields included)."""
    out = []
    for i in range(start, start + n):
        words = [WORDS[(i * 7 + k) % len(WORDS)] for k in range(3 + i % 5)]
        out.append({
            "id": f"{2000 + i // 1000:04d}.{i % 1000:05d}", "submitter": "A. Person",
            "authors": "A. Person, B. Other", "title": " ".join(words).title() + f" {i}",
            "comments": "9 pages", "journal-ref": None, "doi": None,
            "categories": ["cs.LG stat.ML", "hep-th", "math.PR"][i % 3], "license": None,
            "abstract": f"  We study {' '.join(words)} with $O(n^{i % 4})$ cost.\n  Item {i}.{extra}\n",
            "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}],
            "update_date": "2008-11-13", "authors_parsed": [["Person", "A.", ""]],
        })
    return out


def decoded(directory, split: str) -> list[str]:
    corpus, vocab, _ = open_prepared(directory, split)
    return [vocab.decode(corpus.record(i)) for i in range(len(corpus))]


@pytest.fixture
def snapshot(tmp_path):
    records = invented(300)
    path = tmp_path / "arxiv-metadata-oai-snapshot.json"
    path.write_bytes(to_jsonl_bytes(records))
    return path, records


# ------------------------------------------------------------------ round trip
@pytest.mark.parametrize("val_fraction", [0.01, 0.2])
def test_round_trip_matches_format_record_and_split_records(snapshot, tmp_path, val_fraction):
    path, records = snapshot
    meta = prepare_dataset(path, tmp_path / "out", val_fraction=val_fraction, progress=False)
    train, val = split_records(records, val_fraction)
    assert val, "split_records never leaves validation empty"
    assert decoded(tmp_path / "out", "train") == [format_record(r) for r in train]
    assert decoded(tmp_path / "out", "val") == [format_record(r) for r in val]
    assert meta["splits"]["train"]["records"] == len(train)
    assert meta["splits"]["val"]["records"] == len(val)
    assert meta["records"] == len(records) and meta["malformed_lines"] == 0
    assert meta["splits"]["train"]["tokens"] == sum(len(format_record(r)) + 2 for r in train)


def test_prepared_corpora_are_what_load_corpora_gives_for_the_same_records(snapshot, tmp_path):
    path, records = snapshot
    prepare_dataset(path, tmp_path / "out", val_fraction=0.2, progress=False)
    got = prepared.prepared_corpora(tmp_path / "out")
    want = charrnn.load_corpora(charrnn.DataConfig(data=str(path), val_fraction=0.2))
    assert got.vocab.to_dict() == want.vocab.to_dict()
    assert (len(got.train), len(got.val)) == (len(want.train), len(want.val))
    assert f"{len(want.train)} training / {len(want.val)} validation records" in got.summary
    other = charrnn.CharVocab.from_texts(["only these letters"])
    with pytest.raises(charrnn.CharRNNError, match="vocabulary differs from the checkpoint's"):
        prepared.prepared_corpora(tmp_path / "out", other)


def test_validation_is_never_empty_as_in_split_records(snapshot, tmp_path):
    path, records = snapshot
    assert not any(data.is_validation(r, 0.0001) for r in records)  # the fallback is needed
    meta = prepare_dataset(path, tmp_path / "out", val_fraction=0.0001, progress=False)
    train, val = split_records(records, 0.0001)
    assert len(val) == 1 and meta["splits"]["val"]["records"] == 1
    assert decoded(tmp_path / "out", "train") == [format_record(r) for r in train]
    assert decoded(tmp_path / "out", "val") == [format_record(r) for r in val]
    corpus, _, _ = open_prepared(tmp_path / "out")
    assert corpus.num_tokens == meta["splits"]["train"]["tokens"] == sum(len(format_record(r)) + 2
                                                                         for r in train)


def test_layout_is_encoded_corpus_layout(snapshot, tmp_path):
    path, records = snapshot
    meta = prepare_dataset(path, tmp_path / "out", progress=False)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "meta.json", "train.bin", "train.offsets.npy", "val.bin", "val.offsets.npy", "vocab.json"]
    vocab = charrnn.CharVocab.load(out / "vocab.json")
    train, _ = split_records(records, 0.01)
    expected = charrnn.EncodedCorpus.from_texts([format_record(r) for r in train], vocab)
    ids = np.fromfile(out / "train.bin", dtype=np.uint8)
    assert meta["dtype"] == "uint8"
    assert np.array_equal(ids, expected.ids.numpy())
    assert np.array_equal(np.load(out / "train.offsets.npy"), expected.offsets.numpy())
    assert json.loads((out / "meta.json").read_text())["format_version"] == prepared.FORMAT_VERSION
    assert meta["source"]["name"] == path.name and meta["source"]["size"] == path.stat().st_size
    assert len(meta["source"]["sha256_head_tail"]) == 64
    assert meta["charrnn_version"] == charrnn.__version__


def test_split_does_not_depend_on_file_order(snapshot, tmp_path):
    path, records = snapshot
    shuffled = tmp_path / "shuffled.json"
    shuffled.write_bytes(to_jsonl_bytes(records[::-1]))
    prepare_dataset(path, tmp_path / "a", val_fraction=0.2, progress=False)
    prepare_dataset(shuffled, tmp_path / "b", val_fraction=0.2, progress=False)
    for split in ("train", "val"):
        assert sorted(decoded(tmp_path / "a", split)) == sorted(decoded(tmp_path / "b", split))


def test_whitespace_normalisation_is_the_regex_one():
    # normalize_whitespace uses str.split(); it must collapse exactly what \s+ does.
    regex = re.compile(r"\s+")
    spaces = "".join(chr(c) for c in range(sys.maxunicode + 1)
                     if not 0xD800 <= c < 0xE000 and regex.fullmatch(chr(c)))
    assert all(c.isspace() for c in spaces)
    assert not any(chr(c).isspace() for c in range(0x3001) if chr(c) not in spaces)
    text = f"  a{spaces}b \n c\x1c\x1f d\u00a0e\u2028 "
    assert normalize_whitespace(text) == regex.sub(" ", text).strip() == "a b c d e"


# ------------------------------------------------------------ vocabulary, dtype
def test_wide_vocabulary_is_stored_as_uint16(tmp_path):
    records = invented(40)
    for i, r in enumerate(records):  # 400 distinct CJK characters, 10 per record
        r["abstract"] += "".join(chr(0x4E00 + i * 10 + k) for k in range(10))
    path = tmp_path / "wide.jsonl"
    path.write_bytes(to_jsonl_bytes(records))
    meta = prepare_dataset(path, tmp_path / "out", val_fraction=0.1, progress=False)
    assert meta["vocab_size"] > 256 and meta["dtype"] == "uint16"
    train, val = split_records(records, 0.1)
    assert decoded(tmp_path / "out", "train") == [format_record(r) for r in train]
    assert decoded(tmp_path / "out", "val") == [format_record(r) for r in val]


def test_min_freq_makes_rare_characters_unknown(tmp_path):
    records = invented(50)
    records[3]["abstract"] += " ⊗ once"
    records[7]["abstract"] += " € twice €"
    path = tmp_path / "rare.jsonl"
    path.write_bytes(to_jsonl_bytes(records))
    meta = prepare_dataset(path, tmp_path / "out", min_freq=2, val_fraction=0.1, progress=False)
    _, vocab, _ = open_prepared(tmp_path / "out")
    assert "⊗" not in vocab and "€" in vocab
    assert meta["unknown_chars"] == 1 and meta["rare_chars_cut"] == 1
    assert sorted(decoded_all(tmp_path / "out")) == sorted(
        f"<bos>{format_record(r).replace('⊗', '<unk>')}<eos>" for r in records)


def decoded_all(directory) -> list[str]:
    out = []
    for split in ("train", "val"):
        corpus, vocab, _ = open_prepared(directory, split)
        out += [vocab.decode(corpus.record(i), skip_special=False) for i in range(len(corpus))]
    return out


# ---------------------------------------------------------- lines and filters
def test_malformed_lines_are_counted_not_fatal(tmp_path):
    records = invented(20)
    lines = records[:5] + ["{not json", '{"title": "no abstract"}', "[1, 2]", ""] + records[5:]
    lines += ['{"id": "x", "title": "T", "abstract": "\\ud83d"}']  # a lone surrogate
    path = tmp_path / "bad.jsonl"
    path.write_bytes(to_jsonl_bytes(lines))
    meta = prepare_dataset(path, tmp_path / "out", val_fraction=0.2, progress=False)
    assert meta["malformed_lines"] == 4 and meta["first_malformed_line"] == 6
    assert meta["records"] == 20
    assert sorted(decoded_all(tmp_path / "out")) == sorted(
        f"<bos>{format_record(r)}<eos>" for r in records)


def test_categories_and_limit(snapshot, tmp_path):
    path, records = snapshot
    meta = prepare_dataset(path, tmp_path / "out", categories=["hep", " cs.LG "], limit=50,
                           val_fraction=0.2, progress=False)
    kept = [r for r in records if r["categories"].split()[0] in ("hep-th", "cs.LG")][:50]
    assert meta["records"] == 50 and meta["settings"]["categories"] == ["hep", "cs.LG"]
    assert meta["filtered_out"] == sum(1 for r in records[:records.index(kept[-1]) + 1] if r not in kept)
    train, val = split_records(kept, 0.2)
    assert decoded(tmp_path / "out", "train") == [format_record(r) for r in train]
    assert decoded(tmp_path / "out", "val") == [format_record(r) for r in val]


def test_no_record_in_categories_is_an_error(snapshot, tmp_path):
    with pytest.raises(DataError, match="none of 300 records"):
        prepare_dataset(snapshot[0], tmp_path / "out", categories=["astro-ph"], progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["zip", "gz"])
def test_zip_and_gzip_input(snapshot, tmp_path, kind):
    path, records = snapshot
    if kind == "zip":
        source = tmp_path / "arxiv.zip"
        with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("README.txt", "not data")
            z.write(path, "arxiv-metadata-oai-snapshot.json")
    else:
        source = tmp_path / "snap.json.gz"
        source.write_bytes(gzip.compress(path.read_bytes()))
    prepare_dataset(source, tmp_path / "out", val_fraction=0.1, progress=False)
    train, val = split_records(records, 0.1)
    assert decoded(tmp_path / "out", "train") == [format_record(r) for r in train]
    assert decoded(tmp_path / "out", "val") == [format_record(r) for r in val]


def test_json_array_file_is_refused_with_advice(tmp_path):
    path = tmp_path / "array.json"
    path.write_text(json.dumps(TINY_RECORDS), encoding="utf-8")
    with pytest.raises(DataError, match="JSON array"):
        prepare_dataset(path, tmp_path / "out", progress=False)


def test_prepare_reads_and_splits_through_the_data_module(snapshot, tmp_path, monkeypatch):
    """One record stream and one split rule: prepare goes through
    charrnn.data's parse_record and HashSplit, not copies of them."""
    path, records = snapshot
    parsed, assigned = [], []
    real_parse, real_assign = data.parse_record, data.HashSplit.assign
    monkeypatch.setattr(data, "parse_record", lambda line: parsed.append(1) or real_parse(line))
    monkeypatch.setattr(data.HashSplit, "assign",
                        lambda self, record: assigned.append(record["id"]) or real_assign(self, record))
    meta = prepare_dataset(path, tmp_path / "out", val_fraction=0.1, progress=False)
    assert len(parsed) == meta["lines"] and len(assigned) == meta["records"] == len(records)


# ---------------------------------------------------------------- atomicity
def leftovers(tmp_path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if ".partial-" in p.name)


def test_interrupted_prepare_leaves_nothing(snapshot, tmp_path, monkeypatch):
    path, _ = snapshot
    real_parse, seen = data.parse_record, []

    def parse_then_interrupt(line):
        seen.append(1)
        if len(seen) == 150:
            raise KeyboardInterrupt
        return real_parse(line)

    monkeypatch.setattr(data, "parse_record", parse_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(path, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


def test_crash_while_writing_keeps_the_old_dataset(snapshot, tmp_path, monkeypatch):
    path, _ = snapshot
    first = prepare_dataset(path, tmp_path / "out", progress=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}

    def fail(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(prepared.write, "_write_json", fail)
    with pytest.raises(OSError, match="No space"):
        prepare_dataset(path, tmp_path / "out", progress=False, overwrite=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    assert leftovers(tmp_path) == []
    assert first["records"] == 300


def test_killed_run_leftovers_are_removed_and_incomplete_dir_is_refused(snapshot, tmp_path):
    stale = tmp_path / ".out.partial-abc123"
    stale.mkdir()
    (stale / "train.provisional").write_bytes(b"\0" * 10)
    incomplete = tmp_path / "half"
    incomplete.mkdir()
    (incomplete / "train.bin").write_bytes(b"\1\2")
    with pytest.raises(DataError, match="meta.json is missing"):
        open_prepared(incomplete)
    with pytest.raises(DataError, match="not a prepared dataset"):
        prepare_dataset(snapshot[0], incomplete, progress=False, overwrite=True)
    prepare_dataset(snapshot[0], tmp_path / "out", progress=False)
    assert leftovers(tmp_path) == []


def test_overwrite_is_refused_unless_asked(snapshot, tmp_path):
    path, _ = snapshot
    prepare_dataset(path, tmp_path / "out", limit=10, val_fraction=0.2, progress=False)
    with pytest.raises(DataError, match="already there.*overwrite"):
        prepare_dataset(path, tmp_path / "out", progress=False)
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["records"] == 10
    meta = prepare_dataset(path, tmp_path / "out", progress=False, overwrite=True)
    assert meta["records"] == 300 and leftovers(tmp_path) == []


# ------------------------------------------------------------------- opening
def test_open_errors(snapshot, tmp_path):
    path, _ = snapshot
    with pytest.raises(DataError, match="no such prepared dataset"):
        open_prepared(tmp_path / "missing")
    prepare_dataset(path, tmp_path / "out", val_fraction=0.0, progress=False)
    with pytest.raises(DataError, match="val split holds no records"):
        open_prepared(tmp_path / "out", "val")
    with pytest.raises(ValueError, match="split must be one of"):
        open_prepared(tmp_path / "out", "test")
    meta_path = tmp_path / "out" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(DataError, match="format version 99"):
        open_prepared(tmp_path / "out")
    meta_path.write_text(json.dumps(meta))
    with open(tmp_path / "out" / "train.bin", "ab") as f:
        f.write(b"\0")
    with pytest.raises(DataError, match="do not match"):
        open_prepared(tmp_path / "out")


def test_window_batches_on_a_memory_mapped_corpus(snapshot, tmp_path):
    path, records = snapshot
    prepare_dataset(path, tmp_path / "out", progress=False)
    corpus, vocab, meta = open_prepared(tmp_path / "out")
    assert isinstance(corpus.ids.array, np.memmap)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "non-writable array" warning from torch
        batches = charrnn.WindowBatches(corpus, batch_size=4, seq_len=32, seed=1)
        x, y = batches.batch(3)
        x2, _ = batches.batch(3)
        evaluation = list(batches.eval_batches())
        records_batch = charrnn.RecordBatches(corpus, batch_size=5, seed=0).batch(0)
    assert x.shape == y.shape == (4, 32) and x.dtype == y.dtype == torch.long
    assert torch.equal(x, x2)
    assert int(x.max()) < len(vocab) and int(x.min()) >= 0
    assert torch.equal(x[:, 1:], torch.where(y[:, :-1] == 0, x[:, 1:], y[:, :-1]))
    scored = sum(int((t != 0).sum()) for _, t in evaluation)
    assert scored == corpus.num_tokens - 1 - (len(corpus) - 1)  # every target but the <bos> ones
    assert records_batch[0].shape[0] == 5
    model = charrnn.CharRNN(vocab_size=len(vocab), hidden_size=16, embed_dim=8)
    logits, _ = model(x)
    assert logits.shape == (4, 32, len(vocab))


# ------------------------------------------------------------------------- CLI
def test_cli_prepare_directory_end_to_end(snapshot, tmp_path, capsys):
    path, records = snapshot
    out = tmp_path / "prepared"
    argv = ["prepare", str(path), "--out", str(out), "--val-fraction", "0.1", "--min-freq", "1",
            "--categories", "cs.LG,hep", "--limit", "100", "--no-progress"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["records"] == 100
    for number in (meta["splits"]["train"]["records"], meta["splits"]["val"]["records"],
                   meta["vocab_size"]):
        assert f"{number:,}" in text
    assert "train" in text and "val" in text and "tokens" in text and "malformed" in text
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0


def test_cli_train_and_evaluate_on_a_prepared_directory(snapshot, tmp_path, capsys):
    path, _ = snapshot
    out, ckpt = tmp_path / "prepared", tmp_path / "m.pt"
    assert main(["prepare", str(path), "--out", str(out), "--val-fraction", "0.1", "--no-progress"]) == 0
    assert main(["train", "--data", str(out), "--hidden", "16", "--embed", "8", "--steps", "4",
                 "--eval-every", "2", "--batch-size", "4", "--seq-len", "16", "--out", str(ckpt),
                 "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(out), "--split", "val"]) == 0
    text = capsys.readouterr().out
    val_records = json.loads((out / "meta.json").read_text())["splits"]["val"]["records"]
    assert f"evaluating {val_records:,} records (val split" in text
    assert "bits/char" in text and "gzip" in text
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(out), "--split", "train",
                 "--limit", "5"]) == 0
    assert "evaluating 5 records (train split" in capsys.readouterr().out


def test_cli_evaluate_refuses_a_prepared_directory_of_another_vocabulary(snapshot, tmp_path, capsys):
    path, _ = snapshot
    out, ckpt = tmp_path / "prepared", tmp_path / "m.pt"
    assert main(["prepare", str(path), "--out", str(out), "--no-progress"]) == 0
    vocab = charrnn.CharVocab.from_texts(["abc"])
    charrnn.save_checkpoint(ckpt, charrnn.CharRNN(vocab_size=len(vocab), hidden_size=8, embed_dim=4), vocab)
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(out)]) != 0
    err = capsys.readouterr().err
    assert "vocab.json" in err and "not the checkpoint's vocabulary" in err


def test_cli_prepare_options_belong_to_their_mode(snapshot, tmp_path, capsys):
    path, _ = snapshot
    assert main(["prepare", str(path), "--out", str(tmp_path / "d"), "--sample", "5"]) == 2
    assert "--sample is for a JSON-lines sample" in capsys.readouterr().err
    assert main(["prepare", str(path), "--out", str(tmp_path / "s.jsonl"), "--min-freq", "3"]) == 2
    assert "--min-freq is for a prepared directory" in capsys.readouterr().err
    assert main(["prepare", str(path), "--out", str(tmp_path / "s.jsonl"), "--sample", "5"]) == 0
    assert len(charrnn.load_records(tmp_path / "s.jsonl")) == 5


# -------------------------------------------------------------------- download
@pytest.fixture
def no_kaggle(monkeypatch, tmp_path):
    """No kaggle package, no kaggle command, no token: a clean slate."""
    monkeypatch.setitem(sys.modules, "kaggle", None)  # `import kaggle...` raises ImportError
    monkeypatch.setitem(sys.modules, "kaggle.api.kaggle_api_extended", None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_download_without_client_explains_setup(no_kaggle, tmp_path, capsys):
    assert main(["download", "--dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "not installed" in err and "pip install 'charrnn-course[kaggle]'" in err
    assert "KAGGLE_API_TOKEN" in err and "access_token" in err and "kaggle.json" in err and download.PAGE in err
    assert not (tmp_path / "data").exists()


def fake_kaggle(tmp_path, monkeypatch) -> tuple:
    """A `kaggle` executable on PATH that records its arguments."""
    bin_dir, log = tmp_path / "bin", tmp_path / "kaggle-args.json"
    bin_dir.mkdir()
    script = bin_dir / "kaggle"
    script.write_text(f"#!{sys.executable}\nimport json, sys\n"
                      f"json.dump(sys.argv[1:], open({str(log)!r}, 'w'))\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))
    return log


def fake_kaggle_package(tmp_path, monkeypatch, module_source: str):
    """A `kaggle` package on sys.path whose kaggle_api_extended module is
    ``module_source``; returns the file the fake client logs its calls to."""
    root = tmp_path / "site"
    (root / "kaggle" / "api").mkdir(parents=True)
    (root / "kaggle" / "__init__.py").write_text("")
    (root / "kaggle" / "api" / "__init__.py").write_text("")
    log = tmp_path / "client-calls.json"
    (root / "kaggle" / "api" / "kaggle_api_extended.py").write_text(module_source.replace("LOG", repr(str(log))))
    for name in ("kaggle", "kaggle.api", "kaggle.api.kaggle_api_extended"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(root))
    return log


SIGNED_IN_CLIENT = """
import json
class KaggleApi:
    def authenticate(self):
        pass
    def dataset_download_files(self, dataset, path, quiet, unzip):
        json.dump([dataset, path, unzip], open(LOG, "w"))
"""

NO_CREDENTIALS_CLIENT = """
class KaggleApi:
    def authenticate(self):
        print("Authentication required to call the Kaggle API.")
        exit(1)
"""


def test_download_lets_the_client_decide_about_credentials(no_kaggle, tmp_path, monkeypatch, capsys):
    """No token of any kind we know of, yet the client signs in (say, with a
    method newer than this code): the download goes ahead."""
    log = fake_kaggle_package(tmp_path, monkeypatch, SIGNED_IN_CLIENT)
    assert main(["download", "--dir", str(tmp_path / "data")]) == 0
    assert json.loads(log.read_text()) == ["Cornell-University/arxiv", str(tmp_path / "data"), False]


def test_download_when_the_client_finds_no_credentials(no_kaggle, tmp_path, monkeypatch, capsys):
    log = fake_kaggle_package(tmp_path, monkeypatch, NO_CREDENTIALS_CLIENT)
    assert main(["download", "--dir", str(tmp_path / "data")]) == 2
    captured = capsys.readouterr()
    assert "could not sign in" in captured.err and "KAGGLE_API_TOKEN" in captured.err
    assert "Authentication required" not in captured.out  # the client's own help is not printed as well
    assert not log.exists() and not (tmp_path / "data").exists()


def test_download_names_what_a_broken_client_is_missing(no_kaggle, tmp_path, monkeypatch, capsys):
    fake_kaggle_package(tmp_path, monkeypatch, "import charrnn_test_missing_dependency\n")
    assert main(["download", "--dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "installed but cannot be imported" in err and "`charrnn_test_missing_dependency`" in err
    assert "not installed (no `kaggle` package" not in err


@pytest.mark.skipif(os.name == "nt", reason="a script with a #! line")
def test_download_calls_the_kaggle_command(no_kaggle, tmp_path, monkeypatch, capsys):
    """Without the Python package, the `kaggle` command does the work and
    checks its own credentials."""
    log = fake_kaggle(tmp_path, monkeypatch)
    assert main(["download", "--dir", str(tmp_path / "data")]) == 0
    assert json.loads(log.read_text()) == ["datasets", "download", "Cornell-University/arxiv",
                                           "-p", str(tmp_path / "data")]
    assert "arxiv.zip" in capsys.readouterr().out
