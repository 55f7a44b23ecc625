"""Anomaly detection with VAEs: tables (:class:`VAEDetector`, PyOD's detector contract)
and time series (:class:`SeriesDetector`, Donut: Xu et al. 2018)."""

from vaekit.anomaly.base import ParameterError
from vaekit.anomaly.detector import VAEDetector
from vaekit.anomaly.preprocessing import TabularPreprocessor
from vaekit.anomaly.timeseries import SeriesDetector

__all__ = ["ParameterError", "SeriesDetector", "TabularPreprocessor", "VAEDetector"]
