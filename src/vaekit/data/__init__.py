"""Datasets: a registry of named files with checksums, one fetch path, and format readers."""
