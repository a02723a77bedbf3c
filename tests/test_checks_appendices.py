"""The find-the-bug exercises of the appendices, notebooks 07 and 08: each
check accepts a correct fix, names each usual mistake with a hint that
shows no code, refuses the library shortcut, and says "not implemented yet"
for the student's stub."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import assert_no_solution_code, student_check_cell_fails

import charrnn
from charrnn.course.checks import (
    ExerciseError,
    check_build_stoi,
    check_clip_gradients,
    check_epoch_mean,
    check_frame_record,
    check_greedy_carrying_state,
    check_training_windows,
)

SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]


def stub(*args):
    raise NotImplementedError("your turn")


def fails(check, wrong, *needles):
    with pytest.raises(ExerciseError) as info:
        check(wrong)
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    assert_no_solution_code(message)
    return message


def refused(check, shortcut, needle="which would do this exercise for you"):
    with pytest.raises(ExerciseError, match=needle):
        check(shortcut)


# ------------------------------------------------------------ 07: windows
def windows(stream, seq_len, step=None, keep_last=True, first_only=False):
    step = step or seq_len
    starts = list(range(0, len(stream) - 1, step))
    if not keep_last:
        starts = [s for s in starts if s + seq_len < len(stream)]
    if first_only:
        starts = starts[:1]
    rows = torch.zeros(len(starts), seq_len + 1, dtype=torch.long)
    for row, s in zip(rows, starts):
        piece = stream[s:s + seq_len + 1]
        row[:len(piece)] = piece
    return rows[:, :-1], rows[:, 1:]


def test_training_windows_accepts_a_fix(capsys):
    check_training_windows(windows)
    assert "✓ training_windows is correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, needle", [
    (lambda stream, n: windows(stream, n, first_only=True), "as the origin notebook's cut did"),
    (lambda stream, n: windows(stream, n, keep_last=False), "keep the last, shorter window"),
    (lambda stream, n: windows(stream, n, step=n + 1), "overlap by one"),
    (lambda stream, n: (windows(stream, n)[0], windows(stream, n)[0]), "the inputs themselves"),
    (lambda stream, n: (windows(stream, n)[0], windows(stream, n)[1].masked_fill(windows(stream, n)[1] == 0, 3)),
     "where none follows, <pad>"),
    (lambda stream, n: tuple(x.int() for x in windows(stream, n)), "int64 (long)"),
])
def test_training_windows_names_the_mistake(wrong, needle):
    fails(check_training_windows, wrong, needle)


def test_training_windows_refuses_the_batcher_and_a_changed_stream():
    def via_library(stream, n):
        corpus = charrnn.EncodedCorpus(stream, torch.tensor([0, len(stream)]))
        return next(iter(charrnn.WindowBatches(corpus, batch_size=100, seq_len=n).eval_batches()))

    refused(check_training_windows, via_library)

    def in_place(stream, n):
        result = windows(stream.clone(), n)
        stream.zero_()
        return result

    fails(check_training_windows, in_place, "changed its stream in place")


# ------------------------------------------------------------ 07: vocabulary
def stoi_first(texts):
    return {token: i for i, token in enumerate(SPECIALS + sorted(set("".join(texts))))}


def stoi_last(texts):
    return {token: i for i, token in enumerate(sorted(set("".join(texts))) + SPECIALS)}


def stoi_origin(texts):
    stoi = {c: i for i, c in enumerate(sorted(set("".join(texts))))}
    stoi.update({"<pad>": 102, "<bos>": 100, "<eos>": 101, "<unk>": 103})
    return stoi


@pytest.mark.parametrize("right", [stoi_first, stoi_last])
def test_build_stoi_accepts_either_layout(right, capsys):
    check_build_stoi(right)
    assert "✓ build_stoi is correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, needle", [
    (stoi_origin, "share id 100"),
    (lambda texts: {t: i + 1000 if t in SPECIALS else i for t, i in stoi_first(texts).items()}, "without gaps"),
    (lambda texts: stoi_first(texts[:1]), "have no id"),
    (lambda texts: {k.upper() if k in SPECIALS else k: i for k, i in stoi_first(texts).items()}, "lower case"),
    (lambda texts: {**stoi_first(texts), "€": len(stoi_first(texts))}, "neither a character"),
    (lambda texts: sorted(set("".join(texts))), "expected a dict"),
])
def test_build_stoi_names_the_mistake(wrong, needle):
    fails(check_build_stoi, wrong, needle)


def test_build_stoi_refuses_the_vocabulary_class():
    refused(check_build_stoi, lambda texts: dict(charrnn.CharVocab.from_texts(texts).stoi))

    def pops(texts):
        texts.pop()
        return stoi_first(texts)

    fails(check_build_stoi, pops, "changed its list of texts in place")


# ------------------------------------------------------------ 07: framing
def frame(text, stoi):
    return [stoi["<bos>"]] + [stoi[c] for c in text] + [stoi["<eos>"]]


def test_frame_record_accepts_a_fix(capsys):
    check_frame_record(frame)
    assert "✓ frame_record is correct" in capsys.readouterr().out


def by_replacing(text, stoi):
    ids, i = [stoi["<bos>"]], 0
    while i < len(text):
        token = next((t for t in ("<bos>", "<eos>") if text.startswith(t, i)), text[i])
        ids.append(stoi[token])
        i += len(token)
    return ids + [stoi["<eos>"]]


@pytest.mark.parametrize("wrong, needle", [
    (lambda text, stoi: frame(" " + text + "\n", stoi), "framed twice"),
    (lambda text, stoi: [stoi[c] for c in " " + text + "\n"], "Which tokens can no character be"),
    (lambda text, stoi: [stoi[c] for c in text], "no markers at all"),
    (by_replacing, "spells a marker"),
    (lambda text, stoi: "".join(map(str, frame(text, stoi))), "expected a list of integer ids"),
])
def test_frame_record_names_the_mistake(wrong, needle):
    fails(check_frame_record, wrong, needle)


def test_frame_record_refuses_the_vocabulary():
    def via_library(text, stoi):
        return charrnn.CharVocab([c for c in stoi if len(c) == 1]).encode(text, add_bos=True, add_eos=True)

    refused(check_frame_record, via_library)


# ------------------------------------------------------------ 08: clipping
def clip_at(max_norm):
    def clip(grads):
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        scale = min(1.0, max_norm / (float(norm) + 1e-6))
        return [g * scale for g in grads]
    return clip


@pytest.mark.parametrize("threshold", [1.0, 3.0])
def test_clip_gradients_accepts_a_threshold_the_gradients_reach(threshold, capsys):
    check_clip_gradients(clip_at(threshold))
    assert "✓ clip_gradients is correct" in capsys.readouterr().out


def always_normalised(grads):
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    return [g / norm for g in grads]


def per_tensor(grads):
    return [clip_at(1.0)([g])[0] for g in grads]


def spike_to_its_own_size(grads):
    norm = float(torch.sqrt(sum((g ** 2).sum() for g in grads)))
    return clip_at(1.0)(grads) if norm > 100 else clip_at(2.0)(grads)


@pytest.mark.parametrize("wrong, needle", [
    (clip_at(1e5), "a threshold that the gradients never reach clips nothing"),
    (clip_at(0.2), "below this model's ordinary gradient norm"),
    (always_normalised, "only ever shortens"),
    (per_tensor, "each tensor clipped on its own"),
    (lambda grads: [g.clamp(-0.01, 0.01) for g in grads], "each number cut off"),
    (spike_to_its_own_size, "shortened to exactly the threshold"),
    (lambda grads: clip_at(1.0)(grads)[:-1], "expected a list of"),
])
def test_clip_gradients_names_the_mistake(wrong, needle):
    fails(check_clip_gradients, wrong, needle)


def test_clip_gradients_refuses_torch_and_in_place_clipping():
    def via_torch(grads):
        params = [torch.nn.Parameter(g.clone()) for g in grads]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        return [p.grad for p in params]

    refused(check_clip_gradients, via_torch, "clip_grad_norm_, which would do this exercise")

    def in_place(grads):
        scale = min(1.0, 1.0 / float(torch.sqrt(sum((g ** 2).sum() for g in grads))))
        return [g.mul_(scale) for g in grads]

    fails(check_clip_gradients, in_place, "changed its gradients in place")


# ------------------------------------------------------------ 08: averages
def weighted(losses, counts):
    return sum(loss * n for loss, n in zip(losses, counts)) / sum(counts)


def test_epoch_mean_accepts_a_fix(capsys):
    check_epoch_mean(weighted)
    assert "✓ epoch_mean is correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, needle", [
    (lambda losses, counts: sum(losses) / (len(losses) - 1), "one batch fewer"),
    (lambda losses, counts: sum(losses) / len(losses), "every batch counts the same"),
    (lambda losses, counts: weighted(losses, counts) * sum(counts) / len(losses), "divided by the number of batches"),
    (lambda losses, counts: weighted(losses, counts) * sum(counts), "a sum of losses, not a mean"),
    (lambda losses, counts: str(weighted(losses, counts)), "expected a number"),
])
def test_epoch_mean_names_the_mistake(wrong, needle):
    fails(check_epoch_mean, wrong, needle)


def test_epoch_mean_refuses_a_ready_made_weighted_mean():
    refused(check_epoch_mean, lambda losses, counts: float(np.average(losses, weights=counts)),
            "numpy.average, which would do this exercise")

    def in_place(losses, counts):
        mean = weighted(losses, counts)
        losses.append(mean)
        return mean

    fails(check_epoch_mean, in_place, "changed its lists in place")


def test_epoch_mean_takes_a_tensor_of_one_number(capsys):
    check_epoch_mean(lambda losses, counts: torch.tensor(weighted(losses, counts), dtype=torch.float64))
    assert "✓ epoch_mean is correct" in capsys.readouterr().out


# ---------------------------------------------------------- 08: generation
@torch.no_grad()
def greedy(model, vocab, prefix, n, keep_state=True, rereading=False, bos=True):
    ids = vocab.encode(prefix, add_bos=bos)
    logits, state = model(torch.tensor([ids]))
    new = []
    for _ in range(n):
        nxt = int(charrnn.next_char_probs(logits[0, -1], temperature=0).argmax())
        new.append(nxt)
        if rereading:
            logits, _ = model(torch.tensor([ids + new]))
        else:
            logits, state = model(torch.tensor([[nxt]]), state if keep_state else None)
    return prefix + vocab.decode(new)


def test_greedy_carrying_state_accepts_a_fix(capsys):
    check_greedy_carrying_state(greedy)
    assert "✓ greedy_carrying_state is correct" in capsys.readouterr().out


@torch.no_grad()
def raw_argmax(model, vocab, prefix, n):
    logits, state = model(torch.tensor([vocab.encode(prefix, add_bos=True)]))
    new = []
    for _ in range(n):
        new.append(int(logits[0, -1].argmax()))
        logits, state = model(torch.tensor([[new[-1]]]), state)
    return prefix + vocab.decode(new)


@pytest.mark.parametrize("wrong, needle", [
    (lambda *args: greedy(*args, rereading=True), "fed the model"),
    (lambda *args: greedy(*args, keep_state=False), "does the model know everything that came before it"),
    (lambda *args: greedy(*args, bos=False), "the <bos>, the prompt"),
    (lambda model, vocab, prefix, n: greedy(model, vocab, prefix, n)[len(prefix):], "starts with the prompt"),
    (lambda *args: greedy(*args).encode(), "expected the text"),
])
def test_greedy_carrying_state_names_the_mistake(wrong, needle):
    message = fails(check_greedy_carrying_state, wrong, needle)
    if needle == "fed the model":
        assert "carrying the state needs at most" in message


def test_greedy_carrying_state_refuses_generate():
    refused(check_greedy_carrying_state,
            lambda model, vocab, prefix, n: charrnn.generate(model, vocab, prefix, max_new_chars=n, temperature=0,
                                                             stop_at_eos=False),
            "charrnn.generate, which would do this exercise")


def test_raw_argmax_is_caught_or_agrees():
    """Choosing among every token, specials included, either agrees on these models or is named."""
    try:
        check_greedy_carrying_state(raw_argmax)
    except ExerciseError as error:
        assert "as greedy_rereading" in str(error)


# ------------------------------------------------------------ the stubs
@pytest.mark.parametrize("check", [check_training_windows, check_build_stoi, check_frame_record,
                                   check_clip_gradients, check_epoch_mean, check_greedy_carrying_state])
def test_a_stub_is_not_implemented_yet(check):
    with pytest.raises(ExerciseError, match="not implemented yet"):
        check(stub)


@pytest.mark.parametrize("notebook, exercises", [
    ("07_origin_bugs_data_and_model.ipynb", ("def training_windows(", "SPECIAL_TOKENS = [", "def frame_record(")),
    ("08_origin_bugs_training_and_sampling.ipynb",
     ("def clip_gradients(", "def epoch_mean(", "@torch.no_grad()\ndef greedy_carrying_state(")),
])
def test_the_student_versions_report_not_implemented(notebook, exercises, tmp_path):
    for start in exercises:
        assert "not implemented yet" in student_check_cell_fails(notebook, start, tmp_path)


def test_the_checks_keep_the_random_state():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    check_epoch_mean(weighted)
    assert torch.equal(torch.rand(3), expected) and math.isfinite(float(expected.sum()))
