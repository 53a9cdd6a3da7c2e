"""Dataset sources and their one-time preparation to `results/data/{dataset}/` (the input feeds
that read it are training-time code: cnnablate.training)."""
