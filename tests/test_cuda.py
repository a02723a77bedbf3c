"""The CUDA path: mixed precision training, checkpoints across devices and
generation with a GPU random generator. Skipped where there is no GPU (CI);
run on a GPU machine with ``pytest tests/test_cuda.py``."""

import math

import pytest
import torch

import charrnn

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def corpus_batches():
    texts = charrnn.load_texts()
    vocab = charrnn.CharVocab.from_texts(texts)
    corpus = charrnn.EncodedCorpus.from_texts(texts, vocab)
    return vocab, charrnn.WindowBatches(corpus, 16, 64, seed=1)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "scratch"])
def test_amp_training_on_cuda_lowers_the_loss(cell, corpus_batches):
    vocab, batches = corpus_batches
    torch.manual_seed(0)
    model = charrnn.CharRNN(vocab_size=len(vocab), cell=cell, hidden_size=64, embed_dim=16)
    trainer = charrnn.Trainer(model, vocab, batches, batches,
                              charrnn.TrainConfig(steps=60, lr=1e-2, eval_every=30, eval_batches=2))
    assert trainer.device.type == "cuda"
    assert trainer.precision.dtype in (torch.bfloat16, torch.float16)
    history = trainer.fit(progress=False)
    assert all(math.isfinite(x) for x in history.train_loss)
    assert history.train_loss[-1] < history.train_loss[0] - 0.5


def test_cuda_checkpoint_loads_on_cpu_and_resumes_on_cuda(tmp_path, corpus_batches):
    vocab, batches = corpus_batches
    torch.manual_seed(0)
    model = charrnn.CharRNN(vocab_size=len(vocab), hidden_size=32, embed_dim=16)
    path = tmp_path / "gpu.pt"
    trainer = charrnn.Trainer(model, vocab, batches, None,
                              charrnn.TrainConfig(steps=10, eval_every=10), checkpoint_path=path)
    trainer.fit(progress=False)
    cpu_model, cpu_vocab = charrnn.load_model(path, "cpu")
    assert next(cpu_model.parameters()).device.type == "cpu"
    assert cpu_vocab == vocab
    resumed = charrnn.Trainer.from_checkpoint(path, batches, steps=20)
    assert resumed.device.type == "cuda" and resumed.step == 10
    resumed.fit(progress=False)
    assert resumed.step == 20 and len(resumed.history.train_loss) == 20


def test_generation_on_cuda_is_seeded(corpus_batches):
    vocab, _ = corpus_batches
    torch.manual_seed(0)
    model = charrnn.CharRNN(vocab_size=len(vocab), hidden_size=32, embed_dim=16).cuda()
    a = charrnn.generate_batch(model, vocab, "We ", n=4, max_new_chars=40, seed=3)
    b = charrnn.generate_batch(model, vocab, "We ", n=4, max_new_chars=40, seed=3)
    assert a == b and all(t.startswith("We ") for t in a)
    greedy = charrnn.generate(model, vocab, "We ", max_new_chars=40, temperature=0)
    assert greedy == charrnn.generate(model, vocab, "We ", max_new_chars=40, temperature=0)
