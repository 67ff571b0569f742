"""dtrain's model in PyTorch: load a dtrain checkpoint into an equivalent module.

    import dtrain_torch
    model, cfg = dtrain_torch.load_checkpoint("runs/quickstart/checkpoints/best.h5")

Modules: model (HybridModel: towers, gate, scoring), encoders (the dynamic
tower: GRU or SASRec), history (history windows), losses (the training
loss over scores), checkpoint (load/save dtrain checkpoints), data (the
prepared data set, TF-IDF, context features), graddump (the loss/gradient
dump dtrain writes for one training batch, and its check).

Install with `pip install ./python` from the repository root (or put
`python/` on PYTHONPATH).
"""
from .checkpoint import load_checkpoint, load_state, save_checkpoint
from .data import context_features, load_dataset, load_tfidf, tfidf_row_fn
from .history import Windows, chunk_windows, example_windows, window_bounds
from .losses import LOSSES, Batch, batch_loss
from .model import VARIANTS, HybridModel

__all__ = ["HybridModel", "VARIANTS", "LOSSES", "Batch", "batch_loss", "Windows", "chunk_windows", "example_windows",
           "window_bounds", "context_features", "load_checkpoint", "load_state", "save_checkpoint", "load_dataset",
           "load_tfidf", "tfidf_row_fn"]
