"""The score route of a detector fitted by `vaekit anomaly fit` on a table with a constant
column, text and numeric-code categories: the detector's own scores (with the draws shared
by every row), which `vaekit anomaly score` gives up to Monte-Carlo noise, nulls included."""

import numpy as np
import pandas as pd
import pytest

from tests.serve.conftest import LOCAL
from vaekit.cli import main

ROWS = [
    {"amount": 912.5, "hour": 3, "const": 1},  # kind and zone absent: missing
    {"amount": 80.0, "hour": 12, "const": 1.0, "kind": "card", "zone": 2},
    {"amount": None, "hour": 5, "const": 1.0, "kind": "cash", "zone": 1},
    {"amount": 50.0, "hour": 7, "const": 2.0, "kind": None, "zone": 3},  # const changed
    {"amount": 80.0, "hour": None, "const": None, "kind": "wire", "zone": None},
    {"amount": 80.0, "hour": 12, "const": 1, "kind": "crypto", "zone": 9},  # never seen in training
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("anomaly-constant")
    rng = np.random.default_rng(0)
    n = 300
    pd.DataFrame({"amount": rng.gamma(2.0, 50.0, n).round(2), "hour": rng.integers(0, 24, n), "const": 1.0,
                  "kind": rng.choice(["card", "cash", "wire"], n), "zone": rng.integers(1, 4, n)}
                 ).to_csv(root / "train.csv", index=False)
    assert main(["anomaly", "fit", str(root / "train.csv"), "--out", str(root / "numc"), "--categorical", "kind,zone",
                 "--max-steps", "20", "--no-progress"]) == 0
    return root / "numc"


@pytest.fixture(scope="module")
def client(run):
    from fastapi.testclient import TestClient

    from vaekit.serve import ServeSettings, build

    with TestClient(build([f"numc={run}"], ServeSettings()), raise_server_exceptions=False, base_url=LOCAL) as c:
        yield c


def score(client, rows, top_k=2):
    r = client.post("/v1/models/numc/score", json={"rows": rows, "top_k": top_k})
    assert r.status_code == 200, r.text
    return r.json()


def test_served_scores_are_the_detectors_scores(client, run, tmp_path):
    from vaekit.anomaly import VAEDetector

    served = score(client, ROWS)
    det = VAEDetector.load(run)
    enc = det.preprocessor_.transform(pd.DataFrame(ROWS))
    shared, _ = det.score_encoded(enc, explain=True, shared_noise=True)
    np.testing.assert_allclose(served["scores"], shared, rtol=1e-6)  # the detector's scoring, draws shared
    assert served["labels"] == (shared > det.threshold_).astype(int).tolist()
    pd.DataFrame(ROWS).to_csv(tmp_path / "rows.csv", index=False)
    assert main(["anomaly", "score", str(run), str(tmp_path / "rows.csv"), "--out", str(tmp_path / "s.csv"),
                 "--top", "2"]) == 0
    cli = pd.read_csv(tmp_path / "s.csv")  # draws of its own for each row: the same up to Monte-Carlo noise
    np.testing.assert_allclose(cli["score"], det.decision_function(pd.DataFrame(ROWS)), rtol=1e-6)
    np.testing.assert_allclose(served["scores"], cli["score"], rtol=0.1)
    assert served["scores"][3] > det.threshold_ and served["top_features"][3][0]["feature"] == "const"
    assert served["notes"] == ["7 missing value(s) left out of the likelihood",
                               "2 categorical value(s) never seen in training (they raise the score)",
                               "1 value(s) of columns constant in training changed (they raise the score): const"]


def test_a_row_scores_the_same_alone_and_in_a_batch(client):
    together = score(client, ROWS)["scores"]
    alone = [score(client, [row])["scores"][0] for row in ROWS]
    np.testing.assert_allclose(alone, together, rtol=1e-6)


def test_a_row_with_only_the_constant_column_is_refused(client):
    r = client.post("/v1/models/numc/score", json={"rows": [{"const": 1.0}]})
    assert r.status_code == 422, r.text
