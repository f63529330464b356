"""Compute and workspace adapters, chosen by settings and imported lazily."""
