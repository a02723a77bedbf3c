"""Notebook 07's exercises, three bugs of the origin notebook fixed by the
student: ``training_windows`` (every token of the stream a target, not the
first 98 characters of each record; checked against
:meth:`charrnn.WindowBatches.eval_batches`), ``build_stoi`` (a vocabulary
whose special ids cannot collide with a character; checked against the
characters of :meth:`charrnn.CharVocab.from_texts`) and ``frame_record``
(one ``<bos>`` and one ``<eos>`` that are no character; checked against
:meth:`charrnn.CharVocab.encode` with ``add_bos`` and ``add_eos``)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...batches import EncodedCorpus, WindowBatches
from ...vocab import BOS_ID, PAD_ID, SPECIAL_TOKENS, CharVocab
from .common import ExerciseError, _call, _changed_in_place, _keeps_random_state

__all__ = ["check_build_stoi", "check_frame_record", "check_training_windows"]


# ------------------------------------------------------------------- windows
_WINDOW_TEXTS = ("Deep nets ; We train.", "Graphs ; A gap.", "Spin ; Up and down.")
# (records, seq_len): windows that end exactly at the stream's end, a last window that is shorter,
# one long window and a stream that is a single record.
_WINDOW_CASES = ((3, 5), (3, 7), (2, 30), (1, 4))


def _windows_hint(got_inputs: torch.Tensor, stream: torch.Tensor, seq_len: int, rows: int) -> str:
    """Name the usual way of losing targets, from the number of windows and the first rows."""
    n = len(stream)
    full = (n - 1) // seq_len
    if got_inputs.ndim == 2 and got_inputs.shape[0] == 1 and rows > 1:
        return (f"\nHint: one window trains on the first {seq_len + 1} tokens and nothing else, as the origin "
                "notebook's cut did. The windows must go on until the stream ends.")
    if got_inputs.ndim == 2 and got_inputs.shape[0] == full and full < rows:
        left = n - 1 - full * seq_len
        return (f"\nHint: the last {left} token(s) of the stream are never a target: keep the last, shorter "
                "window, padded on the right.")
    if got_inputs.ndim == 2 and got_inputs.shape[0] >= 2 and got_inputs.shape[1] == seq_len:
        second = got_inputs[1, 0].item()
        if second == stream[min(seq_len + 1, n - 1)].item() and second != stream[seq_len].item():
            return (f"\nHint: your second window starts at token {seq_len + 1}, so token {seq_len} is never a "
                    "target. Each window's last target is the first input of the next window: windows of "
                    "seq_len + 1 tokens that overlap by one.")
    return ""


@_keeps_random_state
def check_training_windows(training_windows: Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]
                           ) -> None:
    """Check ``training_windows(stream, seq_len) -> (inputs, targets)``
    against :meth:`charrnn.WindowBatches.eval_batches`.

    ``stream`` is a 1-D LongTensor of ids, whole records back to back. Cut
    it into consecutive windows of ``seq_len + 1`` tokens that overlap by
    one (starts 0, seq_len, 2 seq_len, ...), pad the last, shorter one on the
    right with ``<pad>``; inputs are each window without its last token,
    targets without its first, both ``(windows, seq_len)``. So every token
    but the first is a target exactly once. A ``<bos>`` target counts as
    ``<pad>`` (the loss skips both). The stream must be left as it was.
    """
    vocab = CharVocab.from_texts(_WINDOW_TEXTS)
    for records, seq_len in _WINDOW_CASES:
        corpus = EncodedCorpus.from_texts(_WINDOW_TEXTS[:records], vocab)
        stream = corpus.ids.long()
        expected_inputs, expected_targets = next(iter(
            WindowBatches(corpus, batch_size=10_000, seq_len=seq_len).eval_batches()))
        rows = expected_inputs.shape[0]
        given = stream.clone()
        call = f"training_windows(stream of {len(stream)} tokens, seq_len={seq_len})"
        got = _call("training_windows", training_windows, given, seq_len,
                    shown=f"stream of {len(stream)} tokens, seq_len={seq_len}")
        if not (isinstance(got, tuple) and len(got) == 2):
            raise ExerciseError(f"{call} returned {type(got).__name__}; expected a pair (inputs, targets).")
        got_inputs, got_targets = got
        for what, value in (("inputs", got_inputs), ("targets", got_targets)):
            if not isinstance(value, torch.Tensor):
                raise ExerciseError(f"{call} returned {what} of type {type(value).__name__}; expected a tensor "
                                    f"of shape {tuple(expected_inputs.shape)}.")
            if value.shape != expected_inputs.shape:
                raise ExerciseError(f"{call} returned {what} of shape {tuple(value.shape)}, expected "
                                    f"{tuple(expected_inputs.shape)}: one row per window, {rows} windows of "
                                    f"{seq_len} positions for a stream of {len(stream)} tokens."
                                    f"{_windows_hint(got_inputs, stream, seq_len, rows)}")
        if not torch.equal(given, stream):
            raise _changed_in_place(call, "stream")
        if got_inputs.dtype != torch.long or got_targets.dtype != torch.long:
            raise ExerciseError(f"{call} returned dtypes {got_inputs.dtype} and {got_targets.dtype}, expected "
                                "int64 (long) for both.\nHint: which integer dtype do the embedding and the loss "
                                "take for ids? Did slicing or a new tensor change it?")
        scored = got_targets.masked_fill(got_targets == BOS_ID, PAD_ID)
        if not torch.equal(got_inputs, expected_inputs) or not torch.equal(scored, expected_targets):
            hint = _windows_hint(got_inputs, stream, seq_len, rows)
            if not hint and torch.equal(got_targets, got_inputs):
                hint = "\nHint: the targets are the inputs themselves. What should each position learn to predict?"
            elif not hint and torch.equal(got_inputs, expected_inputs):
                hint = ("\nHint: the inputs are right. The target at each position is the token that follows it; "
                        "where none follows, <pad>.")
            raise ExerciseError(f"{call} returned\ninputs\n{got_inputs}\ntargets\n{got_targets}\nexpected\n"
                                f"{expected_inputs}\nand\n{expected_targets}\nfor the stream\n{stream}{hint}")
    print(f"✓ training_windows is correct: {len(_WINDOW_CASES)} streams, every token after the first a target "
          "exactly once")


# ---------------------------------------------------------------- vocabulary
_STOI_CASES = (
    ("".join(chr(c) for c in range(33, 134)),),               # 101 distinct characters
    ("abc", "cab d"),
    ("".join(chr(c) for c in range(32, 166)), "é\n"),         # 136, about the pretrained model's alphabet
    ("a <bos> b", "", "<eos>"),                               # texts that spell a marker, and an empty one
)


def _collisions(stoi: dict) -> list[list[str]]:
    by_id: dict[int, list[str]] = {}
    for token, i in stoi.items():
        by_id.setdefault(i, []).append(token)
    return [tokens for tokens in by_id.values() if len(tokens) > 1]


def _check_one_stoi(stoi, texts: tuple[str, ...], call: str) -> None:
    """Raise for the first thing wrong with ``stoi`` built from ``texts``."""
    if not isinstance(stoi, dict) or not all(isinstance(k, str) for k in stoi) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in stoi.values()):
        raise ExerciseError(f"{call} returned {type(stoi).__name__}; expected a dict from tokens (str) to "
                            "ids (int).")
    missing = [t for t in SPECIAL_TOKENS if t not in stoi]
    if missing:
        other = [k for k in stoi if len(k) > 1]
        named = f" (it has {', '.join(map(repr, other))}: the names are in lower case)" if other else ""
        raise ExerciseError(f"{call} has no {', '.join(map(repr, missing))}{named}; it needs the four special "
                            f"tokens {', '.join(SPECIAL_TOKENS)}.")
    chars = CharVocab.from_texts(texts).chars
    absent = [c for c in chars if c not in stoi]
    if absent:
        raise ExerciseError(f"{call}: the character(s) {', '.join(map(repr, absent[:5]))} of the texts have no "
                            "id.\nHint: every character of every text needs one, the first text's and the "
                            "last one's alike.")
    extra = [k for k in stoi if k not in chars and k not in SPECIAL_TOKENS]
    if extra:
        raise ExerciseError(f"{call}: {', '.join(map(repr, extra[:5]))} is in stoi but is neither a character "
                            "of the texts nor one of the four special tokens.\nHint: does a text spelled "
                            "'<bos>' hold the token <bos>, or five characters?")
    clashes = _collisions(stoi)
    if clashes:
        shown = "; ".join(f"{' and '.join(map(repr, tokens))} share id {stoi[tokens[0]]}" for tokens in clashes[:3])
        raise ExerciseError(f"{call} gives one id to two tokens: {shown} ({len(chars)} distinct characters).\n"
                            "Hint: the model then cannot tell them apart, and decoding cannot either. Which ids "
                            "can a character never take, however many distinct characters the texts hold?")
    ids = sorted(stoi.values())
    if ids != list(range(len(stoi))):
        raise ExerciseError(f"{call} has {len(stoi)} tokens but ids from {ids[0]} to {ids[-1]}.\nHint: a model "
                            f"with one embedding row per token, nn.Embedding({len(stoi)}, ...), has rows 0 to "
                            f"{len(stoi) - 1} only (bug 5). Number the tokens without gaps, from 0.")
    itos = {i: token for token, i in stoi.items()}
    for text in texts:
        if "".join(itos[stoi[c]] for c in text) != text:  # cannot fail once the ids are distinct
            raise ExerciseError(f"{call}: {text!r} does not come back from its ids.")


@_keeps_random_state
def check_build_stoi(build_stoi: Callable[[list[str]], dict[str, int]]) -> None:
    """Check ``build_stoi(texts) -> stoi``: one id for each of the special
    tokens ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>`` and for each distinct
    character of the texts (those of :meth:`CharVocab.from_texts`), every
    id different, numbered 0 to ``len(stoi) - 1``. Any order is accepted;
    ``CharVocab`` puts the special tokens first. The list of texts must be
    left as it was."""
    for texts in _STOI_CASES:
        given = list(texts)
        call = f"build_stoi({_shown_texts(texts)})"
        stoi = _call("build_stoi", build_stoi, given, shown=_shown_texts(texts))
        if given != list(texts):
            raise _changed_in_place(call, "list of texts", advice="build the vocabulary without changing the texts")
        _check_one_stoi(stoi, texts, call)
    print(f"✓ build_stoi is correct: {len(_STOI_CASES)} vocabularies, up to 136 characters, distinct ids 0 to "
          "len(stoi) - 1, every text round-trips")


def _shown_texts(texts: tuple[str, ...]) -> str:
    return "[" + ", ".join(repr(t) if len(t) < 30 else f"<a text of {len(set(t))} distinct characters>"
                           for t in texts) + "]"


# ------------------------------------------------------------------- framing
_FRAME_CASES = ("Deep nets ; We train.", " leading space", "a line\n", "", "a <bos> in a title", "<eos>")


def _frame_hint(text: str, ids: list[int], vocab: CharVocab) -> str:
    bos, eos, space, newline = vocab.bos_id, vocab.eos_id, vocab.stoi[" "], vocab.stoi["\n"]
    if ids[:2] == [bos, space] or ids[-2:] == [newline, eos]:
        return (f"\nHint: the record is framed twice, by <bos>/<eos> and by ' '/'\\n' inside them, as in the "
                f"origin notebook. The space is an ordinary character (this text holds {text.count(' ')} of them): "
                "one marker at each end is enough, and it must be one no text holds.")
    if ids[:1] == [space] or ids[-1:] == [newline]:
        return ("\nHint: a space and a newline are characters of the text, so the model cannot tell a marker from "
                "text. Which tokens can no character be?")
    if "<" in text and len(ids) < len(text) + 2:
        return (f"\nHint: {text!r} spells a marker with ordinary characters ('<', 'b', ...). Each character of a "
                "text is one id, whatever it spells; only the two ends get a special token.")
    if len(ids) == len(text):
        return "\nHint: no markers at all: where do the record's start and end show in its ids?"
    return ""


@_keeps_random_state
def check_frame_record(frame_record: Callable[[str, dict], list[int]]) -> None:
    """Check ``frame_record(text, stoi) -> list[int]`` against
    :meth:`CharVocab.encode` with ``add_bos=True, add_eos=True``: the id of
    ``<bos>``, one id per character, the id of ``<eos>``. A text that spells
    ``<bos>`` holds five characters, not the token."""
    vocab = CharVocab.from_texts(_FRAME_CASES)
    for text in _FRAME_CASES:
        stoi = dict(vocab.stoi)
        expected = vocab.encode(text, add_bos=True, add_eos=True)
        call = f"frame_record({text!r}, stoi)"
        got = _call("frame_record", frame_record, text, stoi, shown=f"{text!r}, stoi")
        if hasattr(got, "tolist"):
            got = got.tolist()
        if not isinstance(got, (list, tuple)) or not all(isinstance(i, int) for i in got):
            raise ExerciseError(f"{call} returned {got!r} ({type(got).__name__}); expected a list of integer ids.")
        if stoi != vocab.stoi:
            raise _changed_in_place(call, "stoi", advice="look ids up without adding to the vocabulary")
        if list(got) != expected:
            raise ExerciseError(f"{call} returned {list(got)}, expected {expected}\n(stoi = {vocab.stoi})"
                                f"{_frame_hint(text, list(got), vocab)}")
    print(f"✓ frame_record is correct: {len(_FRAME_CASES)} records agree with CharVocab.encode(add_bos=True, "
          "add_eos=True)")
