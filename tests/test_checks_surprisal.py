"""charrnn.course.checks.check_most_surprising (notebook 06's exercise): the
k characters of a text a model found most surprising, each usual mistake
named by its hint."""

import math

import numpy as np
import pytest
import torch
from helpers import assert_no_solution_code, student_check_cell_fails

from charrnn.course.checks import ExerciseError, check_most_surprising
from charrnn.course.checks import nb06_surprisal as nb06

LN2 = math.log(2)


def bits_of(model, vocab, text, *, bos=True, eos=False, after_reading=False):
    """Surprisal of each target of the ids (the characters, and <eos> when asked), in bits."""
    ids = torch.tensor([vocab.encode(text, add_bos=bos, add_eos=eos)])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(ids)[0][0], -1)
    rows = log_probs[1:] if after_reading else log_probs[:-1]
    return -rows.gather(1, ids[0, 1:, None])[:, 0] / LN2


def ranked(bits, k, *, key=lambda t, b: (-b[t], t)):
    values = bits.tolist()
    return sorted(range(len(values)), key=lambda t: key(t, values))[:k]


def solution(model, vocab, text, k):
    bits = bits_of(model, vocab, text)
    return [(t, text[t], bits[t].item()) for t in ranked(bits, k)]


def stable_numpy(model, vocab, text, k):
    bits = bits_of(model, vocab, text).numpy()
    return [(int(t), text[t], np.float32(bits[t])) for t in np.argsort(-bits, kind="stable")[:k]]


def log2_of_softmax(model, vocab, text, k):
    ids = torch.tensor([vocab.encode(text, add_bos=True)])
    probs = torch.softmax(model(ids[:, :-1])[0][0], -1)
    bits = -torch.log2(probs[torch.arange(len(text)), ids[0, 1:]])  # on the graph: no no_grad
    return [(torch.tensor(t), text[t], bits[t]) for t in ranked(bits.detach(), k)]


@pytest.mark.parametrize("answer", [solution, stable_numpy, log2_of_softmax])
def test_correct_answers_pass(answer, capsys):
    check_most_surprising(answer)
    assert "✓ most_surprising is correct: 4 texts" in capsys.readouterr().out


def nats(model, vocab, text, k):
    return [(t, c, b * LN2) for t, c, b in solution(model, vocab, text, k)]


def least(model, vocab, text, k):
    bits = bits_of(model, vocab, text)
    return [(t, text[t], bits[t].item()) for t in ranked(bits, k, key=lambda t, b: (b[t], t))]


def smallest_first(model, vocab, text, k):
    return solution(model, vocab, text, k)[::-1]


def counted_with_bos(model, vocab, text, k):
    return [(t + 1, c, b) for t, c, b in solution(model, vocab, text, k)]


def pinned_on_the_next(model, vocab, text, k):
    bits = bits_of(model, vocab, text)
    return [(t + 1, text[t + 1], bits[t].item()) for t in ranked(bits[:-1], k)]


def pinned_on_the_previous(model, vocab, text, k):
    bits = bits_of(model, vocab, text)
    return [(t - 1, text[t - 1], bits[t].item()) for t in [1 + t for t in ranked(bits[1:], k)]]


def scored_after_reading(model, vocab, text, k):
    bits = bits_of(model, vocab, text, after_reading=True)
    return [(t, text[t], bits[t].item()) for t in ranked(bits, k)]


def without_bos(model, vocab, text, k):
    bits = bits_of(model, vocab, text, bos=False)  # bits[t] scores text[t + 1]
    return [(t + 1, text[t + 1], bits[t].item()) for t in ranked(bits, k)]


def eos_as_a_character(model, vocab, text, k):
    ids = vocab.encode(text, add_bos=True, add_eos=True)
    bits = bits_of(model, vocab, text, eos=True)
    return [(t, vocab.itos[ids[t + 1]], bits[t].item()) for t in ranked(bits, k)]


def eos_as_an_empty_string(model, vocab, text, k):
    bits = bits_of(model, vocab, text, eos=True)
    return [(t, (text + "")[t:t + 1], bits[t].item()) for t in ranked(bits, k)]


def sign_flipped(model, vocab, text, k):
    return [(t, c, -b) for t, c, b in solution(model, vocab, text, k)]


def ties_broken_late(model, vocab, text, k):
    bits = bits_of(model, vocab, text)
    return [(t, text[t], bits[t].item()) for t in ranked(bits, k, key=lambda t, b: (-b[t], -t))]


def every_character(model, vocab, text, k):
    return solution(model, vocab, text, len(text))


def first_character_left_out(model, vocab, text, k):
    bits = bits_of(model, vocab, text)
    return [(t, text[t], bits[t].item()) for t in ranked(bits, k + 1) if t != 0][:k]


@pytest.mark.parametrize("wrong, hint", [
    (nats, "nats"),
    (least, "LEAST surprising"),
    (smallest_first, "smallest surprisal first"),
    (counted_with_bos, "counted with <bos>"),
    (pinned_on_the_next, "character AFTER"),
    (pinned_on_the_previous, "character BEFORE"),
    (scored_after_reading, "already read that character"),
    (without_bos, "never read <bos>"),
    (eos_as_a_character, "<eos> after the text"),
    (eos_as_an_empty_string, "<eos> after the text"),
    (sign_flipped, "never negative"),
    (ties_broken_late, "equally surprising"),
    (every_character, "the k most surprising"),
    (first_character_left_out, "first character of the text is missing"),
])
def test_usual_mistakes_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseError, match="Hint: ") as e:
        check_most_surprising(wrong)
    assert hint in str(e.value).split("Hint: ", 1)[1]
    assert_no_solution_code(str(e.value))


def test_an_unknown_mistake_gets_the_generic_hint_and_no_false_claim():
    def log10(model, vocab, text, k):
        return [(t, c, b * LN2 / math.log(10)) for t, c, b in solution(model, vocab, text, k)]

    with pytest.raises(ExerciseError, match="check it by hand"):
        check_most_surprising(log10)


def test_an_index_past_the_end_gets_the_lengths_spelled_out():
    def reads_text_at_the_eos(model, vocab, text, k):
        return [(t, text[t], b) for t, _, b in eos_as_a_character(model, vocab, text, k)]

    with pytest.raises(ExerciseError, match="raised IndexError") as e:
        check_most_surprising(reads_text_at_the_eos)
    assert "the ids with <bos> 51" in str(e.value)


@pytest.mark.parametrize("returned, says", [
    (lambda: torch.tensor([[1.0, 2.0]]), "returned Tensor"),
    (lambda: [(0, "S")], "returned an entry (0, 'S')"),
    (lambda: [(0.0, "S", 1.0)], "an int, a one-character string and a float"),
    (lambda: [(0, 83, 1.0)], "an int, a one-character string and a float"),
])
def test_an_answer_of_the_wrong_form_is_described(returned, says):
    with pytest.raises(ExerciseError, match="expected a list of") as e:
        check_most_surprising(lambda model, vocab, text, k: returned())
    assert says in str(e.value)


def test_the_cases_test_what_they_claim():
    """The GRU text's <eos> would rank first, its top six are far apart (no
    float rounding reorders them), the table text has a three-way tie inside
    its list and a tie across its boundary, and every mistake above changes
    the first case's answer (none is accepted by luck)."""
    models, vocab = nb06._models()
    gru = nb06._scores(models["gru"], vocab, nb06._GRU_TEXT)
    top = sorted(gru.bits, reverse=True)
    assert gru.eos_bits > top[0]
    assert min(a - b for a, b in zip(top[:6], top[1:7])) > 0.01
    tie = nb06._scores(models["table"], vocab, nb06._TIE_TEXT)
    listed = [b for _, _, b in tie.expected(6)]
    assert listed[1] == listed[2] == listed[3]
    assert sorted(tie.bits, reverse=True)[6] == listed[5]


def test_the_library_functions_work_again_after_a_refusal():
    import charrnn
    from charrnn.viz import surprisal

    def calls_the_library(model, vocab, text, k):
        return surprisal.char_surprisal(model, vocab, text)

    with pytest.raises(ExerciseError, match="char_surprisal, which would do this exercise for you"):
        check_most_surprising(calls_the_library)
    assert surprisal.surprisal_bits is charrnn.metrics.surprisal_bits is charrnn.surprisal_bits
    model, vocab = nb06._models()[0]["gru"], nb06._models()[1]
    assert len(surprisal.char_surprisal(model, vocab, "Hi")) == 2


def test_student_version_of_notebook_06_reports_not_implemented(tmp_path):
    message = student_check_cell_fails("06_inside_the_rnn.ipynb", "def most_surprising(", tmp_path)
    assert "not implemented yet" in message
