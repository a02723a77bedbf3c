"""What notebook 04 (training) claims, on the same split, settings and
seeds: the broken training step of section 3 looks too good and its updates
are not clipped, and the repaired one learns honestly; the student's own
model gets past the bigram line by a full bit and writes mostly real words;
the gated cells are ahead on each of five seeds (section 5, from the
committed benchmark) and the carried state helps on each of three (section
6). Section 4 and 5's live losses print one decimal (the second moves with
the CPU); the claims and the targets of issue 22 (at most 2.7 bits per
character, at least half of the sampled words known) are held here."""

from __future__ import annotations

import ast
import csv
import math
import random
from pathlib import Path

import nbformat
import pytest
import torch

import charrnn

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "04_training.ipynb"
SIZES = {"embed_dim": 32, "hidden_size": 128}
CONFIG = charrnn.TrainConfig(steps=400, lr=1e-2, clip_norm=1.0, eval_every=100, eval_batches=None, device="cpu")


@pytest.fixture(scope="module")
def split():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the notebook
    train_records, val_records = charrnn.split_records(charrnn.load_records(), 0.1)
    train_texts = [charrnn.format_record(r) for r in train_records]
    val_texts = [charrnn.format_record(r) for r in val_records]
    vocab = charrnn.CharVocab.from_texts(train_texts)
    train = charrnn.EncodedCorpus.from_texts(train_texts, vocab)
    val = charrnn.EncodedCorpus.from_texts(val_texts, vocab)
    yield train_texts, val_texts, vocab, train, val
    torch.set_num_threads(threads)


def trained(split, cell):
    _, _, vocab, train, val = split
    torch.manual_seed(0)
    model = charrnn.CharRNN(vocab_size=len(vocab), cell=cell, **SIZES)
    history = charrnn.Trainer(model, vocab, charrnn.WindowBatches(train, batch_size=32, seq_len=64, seed=0),
                              charrnn.WindowBatches(val, batch_size=64, seq_len=64), CONFIG).fit(progress=False)
    return model, [charrnn.bits_per_char(x) for x in history.val_loss]


@pytest.fixture(scope="module")
def lstm_run(split):
    return trained(split, "lstm")


@pytest.fixture(scope="module")
def bigram_bits(split):
    _, _, vocab, train, val = split
    return charrnn.ngram_bits_per_char(train, val, len(vocab), order=2)


def test_the_lstm_reaches_the_issue_target_and_a_full_bit_below_the_bigram(lstm_run, bigram_bits):
    _, bits = lstm_run
    assert bits[-1] <= 2.7
    assert bigram_bits - bits[-1] >= 1.0
    assert bits[0] < bigram_bits  # "below the bigram line already" at step 100
    assert bits == sorted(bits, reverse=True)  # every validation better than the one before
    printed = [round(b, 1) for b in bits]
    assert printed == [3.1, 2.8, 2.7, 2.6]
    assert all(abs((b * 10) % 1 - 0.5) > 0.1 for b in bits)  # at least 0.01 bit from a rounding boundary


def test_most_words_of_the_lstm_samples_are_real(split, lstm_run):
    train_texts, val_texts, vocab, _, _ = split
    model, _ = lstm_run
    known = charrnn.word_list(train_texts)
    samples = [charrnn.generate(model, vocab, "", 300, temperature=0.8, seed=seed) for seed in range(4)]
    assert charrnn.known_word_share(samples, known) >= 0.5
    assert charrnn.known_word_share(val_texts, known) == pytest.approx(0.84, abs=0.005)


def test_bigram_text_has_few_real_words(split):
    """Section 4's yardstick: text drawn from the bigram table (Python's
    random on Python floats: the same on every machine)."""
    train_texts, _, vocab, train, _ = split
    ids = train.ids.long()
    prev, nxt = ids[:-1], ids[1:]
    keep = nxt != vocab.bos_id
    V = len(vocab)
    counts = torch.zeros(V, V)
    counts.index_put_((prev[keep], nxt[keep]), torch.ones(int(keep.sum())), accumulate=True)
    allowed = torch.ones(V)
    allowed[[vocab.pad_id, vocab.bos_id]] = 0
    table = (counts + 0.1) * allowed
    table = table / table.sum(1, keepdim=True)
    dice, text, previous = random.Random(0), "", vocab.bos_id
    while len(text) < 1200:
        previous = dice.choices(range(V), weights=table[previous].tolist())[0]
        if previous == vocab.eos_id:
            text, previous = text + " ", vocab.bos_id
        else:
            text += vocab.decode([previous])
    assert charrnn.known_word_share([text], charrnn.word_list(train_texts)) == pytest.approx(0.26, abs=0.005)


@pytest.fixture(scope="module")
def cell_bits(split, lstm_run):
    """Section 5's live runs, seed 0: validation bits/char after 400 steps."""
    return {"rnn": trained(split, "rnn")[1][-1], "gru": trained(split, "gru")[1][-1], "lstm": lstm_run[1][-1]}


def test_the_live_seed_prints_the_gated_cells_ahead(cell_bits):
    assert cell_bits["lstm"] < cell_bits["gru"] < cell_bits["rnn"]
    assert [round(cell_bits[c], 1) for c in ("lstm", "gru", "rnn")] == [2.6, 2.7, 2.8]
    assert all(abs((b * 10) % 1 - 0.5) > 0.1 for b in cell_bits.values())  # 0.01 bit from a rounding boundary


def five_seeds_from_the_benchmark() -> dict[str, list[float]]:
    """benchmarks/results/cell_comparison.csv at step 400, by cell, seeds 0-4 in order."""
    with open(ROOT / "benchmarks" / "results" / "cell_comparison.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted({int(r["seed"]) for r in rows}) == [0, 1, 2, 3, 4]
    return {cell: [float(r["val_bits_per_char"]) for r in sorted(rows, key=lambda r: int(r["seed"]))
                   if r["cell"] == cell and r["step"] == "400"] for cell in ("rnn", "gru", "lstm")}


def test_the_notebook_quotes_the_benchmark_and_its_seed_0_is_the_live_run(cell_bits):
    """The five-seed table is copied into the notebook (no file to read on
    Colab); it must be the committed CSV, whose seed 0 is section 5's run
    (to float rounding on this machine; a few thousandths elsewhere)."""
    stored = five_seeds_from_the_benchmark()
    source = next(c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells if "five_seeds = {" in c.source)
    quoted = ast.literal_eval(source[source.index("{", source.index("five_seeds = {")):source.index("]}") + 2])
    assert quoted == stored
    assert all(abs(stored[cell][0] - bits) < 0.01 for cell, bits in cell_bits.items())


def test_five_seeds_put_the_cells_in_the_same_order_every_time():
    """Section 5's text: the seeds spread each cell over 0.02 to 0.07 bits,
    as much as the LSTM-GRU gap, and the order holds on every seed; the
    printed gaps and spreads."""
    bits = five_seeds_from_the_benchmark()
    assert all(lstm < gru < rnn for rnn, gru, lstm in zip(bits["rnn"], bits["gru"], bits["lstm"], strict=True))
    spreads = {cell: round(max(b) - min(b), 2) for cell, b in bits.items()}
    assert spreads == {"rnn": 0.07, "gru": 0.04, "lstm": 0.02}
    lstm_gru = [g - lstm for g, lstm in zip(bits["gru"], bits["lstm"], strict=True)]
    gru_rnn = [r - g for r, g in zip(bits["rnn"], bits["gru"], strict=True)]
    assert (round(min(lstm_gru), 2), round(max(lstm_gru), 2)) == (0.03, 0.07)
    assert (round(min(gru_rnn), 2), round(max(gru_rnn), 2)) == (0.09, 0.16)
    assert min(lstm_gru) < max(spreads.values())  # "as much as the gap between the LSTM and the GRU"
    assert [round(sum(b) / 5, 2) for b in bits.values()] == [2.80, 2.68, 2.63]


# ---------------------------------------------------------------- section 3: the broken step, watched
def _steps(kind: str):
    """Notebook 04's broken_train_step, or its repair."""
    def step(model, optimizer, inputs, targets, clip):
        if kind == "repaired":
            optimizer.zero_grad()
        loss = charrnn.masked_cross_entropy(model(inputs)[0], targets if kind == "repaired" else inputs)
        loss.backward()
        if kind == "repaired":
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if kind == "broken":
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        return loss.item()
    return step


def watched(split, kind: str):
    """Section 3's watch(): 40 steps of a small GRU; the losses (bits), the
    gradient length each update read, the validation bits/char."""
    _, _, vocab, train, val = split
    torch.manual_seed(0)
    model = charrnn.CharRNN(vocab_size=len(vocab), cell="gru", embed_dim=32, hidden_size=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    used = []
    optimizer.register_step_pre_hook(lambda *_: used.append(
        float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])))))
    batches = charrnn.WindowBatches(train, batch_size=32, seq_len=64, seed=0)
    losses = [charrnn.bits_per_char(_steps(kind)(model, optimizer, *batches.batch(step), 1.0)) for step in range(40)]
    return losses, used, charrnn.evaluate(model, charrnn.WindowBatches(val, batch_size=64, seq_len=64)).bits_per_char


def printed_far_from_a_boundary(values, decimals=2, margin=2e-4) -> list[float]:
    """The values as the notebook prints them; each must lie ``margin`` from
    a rounding boundary (these short runs at 3e-3 move by about 1e-6
    between the audit's configurations)."""
    for v in values:
        assert abs((v * 10 ** decimals) % 1 - 0.5) > margin * 10 ** decimals, v
    return [round(v, decimals) for v in values]


def test_the_broken_step_looks_too_good_and_its_updates_are_not_clipped(split, bigram_bits):
    """"below the bigram line within 20 steps and still falling fast, while
    on validation text the model ends worse than untrained"; "the updates
    used gradients longer than clip"."""
    losses, used, val = watched(split, "broken")
    shown = [9, 19, 29, 39]
    assert printed_far_from_a_boundary([losses[i] for i in shown]) == [5.09, 3.46, 2.18, 1.02]
    assert printed_far_from_a_boundary([used[i] for i in shown]) == [1.87, 1.67, 1.59, 1.31]
    assert printed_far_from_a_boundary([val]) == [6.80]
    assert losses[19] < bigram_bits and val > math.log2(len(split[2]))
    assert all(u > 1.0 for u in used[1:])


def test_the_repaired_step_learns_honestly(split, bigram_bits):
    """"still above the bigram line after 40 steps, and the validation loss
    agrees with it. The printed gradient lengths stay below clip"."""
    losses, used, val = watched(split, "repaired")
    shown = [9, 19, 29, 39]
    assert printed_far_from_a_boundary([losses[i] for i in shown]) == [5.20, 4.65, 4.51, 4.22]
    assert printed_far_from_a_boundary([used[i] for i in shown]) == [0.78, 0.43, 0.25, 0.23]
    assert printed_far_from_a_boundary([val]) == [4.35]
    assert losses[39] > bigram_bits and abs(val - losses[39]) < 0.2
    assert all(used[i] < 1.0 for i in shown)


# ---------------------------------------------------------------- section 6: truncated BPTT, three seeds
def stream_rows(ids, batch_size, vocab):
    n = (len(ids) - 1) // batch_size
    inputs = ids[:n * batch_size].long().reshape(batch_size, n)
    targets = ids[1:n * batch_size + 1].long().reshape(batch_size, n)
    targets[targets == vocab.bos_id] = vocab.pad_id
    return inputs, targets


def train_on(split, kind, seed, steps=300, batch_size=32, seq_len=16):
    """Section 6's train_on, with the library's train_step (the reference
    of both exercises; the state detached on the way in and out)."""
    _, _, vocab, train, _ = split
    torch.manual_seed(seed)
    model = charrnn.CharRNN(vocab_size=len(vocab), cell="gru", embed_dim=32, hidden_size=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    windows = charrnn.WindowBatches(train, batch_size=batch_size, seq_len=seq_len, seed=seed)
    rows_in, rows_out = stream_rows(train.ids, batch_size, vocab)
    per_pass = rows_in.shape[1] // seq_len
    state = None
    for step in range(steps):
        if kind == "random windows":
            charrnn.train_step(model, optimizer, *windows.batch(step), 1.0)
        else:
            col = (step % per_pass) * seq_len
            state = None if col == 0 else state
            _, _, state = charrnn.train_step(model, optimizer, rows_in[:, col:col + seq_len],
                                             rows_out[:, col:col + seq_len], 1.0, state)
    return model


def test_the_carried_state_is_better_both_ways_on_every_seed(split):
    """Section 6's table and text: "on every seed the carried-state model is
    better both ways, by 0.03 to 0.05 bits in fresh windows and 0.07 to 0.08
    bits reading on"; "the seeds move each variant's own result by up to
    0.03 bits"; reading on helps the random-window model little (3.33
    against 3.32), the carried-state model more (3.29 against 3.24)."""
    _, _, vocab, _, val = split
    val_batches = charrnn.WindowBatches(val, batch_size=64, seq_len=64)
    val_stream = [stream_rows(val.ids, 1, vocab)]  # read once, the state carried along the one row
    results = {}
    for seed in (0, 1, 2):
        for kind in ("random windows", "carried state"):
            model = train_on(split, kind, seed)
            results[kind, seed] = (charrnn.evaluate(model, val_batches).bits_per_char,
                                   charrnn.evaluate(model, val_stream).bits_per_char)
    table = {}
    for kind in ("random windows", "carried state"):
        for i, way in enumerate(("fresh", "reading on")):
            values = [results[kind, seed][i] for seed in (0, 1, 2)]
            table[kind, way] = printed_far_from_a_boundary([sum(values) / 3, min(values), max(values)], margin=5e-4)
            assert max(values) - min(values) < 0.035
    assert table == {("random windows", "fresh"): [3.33, 3.31, 3.34],
                     ("random windows", "reading on"): [3.32, 3.30, 3.33],
                     ("carried state", "fresh"): [3.29, 3.28, 3.29],
                     ("carried state", "reading on"): [3.24, 3.23, 3.25]}
    gaps = [[results["carried state", s][i] - results["random windows", s][i] for s in (0, 1, 2)] for i in (0, 1)]
    assert all(g < 0 for way in gaps for g in way)
    assert printed_far_from_a_boundary([sum(gaps[0]) / 3, min(gaps[0]), max(gaps[0])], margin=5e-4) == [
        -0.04, -0.05, -0.03]
    assert printed_far_from_a_boundary([sum(gaps[1]) / 3, min(gaps[1]), max(gaps[1])], margin=5e-4) == [
        -0.07, -0.08, -0.07]
