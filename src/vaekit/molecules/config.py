"""The settings of a molecule run: a preset with ``application: molecules``.

See ``configs/moses.yaml``, ``configs/zinc250k.yaml`` and ``configs/molecules.yaml``. The
training section is the shared :class:`vaekit.config.TrainConfig`, so a molecule run
trains, checkpoints and resumes like every other run.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, PositiveInt, model_validator

from vaekit.config import SearchParam, TrainConfig, _Strict, validated


class MoleculeDataConfig(_Strict):
    name: Literal["moses", "zinc250k", "molecules"] = Field(
        "moses", description="moses | zinc250k | molecules (a file: path)")
    path: Optional[str] = Field(None, description="molecules: a .smi / .csv / .tsv file (optionally .gz)")
    column: Optional[str] = Field(None, description="molecules: the CSV column holding SMILES (default: 'smiles')")
    representation: Literal["smiles", "selfies"] = "smiles"
    max_len: PositiveInt = Field(120, description="molecules with more tokens are skipped (counted)")
    max_chars: PositiveInt = Field(1000, description="lines longer than this are skipped unparsed (counted)")
    limit: Optional[PositiveInt] = Field(None, description="train on a seeded random subset of N molecules")
    eval_limit: Optional[PositiveInt] = Field(
        None, description="validate and test on seeded random subsets of N molecules, for quick trials (RDKit "
                          "parses every molecule of a split; none: the whole sets)")
    val_size: PositiveInt = Field(10_000, description="moses / molecules: molecules held out for validation")
    test_size: float = Field(0.05, gt=0, lt=0.5, description="molecules: share held out as the test set")
    properties: list[Literal["qed", "logp", "sa", "plogp"]] = Field(
        default_factory=list, description="RDKit properties the property head learns (empty: no head)")

    @model_validator(mode="after")
    def _check(self):
        if self.name == "molecules" and not self.path:
            raise ValueError("data.name 'molecules' needs data.path (or --data FILE)")
        if len(set(self.properties)) != len(self.properties):
            raise ValueError(f"data.properties lists a property twice: {self.properties}")
        return self


class MoleculeModelConfig(_Strict):
    encoder: Literal["gru", "conv"] = Field("gru", description="gru (bidirectional) | conv (Gomez-Bombarelli)")
    cell: Literal["gru", "lstm"] = "gru"
    embedding_dim: PositiveInt = 64
    hidden: PositiveInt = Field(512, description="recurrent state size (encoder per direction, decoder)")
    latent_dim: PositiveInt = 64
    word_dropout: float = Field(0.0, ge=0, lt=1, description="share of decoder inputs replaced by <unk>")
    property_hidden: PositiveInt = Field(256, description="width of the property head's hidden layer")
    property_weight: float = Field(1.0, ge=0, description="weight of the property head's squared error")


class MoleculeEvalConfig(_Strict):
    n_samples: PositiveInt = Field(30_000, description="molecules sampled for the MOSES metrics")
    batch_size: PositiveInt = Field(500, description="molecules per decoding batch")
    max_len: PositiveInt = Field(150, description="longest decoded token sequence")


class MoleculeConfig(_Strict):
    application: Literal["molecules"] = "molecules"
    data: MoleculeDataConfig = MoleculeDataConfig()
    model: MoleculeModelConfig = MoleculeModelConfig()
    train: TrainConfig = TrainConfig()
    eval: MoleculeEvalConfig = MoleculeEvalConfig()
    search: dict[str, SearchParam] = Field(default_factory=dict)


def build_molecule_config(data: dict, overrides: list[str] = ()) -> MoleculeConfig:
    return validated(MoleculeConfig, data, overrides)
