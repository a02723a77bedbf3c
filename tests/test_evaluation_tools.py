"""Compressor baselines, the word check, the export command and the
evaluate command's report."""

import gzip
import random
import string

import pytest
import torch

import charrnn
from charrnn.baselines import ngram_bits_per_char
from charrnn.cli import main


def test_compressors_find_repetition_cheap_and_noise_expensive():
    rng = random.Random(0)
    noise = ["".join(rng.choice(string.ascii_letters) for _ in range(2000))]
    repeated = ["abc" * 700]
    for name, bpc in charrnn.compressor_bits_per_char(repeated).items():
        assert bpc < 0.5, name  # xz's container header dominates on 2 kB
    for name, bpc in charrnn.compressor_bits_per_char(noise).items():
        assert 5.0 < bpc < 8.5, name  # log2(52) = 5.7 bits is the floor for random letters


def test_compressor_counts_one_end_of_record_per_text():
    one = charrnn.compressor_bits_per_char(["x" * 99])
    # 99 characters + 1 newline standing for <eos> = 100 characters
    data = ("x" * 99 + "\n").encode()
    assert one["gzip"] == pytest.approx(8 * len(gzip.compress(data, 9, mtime=0)) / 100)


def test_compressors_need_text():
    with pytest.raises(ValueError):
        charrnn.compressor_bits_per_char([])


def test_words_and_known_share():
    assert charrnn.words("We study $\\alpha$-stable (GNNs), 2-d.") == ["we", "study", "alpha", "stable",
                                                                         "gnns", "d"]
    known = charrnn.word_list(["we study stable models"])
    assert charrnn.known_word_share(["we study xyzzy models"], known) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no words"):
        charrnn.known_word_share(["123 $$"], known)


def test_words_of_any_script_count():
    assert charrnn.words("Schrödinger и Ландау: 量子 🙂 x_1") == ["schrödinger", "и", "ландау", "量子", "x"]
    known = charrnn.word_list(["Мы изучаем устойчивые модели"])
    assert charrnn.known_word_share(["мы изучаем странные модели"], known) == pytest.approx(0.75)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "tiny.pt"
    rc = main(["train", "--steps", "20", "--hidden", "32", "--embed", "16", "--seq-len", "32",
               "--batch-size", "8", "--eval-every", "10", "--no-progress", "--device", "cpu",
               "--out", str(path)])
    assert rc == 0
    return path


@pytest.mark.filterwarnings("ignore:.*not in the vocabulary")
def test_evaluate_prints_compressors_beside_the_model(tiny_checkpoint, capsys):
    rc = main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--split", "val",
               "--word-temperatures", "0.5", "1.0", "--word-samples", "4", "--word-length", "80"])
    out = capsys.readouterr().out
    assert rc == 0
    for label in ("model:", "gzip:", "bz2:", "xz:", "bits/char", "perplexity",
                  "temperature 0.5:", "temperature 1:"):
        assert label in out


def test_export_writes_a_smaller_fp16_checkpoint(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "small.pt"
    assert main(["export", str(tiny_checkpoint), "--out", str(out), "--fp16"]) == 0
    assert out.stat().st_size < tiny_checkpoint.stat().st_size / 2
    ckpt = charrnn.load_checkpoint(out)
    assert ckpt["optimizer_state"] is None
    assert all(v.dtype == torch.float16 for v in ckpt["model_state"].values() if v.is_floating_point())
    original, vocab = charrnn.load_model(tiny_checkpoint)
    exported, vocab2 = charrnn.load_model(out)
    assert vocab == vocab2
    x = torch.tensor([vocab.encode("We study", add_bos=True)])
    torch.testing.assert_close(exported(x)[0], original(x)[0], atol=2e-2, rtol=2e-2)


# ---------------------------------------------------------------- count models
def _corpora(train_texts, val_texts):
    vocab = charrnn.CharVocab.from_texts(train_texts)
    return (charrnn.EncodedCorpus.from_texts(train_texts, vocab),
            charrnn.EncodedCorpus.from_texts(val_texts, vocab), len(vocab))


def test_a_bigram_model_of_a_repeating_text_is_nearly_certain():
    # "abab..." then <eos>: after 'a' always 'b'; the bigram model needs almost no bits
    train, val, size = _corpora(["ab" * 200], ["ab" * 50])
    bigram = ngram_bits_per_char(train, val, size, order=2, alpha=0.01)
    unigram = ngram_bits_per_char(train, val, size, order=1, alpha=0.01)
    assert bigram < 0.1 and unigram > 0.9  # the unigram model sees a coin flip between a and b


def test_unigram_bits_equal_the_entropy_of_the_character_counts():
    train, val, size = _corpora(["aab"], ["aab"])
    # train targets: a, a, b, <eos>; alpha tiny: p = 1/2, 1/2 (a, a), 1/4 (b), 1/4 (<eos>)
    bits = ngram_bits_per_char(train, val, size, order=1, alpha=1e-9)
    assert bits == pytest.approx((1 + 1 + 2 + 2) / 4, abs=1e-6)


def test_count_models_check_their_settings():
    train, val, size = _corpora(["abc"], ["abc"])
    with pytest.raises(charrnn.ConfigError, match="order"):
        ngram_bits_per_char(train, val, size, order=3)
    with pytest.raises(charrnn.ConfigError, match="alpha"):
        ngram_bits_per_char(train, val, size, alpha=0)
