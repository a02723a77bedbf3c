"""Notebook 01's exercises: ``encode``, ``decode`` and ``lost_chars`` (text
to ids and back, and what the round trip loses), checked against
:meth:`CharVocab.encode`, :meth:`CharVocab.decode` and
:meth:`CharVocab.unknown_chars`; and ``pad_batch`` (sequences of different
lengths to one tensor), checked against :func:`charrnn.pad_sequences`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import torch

from ...batches import pad_sequences
from ...vocab import SPECIAL_TOKENS, UNK_ID, CharVocab
from .common import ExerciseError, _call, _changed_in_place, _expect_tensor, _keeps_random_state

__all__ = ["check_encode", "check_pad_batch"]

# ------------------------------------------------------------------ encoding
# The check's vocabulary. Its first character, the space, gets id 4, right after the special tokens, and
# it holds every character of "<unk>", "<bos>" and "<eos>", so a text can spell those names out.
_ENCODE_CHARS = " $.;<>Tabcdeknopstu"
# Known characters only, the empty text, unknown characters at either end, and texts that spell out
# the name of a special token: five (or seven) ordinary characters, never the token itself.
_ENCODE_CASES = ("abc", "Tea ; bed.", "", "$a$", "cab!", "Zeta ; €", "a <unk> token", "<bos>pets<eos>")
# (text, <bos> and <eos> around it, <pad> after it): ids as a batch row holds them.
_DECODE_CASES = (("abc", True, 0), ("Tea ; bed.", True, 3), ("cab!", False, 0), ("", True, 2),
                 ("a <unk> token", True, 1), ("Zeta ; €", True, 0))
# Unknown characters repeated and after a shift, none at all, many.
_LOST_CASES = ("Zeta ; €€ Zeta", "a <unk> token", "Schrödinger ∮ café")
_SPECIAL_NAMES = re.compile("|".join(map(re.escape, SPECIAL_TOKENS)))


def _as_int_list(value) -> list[int] | None:
    """A list/tuple/tensor/array of integers as a plain list, else None."""
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) for v in value):
        return None
    return [int(v) for v in value]


def _call_as(label: str, func: Callable, *args, shown: str):
    """Call ``decode`` or ``lost_chars`` under the shortcuts of their exercise,
    ``encode``, with a refusal that names the function that called the
    library (the shared refusal names the exercise)."""
    try:
        return _call("encode", func, *args, shown=shown, label=label)
    except ExerciseError as e:
        if str(e).startswith("encode called "):
            raise ExerciseError(label + str(e).removeprefix("encode")) from None
        raise


def _chars(chars: Iterable[str]) -> str:
    return ", ".join(map(repr, chars))


def _is(chars: list[str]) -> str:
    return "is" if len(chars) == 1 else "are"


def _it(chars: list[str]) -> str:
    return "it comes" if len(chars) == 1 else "they come"


@_keeps_random_state
def check_encode(encode: Callable[[str, dict], Sequence[int]], decode: Callable[[Sequence[int], list], str],
                 lost_chars: Callable[[str, dict, list], Iterable[str]]) -> None:
    """Check ``encode(text, stoi) -> ids``, ``decode(ids, itos) -> text`` and
    ``lost_chars(text, stoi, itos)`` against :class:`CharVocab`.

    ``encode`` gives one id per character: ``stoi[char]``, or the id of
    ``<unk>`` for a character the vocabulary lacks (no ``KeyError``, no
    character skipped: real text always holds some character the vocabulary
    never saw), adds no ``<bos>``/``<eos>`` and leaves ``stoi`` as it was. A
    text that spells ``<unk>`` is five ordinary characters. ``decode`` is the
    default :meth:`CharVocab.decode`: every special token, ``<unk>``
    included, is left out of the text, so ``decode(encode(t)) == t`` exactly
    when ``t`` has no unknown character. ``lost_chars`` names the characters
    that do not come back, each once, in any order.
    """
    vocab = CharVocab(_ENCODE_CHARS)
    for text in _ENCODE_CASES:
        _check_one_encode(encode, text, vocab)
    for text, framed, pads in _DECODE_CASES:
        ids = vocab.encode(text, add_bos=framed, add_eos=framed) + [vocab.pad_id] * pads
        _check_one_decode(decode, ids, vocab)
    for text in _LOST_CASES:
        _check_one_lost(lost_chars, text, vocab)
    print(f"✓ encode, decode and lost_chars are correct: {len(_ENCODE_CASES)} texts, {len(_DECODE_CASES)} id "
          f"lists and {len(_LOST_CASES)} lossy texts agree with CharVocab")


def _check_one_encode(encode: Callable, text: str, vocab: CharVocab) -> None:
    """One text through the student's ``encode``: ids, type, and ``stoi`` left alone."""
    stoi = dict(vocab.stoi)  # a copy: the check sees whether encode changed it
    expected = vocab.encode(text)
    call = f"encode({text!r}, stoi)"
    got = _call("encode", encode, text, stoi, shown=f"{text!r}, stoi",
                key_error_hint=f"\nHint: real text always holds characters the vocabulary never saw. What "
                               f"should such a character become, and how can you look it up without a KeyError?"
                               f"\nstoi = {vocab.stoi}")
    if stoi != vocab.stoi:
        added = _chars(k for k in stoi if k not in vocab.stoi)
        raise ExerciseError(f"{call} changed stoi ({f'it added {added}' if added else 'it changed some ids'}); "
                            "encoding looks characters up and leaves the vocabulary as it was.\nHint: a vocabulary "
                            "that grows while it encodes gives one id different meanings in two texts, and the "
                            "model has one output per token of a fixed vocabulary. Which token stands for a "
                            "character the vocabulary does not know?")
    ids = _as_int_list(got)
    if ids is None:
        what = ("the characters themselves" if isinstance(got, (str, list, tuple)) and got
                and all(isinstance(c, str) for c in got) else type(got).__name__)
        raise ExerciseError(f"{call} returned {got!r} ({what}); expected a list of integer ids, one per character"
                            " (the numbers stoi gives the characters)")
    if ids != expected:
        raise ExerciseError(f"{call} returned {ids}, expected {expected}\n(stoi = {vocab.stoi})"
                            f"{_encode_hint(text, ids, expected, vocab)}")


def _spelled_as_tokens(text: str, vocab: CharVocab, names: Iterable[str]) -> list[int]:
    """The ids of ``text`` if each spelled-out name in ``names`` were its special token."""
    names = list(names)
    pattern = re.compile("(" + "|".join(map(re.escape, names)) + ")")
    return [i for piece in pattern.split(text) if piece
            for i in ([vocab.stoi[piece]] if piece in names else vocab.encode(piece))]


def _encode_hint(text: str, ids: list[int], expected: list[int], vocab: CharVocab) -> str:
    """Name the mistake that gives exactly ``ids``; else say where they first differ."""
    unknown = [c for c in text if c not in vocab]
    if unknown and ids == [vocab.stoi[c] for c in text if c in vocab]:
        return (f"\nHint: {_chars(dict.fromkeys(unknown))} left no id at all, so the text's {len(text)} "
                f"characters gave {len(ids)} ids and a model could not tell that anything was there. An "
                "unknown character keeps its place: which special token stands for it?")
    if ids in ([vocab.bos_id] + expected, expected + [vocab.eos_id], [vocab.bos_id] + expected + [vocab.eos_id]):
        return (f"\nHint: the text has {len(text)} characters, so the answer needs {len(expected)} ids, not "
                f"{len(ids)}: encode adds no <bos>/<eos> (CharVocab.encode adds them only when asked).")
    diffs = [k for k, (a, b) in enumerate(zip(ids, expected, strict=False)) if a != b]
    if len(ids) == len(expected) and diffs and all(expected[k] == UNK_ID for k in diffs):
        became = sorted({ids[k] for k in diffs})
        return (f"\nHint: the unknown {_chars(dict.fromkeys(text[k] for k in diffs))} became id "
                f"{', '.join(map(str, became))} ({_chars(vocab.itos[i] for i in became if 0 <= i < len(vocab))}). "
                "Which special token stands for a character the vocabulary does not know?")
    spelled = [n for n in SPECIAL_TOKENS if n in text]
    if spelled and ids in ([_spelled_as_tokens(text, vocab, spelled)]
                           + [_spelled_as_tokens(text, vocab, [n]) for n in spelled]):
        return (f"\nHint: the text spells out {_chars(spelled)}, and your ids hold a special token there. A text "
                "is only characters: '<', 'u', 'n', 'k', '>' are five ordinary characters of the vocabulary, and "
                "no piece of a text is ever a special token.")
    if diffs:
        k = diffs[0]
        return (f"\nThe first difference is at character {k} ({text[k]!r}): your id {ids[k]}, expected "
                f"{expected[k]}.")
    return f"\nThe text has {len(text)} characters, so the answer needs {len(expected)} ids, not {len(ids)}."


def _check_one_decode(decode: Callable, ids: list[int], vocab: CharVocab) -> None:
    """One list of ids through the student's ``decode``: a string, the library's."""
    expected = vocab.decode(ids)
    call = f"decode({ids}, itos)"
    got = _call_as("decode", decode, list(ids), list(vocab.itos), shown=f"{ids}, itos")
    if not isinstance(got, str):
        raise ExerciseError(f"{call} returned {got!r} ({type(got).__name__}); expected the text, one string")
    if got != expected:
        raise ExerciseError(f"{call} returned {got!r}, expected {expected!r}\n(itos = {vocab.itos})"
                            f"{_decode_hint(ids, got, expected, vocab)}")


def _decode_hint(ids: list[int], got: str, expected: str, vocab: CharVocab) -> str:
    """Name the mistake that gives exactly ``got``; else say where the texts first differ."""
    shown = [n for n in SPECIAL_TOKENS if got.count(n) > expected.count(n)]
    if shown:
        return (f"\nHint: your text shows {_chars(shown)}. Special tokens are not text: they mark where a text "
                "begins and ends, fill a batch, or stand in for a character the vocabulary lost, and "
                "CharVocab.decode leaves all four out.")
    first = vocab.itos[len(SPECIAL_TOKENS)]
    if got == "".join(vocab.itos[i] for i in ids if i > len(SPECIAL_TOKENS)):
        return (f"\nHint: every {first!r} (id {len(SPECIAL_TOKENS)}) is missing: that is the first ordinary "
                "character, not a special token. Which ids are the special tokens?")
    if got == _SPECIAL_NAMES.sub("", "".join(vocab.itos[i] for i in ids)):
        return ("\nHint: the text's own characters were lost where they spell a special token's name. Whether a "
                "token is special depends on its id, not on the characters it is written with.")
    template = "".join(re.escape(vocab.itos[i]) if i >= len(SPECIAL_TOKENS) else "(.+?)" if i == UNK_ID else ""
                       for i in ids)
    match = re.fullmatch(template, got, flags=re.S)
    if match and match.groups():
        return (f"\nHint: your text shows {_chars(dict.fromkeys(match.groups()))} for <unk>. CharVocab.decode leaves "
                "<unk> out, like the other special tokens: the character it stood for is gone, and a placeholder "
                "would be a character the original text never had.")
    k = next((k for k, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), min(len(got), len(expected)))
    return f"\nThe texts first differ at character {k}: {got[k:k + 1]!r} where {expected[k:k + 1]!r} was expected."


def _check_one_lost(lost_chars: Callable, text: str, vocab: CharVocab) -> None:
    """One text through the student's ``lost_chars``: the distinct unknown characters."""
    expected = vocab.unknown_chars(text)
    call = f"lost_chars({text!r}, stoi, itos)"
    got = _call_as("lost_chars", lost_chars, text, dict(vocab.stoi), list(vocab.itos), shown=f"{text!r}, stoi, itos")
    items = list(got) if isinstance(got, (list, tuple, set, frozenset, str)) else None
    if items is None or not all(isinstance(c, str) and len(c) == 1 for c in items):
        hint = ("\nHint: <unk> is what the lost characters became; the question asks for the characters of the "
                "text themselves." if items and any(c in SPECIAL_TOKENS for c in items) else
                "\nHint: these look like ids; the question asks for the characters of the text."
                if items and all(isinstance(c, int) for c in items) else "")
        raise ExerciseError(f"{call} returned {got!r}; expected a list of single characters, those of the text "
                            f"that do not come back from decode(encode(text)){hint}")
    if sorted(items) != expected:
        raise ExerciseError(f"{call} returned {got!r}, expected the characters {expected} (in any order)"
                            f"{_lost_hint(text, items, expected, vocab)}")


def _lost_hint(text: str, items: list[str], expected: list[str], vocab: CharVocab) -> str:
    """Name the mistake that gives exactly ``items``; else say which characters are wrong."""
    if set(items) == set(expected):
        return "\nHint: name each lost character once, however often the text holds it."
    decoded = vocab.decode(vocab.encode(text))
    by_position = {a for a, b in zip(text, decoded, strict=False) if a != b}
    if set(items) in (by_position, by_position | set(text[len(decoded):])):
        return ("\nHint: you compared the text and its round trip character by character. After the first lost "
                "character the decoded text is shorter, so every character after it is compared with the wrong "
                "one.")
    extra, missing = sorted(set(items) - set(expected)), sorted(set(expected) - set(items))
    if extra:
        return f"\nHint: {_chars(extra)} {_is(extra)} in the vocabulary, so {_it(extra)} back from the round trip."
    return (f"\nHint: {_chars(missing)} {_is(missing)} not in the vocabulary, so the round trip loses "
            f"{'it' if len(missing) == 1 else 'them'}.")


# ------------------------------------------------------------------- padding
_PAD_CASES = (
    ([[1, 5, 7], [2]], 0),
    ([[4], [6, 6], [9, 8, 7, 6]], 0),
    ([[3, 1]], 0),
    ([[1, 2], [3, 4]], 0),
    ([[5], [1, 2, 3]], 9),
)


@_keeps_random_state
def check_pad_batch(pad_batch: Callable[[list[list[int]], int], torch.Tensor]) -> None:
    """Check ``pad_batch(seqs, pad_id) -> LongTensor`` against
    :func:`charrnn.pad_sequences`.

    The result has shape ``(len(seqs), longest length)``; each row starts with
    its sequence and is filled on the right with ``pad_id``. The dtype must be
    ``torch.long``: ``nn.Embedding`` and ``cross_entropy`` accept no other
    integer type. The input lists must be left as they were.
    """
    for seqs, pad_id in _PAD_CASES:
        original = [list(s) for s in seqs]
        given = [list(s) for s in seqs]
        expected = pad_sequences(original, pad_id=pad_id)
        call = f"pad_batch({original}, pad_id={pad_id})"
        got = _call("pad_batch", pad_batch, given, pad_id)
        _expect_tensor(call, got, tuple(expected.shape),
                       f"one row per sequence, as long as the longest\n{expected}",
                       hint="\nHint: how many rows and columns does the batch need? Start from a tensor of that "
                            "size that already holds pad_id everywhere.")
        if got.dtype != torch.long:
            raise ExerciseError(f"{call} returned dtype {got.dtype}, expected torch.int64 (torch.long), "
                                "the dtype nn.Embedding needs.\nHint: ids are whole numbers; which dtype did the "
                                "tensor get when you created it?")
        if not torch.equal(got, expected):
            raise ExerciseError(f"{call} returned\n{got}\nexpected\n{expected}\n"
                                f"(each row is its sequence, then pad_id={pad_id} up to the longest length)")
        if given != original:
            raise _changed_in_place(call, "input", now=given, advice="build a new tensor instead of appending "
                                                                     "to the lists you were given")
    print(f"✓ pad_batch is correct: {len(_PAD_CASES)} batches agree with charrnn.pad_sequences")
