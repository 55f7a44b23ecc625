"""The inference service and the latent-space explorer page (``vaekit serve``).

    from vaekit.serve import ServeSettings, build
    app = build(["runs/mnist", "fraud=runs/anomaly"], ServeSettings())   # a FastAPI app

Needs the ``serve`` extra: ``pip install 'vaekit[serve]'``.
"""

from vaekit.serve.settings import ServeSettings


def build(specs, settings=None, api_key=None):
    """A FastAPI app serving these run directories (``NAME=PATH`` or ``PATH``)."""
    from vaekit.serve.server import build as _build

    return _build(list(specs), settings or ServeSettings(), api_key)


__all__ = ["ServeSettings", "build"]
