"""charrnn.course.checks.check_saved_model (notebook 09's autograded part):
it judges the file a student hands in, on the held-out records of the
student's own data, and says what to look at when it fails."""

from __future__ import annotations

import pytest
import torch

import charrnn
from charrnn.course.checks import ExerciseError, check_saved_model

DATA = charrnn.DataConfig(seed=0)  # the embedded corpus, as notebook 09 runs it


def saved_run(path, steps: int, data: charrnn.DataConfig = DATA):
    corpora = charrnn.load_corpora(data)
    torch.manual_seed(0)
    model = charrnn.CharRNN(vocab_size=len(corpora.vocab), cell="rnn", embed_dim=16, hidden_size=64)
    config = charrnn.TrainConfig(steps=steps, lr=1e-2, eval_every=10**6, device="cpu")
    trainer = charrnn.Trainer(model, corpora.vocab, charrnn.WindowBatches(corpora.train, batch_size=32,
                                                                          seq_len=64, seed=0), config=config)
    trainer.fit(progress=False)
    trainer.save(path)
    return path


def test_a_trained_model_passes_and_prints_its_score(tmp_path, capsys):
    check_saved_model(saved_run(tmp_path / "m.pt", 100), DATA)
    out = capsys.readouterr().out
    assert out.startswith("✓ your saved model scores") and "below the bigram model's 3.7" in out


def test_an_untrained_model_is_sent_to_its_loss_curve(tmp_path):
    with pytest.raises(ExerciseError, match="not learned more than which character follows which") as e:
        check_saved_model(saved_run(tmp_path / "m.pt", 2), DATA)
    assert "loss curve" in str(e.value) and "learning rate" in str(e.value)


def test_a_missing_file_names_the_cell_that_saves_it(tmp_path):
    with pytest.raises(ExerciseError, match=r"no saved model at .*\(section 5\)"):
        check_saved_model(tmp_path / "never-saved.pt", DATA)


def test_a_file_that_is_not_a_model_says_so(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(ExerciseError, match="does not load as a charrnn model"):
        check_saved_model(path, DATA)


def test_a_model_of_other_data_is_refused(tmp_path):
    other = charrnn.DataConfig(seed=0, min_freq=50)  # a smaller vocabulary: rare characters become <unk>
    with pytest.raises(ExerciseError, match="vocabulary of .* tokens, but the data of section 1 gives"):
        check_saved_model(saved_run(tmp_path / "m.pt", 2, other), DATA)


def test_when_it_counts_the_embedded_corpus_scores_zero(tmp_path, monkeypatch):
    """Graded (nbgrader's hidden re-check sets common.GRADING), the
    homework must be a model of the student's own text."""
    from charrnn.course.checks import common

    path = saved_run(tmp_path / "m.pt", 2)
    monkeypatch.setattr(common, "GRADING", True)
    with pytest.raises(ExerciseError, match="embedded corpus; the homework is a model of text you chose"):
        check_saved_model(path, DATA)
