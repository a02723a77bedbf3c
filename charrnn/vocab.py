"""The character vocabulary: one token per character, plus four special tokens.

The origin notebook gave its special tokens hard-coded ids (100, 101, 102), so a
corpus with more than 100 distinct characters silently shared ids between a
letter and ``<EOS>``; it also used ``' '`` and ``'\\n'`` as begin/end markers,
which are ordinary characters of the text. Here the special tokens always take
ids 0-3 and are multi-character strings, so no character can ever collide
with them.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable

import numpy as np

from .config import check_positive
from .errors import CharRNNError

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)

_FORMAT = "charrnn-vocab"


class CharVocab:
    """Maps characters to integer ids and back.

    Ids 0-3 are ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``; characters follow in
    sorted order, so the same set of characters always gives the same ids.
    Characters not in the vocabulary encode to ``<unk>``; encoding never
    changes the vocabulary, so :meth:`unknown_chars` tells which characters
    of a text those are, and :class:`~charrnn.batches.EncodedCorpus` counts
    them for a whole corpus.
    """

    pad_id, bos_id, eos_id, unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID

    def __init__(self, chars: Iterable[str]):
        chars = sorted(set(chars))
        for c in chars:
            if len(c) != 1:
                raise CharRNNError(f"vocabulary entries must be single characters, got {c!r}")
        self.itos: list[str] = list(SPECIAL_TOKENS) + chars
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}
        # Vectorised encoding: sorted code points and the id of each.
        self._codepoints = np.array([ord(c) for c in chars], dtype=np.int64)
        self._codepoint_ids = np.arange(len(SPECIAL_TOKENS), len(self.itos), dtype=np.int64)

    # ----------------------------------------------------------------- building
    @classmethod
    def from_texts(cls, texts: Iterable[str], min_freq: int = 1) -> CharVocab:
        """Build a vocabulary from texts; characters seen fewer than ``min_freq``
        times are left out, so they encode to ``<unk>``."""
        check_positive("min_freq", min_freq)
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text)
        return cls(c for c, n in counts.items() if n >= min_freq)

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        """Tokens in all: the special tokens and the characters."""
        return len(self.itos)

    def __contains__(self, char: str) -> bool:
        """True for an ordinary character of the vocabulary."""
        return char in self.stoi and char not in SPECIAL_TOKENS

    def __eq__(self, other: object) -> bool:
        """Two vocabularies are equal when they give every token the same id."""
        return isinstance(other, CharVocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"CharVocab({len(self.chars)} characters + {len(SPECIAL_TOKENS)} special tokens)"

    @property
    def chars(self) -> list[str]:
        """The ordinary characters, without the special tokens."""
        return self.itos[len(SPECIAL_TOKENS):]

    # ------------------------------------------------------------ encode/decode
    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Turn text into ids; optionally wrap it in ``<bos>`` ... ``<eos>``."""
        return self.encode_array(text, add_bos, add_eos).tolist()

    def encode_array(self, text: str, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        """Like :meth:`encode` but returns an ``int64`` numpy array; fast on
        long texts because the lookup is done in numpy, not per character."""
        ids, _ = self._lookup(text)
        parts = [np.array([BOS_ID])] if add_bos else []
        parts.append(ids)
        if add_eos:
            parts.append(np.array([EOS_ID]))
        return np.concatenate(parts).astype(np.int64)

    def _lookup(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, known)`` for every character of ``text``: binary search of
        each code point among the vocabulary's sorted ones."""
        points = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32).astype(np.int64)
        if not len(self._codepoints):
            return np.full(len(points), UNK_ID, dtype=np.int64), np.zeros(len(points), dtype=bool)
        pos = np.minimum(np.searchsorted(self._codepoints, points), len(self._codepoints) - 1)
        known = self._codepoints[pos] == points
        return np.where(known, self._codepoint_ids[pos], UNK_ID), known

    def unknown_chars(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that encode to ``<unk>``, sorted."""
        _, known = self._lookup(text)
        return sorted({text[i] for i in np.flatnonzero(~known)})

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Turn ids back into text. Special tokens are dropped unless
        ``skip_special=False``, in which case they appear as ``<bos>`` etc."""
        out = []
        n = len(self.itos)
        for i in ids:
            i = int(i)
            if not 0 <= i < n:
                raise CharRNNError(f"id {i} is outside the vocabulary (size {n})")
            if i < len(SPECIAL_TOKENS) and skip_special:
                continue
            out.append(self.itos[i])
        return "".join(out)

    # ------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        """The vocabulary as JSON-ready data (saved in checkpoints and vocab.json)."""
        return {"format": _FORMAT, "version": 1, "special_tokens": list(SPECIAL_TOKENS),
                "chars": self.chars}

    @classmethod
    def from_dict(cls, data: dict) -> CharVocab:
        """Rebuild a vocabulary from :meth:`to_dict`'s data, checking its format."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise CharRNNError("not a charrnn vocabulary (missing 'format': 'charrnn-vocab')")
        if list(data.get("special_tokens", [])) != list(SPECIAL_TOKENS):
            raise CharRNNError(f"vocabulary has special tokens {data.get('special_tokens')}, "
                               f"this version of charrnn expects {list(SPECIAL_TOKENS)}")
        chars = data.get("chars")
        if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise CharRNNError("vocabulary 'chars' must be a list of single characters")
        return cls(chars)

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=False, indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CharVocab:
        """Read a vocabulary written by :meth:`save`."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise CharRNNError(f"{path}: not valid JSON ({e})") from None
        try:
            return cls.from_dict(data)
        except CharRNNError as e:
            raise CharRNNError(f"{path}: {e}") from None
