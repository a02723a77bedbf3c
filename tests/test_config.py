"""The three configs: one source of defaults, checked on construction,
ConfigError naming the field, old checkpoints' dicts still accepted."""

from __future__ import annotations

from dataclasses import fields

import pytest

import charrnn
from charrnn import ConfigError, DataConfig, ModelConfig, RecordBatches, TrainConfig, WindowBatches
from charrnn.errors import CharRNNError


@pytest.mark.parametrize("cls", [ModelConfig, DataConfig, TrainConfig])
def test_every_field_has_help_for_the_command_line(cls):
    for f in fields(cls):
        assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help text"


@pytest.mark.parametrize("make", [
    lambda: ModelConfig(vocab_size=0), lambda: ModelConfig(vocab_size=5, cell="transformer"),
    lambda: ModelConfig(vocab_size=5, dropout=1.0), lambda: DataConfig(val_fraction=1.0),
    lambda: DataConfig(batching="shuffled"), lambda: DataConfig(batch_size=0),
    lambda: DataConfig(seq_len=0), lambda: TrainConfig(lr=-1.0),
])
def test_a_bad_setting_is_a_config_error_and_a_value_error(make):
    with pytest.raises(ConfigError) as info:
        make()
    assert isinstance(info.value, CharRNNError) and isinstance(info.value, ValueError)


def test_from_dict_ignores_keys_of_other_versions():
    saved = {**DataConfig().to_dict(), "world_size": 2, "something_new": 1}
    assert DataConfig.from_dict(saved) == DataConfig()
    assert TrainConfig.from_dict({"steps": 7, "old_key": 0}) == TrainConfig(steps=7)


def test_batchers_take_their_defaults_from_the_data_config(small_corpus):
    defaults = DataConfig()
    windows = WindowBatches(small_corpus)
    assert (windows.batch_size, windows.seq_len, windows.seed) == (defaults.batch_size, defaults.seq_len,
                                                                  defaults.seed)
    records = RecordBatches(small_corpus)
    assert (records.batch_size, records.max_len) == (defaults.batch_size, defaults.max_len)


def test_make_batches_follows_the_config(small_corpus):
    assert isinstance(charrnn.make_batches(small_corpus, DataConfig()), WindowBatches)
    records = charrnn.make_batches(small_corpus, DataConfig(batching="records", batch_size=3))
    assert isinstance(records, RecordBatches) and records.batch_size == 3


def test_category_list_splits_at_commas():
    assert DataConfig(categories=" cs.LG, hep ,").category_list == ["cs.LG", "hep"]
    assert DataConfig().category_list is None
