"""A prepared dtrain data set (include/dtrain/dataset.h) read with h5py, and
the temporal context features (MODEL.md section 2 step 6)."""
import math

import torch


def load_tfidf(dataset_h5):
    """The prepared data set's TF-IDF matrix as a torch sparse (COO) tensor."""
    import h5py

    with h5py.File(dataset_h5, "r") as f:
        indptr = torch.as_tensor(f["tfidf/indptr"][()], dtype=torch.int64)
        indices = torch.as_tensor(f["tfidf/indices"][()], dtype=torch.int64)
        data = torch.as_tensor(f["tfidf/data"][()], dtype=torch.float32)
        vocab = len(f["tfidf/vocab"])
    n_items = indptr.numel() - 1
    rows = torch.repeat_interleave(torch.arange(n_items), indptr[1:] - indptr[:-1])
    return torch.sparse_coo_tensor(torch.stack([rows, indices]), data, size=(n_items, vocab)).coalesce()


def tfidf_row_fn(tfidf, dtype=torch.float32):
    """A callable items -> dense TF-IDF rows [N, vocab] (what HybridModel takes)."""
    def rows(items):
        return torch.index_select(tfidf, 0, items.reshape(-1)).to_dense().to(dtype)
    return rows


def load_dataset(dataset_h5):
    """The per-user lists of a prepared data set as numpy arrays: ptr, items,
    ts, n_train, n_valid, the train chunks (user, start, count), n_users,
    n_items and history_len."""
    import h5py

    with h5py.File(dataset_h5, "r") as f:
        d = {k: f["users"][k][()] for k in ("ptr", "items", "ts", "n_train", "n_valid")}
        d["chunks"] = {k: f["train_chunks"][k][()] for k in ("user", "start", "count")}
        d["n_items"] = len(f["items/ids"])
        d["history_len"] = int(f.attrs["history_len"])
        d["split"] = f.attrs["split"]
        if isinstance(d["split"], bytes):
            d["split"] = d["split"].decode()
    d["n_users"] = len(d["ptr"]) - 1
    return d


def context_features(ts, user_ts_prev=None, n_hist=None, history_len=50):
    """MODEL.md section 2 step 6 (+ v3's user statistics when n_hist is given)."""
    day = ts // 86400
    hour = (ts - day * 86400) / 3600.0
    dow = (day + 3) % 7
    c = [math.sin(2 * math.pi * hour / 24), math.cos(2 * math.pi * hour / 24), math.sin(2 * math.pi * dow / 7),
         math.cos(2 * math.pi * dow / 7), 1.0 if dow >= 5 else 0.0]
    if n_hist is not None:
        gap = 0.0 if user_ts_prev is None else min(max((ts - user_ts_prev) / 86400.0, 0.0), 365.0)
        c += [math.log1p(min(n_hist, history_len)) / math.log1p(history_len), math.log1p(gap) / math.log(366.0)]
    return c
