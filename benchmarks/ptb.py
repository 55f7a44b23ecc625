"""Sentence VAE on Penn Treebank against the same language model without z, in one run.

Claim (issue 4): test NLL <= 100 nats per sentence (importance sampling, k = 500) with
KL >= 3 nats and >= 5 active units, i.e. better than the language model while using z.

Protocol
- Data: Mikolov's PTB (``ptb.{train,valid,test}.txt``, 42,068 / 3,370 / 3,761 sentences,
  10k vocabulary with ``<unk>``), one sentence per line with ``<eos>`` as the last target;
  the vocabulary is the training set's (10,000 words + ``<pad>``, ``<bos>``, ``<eos>``).
- The VAE: the ``ptb`` preset (``src/vaekit/configs/ptb.yaml``); the language model: the
  same preset with ``model.use_z=false`` and beta 0 (its loss is then exactly -log p(x)).
  Each model trains with early stopping on its validation loss and a wall-clock limit
  (``--vae-minutes`` + ``--lm-minutes`` <= 90 by default), keeping the best weights.
- Test metrics (``vaekit.text.app.evaluate``): NLL per sentence = -log p(x) estimated
  with k importance samples (Burda et al. 2015) for the VAE, exact for the LM;
  perplexity = exp(total NLL / target tokens, ``<eos>`` included, as Bowman et al. 2016
  count it); KL; I(x; z); active units (Burda et al. 2015, threshold 0.01).
- ``--test-sentences N`` evaluates a seeded random subset (noted in the results) when
  the full k = 500 evaluation does not fit in the time available.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/ptb.py [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402

from vaekit.config import load_preset  # noqa: E402
from vaekit.text import app as text  # noqa: E402
from vaekit.text.config import build_text_config  # noqa: E402

ANCHORS = [
    ("Bowman et al. 2016, RNN-LM", 100.0, None, 116.0),
    ("Bowman et al. 2016, VAE", 101.0, 2.0, 119.0),
    ("timbmg/Sentence-VAE", 103.97, 7.27, None),
    ("texar VAE-LSTM", 102.54, None, 107.64),
]


def train_one(name: str, overrides: list[str], minutes: float, out: Path, log) -> tuple[Path, float]:
    config = build_text_config(load_preset("ptb"), overrides + [f"train.max_seconds={minutes * 60}"])
    start = time.perf_counter()
    run = text.train(config, out / name, overwrite=True, progress=False, log=log,
                     command=f"benchmarks/ptb.py ({name})")
    return run, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vae-minutes", type=float, default=60.0)
    p.add_argument("--lm-minutes", type=float, default=30.0)
    p.add_argument("--k", type=int, default=500, help="importance samples of the test NLL")
    p.add_argument("--test-sentences", type=int, default=None, help="evaluate a seeded subset of the test set")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"],
                   help="training matmuls (bf16 autocast needs AVX512-BF16/AMX or a GPU); evaluation is fp32")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="extra preset override")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "runs" / "ptb")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--results-name", default="ptb")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    log = lambda m: print(m, flush=True)  # noqa: E731
    common = [f"train.device={args.device}", f"train.precision={args.precision}", *args.overrides]
    started = time.perf_counter()
    vae_run, vae_seconds = train_one("vae", common, args.vae_minutes, args.out, log)
    lm_run, lm_seconds = train_one("lm", common + ["model.use_z=false", "train.beta.schedule=constant",
                                                   "train.beta.value=0.0", "train.free_bits=0.0"],
                                   args.lm_minutes, args.out, log)
    vae = text.evaluate(vae_run, args.k, args.test_sentences)
    lm = text.evaluate(lm_run, args.k, args.test_sentences)
    log(f"VAE: {vae}\nLM: {lm}")
    model, config, vocab = text.load_run(vae_run)
    torch.manual_seed(0)
    samples = text.sample(model, vocab, 8, config.data.max_len, "greedy")
    sampled = text.sample(model, vocab, 5, config.data.max_len, "sample", temperature=0.8)
    a, b = "i want to talk to you", "she did n't want to be with him"
    homotopy, _ = text.interpolate(model, vocab, a, b, 8, config.data.max_len)
    metrics = {
        "test_nll": vae["nll"], "ppl": vae["ppl"], "kl": vae["kl"], "mutual_info": vae["mutual_info"],
        "active_units": vae["active_units"], "elbo": vae["elbo"],
        "lm_test_nll": lm["nll"], "lm_ppl": lm["ppl"],
        "train_seconds": round(vae_seconds + lm_seconds, 1), "vae_train_seconds": round(vae_seconds, 1),
        "lm_train_seconds": round(lm_seconds, 1), "test_sentences": vae["sentences"], "iw_samples": args.k,
    }
    goal = {"nll_at_most_100": metrics["test_nll"] <= 100.0, "kl_at_least_3": metrics["kl"] >= 3.0,
            "active_units_at_least_5": metrics["active_units"] >= 5,
            "vae_beats_lm": metrics["test_nll"] < metrics["lm_test_nll"]}
    payload = {"benchmark": "ptb", "date": now(), "machine": machine(), "versions": versions(),
               "command": "python benchmarks/ptb.py " + " ".join(sys.argv[1:]),
               "config": {"preset": load_preset("ptb"), "overrides": args.overrides, "device": args.device,
                          "vae_minutes": args.vae_minutes, "lm_minutes": args.lm_minutes,
                          "precision": args.precision,
                          "test_subset": args.test_sentences},
               "metrics": metrics, "goal": goal, "vae_eval": vae, "lm_eval": lm,
               "samples_greedy": samples, "samples_t08": sampled, "interpolation": {"from": a, "to": b,
                                                                                    "steps": homotopy},
               "wall_seconds": round(time.perf_counter() - started, 1)}
    subset = (f" on {vae['sentences']} test sentences (seeded subset)" if args.test_sentences
              else f" on all {vae['sentences']} test sentences")
    lines = [
        f"PTB test set{subset}; NLL in nats per sentence; VAE NLL by importance sampling (k = {args.k}).", "",
        "| model | NLL | PPL | KL | MI | active units | train s |", "|---|---|---|---|---|---|---|",
        f"| vaekit sentence VAE | {vae['nll']:.2f} | {vae['ppl']:.2f} | {vae['kl']:.2f} | {vae['mutual_info']:.2f} "
        f"| {vae['active_units']}/{vae['latent_dim']} | {vae_seconds:.0f} |",
        f"| vaekit LM (same decoder, no z) | {lm['nll']:.2f} | {lm['ppl']:.2f} | - | - | - | {lm_seconds:.0f} |",
    ]
    for name, nll, kl, ppl in ANCHORS:
        lines.append(f"| {name} (published) | {nll} | {ppl or '-'} | {kl if kl is not None else '-'} | - | - | - |")
    lines += ["", "Goals: " + ", ".join(f"{k} = {v}" for k, v in goal.items()), "",
              "Greedy samples from the prior:", ""] + [f"- {s or '(empty)'}" for s in samples] + [
              "", "Samples at temperature 0.8:", ""] + [f"- {s or '(empty)'}" for s in sampled] + [
              "", f"Interpolation (greedy) from \"{a}\" to \"{b}\":", ""] + [f"{i + 1}. {s}" for i, s in
                                                                          enumerate(homotopy)]
    m = payload["machine"]
    lines += ["", f"{m.get('cpu')} ({m.get('cores')} cores), device {args.device}, torch {torch.__version__}; "
                  f"{payload['date']}; wall time {payload['wall_seconds']:.0f} s."]
    path = write_results(args.results_name, payload, "\n".join(lines) + "\n")
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
