"""`vaekit tune` on Optuna + SQLite: trials are run directories, studies resume, bad input is named."""

import json

import optuna
import pytest

from vaekit.cli import main
from vaekit.config import load_preset
from vaekit.errors import ConfigError
from vaekit.tune import compare, report, tune

FAST = {"data": {"name": "digits", "limit": 200}, "train": {"epochs": 2, "batch_size": 64, "patience": None}}


def base(search):
    cfg = load_preset("digits")
    cfg.update({"data": {**cfg["data"], **FAST["data"]}, "train": {**cfg["train"], **FAST["train"]}})
    cfg["model"] = {**cfg["model"], "hidden": [32]}
    cfg["search"] = search
    return cfg


SPACE = {"model.latent_dim": {"type": "int", "low": 2, "high": 6}, "train.lr": {"type": "float", "low": 1e-3, "high": 5e-3, "log": True}}


def test_a_study_runs_resumes_and_copies_the_best_run(tmp_path):
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    out = tmp_path / "runs"
    first = tune("digits", base(SPACE), out, storage, "s", n_trials=2, iw_samples=5)
    assert first["states"]["complete"] == 2 and first["best_value"] > 0
    best = out / "best"
    assert (best / "model.safetensors").is_file() and (best / "TRIAL").read_text().strip() == str(first["best_trial"])
    second = tune("digits", base(SPACE), out, storage, "s", n_trials=3, iw_samples=5)
    assert second["trials"] == 3  # resumed: one more trial, not three
    assert sorted(p.name for p in out.glob("trial_*")) == ["trial_0000", "trial_0001", "trial_0002"]
    text = report(storage, "s", tmp_path / "report")
    assert text.count("| complete |") == 3 and "model.latent_dim" in text
    assert (tmp_path / "report" / "optimization_history.png").is_file()
    table = compare([out / "trial_0000", out / "trial_0001"])
    assert "model.latent_dim" in table or "train.lr" in table


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tmp_path):
    space = {"train.lr": {"type": "categorical", "choices": [1e30, 0.002]}}
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    tune("digits", base(space), tmp_path / "runs", storage, "f", n_trials=2, iw_samples=5)
    study = optuna.load_study(study_name="f", storage=storage)
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.FAIL in states and optuna.trial.TrialState.COMPLETE in states
    failed = next(t for t in study.trials if t.state == optuna.trial.TrialState.FAIL)
    assert "non-finite" in failed.user_attrs["error"]


@pytest.mark.parametrize("space, message", [
    ({"model.no_such_key": {"type": "int", "low": 1, "high": 2}}, "unknown parameter 'model.no_such_key'"),
    ({"train.lr": {"type": "float", "low": 0.01, "high": 0.001}}, "empty range"),
    ({"train.lr": {"type": "float", "low": -1.0, "high": 0.001}}, "not a valid setting"),
    ({"model.hidden": {"type": "categorical", "choices": []}}, "non-empty 'choices'"),
    ({}, "no 'search:' section"),
])
def test_bad_search_spaces_are_refused(tmp_path, space, message):
    with pytest.raises(ConfigError, match=message):
        tune("digits", base(space), tmp_path, f"sqlite:///{tmp_path / 't.db'}", "x", n_trials=1)


def test_unopenable_storage_and_changed_space(tmp_path):
    with pytest.raises(ConfigError, match="cannot open storage"):
        tune("digits", base(SPACE), tmp_path, "sqlite:////no/such/dir/t.db", "x", n_trials=1)
    with pytest.raises(ConfigError, match="cannot open storage"):
        tune("digits", base(SPACE), tmp_path, "nosuchdb://x", "x", n_trials=1)
    storage = f"sqlite:///{tmp_path / 't.db'}"
    tune("digits", base(SPACE), tmp_path / "a", storage, "same", n_trials=1, iw_samples=5)
    other = {"model.latent_dim": {"type": "int", "low": 2, "high": 3}}
    with pytest.raises(ConfigError, match="different search space.*--study"):
        tune("digits", base(other), tmp_path / "b", storage, "same", n_trials=1)


def test_cli_report_and_errors(tmp_path, capsys):
    assert main(["tune", "report", "--storage", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert main(["tune", "report", "--storage", f"sqlite:///{tmp_path / 'none.db'}", "--study", "zz"]) == 2
    assert "no study 'zz'" in capsys.readouterr().err


def test_a_resumed_study_draws_new_settings(tmp_path):
    from vaekit.config import SearchParam
    from vaekit.tune.study import open_study

    space = {k: SearchParam(**v) for k, v in SPACE.items()}
    storage = f"sqlite:///{tmp_path / 'r.db'}"
    seen = []
    for _ in range(3):  # three runs of the same command, one trial each
        study = open_study(storage, "again", space, "digits")
        trial = study.ask()
        seen.append((trial.suggest_int("model.latent_dim", 2, 6), trial.suggest_float("train.lr", 1e-3, 5e-3, log=True)))
        study.tell(trial, 1.0)
    assert len(set(seen)) == 3, seen


def test_ctrl_c_stops_the_study_and_the_trial_runs_again_on_resuming(tmp_path, monkeypatch, capsys):
    from vaekit.errors import TrainingInterrupted
    from vaekit.tune.objectives import APPLICATIONS

    original = APPLICATIONS["images"].train
    calls = []

    def interrupted_second(self, settings, run_dir, callbacks, command):
        calls.append(run_dir)
        if len(calls) == 2:
            raise TrainingInterrupted("interrupted; continue with --resume")
        return original(self, settings, run_dir, callbacks, command)

    monkeypatch.setattr(APPLICATIONS["images"], "train", interrupted_second)
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    with pytest.raises(TrainingInterrupted, match="stopped with 1 finished trial.*the settings of trial 1, which it "
                                                  "stopped, run first when the same command is run again"):
        tune("digits", base(SPACE), tmp_path / "runs", storage, "c", n_trials=3, iw_samples=5)
    assert len(calls) == 2  # the study did not go on with a third trial
    study = optuna.load_study(study_name="c", storage=storage)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert study.trials[1].user_attrs["error"] == "interrupted (Ctrl-C)"
    tune("digits", base(SPACE), tmp_path / "runs", storage, "c", n_trials=3, iw_samples=5)
    study = optuna.load_study(study_name="c", storage=storage)
    assert study.trials[2].params == study.trials[1].params  # the interrupted settings ran first
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 3


def test_the_cli_exits_130_on_ctrl_c(tmp_path, monkeypatch, capsys):
    from vaekit.errors import TrainingInterrupted
    from vaekit.tune.objectives import APPLICATIONS

    def interrupted(*_a, **_k):
        raise TrainingInterrupted("interrupted; continue with --resume")

    monkeypatch.setattr(APPLICATIONS["images"], "train", interrupted)
    preset = tmp_path / "p.yaml"
    preset.write_text(json.dumps(base(SPACE)))  # JSON is YAML
    code = main(["tune", str(preset), "--storage", f"sqlite:///{tmp_path / 't.db'}", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 130 and "settings of trial 0" in err and "--resume" not in err


def test_resuming_with_other_fixed_settings_or_setting_a_searched_key_is_refused(tmp_path):
    storage = f"sqlite:///{tmp_path / 't.db'}"
    tune("digits", base(SPACE), tmp_path / "runs", storage, "s", n_trials=1, iw_samples=5)
    changed = base(SPACE)
    changed["train"]["epochs"] = 3
    with pytest.raises(ConfigError, match=r"other fixed settings \(train.epochs: 2 then, 3 now\).*--study NEW_NAME"):
        tune("digits", changed, tmp_path / "runs", storage, "s", n_trials=2, iw_samples=5)
    with pytest.raises(ConfigError, match="--set train.lr fixes a setting the study searches"):
        tune("digits", base(SPACE), tmp_path / "runs2", storage, "t", n_trials=1, fixed=["train.lr"])


@pytest.mark.parametrize("space, message", [
    ({"model.latent_dim": {"type": "float", "low": 2, "high": 6}}, "model.latent_dim takes whole numbers only: give "
                                                                    "it type: int"),
    ({"model.latent_dim": {"type": "int", "low": 2.5, "high": 6}}, "^search: model.latent_dim: int parameter needs a "
                                                                   "whole-number low, got 2.5$"),
    ({"model.latent_dim": {"type": "int", "low": True, "high": 6}}, "must be a number, not true"),
    ({"data.name": {"type": "categorical", "choices": ["digits", "mnist"]}}, "data.name chooses the data"),
    ({"data.val_size": {"type": "float", "low": 0.1, "high": 0.2}}, "data.val_size chooses the data or the validation"),
])
def test_search_spaces_that_cannot_run_are_refused_before_the_first_trial(tmp_path, space, message):
    with pytest.raises(ConfigError, match=message):
        tune("digits", base(space), tmp_path / "o", f"sqlite:///{tmp_path / 't.db'}", "x", n_trials=1)
    assert not (tmp_path / "o").exists()


def test_a_study_where_no_trial_completes_is_an_error(tmp_path):
    from vaekit.errors import VaekitError

    space = {"train.lr": {"type": "categorical", "choices": [1e30]}}
    with pytest.raises(VaekitError, match="no trial of study 'f' completed \\(2 failed, 0 pruned\\).*non-finite"):
        tune("digits", base(space), tmp_path / "runs", f"sqlite:///{tmp_path / 't.db'}", "f", n_trials=2, iw_samples=5)


def test_ctrl_c_outside_training_is_recorded_and_queued_too(tmp_path, monkeypatch):
    from vaekit.errors import TrainingInterrupted
    from vaekit.tune.objectives import APPLICATIONS

    def ctrl_c_in_evaluation(self, run_dir):
        raise KeyboardInterrupt  # what SIGINT raises outside the trainer's loop

    monkeypatch.setattr(APPLICATIONS["images"], "validation_metrics", ctrl_c_in_evaluation)
    storage = f"sqlite:///{tmp_path / 't.db'}"
    with pytest.raises(TrainingInterrupted, match="stopped with 0 finished trial.*settings of trial 0"):
        tune("digits", base(SPACE), tmp_path / "runs", storage, "k", n_trials=2, iw_samples=5)
    trials = optuna.load_study(study_name="k", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert trials[1].system_attrs["fixed_params"] == trials[0].params and trials[0].user_attrs["error"] == "interrupted (Ctrl-C)"


def test_worker_processes_draw_their_own_settings(tmp_path):
    from vaekit.config import SearchParam
    from vaekit.tune.study import open_study

    space = {k: SearchParam(**v) for k, v in SPACE.items()}

    def first_draw(storage, worker, told):
        study = open_study(storage, "w", space, "digits", seed=0)
        for _ in range(told):
            trial = study.ask()
            trial.suggest_int("model.latent_dim", 2, 6), trial.suggest_float("train.lr", 1e-3, 5e-3, log=True)
            study.tell(trial, 1.0)
        study = open_study(storage, "w", space, "digits", seed=0, worker=worker)
        trial = study.ask()
        return trial.suggest_int("model.latent_dim", 2, 6), trial.suggest_float("train.lr", 1e-3, 5e-3, log=True)

    # worker 0 after one trial and worker 1 before any: seeded alike before, so the same settings
    assert first_draw(f"sqlite:///{tmp_path / 'a.db'}", 0, 1) != first_draw(f"sqlite:///{tmp_path / 'b.db'}", 1, 0)
