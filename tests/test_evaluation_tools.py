"""Compressor baselines, the word check, the export command and the
evaluate command's report."""

import gzip
import random
import string

import pytest
import torch

import charrnn
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
