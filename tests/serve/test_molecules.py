"""The service on a molecule run: answers match the model and RDKit; bad SMILES are 422."""

import numpy as np
import pytest

from tests.serve.conftest import LOCAL

pytest.importorskip("rdkit", reason="the molecules extra is not installed")


@pytest.fixture(scope="module")
def mclient(molecule_dir):
    from fastapi.testclient import TestClient

    from vaekit.serve import ServeSettings, build

    with TestClient(build([f"mols={molecule_dir}"], ServeSettings(max_rows=64, max_samples=64, max_steps=16)),
                    raise_server_exceptions=False, base_url=LOCAL) as c:
        yield c


def test_molecule_model_is_listed(mclient):
    models = {m["name"]: m for m in mclient.get("/v1/models").json()["models"]}
    assert models["mols"]["kind"] == "molecule"
    assert set(models["mols"]["operations"]) == {"encode", "decode", "generate", "reconstruct", "interpolate",
                                                  "properties", "draw"}
    assert models["mols"]["info"]["representation"] == "selfies"


def test_molecule_operations_match_the_model(mclient, molecule_dir):
    from vaekit.molecules import app
    from vaekit.molecules.chem import properties, mol

    model = app.load_run(molecule_dir)
    r = mclient.post("/v1/models/mols/encode", json={"smiles": ["CCO", "c1ccccc1O"]})
    assert r.status_code == 200, r.text
    assert np.allclose(r.json()["mean"], model.encode(["CCO", "c1ccccc1O"]).numpy(), atol=1e-5)
    gen = mclient.post("/v1/models/mols/generate", json={"n": 4, "seed": 3}).json()
    assert gen == mclient.post("/v1/models/mols/generate", json={"n": 4, "seed": 3}).json()
    assert len(gen["molecules"]) == 4
    rec = mclient.post("/v1/models/mols/reconstruct", json={"smiles": "CCO"}).json()
    assert rec["molecule"]["smiles"] == (app.reconstruct(model, "CCO") or "")
    path = mclient.post("/v1/models/mols/interpolate", json={"a": "CCO", "b": "c1ccccc1O", "steps": 3}).json()
    dec = mclient.post("/v1/models/mols/decode", json={"z": path["z"]}).json()
    assert dec["molecules"] == path["molecules"] and len(path["t"]) == 3
    props = mclient.post("/v1/models/mols/properties", json={"smiles": ["OCC"]}).json()["molecules"][0]
    assert props["smiles"] == "CCO" and props["qed"] == pytest.approx(properties(mol("CCO"))["qed"], abs=1e-4)
    svg = mclient.post("/v1/models/mols/draw", json={"smiles": ["CCO", "xx"]}).json()["svg"]
    assert svg[0].lstrip().startswith("<?xml") and "<svg" in svg[0] and svg[1] == ""


@pytest.mark.parametrize("path, body, needle", [
    ("encode", {"smiles": ["not a molecule"]}, "not a valid SMILES"),
    ("reconstruct", {"smiles": "[U]"}, "not in the model's selfies vocabulary"),
    ("properties", {"smiles": ["C1CC"]}, "not a valid SMILES"),
    ("generate", {"n": 2, "strategy": "beam"}, "strategy"),
    ("draw", {"smiles": ["CCO"], "width": 10000}, "width"),
    ("draw", {"smiles": ["C" * 501]}, "smiles"),
    ("properties", {"smiles": ["CCO junk"]}, "not a valid SMILES"),
    ("encode", {"smiles": ["CC O"]}, "holds whitespace"),
    ("encode", {"smiles": []}, "smiles"),
    ("decode", {"z": [[0.0]]}, "z"),
])
def test_bad_molecule_requests_are_422(mclient, path, body, needle):
    r = mclient.post(f"/v1/models/mols/{path}", json=body)
    assert r.status_code == 422 and needle in r.text, r.text
