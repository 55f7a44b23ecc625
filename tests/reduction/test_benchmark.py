"""The logic of benchmarks/reduction.py on digits with a tiny budget (t-SNE on a subset)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import reduction  # noqa: E402


def test_one_small_run_fills_every_metric_and_the_goals(tmp_path):
    methods = ["vaekit", "pca"]
    table = reduction.run(["digits"], [2], methods, seed=0, mnist_train=0,
                          vae_kwargs={"max_iter": 3, "hidden_layer_sizes": (32,)}, umap_inverse_rows=0,
                          figures=tmp_path, log=lambda *_: None)
    rows = table["digits"]["2"]
    for m in methods:
        for key in ("trustworthiness", "knn_accuracy", "reconstruction_mse", "fit_seconds", "transform_seconds"):
            assert rows[m][key] is not None, (m, key)
    assert (tmp_path / "reduction_digits_2d.png").is_file()
    goals = reduction.goals(table)["digits/2"]
    assert set(goals) == {"better_than_pca_trustworthiness", "better_than_pca_knn_accuracy",
                          "better_than_pca_reconstruction_mse"}
    payload = {"metrics": {"results": table, "goals": reduction.goals(table), "wall_seconds": 1.0},
               "config": {"notes": ["a note"], "seed": 0}, "date": "today",
               "machine": {"cpu": "cpu", "cores": 2, "torch_threads": 1}, "versions": {"torch": "x"}}
    md = reduction.markdown(payload)
    assert "| digits | 2 | vaekit |" in md and "a note" in md


def test_peers_without_an_inverse_or_a_transform_are_reported_as_such():
    data = reduction.load_digits_data(0)
    data = {**data, "fit": data["fit"][:300], "eval": data["eval"][:300], "labels": data["labels"][:300],
            "new": data["new"][:500]}
    inputs = reduction.InputNeighborhoods(data["eval"])
    row, z = reduction.run_method("tsne", 2, data, inputs, 0, {}, 0)
    assert row["transform_seconds"] is None and row["reconstruction_mse"] is None and z.shape == (300, 2)
