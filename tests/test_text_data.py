"""Plain-text data ("bring your own text"): .txt/.md files whose paragraphs
or lines are the records, through the library and the command line."""

from __future__ import annotations

import gzip
import itertools

import pytest
from helpers import assert_one_line_error
from helpers import run_cli as run

from charrnn import load_checkpoint
from charrnn.config import DataConfig
from charrnn.corpus import load_corpora
from charrnn.data import (
    MAX_LINE_BYTES,
    TEXT_RECORD_CHARS,
    ReadStats,
    format_record,
    is_plain_text,
    iter_records,
    load_records,
    split_key,
    split_records,
)
from charrnn.errors import ConfigError, DataError
from charrnn.scale.prepared import prepare_dataset, read_meta

# ------------------------------------------------------------ a small text
# Sentences composed for this test (subject, verb, object), in Russian: the
# script is not Latin, some letters are rare, and the text has no " ; ".
SUBJECTS = ["Кот", "Старый рыбак", "Маленькая девочка", "Северный ветер", "Учитель", "Мой сосед",
            "Серый волк", "Весёлый музыкант"]
VERBS = ["видит", "ищет", "рисует", "любит", "находит", "слушает"]
OBJECTS = ["тихую реку", "зелёный лес", "белую луну", "старый дом", "далёкое море", "синее небо",
           "тёплый хлеб"]
ENDINGS = [".", "!", "?", "..."]


def russian_sentences() -> list[str]:
    """336 short sentences, every subject with every verb and object."""
    return [f"{s} {v} {o}{ENDINGS[i % len(ENDINGS)]}"
            for i, (s, v, o) in enumerate(itertools.product(SUBJECTS, VERBS, OBJECTS))]


def russian_stanzas() -> str:
    """The sentences as stanzas of four lines, blank lines between, with a
    rare CJK character and an emoji in one line each."""
    lines = russian_sentences()
    lines[5] += " 月"
    lines[9] += " 🙂"
    stanzas = ["\n".join(lines[i:i + 4]) for i in range(0, len(lines), 4)]
    return "\n\n".join(stanzas) + "\n"


@pytest.fixture
def poem(tmp_path):
    path = tmp_path / "стихи.txt"
    path.write_text(russian_stanzas(), encoding="utf-8")
    return path


def texts(path, **kwargs) -> list[str]:
    return [format_record(r) for r in iter_records(path, **kwargs)]


# --------------------------------------------------------- which files
@pytest.mark.parametrize("name, plain", [("a.txt", True), ("A.TXT", True), ("a.txt.gz", True), ("a.md", True),
                                         ("a.md.gz", True), ("a.jsonl", False), ("a.gz", False),
                                         ("a.json.gz", False), ("a.zip", False), ("txt", False)])
def test_which_files_are_plain_text(name, plain):
    assert is_plain_text(name) is plain


# ---------------------------------------------------- paragraphs and lines
def test_paragraphs_keep_their_line_breaks_and_lines_are_records(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("Roses are red,  \n  violets are blue.\n\n\n   \nSecond stanza\tends here.   \n",
                    encoding="utf-8")
    assert texts(path) == ["Roses are red,\n  violets are blue.", "Second stanza\tends here."]
    assert texts(path, text_records="lines") == ["Roses are red,", "  violets are blue.",
                                                 "Second stanza\tends here."]
    stats = ReadStats()
    assert len(load_records(path, stats=stats)) == 2
    assert stats.summary() == f"{path}: 2 records (paragraphs) from 3 lines"


def test_windows_line_endings_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffOne\r\ntwo\r\n\r\nthree\r\n".encode())
    assert texts(path) == ["One\ntwo", "three"]
    assert texts(path, text_records="lines") == ["One", "two", "three"]


def test_a_text_that_starts_with_a_bracket_is_not_a_json_array(tmp_path):
    path = tmp_path / "a.md"
    path.write_text("[link](x) and text\n", encoding="utf-8")
    assert texts(path) == ["[link](x) and text"]


def test_gzipped_text_reads_like_the_text(tmp_path, poem):
    packed = tmp_path / "стихи.txt.gz"
    packed.write_bytes(gzip.compress(poem.read_bytes()))
    assert texts(packed) == texts(poem)
    assert len(texts(poem)) == 84  # 336 sentences, 4 to a stanza


# --------------------------------------------------------------- bad input
def test_invalid_utf8_names_the_file_the_line_and_the_byte(tmp_path):
    path = tmp_path / "cp1251.txt"
    path.write_bytes(b"fine\n\n" + "Привет".encode("cp1251") + b"\n")
    with pytest.raises(DataError) as info:
        list(iter_records(path))
    message = str(info.value)
    assert str(path) in message and "line 3 is not UTF-8" in message
    assert "byte 1 of the line is cf" in message and "iconv" in message


def test_the_byte_count_of_a_bad_first_line_counts_the_byte_order_mark(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbfab\xff\n")
    with pytest.raises(DataError, match="line 1 is not UTF-8 .byte 6 of the line is ff"):
        list(iter_records(path))


def test_a_file_of_blank_lines_is_a_clear_error(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("\n  \n\r\n", encoding="utf-8")
    with pytest.raises(DataError, match="no text to read .the file is empty or holds only blank lines"):
        load_records(path)


def test_categories_on_a_text_are_refused(poem, tmp_path):
    with pytest.raises(DataError, match="is plain text, which has no categories"):
        load_records(poem, categories=["cs.LG"])
    with pytest.raises(DataError, match="no categories"):  # before the lock or any file is written
        prepare_dataset(poem, tmp_path / "out", categories=["cs"], progress=False)
    assert not (tmp_path / "out").exists()
    rc, _, err = run(["train", "--data", poem, "--categories", "cs", "--steps", "1", "--no-progress",
                      "--out", tmp_path / "x.pt"])
    assert_one_line_error(rc, err, "no categories", "--categories")


def test_text_records_is_checked_saved_and_a_flag(tmp_path):
    with pytest.raises(ConfigError, match="text_records must be one of paragraphs, lines"):
        DataConfig(text_records="sentences")
    assert DataConfig(text_records="lines").to_dict()["text_records"] == "lines"
    rc, _, err = run(["train", "--text-records", "words", "--steps", "1"])
    assert rc == 2 and "invalid choice" in err


# ------------------------------------------------------- long records
def test_a_text_without_blank_lines_is_cut_at_line_breaks(tmp_path):
    line = "x" * 999
    path = tmp_path / "wall.txt"
    path.write_text((line + "\n") * 200, encoding="utf-8")  # 200,000 characters, one paragraph
    records = texts(path)
    per_record = (TEXT_RECORD_CHARS + 1) // (len(line) + 1)  # whole lines that fit, breaks between
    assert [len(t) for t in records[:-1]] == [per_record * 1000 - 1] * (len(records) - 1)
    assert all(t.split("\n") == [line] * ((len(t) + 1) // 1000) for t in records)
    assert sum(t.count("x") for t in records) == 200 * 999


def test_a_line_longer_than_a_record_is_cut_into_pieces(tmp_path):
    path = tmp_path / "one-line.txt"
    path.write_text("before\n" + "я" * (2 * TEXT_RECORD_CHARS + 5) + "\nafter\n", encoding="utf-8")
    assert [len(t) for t in texts(path)] == [6, TEXT_RECORD_CHARS, TEXT_RECORD_CHARS, 5 + 1 + 5]


def test_a_line_over_the_byte_cap_is_skipped_and_counted(tmp_path):
    path = tmp_path / "huge.txt"
    path.write_bytes(b"start\n" + b"y" * (MAX_LINE_BYTES + 10) + b"\nend\n")
    stats = ReadStats()
    with pytest.warns(UserWarning, match="1 line.s. over 1 MB skipped .first at line 2"):
        records = load_records(path, stats=stats)
    assert [format_record(r) for r in records] == ["start", "end"]  # the skipped line ends the paragraph


# ---------------------------------------------------- split, limit, sample
def test_the_split_is_by_text_and_does_not_depend_on_order(poem, tmp_path):
    records = load_records(poem)
    assert split_key(records[0]) == records[0]["text"]
    train, val = split_records(records, 0.2)
    shuffled = tmp_path / "shuffled.txt"
    shuffled.write_text("\n\n".join(reversed([r["text"] for r in records])), encoding="utf-8")
    train2, val2 = split_records(load_records(shuffled), 0.2)
    assert sorted(r["text"] for r in val) == sorted(r["text"] for r in val2) and val
    assert len(train) + len(val) == 84


def test_limit_and_sample_work_on_a_text(poem):
    assert len(load_records(poem, limit=10)) == 10
    sample = load_records(poem, sample=7, seed=3)
    assert len(sample) == 7 and sample == load_records(poem, sample=7, seed=3)
    assert len(load_records(poem, limit=3, text_records="lines")) == 3


def test_the_vocabulary_holds_cyrillic_and_min_freq_maps_rare_ones_to_unk(poem):
    corpora = load_corpora(DataConfig(data=str(poem), val_fraction=0.0))
    assert {"ё", "щ", "\n", "🙂", "月"} <= set(corpora.vocab.chars)
    rare = load_corpora(DataConfig(data=str(poem), val_fraction=0.0, min_freq=2)).vocab
    assert "🙂" not in rare and "月" not in rare and "ё" in rare
    assert rare.decode(rare.encode("Кот 🙂", add_bos=True)) == "Кот "  # <unk> is dropped when decoding


def test_a_prepared_text_is_the_same_text_as_read_in_memory(poem, tmp_path):
    meta = prepare_dataset(poem, tmp_path / "prep", val_fraction=0.1, progress=False, text_records="lines")
    assert meta["settings"]["text_records"] == "lines"
    assert meta["records"] == 336 and meta["lines"] == 336
    _, val = split_records(load_records(poem, text_records="lines"), 0.1)
    assert meta["splits"]["val"]["records"] == len(val)


# ------------------------------------------------- the command line, end to end
TINY = ["--hidden-size", "16", "--embed-dim", "8", "--seq-len", "32", "--batch-size", "8",
        "--eval-every", "3", "--no-progress", "--device", "cpu"]


def test_train_sample_evaluate_and_prepare_on_a_russian_text(poem, tmp_path, capsys):
    ckpt = tmp_path / "стихи.pt"
    rc, out, err = run(["train", "--data", poem, "--steps", "3", *TINY, "--out", ckpt])
    assert rc == 0, err
    assert "84 records (paragraphs) from 336 lines" in out
    assert "Samples (each starts a new record: a paragraph)" in out
    saved = load_checkpoint(ckpt)
    assert saved["data_config"]["text_records"] == "paragraphs"
    assert "щ" in saved["vocab"]["chars"] and "\n" in saved["vocab"]["chars"]

    rc, out, err = run(["sample", "--checkpoint", ckpt, "--prefix", "Старый", "--length", "20",
                        "--seed", "1"])
    assert rc == 0, err
    assert out.startswith("Старый") and "<unk>" not in out

    rc, out, err = run(["evaluate", "--checkpoint", ckpt, "--data", poem, "--split", "val",
                        "--no-progress", "--word-temperatures", "1.0", "--word-samples", "2",
                        "--word-length", "40"])
    assert rc == 0, err
    assert "bits/char" in out and "gzip" in out and "temperature 1" in out

    prepared = tmp_path / "prepared"
    rc, out, err = run(["prepare", poem, "--out", prepared, "--text-records", "lines", "--no-progress"])
    assert rc == 0, err
    assert "336 records (lines) from 336 non-blank lines" in out
    rc, out, err = run(["train", "--data", prepared, "--steps", "2", *TINY, "--out", tmp_path / "p.pt"])
    assert rc == 0, err
    assert "a line)" in out
    assert read_meta(prepared)["settings"]["text_records"] == "lines"

    rc, _, err = run(["prepare", poem, "--out", tmp_path / "sample.jsonl"])
    assert_one_line_error(rc, err, "is plain text", "--out DIR")


# The PNG's monospace font has no emoji (it draws an empty box); the HTML shows it.
@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_widgets_and_pictures_work_on_a_text_model(poem, tmp_path):
    pytest.importorskip("ipywidgets")
    from charrnn.checkpoint import load_model
    from charrnn.viz.neurons import hidden_states, text_features, top_units
    from charrnn.viz.surprisal import char_surprisal, save_surprisal_png, surprisal_html
    from charrnn.viz.widgets import GeneratorWidget, NeuronExplorer, SurprisalView, TemperatureExplorer

    ckpt = tmp_path / "m.pt"
    assert run(["train", "--data", poem, "--steps", "1", *TINY, "--out", ckpt])[0] == 0
    model, vocab = load_model(ckpt)
    text = "Кот видит белую луну.\nСерый волк ищет тёплый хлеб 🙂"
    bits = char_surprisal(model, vocab, text)
    assert len(bits) == len(text)
    assert surprisal_html(text, bits).count("<span title=") == len(text)  # one span per character
    save_surprisal_png(tmp_path / "s.png", text, bits)
    states = hidden_states(model, vocab, text)
    assert top_units(states, text_features(text))
    GeneratorWidget(model, vocab, prefix="Кот")
    TemperatureExplorer(model, vocab, prefix="Кот ").render()
    SurprisalView(model, vocab, text=text).score()
    NeuronExplorer(model, vocab, text)
