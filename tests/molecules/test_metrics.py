"""The MOSES metrics on sets whose answers are known."""

from collections import Counter

import numpy as np
import pytest

from vaekit.molecules import metrics
from tests.molecules.conftest import nci_smiles


def test_tanimoto_of_identical_and_disjoint_fingerprints():
    a = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], np.uint8)
    assert metrics.tanimoto_agg(a, a, "max").tolist() == [1.0, 1.0]
    assert metrics.tanimoto_agg(a, a, "mean").tolist() == [0.5, 0.5]
    assert metrics.internal_diversity(a) == pytest.approx(0.5)


def test_cosine_similarity_of_counts():
    assert metrics.cosine_similarity(Counter(a=1, b=1), Counter(a=2, b=2)) == pytest.approx(1.0)
    assert metrics.cosine_similarity(Counter(a=1), Counter(b=1)) == 0.0


def test_filters_follow_moses_rules():
    assert metrics.passes_filters("CC(=O)Nc1ccc(O)cc1")  # paracetamol
    assert not metrics.passes_filters("C[N+](C)(C)C")  # a charge
    assert not metrics.passes_filters("CC[Si](C)C")  # an atom outside C N S O F Cl Br H
    assert not metrics.passes_filters("C1CCCCCCC1")  # a ring of eight atoms
    assert not metrics.passes_filters("CC1OC1")  # an epoxide (MCF5)
    assert not metrics.passes_filters("xx")


def test_moses_metrics_of_the_reference_itself(tmp_path):
    ref = [s for s in nci_smiles(300)]
    from vaekit.molecules.chem import canonical

    ref = [c for c in (canonical(s) for s in ref) if c]
    stats = metrics.reference_stats(ref, tmp_path)
    assert list(tmp_path.glob("reference-*.npz")), "reference statistics are cached"
    again = metrics.reference_stats(ref, tmp_path)
    assert np.allclose(again.mu, stats.mu) and again.frags == stats.frags
    generated = ref[:200] + [None, "xx"]
    r = metrics.moses_metrics(generated, train=set(ref[:100]), references={"test": stats}, unique_k=(100,))
    assert r["valid"] == pytest.approx(200 / 202)
    assert r["unique@100"] == pytest.approx(len(set(ref[:100])) / 100)
    assert r["novelty"] == pytest.approx(len(set(ref[100:200]) - set(ref[:100])) / len(set(ref[:200])))
    assert r["snn_test"] == pytest.approx(1.0)  # every molecule is in the reference
    assert r["fcd_test"] < 5.0  # a subset of the reference is close to it
    assert 0.8 < r["frag_test"] <= 1.0 + 1e-9 and 0 < r["int_div1"] < 1
