"""Every setting in one place: the model, the data and the optimisation.

Three dataclasses hold every default the library, the notebooks and the
command line use. The CLI builds its flags from these fields (the flag is the
field name with dashes, the help text is the field's ``help``), so a default
changed here changes everywhere, and an error names the setting the user
typed. Each config checks itself when built and raises
:class:`~charrnn.errors.ConfigError` for a value that cannot work.
"""

from __future__ import annotations

import math
import operator
from dataclasses import MISSING, asdict, dataclass, field, fields

from .errors import ConfigError

CELLS = ("scratch", "rnn", "gru", "lstm")
BATCHINGS = ("windows", "records")
SCHEDULES = ("constant", "cosine")
TEXT_RECORDS = ("paragraphs", "lines")  # what one record of a plain-text file is
MAX_SEED = 2**63 - 1  # torch.manual_seed takes a signed 64-bit integer


def setting(default, help: str, **extra):
    """A dataclass field with the help text (and optional ``choices``,
    ``aliases`` for old flag spellings) that the CLI shows for it."""
    return field(default=default, metadata={"help": help, **extra})


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


# The rules for the settings, one home each: the configs below call them,
# and so does any function that takes the same setting as a plain argument.
def is_seed(value) -> bool:
    """A whole number torch and numpy accept as a seed (not a bool, not a float)."""
    if isinstance(value, bool):
        return False
    try:
        return 0 <= operator.index(value) <= MAX_SEED
    except TypeError:
        return False


def check_seed(seed) -> None:
    """A seed torch's generator can take: 0 to 2**63 - 1 (a larger one fails
    deep inside torch with "Overflow when unpacking long long")."""
    _check(is_seed(seed), f"seed must be a whole number from 0 to {MAX_SEED} (2**63 - 1), got {seed!r}")


def check_positive(name: str, value, none_allowed: bool = False) -> None:
    """A count of at least 1 (a batch size, a record limit, a minimum
    frequency); with ``none_allowed``, None passes too, for the settings
    where it means "no limit"."""
    _check((none_allowed and value is None) or (value is not None and value >= 1),
           f"{name} must be positive, got {value}")


def check_fraction(name: str, value: float) -> None:
    """A share in [0, 1): 1 would leave nothing on the other side."""
    _check(0.0 <= value < 1.0, f"{name} must be in [0, 1), got {value}")


def check_text_records(value) -> None:
    """What a record of a plain-text file is: ``"paragraphs"`` or ``"lines"``."""
    _check(value in TEXT_RECORDS, f"text_records must be one of {', '.join(TEXT_RECORDS)}, got {value!r}")


class SavedAsDict:
    """What the three configs (and the training history) share: a dict
    round trip that ignores keys from other versions, so old checkpoints
    still load."""

    @classmethod
    def from_dict(cls, data: dict):
        """Build from a dict (e.g. saved in a checkpoint), ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    def to_dict(self) -> dict:
        """Plain values, as saved in a checkpoint."""
        return asdict(self)

    @classmethod
    def defaults(cls) -> dict:
        """``{field name: default}`` for the fields that have one."""
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


@dataclass
class ModelConfig(SavedAsDict):
    """Everything needed to rebuild the network (saved in checkpoints)."""

    vocab_size: int = setting(MISSING, "number of tokens, from the vocabulary")
    cell: str = setting("lstm", "recurrent cell", choices=CELLS)
    embed_dim: int = setting(64, "size of each character's embedding", aliases=("--embed",))
    hidden_size: int = setting(256, "size of the hidden state h_t", aliases=("--hidden",))
    num_layers: int = setting(1, "recurrent layers stacked", aliases=("--layers",))
    dropout: float = setting(0.0, "dropout between layers and before the output layer")

    def __post_init__(self):
        _check(self.cell in CELLS, f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        for name in ("vocab_size", "embed_dim", "hidden_size", "num_layers"):
            check_positive(name, getattr(self, name))
        check_fraction("dropout", self.dropout)


@dataclass
class DataConfig(SavedAsDict):
    """Which records, how they are split, and how they become batches. SavedAsDict
    in checkpoints, so a resumed run rebuilds exactly the same batches.

    A record is an arXiv paper of a JSON-lines file, or a paragraph (with
    ``text_records="lines"``, a line) of a plain-text file; see
    :func:`charrnn.data.iter_records`."""

    data: str | None = setting(None, "arXiv JSON lines (.json/.jsonl/.gz/.zip), plain UTF-8 text "
                                     "(.txt/.md, or .txt.gz/.md.gz), or a directory written by "
                                     "`prepare --out DIR`; None: the embedded corpus")
    text_records: str = setting("paragraphs", "what one record of a plain-text file is: a paragraph "
                                              "(lines up to a blank line, line breaks kept) or a line",
                                choices=TEXT_RECORDS)
    categories: str | None = setting(None, "comma-separated category filter, e.g. cs.LG,stat.ML or hep")
    limit: int | None = setting(None, "read at most this many usable records")
    sample: int | None = setting(None, "keep a seeded random sample of this many records")
    val_fraction: float = setting(0.1, "share of records held out for validation, by hashed id")
    min_freq: int = setting(1, "characters seen fewer times become <unk>")
    batching: str = setting("windows", "random windows over the text stream, or whole padded records",
                            choices=BATCHINGS)
    batch_size: int = setting(32, "sequences per batch")
    seq_len: int = setting(128, "window length in characters (windows batching)")
    max_len: int | None = setting(None, "cut records to this many characters (records batching)")
    seed: int = setting(0, "seed for the model's initial weights, the sample and the batches")

    def __post_init__(self):
        check_fraction("val_fraction", self.val_fraction)
        check_seed(self.seed)
        check_text_records(self.text_records)
        _check(self.batching in BATCHINGS,
               f"batching must be one of {', '.join(BATCHINGS)}, got {self.batching!r}")
        for name in ("min_freq", "batch_size", "seq_len"):
            check_positive(name, getattr(self, name))
        for name in ("limit", "sample", "max_len"):
            check_positive(name, getattr(self, name), none_allowed=True)

    @property
    def category_list(self) -> list[str] | None:
        """``categories`` split at commas, or None for no filter."""
        wanted = [c.strip() for c in (self.categories or "").split(",") if c.strip()]
        return wanted or None


@dataclass
class TrainConfig(SavedAsDict):
    """Optimisation settings: how long, how fast, how often to check."""

    steps: int = setting(1000, "total optimisation steps")
    lr: float = setting(3e-3, "Adam learning rate")
    weight_decay: float = setting(0.0, "Adam weight decay")
    clip_norm: float | None = setting(1.0, "largest global gradient norm; 0 or None: no clipping",
                                      aliases=("--clip",))
    schedule: str = setting("constant", "learning rate schedule; cosine decays to lr/10 by the last step",
                            choices=SCHEDULES)
    warmup_steps: int = setting(0, "steps of linear learning-rate warm-up", aliases=("--warmup",))
    eval_every: int = setting(100, "validate every so many steps (and at the end)")
    eval_batches: int | None = setting(20, "cap on validation batches per check; None: all")
    checkpoint_every: int | None = setting(None, "write a checkpoint every so many steps; "
                                                 "None: at every validation")
    device: str = setting("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps")
    amp: bool = setting(True, "mixed precision on CUDA (bf16 where supported)")

    def __post_init__(self):
        if self.clip_norm == 0:
            self.clip_norm = None
        _check(self.steps >= 0, f"steps must be >= 0, got {self.steps}")
        _check(0 < self.lr < math.inf, f"lr must be a positive finite number, got {self.lr}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.clip_norm is None or self.clip_norm > 0,
               f"clip_norm must be positive, 0 or None, got {self.clip_norm}")
        _check(self.schedule in SCHEDULES,
               f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        _check(self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}")
        check_positive("eval_every", self.eval_every)
        for name in ("eval_batches", "checkpoint_every"):
            check_positive(name, getattr(self, name), none_allowed=True)
