"""Tiny served models trained on small real data (scikit-learn's digits, generated tables),
an in-process client and a live server on a free loopback port."""

import threading
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'vaekit[serve]'")

# the service without an API key answers only requests addressed to a loopback name
LOCAL = "http://127.0.0.1"


def pytest_configure(config):
    # Starlette's TestClient still works on httpx; its notice about httpx2 is not ours to fix
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Run directories of an image model, an anomaly detector, a recommender and a reducer."""
    from sklearn.datasets import load_digits

    from vaekit.anomaly import VAEDetector
    from vaekit.apps import images
    from vaekit.config import build_config
    from vaekit.recommend import MultVAERecommender
    from vaekit.reduction import VAETransformer

    root = tmp_path_factory.mktemp("served")
    cfg = build_config({"data": {"name": "digits", "limit": 512},
                        "model": {"architecture": "mlp", "latent_dim": 4, "hidden": [64]},
                        "train": {"epochs": 6, "batch_size": 32, "patience": None, "seed": 0}})
    images.train(cfg, root / "digits", progress=False, log=lambda _m: None, figures=False)
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"amount": rng.normal(100, 10, 400), "hour": rng.integers(0, 24, 400).astype(float),
                          "kind": rng.choice(["card", "cash", "wire"], 400)})
    VAEDetector(max_steps=300, random_state=0).fit(table).save(root / "fraud")
    x = np.zeros((120, 30), np.float32)
    for u in range(120):
        half = 0 if u % 2 == 0 else 15
        x[u, half + rng.choice(15, 8, replace=False)] = 1
    MultVAERecommender(hidden=[32], latent_dim=8, epochs=20, batch_size=20, lr=3e-3).fit(
        sp.csr_matrix(x), item_ids=[f"i{j}" for j in range(30)]).save(root / "shop")
    digits = load_digits().data[:400] / 16.0
    VAETransformer(n_components=2, hidden_layer_sizes=(32,), max_iter=5, random_state=0).fit(digits).save(root / "embed")
    _train_text(root)
    return {"digits": root / "digits", "fraud": root / "fraud", "shop": root / "shop", "embed": root / "embed",
            "words": root / "words", "table": table}


def _train_text(root):
    """A tiny sentence VAE on generated sentences."""
    from vaekit.text import app as text
    from vaekit.text.config import build_text_config

    rng = np.random.default_rng(0)
    parts = (["the cat", "a dog", "my friend"], ["sees", "likes", "wants"], ["the ball", "a fish", "some bread"])
    lines = [" ".join(rng.choice(p) for p in parts) for _ in range(300)]
    (root / "sentences.txt").write_text("\n".join(lines) + "\n")
    cfg = build_text_config({"data": {"name": "text", "path": str(root / "sentences.txt"), "min_count": 1,
                                      "max_len": 12},
                             "model": {"hidden": 32, "embedding_dim": 16, "latent_dim": 4},
                             "train": {"epochs": 6, "batch_size": 32, "patience": None, "seed": 0}})
    text.train(cfg, root / "words", progress=False, log=lambda _m: None)


@pytest.fixture(scope="session")
def specs(runs):
    return [str(runs[k]) for k in ("digits", "fraud", "shop", "embed", "words")]


@pytest.fixture(scope="session")
def app(specs):
    from vaekit.serve import ServeSettings, build

    return build(specs, ServeSettings(max_rows=64, max_samples=64, max_steps=16, max_body_bytes=256 * 1024))


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False, base_url=LOCAL) as c:
        yield c


class LiveServer:
    def __init__(self, app):
        import uvicorn

        from vaekit.serve.server import bind

        self.sock = bind("127.0.0.1", 0)  # tests bind loopback only, on a free port
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", limit_concurrency=64))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="session")
def live(specs):
    from vaekit.serve import ServeSettings, build

    app = build(specs, ServeSettings(max_body_bytes=256 * 1024))
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def molecule_dir(tmp_path_factory):
    """A tiny SELFIES molecule VAE on RDKit's bundled NCI sample."""
    pytest.importorskip("rdkit", reason="the molecules extra is not installed")
    from tests.molecules.conftest import nci_smiles
    from vaekit.molecules import app
    from vaekit.molecules.config import build_molecule_config
    from vaekit.config import load_preset

    root = tmp_path_factory.mktemp("served-molecules")
    (root / "lib.smi").write_text("\n".join(nci_smiles(200)) + "\n")
    preset = load_preset("molecules")
    config = build_molecule_config(preset, [f"data.path={root / 'lib.smi'}", "data.max_len=60", "model.hidden=32",
                                            "model.embedding_dim=8", "model.latent_dim=4", "model.property_hidden=8",
                                            "train.epochs=2", "train.batch_size=32", "eval.max_len=70"])
    return app.train(config, root / "mols", progress=False, log=lambda _m: None)
