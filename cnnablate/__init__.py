"""cnnablate: ablation studies of CNN building blocks.

Activations, BatchNorm placement and weight initialisers, trained and compared over seeds.
"""

__version__ = "0.1.0"
