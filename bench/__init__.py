"""Benchmarks of media-service against baselines measured in the same run (`python -m bench`)."""
