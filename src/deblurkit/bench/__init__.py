"""Benchmarks: quality on paired data along the P-D curve, and speed/memory."""
