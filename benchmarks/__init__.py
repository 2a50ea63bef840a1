"""Benchmarks: figures printed and written to benchmarks/out/ (git-ignored); never timed assertions."""
