import pytest

from vaekit.errors import DataError
from vaekit.molecules.chem import canonical
from vaekit.molecules.tokens import Representation, smiles_tokens


def test_smiles_regex_keeps_atoms_whole():
    tokens = smiles_tokens("C[C@@H](Cl)c1ccc(Br)cc1%10")
    assert tokens == ["C", "[C@@H]", "(", "Cl", ")", "c", "1", "c", "c", "c", "(", "Br", ")", "c", "c", "1", "%10"]
    assert "".join(tokens) == "C[C@@H](Cl)c1ccc(Br)cc1%10"


def test_untokenizable_character_is_named():
    with pytest.raises(DataError, match="character 'ü' at position 2"):
        smiles_tokens("CCü")


@pytest.mark.parametrize("name", ["smiles", "selfies"])
def test_round_trip_to_canonical_smiles(name):
    rep = Representation(name)
    for s in ["CCO", "c1ccccc1O", "CC(=O)N[C@@H](C)C(=O)O"]:
        c = canonical(s)
        assert rep.to_smiles(rep.tokens(c)) == c


def test_selfies_decodes_any_token_sequence_to_a_molecule():
    rep = Representation("selfies")
    assert rep.to_smiles(["[C]", "[Branch1]", "[O]", "[=N]"]) is not None
    assert Representation("smiles").to_smiles(["C", "(", "(", "1"]) is None


def test_unknown_representation():
    with pytest.raises(DataError, match="unknown representation 'inchi'"):
        Representation("inchi")
