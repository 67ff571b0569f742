"""A checkpoint's inference data (the /inference group, include/dtrain/ckpt.h),
or the same taken from a prepared data set for checkpoints written before
dtrain stored it. A dict:

    user_ids, item_ids   lists of str (bytewise-sorted original ids)
    user_ptr             int64 [n_users + 1]: user u's list is user_items[ptr[u]:ptr[u+1]]
    user_items           int32 [n]: every item of each list, in list order (train, valid, test)
    user_n_train         int32 [n_users]: train prefix of each list
    user_last_ts         int64 [n_users]: unix time of each list's last item (0 when empty)
    item_popularity      int64 [n_items]: train interactions per item
    history_mode         "prefix" | "user_train" | "chunk" (the window rule, MODEL.md 1a)
    history_len          L
    tfidf                torch sparse COO [n_items, vocab] or None (no content tower)
"""
import numpy as np
import torch


def _strings(ds):
    return [s.decode("utf-8", "surrogateescape") if isinstance(s, bytes) else str(s) for s in ds[()]]


def _sparse(indptr, indices, data, n_items, vocab):
    indptr = torch.as_tensor(np.asarray(indptr), dtype=torch.int64)
    rows = torch.repeat_interleave(torch.arange(n_items), indptr[1:] - indptr[:-1])
    idx = torch.stack([rows, torch.as_tensor(np.asarray(indices), dtype=torch.int64)])
    vals = torch.as_tensor(np.asarray(data), dtype=torch.float32)
    return torch.sparse_coo_tensor(idx, vals, size=(n_items, vocab)).coalesce()


def _attr_str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def has_inference(path):
    import h5py

    with h5py.File(path, "r") as f:
        return "inference" in f


def read_inference(path):
    """The /inference group of a dtrain checkpoint or export."""
    import h5py

    with h5py.File(path, "r") as f:
        if "inference" not in f:
            raise ValueError(f"{path} has no inference data (/inference): an older dtrain wrote it. Export it where "
                             f"its data set is (`dtrain export --checkpoint {path} -o model.h5`), or pass dataset=")
        g = f["inference"]
        d = {"user_ids": _strings(g["users/ids"]), "item_ids": _strings(g["items/ids"]),
             "user_ptr": g["users/ptr"][()].astype(np.int64), "user_items": g["users/items"][()].astype(np.int32),
             "user_n_train": g["users/n_train"][()].astype(np.int64),
             "user_last_ts": g["users/last_ts"][()].astype(np.int64),
             "item_popularity": g["items/popularity"][()].astype(np.int64),
             "history_mode": _attr_str(g.attrs["history_mode"]), "history_len": int(g.attrs["history_len"])}
        n_items = len(d["item_ids"])
        d["tfidf"] = None
        if "tfidf" in g:
            d["tfidf"] = _sparse(g["tfidf/indptr"][()], g["tfidf/indices"][()], g["tfidf/data"][()], n_items,
                                 int(g.attrs["vocab_size"]))
    return d


def from_dataset(dataset_h5, history_mode):
    """The same dict from a prepared data set (dataset.h) and the model's history mode."""
    import h5py

    with h5py.File(dataset_h5, "r") as f:
        ptr = f["users/ptr"][()].astype(np.int64)
        items = f["users/items"][()].astype(np.int32)
        ts = f["users/ts"][()].astype(np.int64)
        n_train = f["users/n_train"][()].astype(np.int64)
        d = {"user_ids": _strings(f["users/ids"]), "item_ids": _strings(f["items/ids"]), "user_ptr": ptr,
             "user_items": items, "user_n_train": n_train, "history_mode": history_mode,
             "history_len": int(f.attrs["history_len"])}
        n_items = len(d["item_ids"])
        vocab = len(f["tfidf/vocab"])
        d["tfidf"] = _sparse(f["tfidf/indptr"][()], f["tfidf/indices"][()], f["tfidf/data"][()], n_items, vocab) \
            if vocab > 0 else None
    lens = ptr[1:] - ptr[:-1]
    d["user_last_ts"] = np.where(lens > 0, ts[np.maximum(ptr[1:] - 1, 0)] if len(ts) else 0, 0).astype(np.int64)
    train = np.concatenate([items[ptr[u]:ptr[u] + n_train[u]] for u in range(len(lens))]) if len(lens) else items
    d["item_popularity"] = np.bincount(train, minlength=n_items).astype(np.int64)
    return d
