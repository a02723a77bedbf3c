"""The three configs: one source of defaults, checked on construction,
ConfigError naming the field, old checkpoints' dicts still accepted."""

from __future__ import annotations

from dataclasses import fields

import pytest

import charrnn
from charrnn import ConfigError, DataConfig, ModelConfig, RecordBatches, TrainConfig, WindowBatches
from charrnn.config import check_fraction, check_positive, check_seed
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


@pytest.mark.parametrize(("rule", "args", "message"), [
    (check_seed, (-1,), "seed must be a whole number from 0 to"),
    (check_seed, (2**63,), "seed must be a whole number from 0 to"),
    (check_seed, (True,), "seed must be a whole number from 0 to"),
    (check_positive, ("batch_size", 0), "batch_size must be positive, got 0"),
    (check_fraction, ("val_fraction", 1.0), r"val_fraction must be in \[0, 1\), got 1.0"),
])
def test_each_rule_has_one_home_that_the_configs_share(rule, args, message):
    with pytest.raises(ConfigError, match=message):
        rule(*args)
    field = args[0] if isinstance(args[0], str) else "seed"
    with pytest.raises(ConfigError, match=message):  # the config says the same
        DataConfig(**{field: args[-1]})


def test_a_size_of_none_is_refused_where_none_means_nothing():
    with pytest.raises(ConfigError, match="hidden_size must be positive, got None"):
        ModelConfig(vocab_size=10, hidden_size=None)


def test_the_rules_let_good_values_through():
    for seed in (0, 2**63 - 1):
        check_seed(seed)
    check_positive("limit", None, none_allowed=True)  # None: no limit
    check_positive("limit", 1)
    check_fraction("val_fraction", 0.0)
