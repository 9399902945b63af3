"""Proof that twins compute the same function (framework-free comparisons)."""
