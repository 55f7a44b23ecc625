"""Each application's objective in `vaekit tune`: recommend (NDCG@100), anomaly (ROC-AUC), user functions."""

import json
import sys

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from vaekit.cli import main
from vaekit.config import build_config, load_preset
from vaekit.errors import ConfigError, VaekitError
from vaekit.tune import application_for, compare, report, resolve_objective, tune


@pytest.fixture(scope="module")
def ratings(tmp_path_factory):
    """Two taste groups of users over 40 items: a model that uses z ranks the held-out items well."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(120):
        base = 0 if u % 2 == 0 else 20
        rows += [(f"u{u}", f"m{base + i}", 5) for i in rng.choice(20, 10, replace=False)]
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    pd.DataFrame(rows, columns=["user", "item", "rating"]).to_csv(path, index=False)
    return path


def recommend_preset(path, search=None):
    return {"application": "recommend",
            "data": {"path": str(path), "validation_users": 20, "min_rating": 1},
            "params": {"epochs": 3, "batch_size": 32, "hidden": [16], "latent_dim": 4},
            "search": search or {"params.latent_dim": {"type": "int", "low": 2, "high": 8},
                                 "params.dropout": {"type": "float", "low": 0.1, "high": 0.6}}}


@pytest.fixture(scope="module")
def labelled_table(tmp_path_factory):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    y = np.zeros(300, int)
    y[:20] = 1
    X[:20] += 5.0  # the anomalies are far out
    df = pd.DataFrame(X, columns=list("abcd"))
    df["label"] = y
    df["id"] = np.arange(300)
    path = tmp_path_factory.mktemp("data") / "table.csv"
    df.to_csv(path, index=False)
    return path


def anomaly_preset(path, search=None):
    return {"application": "anomaly",
            "data": {"path": str(path), "label_col": "label", "ignore": ["id"], "val_size": 0.3},
            "params": {"max_steps": 40, "contamination": 0.1},
            "search": search or {"params.latent_dim": {"type": "int", "low": 2, "high": 4},
                                 "params.beta": {"type": "float", "low": 0.5, "high": 2.0}}}


def test_recommend_study_maximizes_ndcg_and_prunes_per_epoch(ratings, tmp_path):
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    out = tmp_path / "runs"
    result = tune("rec", recommend_preset(ratings), out, storage, "rec", n_trials=2)
    assert result["metric"] == "val_ndcg_100" and result["direction"] == "maximize"
    assert result["states"]["complete"] == 2 and 0.0 < result["best_value"] <= 1.0
    study = optuna.load_study(study_name="rec", storage=storage)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    trial = study.trials[0]
    assert len(trial.intermediate_values) == 3  # one NDCG@100 per epoch, for the pruner
    assert trial.value == pytest.approx(trial.user_attrs["val_ndcg_100"])
    saved = json.loads((out / "trial_0000" / "objective.json").read_text())
    assert saved["application"] == "recommend" and set(saved["metrics"]) >= {"val_recall_20", "val_ndcg_100"}
    assert (out / "best" / "recommender.json").is_file()
    text = report(storage, "rec")
    assert "objective: val_ndcg_100, higher is better" in text
    table = compare([out / "trial_0000", out / "trial_0001"])
    assert "params.latent_dim" in table and "val_ndcg_100" in table


def test_anomaly_study_uses_validation_roc_auc(labelled_table, tmp_path):
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    result = tune("an", anomaly_preset(labelled_table), tmp_path / "runs", storage, "an", n_trials=2,
                  metric="val_average_precision")
    assert result["metric"] == "val_average_precision" and result["states"]["complete"] == 2
    study = optuna.load_study(study_name="an", storage=storage)
    for t in study.trials:
        assert 0.5 < t.user_attrs["val_roc_auc"] <= 1.0  # far-out anomalies are found
        assert t.value == pytest.approx(t.user_attrs["val_average_precision"])
    assert (tmp_path / "runs" / "best" / "detector.json").is_file()


def test_a_user_metric_function_gets_the_run_directory(ratings, tmp_path, monkeypatch):
    module = tmp_path / "my_metric.py"
    module.write_text("import json, pathlib\n"
                      "def recall(run_dir):\n"
                      "    return json.loads((pathlib.Path(run_dir) / 'objective.json').read_text())"
                      "['metrics']['val_recall_20']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    result = tune("rec", recommend_preset(ratings), tmp_path / "runs", storage, "u", n_trials=1,
                  metric="my_metric:recall", direction="maximize")
    study = optuna.load_study(study_name="u", storage=storage)
    assert result["metric"] == "my_metric:recall"
    assert study.trials[0].value == pytest.approx(study.trials[0].user_attrs["val_recall_20"])
    sys.modules.pop("my_metric", None)


def test_a_failing_user_metric_fails_the_trial_only(ratings, tmp_path, monkeypatch):
    (tmp_path / "bad_metric.py").write_text("def f(run_dir):\n    raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    with pytest.raises(VaekitError, match="no trial of study 'b' completed.*boom"):  # its only trial failed
        tune("rec", recommend_preset(ratings), tmp_path / "runs", storage, "b", n_trials=1,
             metric="bad_metric:f", direction="minimize")
    trial = optuna.load_study(study_name="b", storage=storage).trials[0]
    assert trial.state == optuna.trial.TrialState.FAIL and "boom" in trial.user_attrs["error"]
    sys.modules.pop("bad_metric", None)


@pytest.mark.parametrize("metric, direction, message", [
    ("val_auc", None, "unknown metric 'val_auc' for the recommend application"),
    ("val_ndcg_100", "minimize", "val_ndcg_100 is to maximize"),
    ("no_such_module_x:f", "maximize", "cannot import module 'no_such_module_x'"),
    ("json:no_such_function", "maximize", "module 'json' has no 'no_such_function'"),
    ("json:loads", None, "give --direction minimize or maximize"),
])
def test_bad_metrics_are_refused(ratings, metric, direction, message):
    app = application_for(recommend_preset(ratings))
    with pytest.raises(ConfigError, match=message):
        resolve_objective(app, metric, direction)


@pytest.mark.parametrize("change, message", [
    (lambda p: p["search"].update({"params.nope": {"type": "int", "low": 1, "high": 2}}),
     "unknown parameter 'params.nope'"),
    (lambda p: p["search"].update({"params.dropout": {"type": "float", "low": 0.5, "high": 1.5}}),
     "dropout must be in"),
    (lambda p: p["data"].pop("path"), "exactly one of 'name'"),
    (lambda p: p["data"].update({"colour": 1}), "unknown key 'colour'"),
    (lambda p: p.update({"model": {}}), "unknown section"),
    (lambda p: p.update({"application": "poetry"}), "unknown application 'poetry'"),
])
def test_bad_recommend_presets_are_refused(ratings, tmp_path, change, message):
    preset = recommend_preset(ratings)
    change(preset)
    with pytest.raises(ConfigError, match=message):
        tune("rec", preset, tmp_path, f"sqlite:///{tmp_path / 't.db'}", "x", n_trials=1)


def test_anomaly_data_without_labels_is_refused(labelled_table, tmp_path):
    preset = anomaly_preset(labelled_table)
    preset["data"].pop("label_col")
    preset["data"]["ignore"] = ["id", "label"]
    with pytest.raises(ConfigError, match="has no labels; name the 'label_col'"):
        tune("an", preset, tmp_path, f"sqlite:///{tmp_path / 't.db'}", "x", n_trials=1)


def test_a_study_resumed_with_another_metric_is_refused(labelled_table, tmp_path):
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    tune("an", anomaly_preset(labelled_table), tmp_path / "a", storage, "same", n_trials=1)
    with pytest.raises(ConfigError, match="another objective.*--study"):
        tune("an", anomaly_preset(labelled_table), tmp_path / "b", storage, "same", n_trials=1,
             metric="val_average_precision")


def test_bundled_application_presets_are_valid_and_not_trainable_as_images():
    for name in ("ml-100k", "adbench-cardio", "ptb", "moses", "zinc250k"):
        preset = load_preset(name)
        app = application_for(preset)
        from vaekit.tune.study import validate_space

        validate_space(app.space(), app)
        with pytest.raises(ConfigError, match=f"for the {preset['application']} application"):
            build_config(preset)


def test_cli_tune_with_a_yaml_preset_and_metric(labelled_table, tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(anomaly_preset(labelled_table)))
    storage = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["tune", str(path), "--trials", "1", "--storage", storage, "--out", str(tmp_path / "o"),
                 "--metric", "val_roc_auc"]) == 0
    assert '"metric": "val_roc_auc"' in capsys.readouterr().out
    assert main(["tune", str(path), "--trials", "1", "--storage", storage, "--metric", "val_nll"]) == 2
    assert "unknown metric 'val_nll' for the anomaly application" in capsys.readouterr().err


def test_text_study_minimizes_validation_iw_nll(tmp_path):
    import random

    rng = random.Random(0)
    words = ["the cat", "a dog", "my friend"], ["sees", "likes"], ["the ball", "a fish"]
    lines = [" ".join(rng.choice(w) for w in words) for _ in range(200)]
    (tmp_path / "s.txt").write_text("\n".join(lines) + "\n")
    preset = load_preset("text")
    preset["data"] = {**preset["data"], "path": str(tmp_path / "s.txt"), "min_count": 1, "val_size": 0.1}
    preset["model"] = {**preset["model"], "hidden": 16, "embedding_dim": 8}
    preset["train"] = {**preset["train"], "epochs": 2, "batch_size": 32}
    preset["search"] = {"model.latent_dim": {"type": "int", "low": 2, "high": 4},
                        "model.word_dropout": {"type": "float", "low": 0.0, "high": 0.5}}
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    result = tune("text", preset, tmp_path / "runs", storage, "t", n_trials=2, iw_samples=5)
    assert result["metric"] == "val_iw_nll" and result["direction"] == "minimize"
    assert result["states"]["complete"] == 2 and result["best_value"] > 0
    assert (tmp_path / "runs" / "best" / "vocab.json").is_file()


def test_molecule_study_maximizes_validity_times_novelty(tmp_path):
    from tests.molecules.conftest import nci_smiles

    (tmp_path / "lib.smi").write_text("\n".join(nci_smiles(200)) + "\n")
    preset = load_preset("molecules")
    preset["data"] = {**preset["data"], "path": str(tmp_path / "lib.smi"), "max_len": 60, "properties": ["qed"]}
    preset["model"] = {**preset["model"], "hidden": 16, "embedding_dim": 8, "property_hidden": 8}
    preset["train"] = {**preset["train"], "epochs": 1, "batch_size": 32}
    preset["eval"] = {**preset["eval"], "max_len": 70}
    preset["search"] = {"model.latent_dim": {"type": "int", "low": 2, "high": 4}}
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    result = tune("molecules", preset, tmp_path / "runs", storage, "m", n_trials=2)
    assert result["metric"] == "val_valid_novel" and result["direction"] == "maximize"
    assert result["states"]["complete"] == 2 and 0 <= result["best_value"] <= 1
    measured = json.loads(next((tmp_path / "runs").glob("trial_*/objective.json")).read_text())["metrics"]
    assert measured["val_valid_novel"] == pytest.approx(measured["val_valid"] * measured["val_novelty"])
    assert 0 <= measured["val_unique"] <= 1 and measured["val_loss"] > 0
    loss = tune("molecules", preset, tmp_path / "runs2", f"sqlite:///{tmp_path / 'l.db'}", "l", n_trials=1,
                metric="val_loss")
    assert loss["direction"] == "minimize"
    assert (tmp_path / "runs" / "best" / "vocab.json").is_file()
