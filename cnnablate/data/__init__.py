"""Dataset sources, one-time preparation to `results/data/{dataset}/`, and the input pipeline."""
