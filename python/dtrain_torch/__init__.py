"""dtrain's model in PyTorch: load a dtrain checkpoint into an equivalent module.

    import dtrain_torch
    model, cfg = dtrain_torch.load_checkpoint("runs/quickstart/checkpoints/best.h5")

Install with `pip install ./python` from the repository root (or put
`python/` on PYTHONPATH).
"""
from .model import HybridModel, context_features, load_checkpoint, load_tfidf

__all__ = ["HybridModel", "context_features", "load_checkpoint", "load_tfidf"]
