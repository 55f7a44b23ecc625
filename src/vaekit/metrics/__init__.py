"""Evaluation metrics: likelihood bounds, latent diagnostics, sample quality."""
