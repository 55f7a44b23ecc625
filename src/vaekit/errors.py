"""The project's error types.

Every failure a user can cause (bad data, bad config, a damaged model file) raises a
subclass of :class:`VaekitError` with a one-line message that names the file, field,
shape or value at fault. The CLI turns these into exit code 2 without a traceback.
"""


class VaekitError(Exception):
    """Base class for errors caused by input the user gave."""


class ConfigError(VaekitError):
    """An unknown preset, an unknown key or an invalid value in a configuration."""


class DataError(VaekitError):
    """Missing, unreadable, empty, inconsistent or non-finite data."""


class ChecksumError(DataError):
    """A data file whose sha256 differs from the registry's."""


class ModelFileError(VaekitError):
    """A model or checkpoint file that is missing, truncated, corrupted or not safetensors."""


class RunDirError(VaekitError):
    """A run directory that exists when it should not, or is missing when it should exist."""


class NonFiniteError(VaekitError):
    """Training produced a NaN or inf loss or gradient."""


class TrainingInterrupted(VaekitError):
    """Training was stopped by the user (Ctrl-C); the last checkpoint is intact."""
