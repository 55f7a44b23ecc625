import numpy as np, torch, traceback
from vaekit import VAE
from vaekit.train.data import Tensors
def t(name, f):
    try: r = f(); print("OK  ", name, "" if r is None else (r.shape if hasattr(r, "shape") else r))
    except Exception as e: print("FAIL", name, type(e).__name__, e)
import inspect
print(inspect.signature(VAE.__init__))
