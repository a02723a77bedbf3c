"""Shared fixtures: tiny invented arXiv-style records, the embedded corpus,
and small models. Stub models live in helpers.py.

Nothing here reads /work/shared or the network; every file is written under
pytest's tmp_path.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from helpers import TINY_RECORDS, to_jsonl_bytes

import charrnn
from charrnn import CharRNN, CharVocab, EncodedCorpus, ModelConfig


# ----------------------------------------------------------------- determinism
@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same random state."""
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    yield


@pytest.fixture
def tiny_records() -> list[dict]:
    """Twelve invented records in the arXiv metadata format (fresh copies)."""
    return [dict(r) for r in TINY_RECORDS]


@pytest.fixture
def write_jsonl(tmp_path):
    """``write_jsonl(items, name="data.jsonl")``: write dicts (as JSON) and raw
    strings (as they are) one per line under tmp_path; returns the path."""
    def write(items, name: str = "data.jsonl"):
        path = tmp_path / name
        path.write_bytes(to_jsonl_bytes(items))
        return path
    return write


@pytest.fixture
def tiny_jsonl(write_jsonl, tiny_records):
    return write_jsonl(tiny_records, "tiny.jsonl")


# ---------------------------------------------------------- embedded corpus
@pytest.fixture(scope="session")
def corpus_texts() -> list[str]:
    return charrnn.load_texts()


@pytest.fixture(scope="session")
def corpus_vocab(corpus_texts) -> CharVocab:
    return CharVocab.from_texts(corpus_texts)


@pytest.fixture(scope="session")
def small_texts(corpus_texts) -> list[str]:
    """A quarter of the embedded corpus: enough text, fast to encode."""
    return corpus_texts[:40]


@pytest.fixture(scope="session")
def small_corpus(small_texts, corpus_vocab) -> EncodedCorpus:
    return EncodedCorpus.from_texts(small_texts, corpus_vocab)


# ------------------------------------------------------------------- models
@pytest.fixture
def make_model():
    """``make_model(vocab_size, cell="lstm", hidden=32, embed=16, layers=1,
    dropout=0.0, seed=0)``: a small CharRNN with seeded initial weights."""
    def make(vocab_size: int, cell: str = "lstm", hidden: int = 32, embed: int = 16,
             layers: int = 1, dropout: float = 0.0, seed: int = 0) -> CharRNN:
        torch.manual_seed(seed)
        return CharRNN(ModelConfig(vocab_size=vocab_size, cell=cell, embed_dim=embed,
                                   hidden_size=hidden, num_layers=layers, dropout=dropout))
    return make
