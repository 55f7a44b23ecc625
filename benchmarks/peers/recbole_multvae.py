"""RecBole 1.2.1's MultiVAE as a peer on a strong-generalization split.

Run it with the RecBole environment's python (``bash benchmarks/peers/recbole_env.sh``
creates it and prints the path; RecBole needs NumPy 1 and pandas < 3, so it cannot run in
the main environment)::

    benchmarks/.venv-recbole/bin/python benchmarks/peers/recbole_multvae.py \
        --split SPLIT.npz --out SCORES.npz [--epochs 200] [--seed 2020]

Input: the ``.npz`` written by ``vaekit.recommend.splits.Split.save``, read with plain
NumPy (vaekit is not importable here): for each of train, valid_in, valid_out, test_in,
test_out the CSR arrays ``{name}_indptr``, ``{name}_indices``, ``{name}_shape`` of a
binary users x items matrix; all five share the same item columns.

Output: ``SCORES.npz`` with ``test_scores`` (n_test_users x n_items, float32, rows and
columns in the order of ``test_in``) and ``valid_scores`` (likewise for ``valid_in``).
Scores are the raw decoder logits of MultiVAE; fold-in items are NOT masked here (the
benchmark masks them, uniformly for all methods). An item column that appears in no
RecBole file (impossible for splits made by ``strong_generalization_split``, where every
column has a training interaction) gets -inf.

How the split is given to RecBole
---------------------------------
The split is written as RecBole atomic files under a fresh dataset name (RecBole ignores
``data_path`` for the name ``ml-100k`` and loads its bundled copy), pre-split with
RecBole's ``benchmark_filename`` mechanism (``NAME.train.inter``, ``NAME.valid.inter``,
``NAME.test.inter``; no filtering or re-splitting is applied to such files):

- ``train``: the training users' full histories PLUS the fold-in items (valid_in,
  test_in) of the validation and test users. RecBole's MultiVAE scores a user from that
  user's row of the training-history matrix, so this is the only way to give it a
  held-out user's fold-in items as input. It also means that RecBole TRAINS on the
  held-out users' fold-in items, which the strong-generalization protocol forbids: a
  slight advantage for RecBole over the other methods in the benchmark.
- ``valid``: valid_out (the validation users' held-out items), used for RecBole's early
  stopping on NDCG@100, with the train history (here: valid_in) masked as RecBole does.
- ``test``: test_out. RecBole never trains or selects on it; it is written only because
  RecBole's data preparation expects a third file. Test scores are computed here, in
  memory, with ``model.full_sort_predict`` on the test users' internal ids.

Users are tokens ``t<row>`` (train), ``v<row>`` (valid), ``e<row>`` (test); items are
tokens ``<column>``. RecBole remaps both to internal ids (with 0 as padding); the scores
are mapped back through ``dataset.token2id``, so RecBole's remapping cannot permute rows
or columns.

Model and training
------------------
MultiVAE with RecBole's own defaults from ``recbole/properties/model/MultiVAE.yaml``:
``mlp_hidden_size=[600]``, ``latent_dimension=128`` (64-dim mean + 64-dim log-variance),
``dropout_prob=0.5``, ``anneal_cap=0.2``, ``total_anneal_steps=200000``; and RecBole's
overall defaults: Adam, ``learning_rate=0.001``, ``train_batch_size=2048`` (batches of
interactions, not users: a user appears in a batch once per sampled interaction),
``weight_decay=0``, ``stopping_step=10``, ``eval_step=1``, uniform negative sampling
(ignored by MultiVAE's loss). Changed: ``valid_metric=NDCG@100`` (RecBole's default is
MRR@10), ``metrics=[Recall, NDCG]``, ``topk=[20, 50, 100]``, and at most 200 epochs
(RecBole's default is 300) to bound the runtime to a few minutes per split on two CPU
cores (about 1-1.5 s per epoch with validation); early stopping usually ends sooner (on
MovieLens-100K, split seed 0: best epoch 98, stopped at 110, about 2.5 minutes).
With about 50 batches per epoch on MovieLens-100K, the KL weight
``min(0.2, step / 200000)`` stays below 0.02 for the whole run: RecBole's default
schedule, kept as is. The best validation epoch's weights are kept in memory (no
checkpoint file: torch >= 2.6 loads checkpoints weights-only, which RecBole's reload
cannot do) and used for the scores.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
import tempfile
import time
import warnings

import numpy as np

SPLIT_NAMES = ("train", "valid_in", "valid_out", "test_in", "test_out")
DATASET = "vaekit_split"  # any name but ml-100k


def load_split(path: str) -> dict:
    """``name -> (indptr, indices, shape)`` for the five matrices of a saved Split."""
    out = {}
    with np.load(path, allow_pickle=False) as z:
        for name in SPLIT_NAMES:
            indptr = np.asarray(z[f"{name}_indptr"], dtype=np.int64)
            indices = np.asarray(z[f"{name}_indices"], dtype=np.int64)
            shape = tuple(int(s) for s in z[f"{name}_shape"])
            if len(shape) != 2 or len(indptr) != shape[0] + 1 or indptr[-1] != len(indices):
                raise ValueError(f"{path}: {name} is not a valid CSR matrix")
            out[name] = (indptr, indices, shape)
    n_items = {out[n][2][1] for n in SPLIT_NAMES}
    if len(n_items) != 1:
        raise ValueError(f"{path}: the five matrices have different item counts {n_items}")
    for a, b in (("valid_in", "valid_out"), ("test_in", "test_out")):
        if out[a][2][0] != out[b][2][0]:
            raise ValueError(f"{path}: {a} and {b} have different user counts")
    return out


def _pairs(csr, prefix: str):
    """(user token, item token) rows of a CSR binary matrix."""
    indptr, indices, shape = csr
    rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
    return [f"{prefix}{u}\t{i}\n" for u, i in zip(rows.tolist(), indices.tolist())]


def write_atomic_files(split: dict, folder: str) -> None:
    """``folder/DATASET/DATASET.{train,valid,test}.inter`` (see the module docstring)."""
    os.makedirs(os.path.join(folder, DATASET), exist_ok=True)
    files = {
        "train": _pairs(split["train"], "t") + _pairs(split["valid_in"], "v")
        + _pairs(split["test_in"], "e"),
        "valid": _pairs(split["valid_out"], "v"),
        "test": _pairs(split["test_out"], "e"),
    }
    for part, lines in files.items():
        if not lines:
            raise ValueError(f"the split gives RecBole an empty {part} file")
        with open(os.path.join(folder, DATASET, f"{DATASET}.{part}.inter"), "w") as f:
            f.write("user_id:token\titem_id:token\n")
            f.writelines(lines)


def full_scores(model, dataset, prefix: str, n_users: int, n_items: int, device,
                batch: int = 1024) -> np.ndarray:
    """n_users x n_items float32 scores in the split's row and column order."""
    import torch
    from recbole.data.interaction import Interaction

    uid_field, iid_field = dataset.uid_field, dataset.iid_field
    item_ids = _token_ids(dataset, iid_field, [str(j) for j in range(n_items)])
    user_ids = _token_ids(dataset, uid_field, [f"{prefix}{u}" for u in range(n_users)])
    known_items = item_ids >= 0
    out = np.full((n_users, n_items), -np.inf, dtype=np.float32)
    model.eval()
    with torch.no_grad():
        for start in range(0, n_users, batch):
            ids = user_ids[start:start + batch]
            known = ids >= 0
            block = np.zeros((len(ids), dataset.item_num), dtype=np.float32)
            if known.any():
                inter = Interaction({uid_field: torch.as_tensor(ids[known])}).to(device)
                s = model.full_sort_predict(inter).view(int(known.sum()), dataset.item_num)
                block[known] = s.float().cpu().numpy()
            if not known.all():  # a user in no RecBole file: empty history as input
                z, _, _ = model.forward(torch.zeros(int((~known).sum()), dataset.item_num,
                                                    device=device))
                block[~known] = z.float().cpu().numpy()
            out[start:start + len(ids), known_items] = block[:, item_ids[known_items]]
    return out


def _token_ids(dataset, field: str, tokens: list) -> np.ndarray:
    """Internal ids of tokens, -1 for tokens RecBole does not know."""
    table = dataset.field2token_id[field]
    return np.array([table.get(t, -1) for t in tokens], dtype=np.int64)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--split", required=True, help="split .npz written by Split.save")
    p.add_argument("--out", required=True, help="scores .npz to write")
    p.add_argument("--epochs", type=int, default=200,
                   help="maximum epochs; early stopping (patience 10) usually ends sooner")
    p.add_argument("--seed", type=int, default=2020, help="RecBole's seed (its default: 2020)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    args = p.parse_args(argv)
    split_path, out_path = os.path.abspath(args.split), os.path.abspath(args.out)
    sys.argv = sys.argv[:1]  # RecBole's Config reads "--key=value" options from sys.argv
    warnings.filterwarnings("ignore", category=FutureWarning)  # pandas/torch notes on RecBole

    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import MultiVAE
    from recbole.trainer import Trainer
    from recbole.utils import init_logger, init_seed

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    class InMemoryBestTrainer(Trainer):
        """Keeps the best validation epoch's weights in memory instead of a file."""

        best_state = None

        def _save_checkpoint(self, epoch, verbose=True, **kwargs):
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.best_epoch = epoch

    split = load_split(split_path)
    n_items = split["train"][2][1]
    t0 = time.time()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="recbole-") as tmp:
        write_atomic_files(split, tmp)
        os.chdir(tmp)  # RecBole writes log/ and log_tensorboard/ into the working directory
        try:
            config = Config(model="MultiVAE", dataset=DATASET, config_dict={
                "data_path": tmp,
                "checkpoint_dir": os.path.join(tmp, "saved"),
                "benchmark_filename": ["train", "valid", "test"],
                "load_col": {"inter": ["user_id", "item_id"]},
                "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
                "metrics": ["Recall", "NDCG"],
                "topk": [20, 50, 100],
                "valid_metric": "NDCG@100",
                "epochs": args.epochs,
                "seed": args.seed,
                "show_progress": False,
                "state": "WARNING" if args.quiet else "INFO",
            })
            init_seed(config["seed"], config["reproducibility"])
            init_logger(config)
            log = logging.getLogger()
            dataset = create_dataset(config)
            train_data, valid_data, _ = data_preparation(config, dataset)
            init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
            model = MultiVAE(config, train_data.dataset).to(config["device"])
            trainer = InMemoryBestTrainer(config, model)
            best, best_result = trainer.fit(train_data, valid_data, saved=True,
                                            show_progress=False)
            if trainer.best_state is None:
                raise RuntimeError("RecBole finished without a validation result")
            model.load_state_dict(trainer.best_state)
            train_ds = train_data.dataset
            test_scores = full_scores(model, train_ds, "e", split["test_in"][2][0], n_items,
                                      config["device"])
            valid_scores = full_scores(model, train_ds, "v", split["valid_in"][2][0], n_items,
                                       config["device"])
        finally:
            os.chdir(cwd)
    seconds = time.time() - t0
    np.savez_compressed(out_path, test_scores=test_scores, valid_scores=valid_scores,
                        best_epoch=np.int64(trainer.best_epoch),
                        best_valid_ndcg_100=np.float64(best), seconds=np.float64(seconds))
    log.warning("RecBole MultiVAE: best epoch %d, RecBole's valid NDCG@100 %.4f, %.1f s; "
                "wrote %s", trainer.best_epoch, best, seconds, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
