"""Applications: thin layers choosing data, networks, likelihood and metrics."""
