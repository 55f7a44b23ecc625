import math

import pytest

from vaekit.errors import ConfigError
from vaekit.molecules import chem


def test_canonical_smiles_and_invalid_input():
    assert chem.canonical("OCC") == chem.canonical("C(O)C") == "CCO"
    for bad in ("", "C1CC", "not a molecule", None, "CCO ethanol", "CC\nO", "   "):
        assert chem.canonical(bad) is None
    assert chem.canonical(" CCO\n") == "CCO"  # surrounding whitespace is not part of it


def test_properties_of_known_molecules():
    benzene = chem.mol("c1ccccc1")
    props = chem.properties(benzene)
    assert props["logp"] == pytest.approx(1.6866, abs=1e-3)  # Crippen logP of benzene
    assert 0 < props["qed"] < 1 and 1 <= props["sa"] <= 10
    # penalized logP by its definition: logP - SA - ring penalty, then the normalized sum
    raw = chem.penalized_logp(benzene, normalized=False)
    assert raw == pytest.approx(props["logp"] - props["sa"], abs=1e-6)
    expected = ((props["logp"] - 2.4570953396190123) / 1.434324401111988
                + (-props["sa"] + 3.0525811293166134) / 0.8335207024513095
                + (0 + 0.0485696876403053) / 0.2860212110245455)
    assert props["plogp"] == pytest.approx(expected, abs=1e-6)


def test_ring_penalty_counts_atoms_beyond_six():
    assert chem.ring_penalty(chem.mol("C1CCCCC1")) == 0
    assert chem.ring_penalty(chem.mol("C1CCCCCCC1")) == 2
    assert chem.ring_penalty(chem.mol("CCO")) == 0


def test_unknown_property_is_named():
    with pytest.raises(ConfigError, match="unknown property 'potency'"):
        chem.check_property("potency")
    assert math.isfinite(chem.property_of("qed", chem.mol("CCO")))
