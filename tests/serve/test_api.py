"""The HTTP API on tiny trained models: every operation, its agreement with the Python
API it wraps, and clear 4xx answers (never 500, never a traceback) for bad input."""

import numpy as np
import pytest
import torch

from tests.serve.conftest import LOCAL
from vaekit.core import VAE


def post(client, path, body=None, **kw):
    return client.post(path, json=body, **kw) if body is not None else client.post(path, **kw)


def assert_clear_error(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in r.text and 'File "' not in r.text


def test_models_are_listed_with_metadata_and_limits(client):
    r = client.get("/v1/models")
    assert r.status_code == 200
    models = {m["name"]: m for m in r.json()["models"]}
    assert {k: m["kind"] for k, m in models.items()} == {"digits": "image", "fraud": "anomaly",
                                                         "shop": "recommender", "embed": "reduction",
                                                         "words": "text"}
    assert set(models["words"]["operations"]) == {"encode", "decode", "generate", "reconstruct", "interpolate"}
    assert set(models["digits"]["operations"]) >= {"encode", "decode", "sample", "reconstruct", "interpolate",
                                                    "latent-map", "examples"}
    assert models["fraud"]["operations"] == ["score"] and models["shop"]["operations"] == ["recommend"]
    assert "transform" in models["embed"]["operations"]
    assert models["digits"]["info"]["data_shape"] == [1, 8, 8] and models["digits"]["limits"]["max_rows"] == 64
    kind = client.get("/v1/models/fraud").json()["info"]["columns"][2]
    assert kind["type"] == "categorical" and sorted(kind["categories"]) == ["card", "cash", "wire"]
    assert client.get("/healthz").json() == {"status": "ok"} and client.get("/readyz").json() == {"status": "ready"}


def test_image_operations_match_the_model(client, runs):
    vae = VAE.from_pretrained(runs["digits"])
    x = np.random.default_rng(0).random((3, 64)).astype(np.float32)
    enc = post(client, "/v1/models/digits/encode", {"x": x.tolist()}).json()
    q = vae.encode(torch.from_numpy(x).reshape(3, 1, 8, 8))
    np.testing.assert_allclose(enc["mean"], q.mean.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(enc["log_var"], q.log_var.detach().numpy(), atol=1e-5)
    dec = post(client, "/v1/models/digits/decode", {"z": enc["mean"]}).json()
    assert dec["shape"] == [1, 8, 8]
    np.testing.assert_allclose(dec["x"], vae.generate(q.mean).reshape(3, -1).numpy(), atol=1e-5)
    rec = post(client, "/v1/models/digits/reconstruct", {"x": x.tolist()}).json()
    np.testing.assert_allclose(rec["x"], dec["x"], atol=1e-5)
    a = post(client, "/v1/models/digits/sample", {"n": 5, "seed": 3}).json()
    b = post(client, "/v1/models/digits/sample", {"n": 5, "seed": 3}).json()
    assert a == b and len(a["x"]) == 5 and len(a["z"][0]) == 4 and a["seed"] == 3
    path = post(client, "/v1/models/digits/interpolate", {"a": x[0].tolist(), "b": x[1].tolist(), "steps": 5}).json()
    assert len(path["x"]) == 5 and path["t"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    np.testing.assert_allclose(path["x"][0], dec["x"][0], atol=1e-5)
    np.testing.assert_allclose(path["x"][-1], dec["x"][1], atol=1e-5)
    ref = vae.interpolate(torch.from_numpy(x[0]).reshape(1, 8, 8), torch.from_numpy(x[1]).reshape(1, 8, 8), 5)
    np.testing.assert_allclose(path["x"], ref.reshape(5, -1).numpy(), atol=1e-5)


def test_latent_map_and_examples(client):
    m = client.get("/v1/models/digits/latent-map").json()
    assert len(m["points"]) == len(m["labels"]) > 100 and len(m["center"]) == 4 and len(m["basis"]) == 2
    basis = np.asarray(m["basis"])
    np.testing.assert_allclose(basis @ basis.T, np.eye(2), atol=1e-6)  # orthonormal principal axes
    ex = client.get("/v1/models/digits/examples").json()
    assert len(ex["x"]) == 16 and len(ex["x"][0]) == 64 and ex["shape"] == [1, 8, 8]


def test_anomaly_scores_do_not_depend_on_batching(client, runs):
    from vaekit.anomaly import VAEDetector

    det = VAEDetector.load(runs["fraud"])
    rows = runs["table"].head(20).to_dict(orient="records")
    rows[3]["amount"] = 10_000.0
    together = post(client, "/v1/models/fraud/score", {"rows": rows, "top_k": 2}).json()
    alone = [post(client, "/v1/models/fraud/score", {"rows": [r]}).json()["scores"][0] for r in rows]
    np.testing.assert_allclose(together["scores"], alone, rtol=1e-5)
    assert together["labels"][3] == 1 and together["top_features"][3][0]["feature"] == "amount"
    assert len(together["top_features"][0]) == 2 and together["threshold"] == pytest.approx(det.threshold_)
    reference = det.decision_function(runs["table"].head(20).assign(amount=[r["amount"] for r in rows]))
    assert np.corrcoef(reference, together["scores"])[0, 1] > 0.99  # same score up to Monte-Carlo noise
    odd = post(client, "/v1/models/fraud/score", {"rows": [{"amount": None, "hour": 3, "kind": "crypto"}]}).json()
    assert any("missing" in n for n in odd["notes"]) and any("never seen" in n for n in odd["notes"])
    text = post(client, "/v1/models/fraud/score", {"rows": [{"kind": ""}, {"kind": "NA"}]}).json()
    assert len(text["scores"]) == 2 and "2 categorical value(s) never seen" in " ".join(text["notes"])


def test_an_extreme_row_is_flagged_by_the_right_column(client):
    r = client.post("/v1/models/fraud/score", json={"rows": [{"amount": 100.0, "hour": -999999999999.0, "kind": "cash"},
                                                             {"amount": 101.0, "hour": 3.0, "kind": "cash"}]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["labels"][0] == 1 and out["scores"][0] > out["scores"][1] and out["probability"][0] == 1.0
    assert out["top_features"][0][0]["feature"] == "hour"


def test_a_row_that_overflows_the_model_is_maximally_abnormal(runs, monkeypatch):
    from vaekit.serve.anomaly import load_anomaly_model
    from vaekit.serve.settings import ServeSettings

    op = load_anomaly_model("fraud", runs["fraud"], ServeSettings()).operations["score"]
    scorer = op.run.__self__
    real = scorer._score

    def overflowing(*args, **kwargs):  # what a float32 overflow in the encoder produces
        scores, resid = real(*args, **kwargs)
        scores[0], resid[0] = np.inf, np.nan
        return scores, resid

    monkeypatch.setattr(scorer, "_score", overflowing)
    req = op.request.model_validate({"rows": [{"amount": 100.0, "hour": 3e11, "kind": "cash"},
                                              {"amount": 101.0, "hour": 3.0, "kind": "cash"}]})
    out = op.run([req])[0]
    assert out["scores"][0] == np.finfo(np.float64).max and out["labels"][0] == 1
    assert out["top_features"][0][0]["feature"] == "hour" and "1 row(s)" in " ".join(out["notes"])
    assert np.isfinite(out["scores"][1])


def test_integral_numbers_count_as_integers(client):
    assert client.post("/v1/models/digits/sample", json={"n": 3.0, "seed": 7.0}).json()["seed"] == 7
    assert client.post("/v1/models/digits/sample", json={"n": 2.5}).status_code == 422


def test_recommendations_match_the_recommender(client, runs):
    from vaekit.recommend import MultVAERecommender

    rec = MultVAERecommender.load(runs["shop"])
    for history in (["i0", "i2", "i4"], ["i20", "i21"], []):
        got = post(client, "/v1/models/shop/recommend", {"history": history + ["nope"], "k": 5}).json()
        want = rec.recommend(history + ["nope"], k=5)
        assert got["items"] == want.items and got["unknown"] == ["nope"]
        np.testing.assert_allclose(got["scores"], want.scores, rtol=1e-5)
    many = post(client, "/v1/models/shop/recommend", {"history": [f"i{j}" for j in range(27)], "k": 10}).json()
    assert len(many["items"]) == 3 and "only 3" in many["note"]


def test_reduction_matches_the_transformer(client, runs):
    from vaekit.reduction import VAETransformer

    est = VAETransformer.load(runs["embed"])
    x = np.random.default_rng(1).random((4, 64))
    z = post(client, "/v1/models/embed/transform", {"x": x.tolist()}).json()["z"]
    np.testing.assert_allclose(z, est.transform(x), atol=1e-5)
    back = post(client, "/v1/models/embed/decode", {"z": z}).json()["x"]
    np.testing.assert_allclose(back, est.inverse_transform(np.asarray(z)), atol=1e-4)


ROW = [0.5] * 64
BAD_REQUESTS = [
    ("/v1/models/digits/encode", {"x": [[0.5] * 63]}, 422, "64"),
    ("/v1/models/digits/encode", {"x": []}, 422, "at least 1"),
    ("/v1/models/digits/encode", {"x": [ROW] * 65}, 422, "at most 64"),
    ("/v1/models/digits/encode", {"x": [["a"] * 64]}, 422, "number"),
    ("/v1/models/digits/encode", {"x": [[2.0] * 64]}, 422, "less than or equal to 1"),
    ("/v1/models/digits/encode", {"x": ROW}, 422, "array"),
    ("/v1/models/digits/encode", {"x": [ROW], "extra": 1}, 422, "extra"),
    ("/v1/models/digits/encode", [1, 2], 422, "object"),
    ("/v1/models/digits/decode", {"z": [[0.0] * 5]}, 422, "4"),
    ("/v1/models/digits/decode", {"z": [[1e9] * 4]}, 422, "1000"),
    ("/v1/models/digits/sample", {"n": 65}, 422, "64"),
    ("/v1/models/digits/sample", {"n": 0}, 422, "greater than or equal to 1"),
    ("/v1/models/digits/sample", {"n": 2, "seed": -1}, 422, "seed"),
    ("/v1/models/digits/interpolate", {"a": ROW, "b": ROW, "steps": 17}, 422, "16"),
    ("/v1/models/digits/interpolate", {"a": ROW, "b": ROW, "steps": 1}, 422, "2"),
    ("/v1/models/fraud/score", {"rows": [{"amount": "lots"}]}, 422, "amount"),
    ("/v1/models/fraud/score", {"rows": [{"amount": 1, "colour": "red"}]}, 422, "colour"),
    ("/v1/models/fraud/score", {"rows": [{}]}, 422, "needs a value"),
    ("/v1/models/fraud/score", {"rows": [{"amount": None, "hour": None}]}, 422, "needs a value"),
    ("/v1/models/digits/sample", {"n": 2, "seed": False}, 422, "seed"),
    ("/v1/models/digits/decode", {"z": [[False, 0.0, 0.0, 0.0]]}, 422, "number"),
    ("/v1/models/shop/recommend", {"history": [], "exclude_seen": 0}, 422, "boolean"),
    ("/v1/models/shop/recommend", {"history": [1, 2]}, 422, "string"),
    ("/v1/models/shop/recommend", {"history": ["i1"] * 3000}, 422, "at most"),
    ("/v1/models/shop/recommend", {"history": ["i1"], "k": 31}, 422, "30"),
    ("/v1/models/embed/transform", {"x": [[0.1] * 10]}, 422, "64"),
]


@pytest.mark.parametrize("path,body,status,needle", BAD_REQUESTS)
def test_bad_input_gets_a_clear_4xx(client, path, body, status, needle):
    r = client.post(path, json=body)
    assert_clear_error(r, status)
    assert needle in r.text


@pytest.mark.parametrize("raw", [b'{"x": [[NaN' + b", 0.5" * 63 + b"]]}", b'{"x": [[Infinity' + b", 0.5" * 63 + b"]]}",
                                 b'{"x": [[1e999' + b", 0.5" * 63 + b"]]}", b'{"x": [[-Infinity' + b", 0.5" * 63 + b"]]}"])
def test_nan_and_inf_are_refused(client, raw):
    r = client.post("/v1/models/digits/encode", content=raw, headers={"content-type": "application/json"})
    assert_clear_error(r, 422)
    assert "finite" in r.json()["detail"]


@pytest.mark.parametrize("raw", [b'{"x": [[', b"not json", b"", b'{"x": [[0.5]]} trailing', b"[" * 100000])
def test_malformed_json_is_a_400_or_422(client, raw):
    r = client.post("/v1/models/digits/encode", content=raw, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert_clear_error(r, r.status_code)


def test_wrong_content_type_is_refused(client):
    r = client.post("/v1/models/digits/encode", content=b"x=1", headers={"content-type": "application/x-www-form-urlencoded"})
    assert_clear_error(r, 415)
    assert "application/json" in r.json()["detail"]


@pytest.mark.parametrize("path,status,needle", [
    ("/v1/models/nope/encode", 404, "unknown model 'nope'; loaded: digits, embed, fraud, shop"),
    ("/v1/models/nope", 404, "unknown model"),
    ("/v1/models/digits/score", 404, "has no operation 'score'"),
    ("/v1/models/..%2F..%2Fetc%2Fpasswd/encode", 400, "not paths"),
    ("/v1/models/%2e%2e/encode", 400, "not paths"),
    ("/v1/models/digits%00/encode", 400, "not paths"),
])
def test_unknown_and_path_like_model_names(client, path, status, needle):
    r = client.post(path, json={"x": [ROW]})
    assert_clear_error(r, status)
    assert needle in r.json()["detail"]


def test_wrong_method_is_a_405_with_allow(client):
    r = client.get("/v1/models/digits/encode")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    r = client.post("/v1/models/digits/latent-map", json={})
    assert r.status_code == 405 and r.headers["allow"] == "GET"


def test_openapi_documents_each_model_shapes(client):
    spec = client.get("/openapi.json").json()
    assert "/v1/models/digits/encode" in spec["paths"] and "/v1/models/fraud/score" in spec["paths"]
    schemas = spec["components"]["schemas"]
    x = schemas["DigitsEncodeRequest"]["properties"]["x"]
    assert x["maxItems"] == 64 and x["items"]["minItems"] == x["items"]["maxItems"] == 64
    assert x["items"]["items"]["maximum"] == 1
    assert "422" in spec["paths"]["/v1/models/digits/encode"]["post"]["responses"]
    assert "securitySchemes" not in spec.get("components", {})
    row = schemas["FraudRow"]
    assert len(row["anyOf"]) == 3 and row["additionalProperties"] is False  # at least one value per row


def test_page_and_static_files_are_served_with_a_strict_csp(client):
    r = client.get("/")
    assert r.status_code == 200 and "latent-space explorer" in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_non_finite_outputs_are_a_422_not_a_500(client, monkeypatch, app):
    from vaekit.serve.image import ImageModel

    monkeypatch.setattr(ImageModel, "decode", lambda self, z, y: np.full((len(z), 64), np.nan, np.float32))
    r = client.post("/v1/models/digits/decode", json={"z": [[0.0] * 4]})
    assert_clear_error(r, 422)
    assert "non-finite" in r.json()["detail"]


def test_an_unexpected_failure_is_a_bare_500(client, monkeypatch):
    from vaekit.serve.image import ImageModel

    def boom(self, z, y):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(ImageModel, "decode", boom)
    r = client.post("/v1/models/digits/decode", json={"z": [[0.0] * 4]})
    assert r.status_code == 500 and r.json() == {"detail": "internal error"}


def test_reduction_map_shows_the_training_codes(runs, tmp_path):
    import shutil

    import pandas as pd
    from fastapi.testclient import TestClient
    from sklearn.datasets import load_digits

    from vaekit.reduction import VAETransformer
    from vaekit.serve import build

    run = tmp_path / "embed"
    shutil.copytree(runs["embed"], run)
    est = VAETransformer.load(run)
    d = load_digits()
    frame = pd.DataFrame(est.transform(d.data[:50] / 16.0), columns=est.get_feature_names_out())
    frame["digit"] = d.target[:50]
    frame.to_csv(run / "embedding.csv", index=False)  # what `vaekit reduce fit` writes
    with TestClient(build([str(run)]), base_url=LOCAL) as c:
        m = c.get("/v1/models/embed/latent-map").json()
    assert len(m["points"]) == 50 and m["labels"] == d.target[:50].tolist()
    np.testing.assert_allclose(m["points"], frame.iloc[:, :2].to_numpy(), atol=1e-4)


def test_text_operations_match_the_model(client, runs):
    from vaekit.text import app as text

    model, config, vocab = text.load_run(runs["words"])
    r = client.post("/v1/models/words/encode", json={"sentences": ["the cat sees a fish", "a zebra likes"]})
    assert r.status_code == 200, r.text
    body = r.json()
    x, _ = text.sentence_ids(vocab, "the cat sees a fish", config.data.max_len)
    expected = model.encode(x).mean.detach().numpy()[0]
    assert np.allclose(body["mean"][0], expected, atol=1e-5) and body["unknown"] == ["zebra"]
    gen = client.post("/v1/models/words/generate", json={"n": 3, "seed": 5, "strategy": "sample"}).json()
    again = client.post("/v1/models/words/generate", json={"n": 3, "seed": 5, "strategy": "sample"}).json()
    assert len(gen["sentences"]) == 3 and gen == again  # a seed gives the same sentences
    rec = client.post("/v1/models/words/reconstruct", json={"sentence": "my friend wants some bread"}).json()
    assert rec["sentence"] == text.reconstruct(model, vocab, "my friend wants some bread", config.data.max_len)[0]
    path = client.post("/v1/models/words/interpolate", json={"a": "the cat sees a fish", "b": "a dog likes the ball",
                                                             "steps": 4}).json()
    assert len(path["sentences"]) == 4 and np.allclose(path["t"], [0.0, 1 / 3, 2 / 3, 1.0])
    dec = client.post("/v1/models/words/decode", json={"z": path["z"]}).json()
    assert dec["sentences"] == path["sentences"]


@pytest.mark.parametrize("path, body, needle", [
    ("generate", {"n": 3, "temperature": 0}, "temperature"),
    ("generate", {"n": 3, "strategy": "nucleus"}, "strategy"),
    ("reconstruct", {"sentence": "   "}, "sentence: Value error, the sentence has no words"),
    ("encode", {"sentences": ["the cat", "a dog", "  "]}, "sentences.2: Value error, the sentence has no words"),
    ("interpolate", {"a": "the cat", "b": " "}, "b: Value error, the sentence has no words"),
    ("reconstruct", {"sentence": ""}, "sentence"),
    ("interpolate", {"a": "x", "b": "y", "steps": 100}, "steps"),
    ("encode", {"sentences": []}, "sentences"),
    ("decode", {"z": [[0.0, 1.0]]}, "z"),
    ("encode", {"sentences": ["the cat " * 7]}, "the sentence has 14 words, more than the 12 this model reads"),
    ("reconstruct", {"sentence": "a dog " * 7}, "the sentence has 14 words, more than the 12 this model reads"),
])
def test_bad_text_requests_are_422(client, path, body, needle):
    r = client.post(f"/v1/models/words/{path}", json=body)
    assert r.status_code == 422 and needle in r.text


def test_seeded_sampling_is_reproducible_with_parallel_compute_threads(runs):
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from vaekit.serve import ServeSettings, build

    app = build([str(runs["words"])], ServeSettings(compute_threads=4, batching=False))
    body = {"n": 4, "strategy": "sample", "temperature": 1.5, "seed": 7}
    with TestClient(app, base_url=LOCAL) as c:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: c.post("/v1/models/words/generate", json=body).json()["sentences"],
                                    range(16)))
    assert all(a == answers[0] for a in answers)
