"""Small real data for the anomaly tests: scikit-learn's breast cancer set (benign rows are
normal, a few malignant ones are the anomalies) and a generated mixed-type table."""

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def cancer():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = np.r_[np.flatnonzero(y == 1), rng.choice(np.flatnonzero(y == 0), 20, replace=False)]
    return X[idx], (y[idx] == 0).astype(int)


@pytest.fixture(scope="session")
def fitted(cancer):
    from vaekit.anomaly import VAEDetector

    return VAEDetector(contamination=0.05, max_steps=300, random_state=0).fit(cancer[0])


def mixed_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Numeric columns with a linear relation, a categorical column and a constant one."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    return pd.DataFrame({
        "a": a,
        "b": rng.normal(size=n),
        "c": 2 * a + rng.normal(scale=0.1, size=n),
        "proto": rng.choice(["tcp", "udp", "icmp"], n, p=[0.6, 0.3, 0.1]),
        "const": 5.0,
    })
