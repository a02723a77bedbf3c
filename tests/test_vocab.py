"""CharVocab: ids, round trips, <unk> handling, persistence."""

from __future__ import annotations

import json
import warnings

import pytest

from charrnn import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, CharRNNError, CharVocab, ConfigError, EncodedCorpus


def test_special_tokens_have_ids_0_to_3():
    vocab = CharVocab.from_texts(["hello world"])
    assert [vocab.stoi[t] for t in (PAD, BOS, EOS, UNK)] == [0, 1, 2, 3]
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert vocab.itos[:4] == list(SPECIAL_TOKENS)


def test_encode_decode_round_trip():
    text = "Neural operators; $L_p$ spaces (1 < p < 2), Poincaré & Schrödinger."
    vocab = CharVocab.from_texts([text])
    ids = vocab.encode(text)
    assert len(ids) == len(text)
    assert vocab.decode(ids) == text


def test_bos_eos_wrapping():
    vocab = CharVocab.from_texts(["abc"])
    ids = vocab.encode("cab", add_bos=True, add_eos=True)
    assert ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id
    assert vocab.decode(ids) == "cab"
    assert vocab.decode(ids, skip_special=False) == "<bos>cab<eos>"


def test_chars_are_sorted_after_special_tokens():
    vocab = CharVocab.from_texts(["cba", "zyx"])
    assert vocab.chars == sorted("abcxyz")
    assert len(vocab) == 4 + 6


def test_more_than_100_characters_never_collide_with_special_tokens():
    # The origin notebook hard-coded special ids 100/101/102.
    text = "".join(chr(c) for c in range(0x21, 0x7F)) + "".join(chr(c) for c in range(0x3B1, 0x3C9))
    vocab = CharVocab.from_texts([text])
    assert len(vocab.chars) > 100
    ids = vocab.encode(text)
    assert min(ids) >= len(SPECIAL_TOKENS)
    assert len(set(ids)) == len(set(text))  # one id per distinct character
    assert vocab.decode(ids) == text
    assert vocab.decode(vocab.encode(text, add_bos=True, add_eos=True)) == text


def test_special_token_spellings_are_ordinary_text():
    vocab = CharVocab.from_texts(["<eos> and <bos> are just text"])
    ids = vocab.encode("<eos>")
    assert len(ids) == 5
    assert vocab.eos_id not in ids
    assert vocab.decode(ids) == "<eos>"


def test_min_freq_folds_rare_characters_into_unk():
    vocab = CharVocab.from_texts(["aaab", "aab"], min_freq=2)
    assert "a" in vocab and "b" in vocab
    vocab3 = CharVocab.from_texts(["aaab", "aab"], min_freq=3)
    assert "a" in vocab3 and "b" not in vocab3
    assert vocab3.encode("ab") == [vocab3.stoi["a"], vocab3.unk_id]


def test_min_freq_below_one_is_rejected():
    with pytest.raises(ConfigError, match="min_freq"):
        CharVocab.from_texts(["abc"], min_freq=0)


def test_unknown_characters_encode_to_unk_and_are_named():
    vocab = CharVocab.from_texts(["abc"])
    ids = vocab.encode("axbyyc")
    assert ids == [vocab.stoi["a"], vocab.unk_id, vocab.stoi["b"], vocab.unk_id, vocab.unk_id,
                   vocab.stoi["c"]]
    assert vocab.unknown_chars("axbyyc") == ["x", "y"]
    assert vocab.unknown_chars("cab") == []


def test_encode_is_pure_it_neither_warns_nor_changes_the_vocabulary():
    vocab = CharVocab.from_texts(["abc"])
    before = (list(vocab.itos), dict(vocab.stoi), dict(vars(vocab)).keys())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        first = vocab.encode("xq ab")
        vocab.encode_array("zzz")
        again = vocab.encode("xq ab")
    assert first == again
    assert (list(vocab.itos), dict(vocab.stoi), dict(vars(vocab)).keys()) == before


def test_the_corpus_counts_its_unknown_characters():
    vocab = CharVocab.from_texts(["abc"])
    corpus = EncodedCorpus.from_texts(["abxc", "yyz", "cab"], vocab)
    assert corpus.unknown_count == 4
    assert EncodedCorpus.from_texts(["abc"], vocab).unknown_count == 0


def test_contains_excludes_special_tokens():
    vocab = CharVocab.from_texts(["ab"])
    assert "a" in vocab
    assert PAD not in vocab and EOS not in vocab
    assert "q" not in vocab


def test_decode_rejects_ids_outside_the_vocabulary():
    vocab = CharVocab.from_texts(["ab"])
    with pytest.raises(CharRNNError, match="outside the vocabulary"):
        vocab.decode([4, len(vocab)])


def test_multi_character_entries_are_rejected():
    with pytest.raises(CharRNNError, match="single characters"):
        CharVocab(["a", "bc"])


def test_save_load_round_trip(tmp_path):
    vocab = CharVocab.from_texts(["Erdős–Rényi graphs; $\\alpha$ < 1"])
    path = tmp_path / "vocab.json"
    vocab.save(path)
    loaded = CharVocab.load(path)
    assert loaded == vocab
    assert loaded.itos == vocab.itos
    assert loaded.encode("Rényi") == vocab.encode("Rényi")


def test_load_non_json_raises_with_file_name(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text("this is not json", encoding="utf-8")
    with pytest.raises(CharRNNError, match="not valid JSON") as info:
        CharVocab.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", [
    [1, 2, 3],
    {"a": 1},
    {"format": "something-else", "chars": ["a"]},
], ids=["json-list", "foreign-dict", "other-format"])
def test_load_foreign_json_raises(tmp_path, content):
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(CharRNNError, match="not a charrnn vocabulary") as info:
        CharVocab.load(path)
    assert str(path) in str(info.value)


def test_load_with_different_special_tokens_raises(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps({"format": "charrnn-vocab", "version": 1,
                                "special_tokens": ["<s>", "</s>"], "chars": ["a"]}), encoding="utf-8")
    with pytest.raises(CharRNNError, match="special tokens"):
        CharVocab.load(path)


def test_load_vocab_without_chars_raises_charrnn_error(tmp_path):
    # A file that claims the format but lacks its 'chars' list is invalid
    # too: it must be reported as a CharRNNError naming the file, not a KeyError.
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps({"format": "charrnn-vocab", "version": 1,
                                "special_tokens": list(SPECIAL_TOKENS)}), encoding="utf-8")
    with pytest.raises(CharRNNError) as info:
        CharVocab.load(path)
    assert str(path) in str(info.value)
