"""dtrain's model in PyTorch: load a dtrain checkpoint into an equivalent module,
and serve it.

    import dtrain_torch
    m = dtrain_torch.load("model.h5")                # checkpoint or `dtrain export` file
    m.recommend("A0YP6VTU0G541W", k=10)              # = dtrain recommend --user ... -k 10
    m.score(["A0YP6VTU0G541W"], ["B00ABC", "B00XYZ"])  # the model's scores
    model, cfg = dtrain_torch.load_checkpoint("runs/quickstart/checkpoints/best.h5")  # the bare module

Modules: model (HybridModel: towers, gate, scoring), encoders (the dynamic
tower: GRU or SASRec), history (history windows), losses (the training
loss over scores), checkpoint (load/save dtrain checkpoints), inference (a
checkpoint's inference data: id maps, histories, TF-IDF rows, popularity),
serving (Recommender: recommend/score from a checkpoint alone, traceable
with torch.jit.trace), data (the prepared data set, TF-IDF, context
features), graddump (the loss/gradient dump dtrain writes for one training
batch, and its check).

Install with `pip install ./python` from the repository root (or put
`python/` on PYTHONPATH).
"""
from .checkpoint import load_checkpoint, load_state, save_checkpoint
from .data import context_features, load_dataset, load_tfidf, tfidf_row_fn
from .history import Windows, chunk_windows, example_windows, window_bounds
from .inference import read_inference
from .losses import LOSSES, Batch, batch_loss
from .model import VARIANTS, HybridModel
from .serving import Recommendation, Recommender, load

__all__ = ["HybridModel", "VARIANTS", "LOSSES", "Batch", "batch_loss", "Windows", "chunk_windows", "example_windows",
           "window_bounds", "context_features", "load_checkpoint", "load_state", "save_checkpoint", "load_dataset",
           "load_tfidf", "tfidf_row_fn", "read_inference", "Recommender", "Recommendation", "load"]
