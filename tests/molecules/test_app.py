"""`vaekit train molecules`, sample, reconstruct, interpolate, evaluate, optimize on a small real library."""

import csv
import json

import pytest

from vaekit.cli import main
from tests.molecules.conftest import TINY


def test_train_writes_a_molecule_run(molecule_run):
    for name in ("config.json", "model.safetensors", "vocab.json", "data_report.json", "metrics.jsonl", "README.md"):
        assert (molecule_run / name).is_file(), name
    doc = json.loads((molecule_run / "config.json").read_text())
    assert doc["kind"] == "molecule" and doc["representation"] == "selfies"
    assert doc["properties"]["names"] == ["qed", "plogp"] and len(doc["properties"]["std"]) == 2
    report = json.loads((molecule_run / "data_report.json").read_text())
    assert sum(r["lines"] for r in report.values()) == 400
    assert sum(sum(r["skipped"].values()) for r in report.values()) >= 1  # the NCI sample holds unusable lines
    assert "selfies molecule VAE" in (molecule_run / "README.md").read_text()


def test_sample_writes_csv_and_grid(molecule_run, tmp_path):
    out = tmp_path / "mols.csv"
    assert main(["sample", str(molecule_run), "-n", "20", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 20 and set(rows[0]) >= {"smiles", "valid", "qed", "logp", "sa", "plogp"}
    valid = [r for r in rows if r["valid"] == "True"]
    assert valid, "SELFIES decodings are molecules unless unfinished"
    assert all(0 <= float(r["qed"]) <= 1 for r in valid)
    assert out.with_suffix(".png").is_file()


def test_reconstruct_and_interpolate(molecule_run, capsys, tmp_path):
    capsys.readouterr()
    assert main(["reconstruct", str(molecule_run), "CCO"]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["interpolate", str(molecule_run), "CCO", "c1ccccc1O", "--steps", "4", "--out",
                 str(tmp_path / "path.png")]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) >= 4


@pytest.mark.parametrize("args, message", [
    (["reconstruct", "{run}", "not-a-molecule"], "not a valid SMILES"),
    (["reconstruct", "{run}", "[U]"], "not in the model's selfies vocabulary"),
    (["reconstruct", "{run}", "CCO ethanol"], "holds whitespace"),
    (["reconstruct", "{run}", "CC\tO"], "holds whitespace"),
    (["optimize", "{run}", "--objective", "potency"], "unknown objective 'potency'"),
    (["optimize", "{run}", "--method", "annealing"], "unknown method 'annealing'"),
    (["sample", "{run}", "-n", "2", "--out", "{tmp}/mols.txt"], "written as .csv"),
])
def test_bad_requests_exit_2(molecule_run, tmp_path, capsys, args, message):
    args = [a.format(run=molecule_run, tmp=tmp_path) for a in args]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_optimize_reports_scored_molecules(molecule_run, tmp_path, capsys):
    out = tmp_path / "opt.json"
    for method in ("bo", "gradient"):
        assert main(["optimize", str(molecule_run), "--objective", "qed", "--budget", "30", "--method", method,
                     "--top", "3", "--out", str(out)]) == 0
        result = json.loads(out.read_text())
        assert result["evaluated"] == 30 and result["method"] == method
        scores = [r["score"] for r in result["best"]]
        assert scores == sorted(scores, reverse=True)
        from vaekit.molecules.chem import mol, property_of

        for r in result["best"]:  # scores are RDKit's, not the model's
            assert property_of("qed", mol(r["smiles"])) == pytest.approx(r["score"], abs=1e-3)


def test_evaluate_reports_moses_metrics(molecule_run, capsys):
    assert main(["evaluate", str(molecule_run), "--n-samples", "60"]) == 0
    result = json.loads((molecule_run / "evaluation.json").read_text())
    for key in ("valid", "novelty", "fcd_test", "snn_test", "int_div1", "kl", "test_neg_elbo", "active_units"):
        assert key in result, key
    assert result["n_generated"] == 60 and 0 <= result["valid"] <= 1


def test_csv_library_with_column(tmp_path, library):
    from tests.molecules.conftest import nci_smiles

    p = tmp_path / "lib.csv"
    p.write_text("id,structure\n" + "\n".join(f"{i},{s}" for i, s in enumerate(nci_smiles(120))) + "\n")
    out = tmp_path / "run"
    assert main(["train", "molecules", "--data", str(p), "--column", "structure", "--out", str(out), "--epochs", "1",
                 "--set", "data.representation=smiles", "--set", "data.properties=[]", *TINY]) == 0
    assert json.loads((out / "config.json").read_text())["representation"] == "smiles"


def test_training_file_errors_exit_2(tmp_path, capsys):
    p = tmp_path / "lib.csv"
    p.write_text("id;smiles\n1;CCO\n")
    assert main(["train", "molecules", "--data", str(p), "--column", "smiles", "--out", str(tmp_path / "r"),
                 *TINY]) == 2
    assert "is the delimiter ';'" in capsys.readouterr().err
    assert main(["train", "molecules", "--out", str(tmp_path / "r"), *TINY]) == 2
    assert "needs data.path" in capsys.readouterr().err


def test_a_split_without_a_usable_molecule_names_the_file_and_the_split(tmp_path, capsys):
    junk = tmp_path / "junk.smi"
    junk.write_text("CCO\nnot-a-molecule\nxx(\nzz)\n")
    assert main(["train", "molecules", "--data", str(junk), "--out", str(tmp_path / "run"),
                 "--set", "train.epochs=1"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert f"{junk} (" in err and "split): no usable molecule" in err


def test_eval_limit_cuts_validation_and_test_to_seeded_subsets(library):
    from vaekit.molecules.app import raw_splits
    from vaekit.molecules.config import MoleculeConfig

    def splits(**data):
        return raw_splits(MoleculeConfig.model_validate({"data": {"name": "molecules", "path": str(library), **data}}))

    full, cut = splits(), splits(eval_limit=7)
    assert len(full["valid"]) == len(full["test"]) == 20 and cut["train"] == full["train"]
    for split in ("valid", "test"):
        assert len(cut[split]) == 7 and set(cut[split]) <= set(full[split])
    assert cut == splits(eval_limit=7)  # seeded: the same subsets every time


def test_a_vocabulary_from_another_run_is_refused(molecule_run, tmp_path, capsys):
    import json
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(molecule_run, copy)
    vocab = json.loads((copy / "vocab.json").read_text())
    (copy / "vocab.json").write_text(json.dumps({**vocab, "tokens": vocab["tokens"][:6]}))
    assert main(["reconstruct", str(copy), "CCO"]) == 2
    assert "vocab.json holds 6 tokens but the model" in " ".join(capsys.readouterr().err.split())
