"""Unit tests of python/dtrain_torch's serving module (serving.py, inference.py),
run by tests/cli/torch_check_unit.sh; no dtrain binary needed (the scores
against `dtrain recommend` are tests/cli/torch_check_serving.sh):

- Recommender's batched, padded scoring equals HybridModel's own path (each
  user's window by history.window_bounds, its context by
  data.context_features, then score_items), for v1/v2/v3, GRU and SASRec,
  every history mode and the ablations;
- forward excludes the user's items and gives a user without history the
  popularity counts; recommend ranks, breaks ties by item index and says
  "popularity" for the fallback; unknown ids raise KeyError;
- torch.jit.trace of the Recommender generalises to other users, times and
  batch sizes, and survives torch.jit.save / torch.jit.load;
- dtrain_torch.load reads /inference (ckpt.h's layout) and, for a checkpoint
  without it, the prepared data set.

    PYTHONPATH=python /usr/bin/python3 -m unittest tests/python/test_serving.py
"""
import io
import os
import tempfile
import unittest
import warnings

import h5py
import numpy as np
import torch

import dtrain_torch as dt
from dtrain_torch.model import UserSide


def cfg_for(version="v3", variant="full", encoder="gru", history="chunk", L=4):
    return {"data": {"history_len": L, "output": ""},
            "model": {"version": version, "variant": variant, "encoder": encoder, "history": history, "dim": 8,
                      "gru_hidden": 6, "sasrec_blocks": 2, "sasrec_heads": 2, "static_hidden": 10,
                      "content_hidden1": 7, "content_hidden2": 5, "gate_hidden": 4, "head_hidden": 3,
                      "dropout_static": 0.1, "dropout_gru": 0.1, "dropout_content": 0.2, "dropout_head": 0.1}}


N_USERS, N_ITEMS, VOCAB = 7, 17, 11


def make_inference(L, mode, seed=0):
    """Lists of varied lengths (one empty), train prefixes, times, popularity, TF-IDF."""
    g = np.random.default_rng(seed)
    lens = [0, 1, 3, L, 2 * L + 1, 3 * L - 1, 5]
    lists = [g.integers(0, N_ITEMS, n).tolist() for n in lens]
    ptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    n_train = np.array([max(0, n - g.integers(0, 3)) for n in lens], dtype=np.int64)
    items = np.array([i for l in lists for i in l], dtype=np.int32)
    pop = np.bincount(np.concatenate([np.array(l[:t], dtype=np.int64) for l, t in zip(lists, n_train)]),
                      minlength=N_ITEMS)
    rows, cols = np.nonzero(g.random((N_ITEMS, VOCAB)) < 0.3)
    vals = g.random(rows.size).astype(np.float32)
    tfidf = torch.sparse_coo_tensor(torch.tensor(np.stack([rows, cols])), torch.tensor(vals),
                                    size=(N_ITEMS, VOCAB)).coalesce()
    return {"user_ids": ["u%02d" % u for u in range(N_USERS)], "item_ids": ["i%02d" % i for i in range(N_ITEMS)],
            "user_ptr": ptr, "user_items": items, "user_n_train": n_train,
            "user_last_ts": np.array([0] + [1_600_000_000 + 3600 * u for u in range(1, N_USERS)], dtype=np.int64),
            "item_popularity": pop.astype(np.int64), "history_mode": mode, "history_len": L, "tfidf": tfidf}, lists


def make_model(cfg, seed=0):
    torch.manual_seed(seed)
    m = dt.HybridModel(cfg, N_USERS, N_ITEMS, VOCAB)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.add_(0.3 * torch.randn_like(p))
        if m.use_dynamic:
            m.dynamic.item_emb.weight[0].zero_()
    return m.eval()


def reference_scores(m, inf, lists, users, t):
    """HybridModel's own path: window by window_bounds, context by context_features."""
    L, mode = inf["history_len"], inf["history_mode"]
    hist, ctx = [], []
    for u in users:
        pos = len(lists[u])
        lo, hi = dt.window_bounds(mode, L, pos, int(inf["user_n_train"][u]))
        hist.append(lists[u][lo:hi])
        prev = int(inf["user_last_ts"][u]) if pos > 0 else None
        ctx.append(dt.context_features(t, prev, pos if m.version == 3 else None, L))
    ctx = torch.tensor(ctx, dtype=torch.float32)
    rows = dt.tfidf_row_fn(inf["tfidf"]) if m.use_content else None
    user = m.encode_users(torch.tensor(users), hist, ctx)
    return m.score_items(user, torch.arange(N_ITEMS), rows)


CASES = [("v3", "full", "gru", "chunk"), ("v3", "full", "sasrec", "chunk"), ("v3", "full", "sasrec", "prefix"),
         ("v3", "no_content", "gru", "user_train"), ("v3", "static_only", "gru", "chunk"),
         ("v3", "dynamic_only", "sasrec", "chunk"), ("v2", "full", "gru", "prefix"),
         ("v2", "full", "sasrec", "user_train"), ("v2", "no_dynamic", "gru", "prefix"),
         ("v1", "no_attention", "gru", "prefix")]


class TestRecommender(unittest.TestCase):
    def test_scores_equal_the_models_own_path(self):
        t = 1_650_000_000
        for version, variant, encoder, mode in CASES:
            with self.subTest(version=version, variant=variant, encoder=encoder, mode=mode):
                cfg = cfg_for(version, variant, encoder, mode)
                m = make_model(cfg)
                inf, lists = make_inference(4, mode)
                r = dt.Recommender(m, inf, cfg)
                users = list(range(N_USERS))
                with torch.no_grad():
                    got = r.model_scores(torch.tensor(users), torch.full((N_USERS,), t))
                    want = reference_scores(m, inf, lists, users, t)
                self.assertLess(float((got - want).abs().max()), 2e-5)

    def test_forward_excludes_the_users_items_and_falls_back_to_popularity(self):
        cfg = cfg_for()
        inf, lists = make_inference(4, "chunk")
        r = dt.Recommender(make_model(cfg), inf, cfg)
        s = r(torch.arange(N_USERS), torch.full((N_USERS,), 1_650_000_000))
        for u in range(N_USERS):
            seen = set(lists[u])
            for i in range(N_ITEMS):
                self.assertEqual(bool(torch.isinf(s[u, i])), i in seen and u != 0, (u, i))
        self.assertEqual(s[0].tolist(), inf["item_popularity"].astype(np.float32).tolist())

    def test_recommend(self):
        cfg = cfg_for()
        inf, lists = make_inference(4, "chunk")
        r = dt.Recommender(make_model(cfg), inf, cfg)
        rec = r.recommend("u04", k=5, time=1_650_000_000)
        self.assertIsNone(rec.fallback)
        self.assertEqual(len(rec.items), 5)
        self.assertFalse(set(rec.items) & {"i%02d" % i for i in lists[4]})
        self.assertEqual(rec.scores, sorted(rec.scores, reverse=True))
        s = r.score(["u04"], rec.items, time=1_650_000_000)[0]
        self.assertLess(max(abs(a - b) for a, b in zip(s.tolist(), rec.scores)), 1e-6)
        self.assertEqual(list(rec), list(zip(rec.items, rec.scores)))
        # all unseen items when k is larger
        self.assertEqual(len(r.recommend("u04", k=100).items), N_ITEMS - len(set(lists[4])))
        fb = r.recommend("u00", k=N_ITEMS)
        self.assertEqual(fb.fallback, "popularity")
        pop = inf["item_popularity"]
        want = sorted(range(N_ITEMS), key=lambda i: (-pop[i], i))  # ties: lower index first, as dtrain
        self.assertEqual(fb.items, ["i%02d" % i for i in want])
        with self.assertRaises(KeyError):
            r.recommend("nobody")
        with self.assertRaises(KeyError):
            r.score(["u01"], ["no-item"])

    def test_trace_generalises_and_round_trips(self):
        for version, variant, encoder, mode in CASES[:3] + CASES[6:8]:
            with self.subTest(version=version, encoder=encoder, mode=mode):
                cfg = cfg_for(version, variant, encoder, mode)
                r = dt.Recommender(make_model(cfg), make_inference(4, mode)[0], cfg)
                ts = torch.jit.trace(r, r.example_inputs(2))
                users = torch.tensor([6, 0, 3, 4, 1])
                times = torch.tensor([1_600_000_000, 1_650_000_000, 1_500_000_123, 1_700_000_000, 1_600_086_399])
                want = r(users, times)
                self.assertTrue(torch.equal(ts(users, times), want))
                buf = io.BytesIO()
                torch.jit.save(ts, buf)
                buf.seek(0)
                self.assertTrue(torch.equal(torch.jit.load(buf)(users, times), want))
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # Recommender.trace: no TracerWarning reaches the user
                    self.assertTrue(torch.equal(r.trace()(users, times), want))


def write_checkpoint(path, m, cfg, inf=None):
    """A file in ckpt.h's layout: config, /params, and /inference when given."""
    dt.save_checkpoint(m, cfg, path)
    if inf is None:
        return
    with h5py.File(path, "r+") as f:
        g = f.create_group("inference")
        g["users/ids"] = np.array([u.encode() for u in inf["user_ids"]])
        g["users/ptr"] = inf["user_ptr"]
        g["users/items"] = inf["user_items"]
        g["users/n_train"] = inf["user_n_train"].astype(np.int32)
        g["users/last_ts"] = inf["user_last_ts"]
        g["items/ids"] = np.array([i.encode() for i in inf["item_ids"]])
        g["items/popularity"] = inf["item_popularity"]
        t = inf["tfidf"].to_sparse_csr()
        g["tfidf/indptr"], g["tfidf/indices"] = t.crow_indices().numpy(), t.col_indices().numpy().astype(np.int32)
        g["tfidf/data"] = t.values().numpy()
        g.attrs.update({"history_mode": inf["history_mode"], "history_len": inf["history_len"], "vocab_size": VOCAB,
                        "n_users": N_USERS, "n_items": N_ITEMS})


class TestLoad(unittest.TestCase):
    def test_load_reads_the_inference_group(self):
        cfg = cfg_for("v3", "full", "sasrec", "chunk")
        m = make_model(cfg)
        inf, _ = make_inference(4, "chunk")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.h5")
            write_checkpoint(path, m, cfg, inf)
            r = dt.load(path)
            self.assertFalse(r.training)
            direct = dt.Recommender(m, inf, cfg)
            users, times = torch.arange(N_USERS), torch.full((N_USERS,), 1_650_000_000)
            self.assertLess(float((r(users, times) - direct(users, times)).nan_to_num(posinf=0, neginf=0)
                                  .abs().max()), 1e-6)
            self.assertEqual(r.user_ids, inf["user_ids"])

    def test_load_without_inference_reads_the_data_set(self):
        cfg = cfg_for("v3", "full", "gru", "chunk")
        m = make_model(cfg)
        inf, lists = make_inference(4, "chunk")
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "data.h5")
            ts = np.zeros(len(inf["user_items"]), dtype=np.int64)
            for u in range(N_USERS):
                lo, hi = inf["user_ptr"][u], inf["user_ptr"][u + 1]
                ts[lo:hi] = inf["user_last_ts"][u] - 7200 * np.arange(hi - lo)[::-1]
            t = inf["tfidf"].to_sparse_csr()
            with h5py.File(data, "w") as f:  # the parts of dataset.h's layout it reads
                f["users/ptr"], f["users/items"], f["users/ts"] = inf["user_ptr"], inf["user_items"], ts
                f["users/n_train"] = inf["user_n_train"].astype(np.int32)
                f["users/ids"] = np.array([u.encode() for u in inf["user_ids"]])
                f["items/ids"] = np.array([i.encode() for i in inf["item_ids"]])
                f["tfidf/indptr"], f["tfidf/indices"] = t.crow_indices().numpy(), t.col_indices().numpy()
                f["tfidf/data"] = t.values().numpy()
                f["tfidf/vocab"] = np.array([b"t%d" % k for k in range(VOCAB)])
                f.attrs["history_len"] = 4
            path = os.path.join(tmp, "old.h5")
            write_checkpoint(path, m, cfg)
            with self.assertRaises(ValueError):
                dt.load(path)  # data.output is empty: nothing to read the histories from
            r = dt.load(path, dataset=data)
            direct = dt.Recommender(m, inf, cfg)
            self.assertTrue(np.array_equal(r.popularity.numpy(), inf["item_popularity"].astype(np.float32)))
            self.assertTrue(torch.equal(r.user_last_ts, torch.as_tensor(inf["user_last_ts"])))
            users, times = torch.arange(N_USERS), torch.full((N_USERS,), 1_650_000_000)
            self.assertTrue(torch.equal(r(users, times), direct(users, times)))


if __name__ == "__main__":
    unittest.main()
