"""Unit tests of python/dtrain_torch (run by tests/cli/torch_check_unit.sh):

- SASRec against a straightforward reference built from torch.nn.MultiheadAttention
  (causal mask) and torch.nn.LayerNorm with the same parameters;
- the GRU encoder against torch.nn.GRU run on each history alone;
- chunk windows (one pass per chunk) equal each example's own window;
- the losses against direct formulas, their gradients by torch.autograd.gradcheck
  (float64), and the whole model's loss gradient by gradcheck;
- v3's one-GEMM scoring equals per-candidate scoring; dynamic_only;
- checkpoint names (MODEL.md 1c) and round trip;
- the gradient dump check passes a float32 PyTorch dump and fails perturbed ones.

    PYTHONPATH=python /usr/bin/python3 -m unittest tests/python/test_dtrain_torch.py
"""
import math
import os
import random
import tempfile
import unittest

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.stateless import functional_call

import dtrain_torch as dt
from dtrain_torch import graddump, losses
from dtrain_torch.history import Windows


def tiny_cfg(version="v3", variant="full", encoder="sasrec", L=4, heads=2, blocks=2, dim=8):
    return {"data": {"history_len": L, "output": ""},
            "model": {"version": version, "variant": variant, "encoder": encoder, "history": "chunk", "dim": dim,
                      "gru_hidden": 6, "sasrec_blocks": blocks, "sasrec_heads": heads, "static_hidden": 10,
                      "content_hidden1": 7, "content_hidden2": 5, "gate_hidden": 4, "head_hidden": 3,
                      "dropout_static": 0.1, "dropout_gru": 0.1, "dropout_content": 0.2, "dropout_head": 0.1}}


def make_model(cfg, n_users=6, n_items=13, vocab=0, seed=0):
    torch.manual_seed(seed)
    m = dt.HybridModel(cfg, n_users, n_items, vocab)
    with torch.no_grad():  # every parameter away from its neutral initial value
        for name, p in m.named_parameters():
            if "ln" in name or "bias" in name or "pos_emb" in name:
                p.add_(0.3 * torch.randn_like(p))
        if m.use_dynamic:
            m.dynamic.item_emb.weight[0].zero_()
    return m


def random_lists(n_users, n_items, length, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {u: torch.randint(0, n_items, (length,), generator=g).tolist() for u in range(n_users)}


def sasrec_reference(enc, seq, heads):
    """SASRec's state at every position of one window, with nn.MultiheadAttention
    and nn.LayerNorm holding the encoder's parameters."""
    d = enc.dim
    x = math.sqrt(d) * enc.item_emb.weight[torch.tensor(seq) + 1] + enc.pos_emb[: len(seq)]
    x = x.unsqueeze(0)
    T = len(seq)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)  # True: may not attend

    def ln(src):
        m = nn.LayerNorm(d, eps=1e-8).double()
        m.load_state_dict(src.state_dict())
        return m

    for b in enc.blocks:
        mha = nn.MultiheadAttention(d, heads, batch_first=True).double()
        mha.load_state_dict(b.attn.state_dict())
        h = ln(b.ln1)(x)
        a = x + mha(h, h, h, attn_mask=mask, need_weights=False)[0]
        x = a + b.ffn.fc2(torch.relu(b.ffn.fc1(ln(b.ln2)(a))))
    return ln(enc.ln_final)(x)[0]


class TestEncoders(unittest.TestCase):
    def test_sasrec_matches_multihead_attention_reference(self):
        for heads in (1, 2):
            m = make_model(tiny_cfg(heads=heads)).double().eval()
            hist = [[3, 1, 4, 1, 5, 9, 2], [6], [], [2, 7, 1, 8]]
            win = Windows.per_example(hist)
            with torch.no_grad():
                states = m.dynamic.states(win)
                h_d = m.dynamic(win)
                for r, seq in enumerate(hist):
                    if not seq:
                        self.assertEqual(float(h_d[r].abs().max()), 0.0, "an empty history gives 0")
                        continue
                    ref = sasrec_reference(m.dynamic, seq, heads)
                    self.assertLess(float((states[r, : len(seq)] - ref).abs().max()), 1e-12)
                    self.assertLess(float((h_d[r] - ref[-1]).abs().max()), 1e-12)

    def test_sasrec_is_causal_and_uses_positions(self):
        m = make_model(tiny_cfg()).double().eval()
        with torch.no_grad():
            a = m.dynamic.states(Windows.per_example([[1, 2, 3, 4]]))
            b = m.dynamic.states(Windows.per_example([[1, 2, 3, 9]]))
            self.assertLess(float((a[0, :3] - b[0, :3]).abs().max()), 1e-14, "a later item changed an earlier state")
            self.assertGreater(float((a[0, 3] - b[0, 3]).abs().max()), 1e-6)
            # the same items at other window positions give other states
            c = m.dynamic.states(Windows.per_example([[5, 1, 2, 3]]))
            self.assertGreater(float((a[0, 2] - c[0, 3]).abs().max()), 1e-6)

    def test_sasrec_rejects_windows_longer_than_2L(self):
        m = make_model(tiny_cfg(L=2))
        with self.assertRaises(ValueError):
            m.dynamic(Windows.per_example([[1, 2, 3, 4, 5]]))

    def test_gru_matches_nn_gru_per_history(self):
        m = make_model(tiny_cfg(encoder="gru")).double().eval()
        hist = [[3, 1, 4], [], [6, 2, 2, 7, 1]]
        with torch.no_grad():
            h_d = m.dynamic(Windows.per_example(hist))
            for r, seq in enumerate(hist):
                if seq:
                    _, h = m.dynamic.gru(m.dynamic.item_emb(torch.tensor(seq) + 1).unsqueeze(0))
                    state = h[-1, 0]
                else:
                    state = torch.zeros(m.dynamic.gru.hidden_size, dtype=torch.float64)
                self.assertLess(float((h_d[r] - m.dynamic.proj(state)).abs().max()), 1e-12)

    def test_chunk_windows_equal_each_examples_own_window(self):
        L = 4
        lists = random_lists(5, 13, 14)
        units = [(0, 0, 4), (1, 4, 4), (2, 8, 4), (3, 12, 2), (4, 4, 3)]
        for encoder in ("sasrec", "gru"):
            m = make_model(tiny_cfg(encoder=encoder, L=L)).double().eval()
            win, users, pos = dt.chunk_windows(lambda u: lists[u], units, L)
            self.assertEqual(len(win.seqs), len(units), "one window per chunk")
            own = dt.example_windows(lambda u: lists[u], users, pos, "chunk", L)
            self.assertGreater(len(own.seqs), len(win.seqs))
            with torch.no_grad():
                a, b = m.dynamic(win), m.dynamic(own)
            self.assertLess(float((a - b).abs().max()), 1e-12, encoder)
            # and the windows are what MODEL.md 1a says: [w, t), w = max(0, L*floor(t/L) - L)
            for e in range(users.numel()):
                u, t = int(users[e]), int(pos[e])
                w = max(0, L * (t // L) - L)
                self.assertEqual(win.seqs[int(win.ex_seq[e])][: int(win.readout[e])], lists[u][w:t])

    def test_window_bounds(self):
        self.assertEqual(dt.window_bounds("prefix", 4, 6, 9), (2, 6))
        self.assertEqual(dt.window_bounds("prefix", 4, 3, 9), (0, 3))
        self.assertEqual(dt.window_bounds("user_train", 4, 6, 9), (5, 9))
        self.assertEqual(dt.window_bounds("chunk", 4, 3, 0), (0, 3))
        self.assertEqual(dt.window_bounds("chunk", 4, 9, 0), (4, 9))
        self.assertEqual(dt.window_bounds("chunk", 4, 11, 0), (4, 11))


class TestLosses(unittest.TestCase):
    def setUp(self):
        g = torch.Generator().manual_seed(3)
        self.s_pos = torch.randn(5, generator=g, dtype=torch.float64)
        self.s_neg = torch.randn(5, 3, generator=g, dtype=torch.float64)
        self.s_all = torch.randn(5, 7, generator=g, dtype=torch.float64)
        self.pos = torch.tensor([0, 3, 6, 2, 2])
        self.alpha = torch.softmax(torch.randn(5, 3, generator=g, dtype=torch.float64), dim=1)

    def test_against_direct_formulas(self):
        sig = lambda x: 1.0 / (1.0 + math.exp(-x))
        sp, sn, sa = self.s_pos.tolist(), self.s_neg.tolist(), self.s_all.tolist()
        B, n = len(sp), len(sn[0])
        want = {
            "bpr": sum(-math.log(sig(sp[b] - sn[b][j])) for b in range(B) for j in range(n)) / (B * n),
            "bce": sum(-math.log(sig(sp[b])) - sum(math.log(sig(-x)) for x in sn[b]) for b in range(B)) / B,
            "sampled_softmax": sum(-sp[b] + math.log(math.exp(sp[b]) + sum(math.exp(x) for x in sn[b]))
                                   for b in range(B)) / B,
            "softmax": sum(-sa[b][int(self.pos[b])] + math.log(sum(math.exp(x) for x in sa[b])) for b in range(B)) / B,
        }
        got = {"bpr": losses.bpr(self.s_pos, self.s_neg), "bce": losses.bce(self.s_pos, self.s_neg),
               "sampled_softmax": losses.sampled_softmax(self.s_pos, self.s_neg),
               "softmax": losses.softmax(self.s_all, self.pos)}
        for k in want:
            self.assertAlmostEqual(float(got[k]), want[k], places=12, msg=k)
        a = self.alpha.tolist()
        ent = sum(sum(x * math.log(x + 1e-8) for x in row) for row in a) / B
        bal = sum((sum(row[k] for row in a) / B - 1.0 / 3.0) ** 2 for k in range(3))
        self.assertAlmostEqual(float(losses.entropy(self.alpha)), ent, places=12)
        self.assertAlmostEqual(float(losses.balance(self.alpha)), bal, places=12)

    def test_gradcheck(self):
        sp, sn, sa, al = (t.clone().requires_grad_() for t in (self.s_pos, self.s_neg, self.s_all, self.alpha))
        gc = torch.autograd.gradcheck
        self.assertTrue(gc(losses.bpr, (sp, sn)))
        self.assertTrue(gc(losses.bce, (sp, sn)))
        self.assertTrue(gc(losses.sampled_softmax, (sp, sn)))
        self.assertTrue(gc(lambda s: losses.softmax(s, self.pos), (sa,)))
        self.assertTrue(gc(losses.entropy, (al,)))
        self.assertTrue(gc(losses.balance, (al,)))


def tfidf_rows_fn(n_items, vocab, seed=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_items, vocab, generator=g, dtype=torch.float64) * (torch.rand(n_items, vocab, generator=g) < 0.4)
    x = x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return lambda items: x[items.reshape(-1)]


def chunk_batch(model, n_users, n_items, L, loss, seed=2):
    lists = random_lists(n_users, n_items, 3 * L, seed)
    units = [(0, 0, L), (1, L, L), (2, 2 * L, L - 1), (3, L, 2)]
    win, users, pos = dt.chunk_windows(lambda u: lists[u], units, L)
    B = users.numel()
    g = torch.Generator().manual_seed(seed)
    positives = torch.tensor([lists[int(u)][int(p)] for u, p in zip(users, pos)])
    if loss in ("bpr", "bce"):
        cands = torch.cat([positives[:, None], torch.randint(0, n_items, (B, 2), generator=g)], dim=1)
    else:
        cands = positives[:, None]
    shared = torch.randint(0, n_items, (5,), generator=g) if loss == "sampled_softmax" else None
    ctx = torch.randn(B, 7 if model.version == 3 else 5, generator=g, dtype=torch.float64)
    return dt.Batch(users, cands, win if model.use_dynamic else None, ctx, shared)


class TestModel(unittest.TestCase):
    def test_sasrec_checkpoint_names(self):
        m = make_model(tiny_cfg(variant="dynamic_only", L=4, blocks=2))
        names = set(m.checkpoint_params())
        block = ["ln1.weight", "ln1.bias", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
                 "attn.out_proj.bias", "ln2.weight", "ln2.bias", "ffn.fc1.weight", "ffn.fc1.bias", "ffn.fc2.weight",
                 "ffn.fc2.bias"]
        want = {"static.user_emb", "static.item_emb", "static.item_bias", "dynamic.item_emb", "dynamic.pos_emb",
                "dynamic.ln_final.weight", "dynamic.ln_final.bias"} | {f"dynamic.blocks.{k}.{n}" for k in (0, 1)
                                                                        for n in block}
        self.assertEqual(names, want)
        p = m.checkpoint_params()
        self.assertEqual(tuple(p["dynamic.pos_emb"].shape), (8, 8))
        self.assertEqual(tuple(p["dynamic.blocks.0.attn.in_proj_weight"].shape), (24, 8))
        self.assertEqual(tuple(p["dynamic.item_emb"].shape), (14, 8))
        self.assertFalse(any(n.startswith("dynamic.proj") or n.startswith("gate.") for n in names))

    def test_checkpoint_round_trip(self):
        with tempfile.TemporaryDirectory() as tmp:
            for version, variant, encoder in (("v3", "full", "sasrec"), ("v2", "dynamic_only", "sasrec"),
                                              ("v3", "dynamic_only", "gru"), ("v1", "full", "gru")):
                cfg = tiny_cfg(version, variant, encoder)
                m = make_model(cfg, vocab=9).eval()
                path = os.path.join(tmp, "ck.h5")
                dt.save_checkpoint(m, cfg, path)
                m2, _ = dt.load_checkpoint(path)
                m2.eval()
                b = chunk_batch(m, 6, 13, 4, "bpr")
                rows = tfidf_rows_fn(13, 9)
                rows32 = lambda items: rows(items).float()
                with torch.no_grad():
                    a = m(b.users, b.cands, b.windows, b.ctx.float(), rows32)[0]
                    c = m2(b.users, b.cands, b.windows, b.ctx.float(), rows32)[0]
                self.assertEqual(float((a - c).abs().max()), 0.0, f"{version} {variant} {encoder}")

    def test_dynamic_only_checkpoint_without_static_tables(self):
        cfg = tiny_cfg("v3", "dynamic_only", "sasrec")
        m = make_model(cfg).eval()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ck.h5")
            dt.save_checkpoint(m, cfg, path)
            with h5py.File(path, "a") as f:
                del f["params/static.user_emb"], f["params/static.item_emb"]
            m2, _ = dt.load_checkpoint(path)
        m2.eval()
        self.assertIsNone(m2.static.user_emb)
        b = chunk_batch(m, 6, 13, 4, "bpr")
        with torch.no_grad():
            self.assertEqual(float((m(b.users, b.cands, b.windows, b.ctx.float())[0] -
                                    m2(b.users, b.cands, b.windows, b.ctx.float())[0]).abs().max()), 0.0)

    def test_dynamic_only_v3_is_sasrec_with_item_bias(self):
        m = make_model(tiny_cfg("v3", "dynamic_only", "sasrec")).double().eval()
        b = chunk_batch(m, 6, 13, 4, "bpr")
        with torch.no_grad():
            s, alpha = m(b.users, b.cands, b.windows, b.ctx)
            h = m.dynamic(b.windows)
            want = (m.dynamic.item_emb(b.cands + 1) * h[:, None, :]).sum(-1) + m.static.item_bias[b.cands]
        self.assertEqual(alpha[0].tolist(), [0.0, 1.0, 0.0])
        self.assertLess(float((s - want).abs().max()), 1e-12)
        self.assertFalse(hasattr(m, "gate") or hasattr(m, "content"))

    def test_score_items_equals_per_candidate_scores(self):
        rows = tfidf_rows_fn(13, 9)
        for version, variant, encoder in (("v3", "full", "sasrec"), ("v3", "dynamic_only", "gru"),
                                          ("v3", "no_dynamic", "gru"), ("v2", "full", "sasrec"),
                                          ("v1", "dynamic_only", "gru")):
            m = make_model(tiny_cfg(version, variant, encoder), vocab=9).double().eval()
            b = chunk_batch(m, 6, 13, 4, "softmax")
            B = b.users.numel()
            with torch.no_grad():
                user = m.encode_users(b.users, b.windows, b.ctx)
                items = torch.arange(13)
                gemm = m.score_items(user, items, rows, chunk=5)
                pairs = m.score(user, items.unsqueeze(0).expand(B, -1), rows)
            self.assertLess(float((gemm - pairs).abs().max()), 1e-12, f"{version} {variant} {encoder}")

    def test_model_loss_gradcheck(self):
        """d loss / d every parameter of small models, by finite differences (float64)."""
        rows = tfidf_rows_fn(13, 9)
        cases = [("v3", "full", "sasrec", "bce"), ("v3", "dynamic_only", "sasrec", "sampled_softmax"),
                 ("v3", "full", "gru", "softmax"), ("v2", "full", "sasrec", "bpr"),
                 ("v2", "dynamic_only", "sasrec", "softmax"), ("v1", "no_attention", "gru", "sampled_softmax")]
        for version, variant, encoder, loss in cases:
            m = make_model(tiny_cfg(version, variant, encoder, dim=4, heads=2), vocab=9).double().eval()
            b = chunk_batch(m, 6, 13, 4, loss)
            names = [n for n, _ in m.named_parameters()]
            params = [p.detach().clone().requires_grad_() for _, p in m.named_parameters()]

            wrapped = _LossOf(m, b, loss, rows)

            def f(*ps):
                return functional_call(wrapped, {"model." + n: p for n, p in zip(names, ps)}, ())

            self.assertTrue(torch.autograd.gradcheck(f, params, eps=1e-6, atol=1e-6, rtol=1e-4),
                            f"{version} {variant} {encoder} {loss}")


    def test_sparse_tfidf_rows_equal_dense(self):
        m = make_model(tiny_cfg("v3", "full", "gru"), vocab=9).double().eval()
        rows = tfidf_rows_fn(13, 9)
        items = torch.tensor([0, 5, 12, 5])
        with torch.no_grad():
            dense = m.content_tower(rows(items))
            sparse = m.content_tower(rows(items).to_sparse())
        self.assertLess(float((dense - sparse).abs().max()), 1e-12)

    def test_init_like_dtrain(self):
        m = dt.HybridModel(tiny_cfg("v3", "full", "sasrec", dim=16), 50, 40, 9).init_like_dtrain()
        self.assertEqual(float(m.dynamic.item_emb.weight[0].abs().max()), 0.0)
        self.assertEqual(float(m.static.item_bias.abs().max()), 0.0)
        self.assertAlmostEqual(float(m.static.user_emb.weight.std()), 0.01, delta=0.002)
        self.assertAlmostEqual(float(m.dynamic.pos_emb.std()), 0.01, delta=0.003)
        self.assertEqual(float(m.dynamic.blocks[0].attn.in_proj_bias.abs().max()), 0.0)
        self.assertEqual(m.dynamic.blocks[1].ln1.eps, 1e-8)
        self.assertLess(float(m.gate.fc2.weight.abs().max()), 0.06)
        bound = math.sqrt(6.0 / (16 + 16))
        self.assertLessEqual(float(m.dynamic.blocks[0].ffn.fc1.weight.abs().max()), bound)


class _LossOf(nn.Module):
    """The total loss of a batch as a module, so functional_call can swap its parameters."""

    def __init__(self, model, batch, loss, rows):
        super().__init__()
        self.model, self.batch, self.loss, self.rows = model, batch, loss, rows

    def forward(self):
        return losses.batch_loss(self.model, self.batch, self.loss, 0.05, 0.01, self.rows)["total"]


class TestGradDump(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def dump(self, version, variant, encoder, loss, dtype=torch.float32):
        cfg = tiny_cfg(version, variant, encoder, dim=8, heads=2)
        m = make_model(cfg)
        ck = os.path.join(self.dir, "ck.h5")
        dt.save_checkpoint(m, cfg, ck)
        m, _ = dt.load_checkpoint(ck)  # the parameters as stored (float32)
        m = m.to(dtype)
        b = chunk_batch(m, 6, 13, 4, loss)
        b.ctx = b.ctx.float().to(dtype)
        path = os.path.join(self.dir, "dump.h5")
        graddump.write_dump(path, "ck.h5", m, b, loss, 0.05, 0.01)
        return path

    def check(self, path, **tol):
        return graddump.check_dump(path, **tol)

    def test_float32_dumps_pass(self):
        for version, variant, encoder in (("v3", "full", "sasrec"), ("v3", "dynamic_only", "sasrec"),
                                          ("v3", "dynamic_only", "gru"), ("v2", "full", "sasrec")):
            for loss in dt.LOSSES:
                r = self.check(self.dump(version, variant, encoder, loss))
                self.assertEqual(r.failures, [], f"{version} {variant} {encoder} {loss}")
                names = {row["name"].split("[")[0] for row in r.rows}
                self.assertIn("grad.dynamic.item_emb", names)
                self.assertIn("loss.total", names)

    def test_float64_dump_passes_tightly(self):
        r = self.check(self.dump("v3", "full", "sasrec", "bce", torch.float64), rtol=1e-6, noise_factor=0)
        self.assertEqual(r.failures, [])

    def test_perturbed_dumps_fail(self):
        path = self.dump("v3", "dynamic_only", "sasrec", "bce")
        cases = {
            "a dense gradient": lambda f: _bump(f["grad/dense/dynamic.blocks.1.attn.in_proj_weight"], 1e-3),
            "a table row": lambda f: _bump(f["grad/tables/dynamic.item_emb/values"], 1e-3),
            "the loss": lambda f: f["loss"].attrs.__setitem__("total", f["loss"].attrs["total"] * (1 + 1e-4)),
            "a missing row": lambda f: _drop_row(f, "dynamic.item_emb"),
            "a missing tensor": lambda f: f.__delitem__("grad/dense/dynamic.ln_final.weight"),
            "a wrong position": lambda f: _shift_readout(f),
        }
        self.assertEqual(self.check(path).failures, [])
        for what, change in cases.items():
            bad = os.path.join(self.dir, "bad.h5")
            with open(path, "rb") as src, open(bad, "wb") as dst:
                dst.write(src.read())
            with h5py.File(bad, "a") as f:
                change(f)
            self.assertNotEqual(self.check(bad).failures, [], f"{what} was not detected")


    def test_command_line_exit_codes(self):
        import subprocess
        import sys
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        tool = os.path.join(root, "tools", "torch_grad_check.py")
        env = dict(os.environ, PYTHONPATH=os.path.join(root, "python"))
        path = self.dump("v3", "dynamic_only", "sasrec", "sampled_softmax")
        with h5py.File(path, "a") as f:  # dynamic_only has no gate: the context may be left out
            del f["batch/context"]
        run = lambda *a: subprocess.run([sys.executable, tool, *a], env=env, capture_output=True, text=True)
        ok = run(path)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        self.assertIn("grad.dynamic.blocks.1.ffn.fc2.weight", ok.stdout)
        with h5py.File(path, "a") as f:
            _bump(f["grad/dense/dynamic.pos_emb"], 1e-2)
        bad = run(path)
        self.assertEqual(bad.returncode, 1, bad.stdout)
        self.assertIn("FAIL", bad.stdout)
        with h5py.File(path, "a") as f:
            f.attrs["format_version"] = 99
        self.assertEqual(run(path).returncode, 2)
        self.assertIn("DUMP FORMAT", run("--format").stdout)


class TestTorchCheckTool(unittest.TestCase):
    """tools/torch_check.py on a sasrec dynamic_only checkpoint, with a dump
    written here the way dtrain's `eval --dump` writes one."""

    def test_sasrec_checkpoint_and_window_rule(self):
        import json
        import subprocess
        import sys
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        L, n_users, n_items = 4, 5, 13
        lists = random_lists(n_users, n_items, 11, seed=4)
        n_train = [9, 10, 6, 8, 9]
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "data.h5")
            with h5py.File(data, "w") as f:  # the parts of dataset.h's layout the tool reads
                f["users/ptr"] = np.arange(0, 11 * n_users + 1, 11, dtype=np.int64)
                f["users/items"] = np.array([i for u in range(n_users) for i in lists[u]], dtype=np.int32)
                f["users/ts"] = np.arange(11 * n_users, dtype=np.int64) * 86400
                f["users/n_train"] = np.array(n_train, dtype=np.int32)
                f["users/n_valid"] = np.ones(n_users, dtype=np.int32)
                for k in ("user", "start", "count"):
                    f[f"train_chunks/{k}"] = np.zeros(1, dtype=np.int32)
                f["items/ids"] = np.array([b"i%d" % i for i in range(n_items)])
                f.attrs["history_len"] = L
                f.attrs["split"] = "temporal"
            cfg = tiny_cfg("v3", "dynamic_only", "sasrec", L=L)
            cfg["data"]["output"] = data
            m = make_model(cfg, n_users, n_items).eval()
            ck = os.path.join(tmp, "ck.h5")
            dt.save_checkpoint(m, cfg, ck)

            def dump(path, shift):
                users = list(range(n_users))
                hist = []
                for u in users:
                    lo, hi = dt.window_bounds("chunk", L, n_train[u], n_train[u])
                    hist.append(lists[u][lo + shift:hi])
                cands = torch.tensor([[lists[u][n_train[u]], 0, 5] for u in users])
                with torch.no_grad():
                    sc, al = m(torch.tensor(users), cands, hist, torch.zeros(n_users, 7))
                with open(path, "w") as f:
                    for k, u in enumerate(users):
                        f.write(json.dumps({"user": u, "pos": n_train[u], "ts": 0, "history": hist[k],
                                            "n_train": n_train[u], "candidates": cands[k].tolist(),
                                            "context": [0.0] * 7, "scores": sc[k].tolist(),
                                            "alpha": al[k].tolist()}) + "\n")

            env = dict(os.environ, PYTHONPATH=os.path.join(root, "python"))
            tool = os.path.join(root, "tools", "torch_check.py")
            good, off = os.path.join(tmp, "good.jsonl"), os.path.join(tmp, "off.jsonl")
            dump(good, 0)
            dump(off, 1)  # one item short of the window's start: positions shift
            r = subprocess.run([sys.executable, tool, ck, good], env=env, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("dynamic_only (sasrec)", r.stdout)
            r = subprocess.run([sys.executable, tool, ck, off], env=env, capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn("histories off the window rule", r.stdout)


class TestSampledProtocol(unittest.TestCase):
    """bench/torch_sasrec_train.py's evaluation: MODEL.md 3's candidates and ranks."""

    def test_candidates(self):
        import importlib.util
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        spec = importlib.util.spec_from_file_location("tst", os.path.join(root, "bench", "torch_sasrec_train.py"))
        tst = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tst)
        data = type("D", (), {})()
        data.n_items, data.n_users = 120, 3
        data.lists = [np.array([1, 2, 3, 4, 5]), np.array([7, 8, 9]), np.arange(0, 110)]
        data.n_train, data.n_valid = np.array([3, 1, 100]), np.array([1, 1, 5])
        users, pos, cands = tst.eval_candidates(data, "test", 99, seed=0)
        self.assertEqual(users.tolist(), [0, 1, 2])
        self.assertEqual(pos.tolist(), [4, 2, 105])
        for u, p, c in zip(users, pos, cands):
            self.assertEqual(c[0], data.lists[u][p])
            neg = c[1:][c[1:] >= 0]
            self.assertEqual(len(set(neg.tolist())), len(neg), "distinct negatives")
            self.assertFalse(set(neg.tolist()) & set(data.lists[u].tolist()), "never-seen items only")
            self.assertEqual(len(neg), min(99, 120 - len(set(data.lists[u].tolist()))))
        users_v, pos_v, _ = tst.eval_candidates(data, "valid", 99, seed=0)
        self.assertEqual(pos_v.tolist(), [3, 1, 100])


def _bump(ds, rel):
    v = ds[()]
    i = np.unravel_index(np.argmax(np.abs(v)), v.shape)
    v[i] += rel * np.abs(v).max()
    ds[...] = v


def _drop_row(f, table):
    g = f[f"grad/tables/{table}"]
    rows, vals = g["rows"][()], g["values"][()]
    k = int(np.argmax(np.abs(vals).max(axis=1)))
    del g["rows"], g["values"]
    g["rows"] = np.delete(rows, k)
    g["values"] = np.delete(vals, k, axis=0)


def _shift_readout(f):
    r = f["batch/ex_readout"][()]
    k = int(np.argmax(r))
    r[k] -= 1
    f["batch/ex_readout"][...] = r


if __name__ == "__main__":
    unittest.main()
