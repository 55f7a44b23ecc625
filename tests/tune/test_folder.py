"""A study's --out folder belongs to one study (STUDY.json): another study, or files that
are not a study's, are refused before anything is written; the same study is recognised
however its paths are written."""

import json

import pytest

from tests.tune.test_study import SPACE, base
from vaekit.errors import ConfigError
from vaekit.tune import tune


def test_an_out_folder_belongs_to_one_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'runs' / 'tune.db'}"  # a database inside --out is fine
    (tmp_path / "runs").mkdir()
    tune("digits", base(SPACE), tmp_path / "runs", storage, "a", n_trials=1, iw_samples=5)
    assert json.loads((tmp_path / "runs" / "STUDY.json").read_text())["study"] == "a"
    with pytest.raises(ConfigError, match="holds the trials of study 'a'.*another --out"):
        tune("digits", base(SPACE), tmp_path / "runs", storage, "b", n_trials=1, iw_samples=5)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("not a study")
    with pytest.raises(ConfigError, match="not empty and is not this study's folder.*notes.txt"):
        tune("digits", base(SPACE), other, storage, "c", n_trials=1, iw_samples=5)
    assert (other / "notes.txt").read_text() == "not a study" and not (other / "STUDY.json").exists()


def test_the_same_study_is_recognised_however_its_paths_are_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tune("digits", base(SPACE), "runs", "sqlite:///t.db", "s", n_trials=1, iw_samples=5)
    # the same database by its absolute path, the same folder through a symlink
    (tmp_path / "link").symlink_to(tmp_path / "runs")
    assert tune("digits", base(SPACE), tmp_path / "link", f"sqlite:///{tmp_path / 't.db'}", "s", n_trials=2,
                iw_samples=5)["trials"] == 2
    # a relative URL from another folder is another database: refused, nothing overwritten
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    before = (tmp_path / "runs" / "trial_0000" / "model.safetensors").stat().st_mtime_ns
    with pytest.raises(ConfigError, match=f"holds the trials of study 's' in sqlite:///{tmp_path / 't.db'}"):
        tune("digits", base(SPACE), "../runs", "sqlite:///t.db", "s", n_trials=1, iw_samples=5)
    assert (tmp_path / "runs" / "trial_0000" / "model.safetensors").stat().st_mtime_ns == before
    assert not (tmp_path / "other" / "t.db").exists()


def test_a_folder_from_before_study_json_is_resumed_and_a_database_in_a_new_out_works(tmp_path):
    storage = f"sqlite:///{tmp_path / 'runs' / 'tune.db'}"
    tune("digits", base(SPACE), tmp_path / "runs", storage, "a", n_trials=1, iw_samples=5)  # --out did not exist
    (tmp_path / "runs" / "STUDY.json").unlink()
    (tmp_path / "runs" / ".DS_Store").write_text("")
    assert tune("digits", base(SPACE), tmp_path / "runs", storage, "a", n_trials=2, iw_samples=5)["trials"] == 2
    (tmp_path / "runs" / "STUDY.json").write_text("[1]")
    with pytest.raises(ConfigError, match="is not a study's record"):
        tune("digits", base(SPACE), tmp_path / "runs", storage, "a", n_trials=3, iw_samples=5)


def test_a_refused_command_leaves_no_study_behind(tmp_path):
    storage = f"sqlite:///{tmp_path / 't.db'}"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="not this study's folder"):
        tune("digits", base(SPACE), busy, storage, "r", n_trials=1, iw_samples=5)
    changed = base(SPACE)
    changed["train"]["epochs"] = 1  # the corrected command, with other fixed settings, is not blocked
    assert tune("digits", changed, tmp_path / "free", storage, "r", n_trials=1, iw_samples=5)["trials"] == 1
