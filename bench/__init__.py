"""Benchmarks of Parrain's hot paths against bare baselines measured in the same run (see bench/README.md)."""
