"""Loss and gradient parity of one training batch: dtrain's dump against PyTorch.

dtrain writes, for one training batch, the inputs it saw, the loss parts it
computed and the gradients it got; `check_dump` recomputes them with this
package in float64 and compares tensor by tensor (tools/torch_grad_check.py
is the command line). `write_dump` writes the same format from PyTorch
(used to test the checker itself).

DUMP FORMAT (HDF5, format_version 1)

Root attributes:
  format          "dtrain-grad-dump"
  format_version  1
  checkpoint      path of a dtrain checkpoint holding the parameters the step
                  started from (its /params and its `config` attribute give
                  the model); a relative path is relative to the dump's
                  directory
  loss            "bpr" | "bce" | "sampled_softmax" | "softmax"
  lambda_ent      float64, the weight of the entropy term used in the step
  lambda_bal      float64, the weight of the balance term used in the step
  dropout_off     1: the step ran with every dropout off (required; the
                  check runs the model without dropout)
  ranks           int, informational: how many processes computed the step;
                  everything in the dump is of the whole global batch

/batch (the global batch, in one order; B examples):
  users           int32 [B]      the examples' users
  cands           int32 [B, C]   column 0 the positive item, then the
                                 example's own negatives (bpr, bce:
                                 C = 1 + train.n_neg; sampled_softmax and
                                 softmax: C = 1)
  shared          int32 [S]      sampled_softmax only: the n_neg negatives
                                 shared by the whole global batch
  context         float32 [B, G] the gate's input as dtrain built it
                                 (G = 5 for v1/v2, 7 for v3; may be left
                                 out when the model has no gate)
  windows/items   int32 [T]      the history windows' items, concatenated,
                                 as item indices (not shifted by +1)
  windows/ptr     int64 [W+1]    window w = items[ptr[w]:ptr[w+1]]; window
                                 position p (SASRec's pos_emb row) = index p
                                 in it, so position 0 is the window's start
  ex_window       int32 [B]      the window example e reads
  ex_readout      int32 [B]      how many of that window's items example e
                                 has seen: its state is the encoder's output
                                 at window position ex_readout - 1, and 0
                                 means an empty history. With `chunk`
                                 history one window per chunk (items
                                 [w, end-1)), position t reading t - w;
                                 otherwise one window per example, read whole.
                                 (windows/*, ex_*: absent when the model has
                                 no dynamic tower)
  pos             int32 [B]      optional, informational: each example's
                                 position in its user's list

/loss attributes (float64): total, ranking, entropy, balance, with
  total = ranking + lambda_ent * entropy + lambda_bal * balance,
  entropy = mean over B of sum_k alpha_k log(alpha_k + 1e-8) (= -H),
  balance = sum_k (mean over B of alpha_k - 1/3)^2; ranking is the
  train.loss term (losses.py; bpr: mean over the B*(C-1) pairs).

/grad: d total / d parameter for the whole global batch, before gradient
  clipping, weight decay and any optimiser step, float32, under checkpoint
  names (`static.user_emb`, `dynamic.blocks.0.attn.in_proj_weight`, ...):
  dense/<name>         the parameter's PyTorch shape; every dense parameter
                       of the model
  tables/<name>/rows   int64 [R] the touched rows (unique, any order); every
                       row with a nonzero gradient must be among them
  tables/<name>/values float32 [R, dim] ([R] for static.item_bias)
  Any parameter may come either way (e.g. dynamic.pos_emb as dense or as
  rows); a table with no touched row may be left out.

/out (optional, checked when present): scores float32 [B, C] (each
  example's candidates), alpha float32 [B, 3].

COST. The check runs the batch twice (float64 and float32) on the CPU. For
v1/v2 with the softmax loss that is the head on B x n_items pairs (chunked,
memory bounded): dump a small batch there (a few hundred examples).

TOLERANCES. A tensor passes when
    max |dump - ref| <= atol + rtol * max |ref| + noise_factor * noise
with ref the float64 PyTorch result, max |ref| over the whole tensor (a
table: all its rows), and noise = max |ref32 - ref| the error of the same
computation in float32 PyTorch: it covers tensors whose exact gradient is
~0 by cancellation (e.g. content.fc3.bias under the softmax losses, the
head of v1/v2 dynamic_only under bpr), where only rounding is left. Rows a
dump leaves out must have |ref| within the same bound. Loss parts pass when
|dump - ref| <= loss_tol * max(1, |ref|) + noise_factor * noise. Defaults
(FLOAT32_TOL: rtol 1e-4, atol 1e-12, noise_factor 10, loss_tol 1e-5) hold
for a float32 computation in another summation order (measured: global
batch of 2,046 examples, d 64, L 50, every loss x {v3 full sasrec/gru, v3
dynamic_only sasrec, v2 full sasrec}: the worst tensor used 26% of its
bound). A ReLU input within rounding of 0 can fall on the other side in
float32 and move the gradients of the rows that example touches; the report
counts such inputs when a tensor fails.
"""
import copy
import os

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .data import load_tfidf, tfidf_row_fn
from .history import Windows
from .losses import LOSSES, Batch, batch_loss

FORMAT = "dtrain-grad-dump"
FORMAT_VERSION = 1
FLOAT32_TOL = {"rtol": 1e-4, "atol": 1e-12, "noise_factor": 10.0, "loss_tol": 1e-5}


# -- reading and writing the batch ---------------------------------------------------
def read_batch(f):
    """The Batch stored in an open dump (h5py File), in float64."""
    b = f["batch"]
    users = torch.as_tensor(b["users"][()], dtype=torch.long)
    cands = torch.as_tensor(b["cands"][()], dtype=torch.long)
    if cands.dim() != 2 or cands.shape[0] != users.numel():
        raise ValueError(f"/batch/cands has shape {tuple(cands.shape)}, expected [{users.numel()}, C]")
    ctx = torch.as_tensor(b["context"][()], dtype=torch.float64) if "context" in b else \
        torch.zeros(users.numel(), 0, dtype=torch.float64)
    shared = torch.as_tensor(b["shared"][()], dtype=torch.long) if "shared" in b else None
    windows = None
    if "windows" in b:
        items = b["windows/items"][()].astype(np.int64)
        ptr = b["windows/ptr"][()].astype(np.int64)
        seqs = [items[ptr[w]:ptr[w + 1]].tolist() for w in range(len(ptr) - 1)]
        windows = Windows(seqs, torch.as_tensor(b["ex_window"][()], dtype=torch.long),
                          torch.as_tensor(b["ex_readout"][()], dtype=torch.long))
        windows.check()
    return Batch(users, cands, windows, ctx, shared)


def write_batch(f, batch):
    b = f.create_group("batch")
    b.create_dataset("users", data=batch.users.numpy().astype(np.int32))
    b.create_dataset("cands", data=batch.cands.numpy().astype(np.int32))
    b.create_dataset("context", data=batch.ctx.numpy().astype(np.float32))
    if batch.shared is not None:
        b.create_dataset("shared", data=batch.shared.numpy().astype(np.int32))
    if batch.windows is not None:
        w = batch.windows
        lens = [len(s) for s in w.seqs]
        b.create_dataset("windows/items", data=np.array([i for s in w.seqs for i in s], dtype=np.int32))
        b.create_dataset("windows/ptr", data=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64))
        b.create_dataset("ex_window", data=w.ex_seq.numpy().astype(np.int32))
        b.create_dataset("ex_readout", data=w.readout.numpy().astype(np.int32))


# -- the PyTorch side ---------------------------------------------------------------
def compute(model, batch, loss, lambda_ent, lambda_bal, tfidf_rows=None):
    """Loss parts and {checkpoint name: dense gradient} of one batch, without
    dropout, in the model's dtype."""
    model.eval()
    model.zero_grad(set_to_none=True)
    out = batch_loss(model, batch, loss, lambda_ent, lambda_bal, tfidf_rows)
    out["total"].backward()
    grads = {}
    for name, p in model.checkpoint_params().items():
        grads[name] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
    return out, grads


def touched_rows(model, batch, loss):
    """The rows of each table a batch reads (what dtrain would report)."""
    items = [batch.cands.reshape(-1)]
    if batch.shared is not None:
        items.append(batch.shared)
    if loss == "softmax":
        items.append(torch.arange(model.n_items))
    items = torch.unique(torch.cat(items))
    rows = {"static.user_emb": torch.unique(batch.users), "static.item_emb": items, "static.item_bias": items}
    if model.use_dynamic:
        seq = [torch.as_tensor(s, dtype=torch.long) for s in batch.windows.seqs] if batch.windows else []
        rows["dynamic.item_emb"] = torch.unique(torch.cat([items] + seq) + 1)
    return {t: rows[t] for t in model.table_names() if t in rows}


def write_dump(path, checkpoint, model, batch, loss, lambda_ent, lambda_bal, tfidf_rows=None, ranks=1):
    """Writes a dump of `model` (in its own dtype, stored as float32) on
    `batch`, its parameters being those of `checkpoint`."""
    import h5py

    out, grads = compute(model, batch, loss, lambda_ent, lambda_bal, tfidf_rows)
    tables = touched_rows(model, batch, loss)
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "checkpoint": checkpoint, "loss": loss,
                        "lambda_ent": float(lambda_ent), "lambda_bal": float(lambda_bal), "dropout_off": 1,
                        "ranks": ranks})
        write_batch(f, batch)
        lg = f.create_group("loss")
        for k in ("total", "ranking", "entropy", "balance"):
            lg.attrs[k] = float(out[k])
        for name, g in grads.items():
            g = g.to(torch.float32).numpy()
            if name in tables:
                rows = tables[name].numpy().astype(np.int64)
                f.create_dataset(f"grad/tables/{name}/rows", data=rows)
                f.create_dataset(f"grad/tables/{name}/values", data=g[rows])
            else:
                f.create_dataset(f"grad/dense/{name}", data=g)
        f.create_dataset("out/scores", data=out["scores"].detach().to(torch.float32).numpy())
        f.create_dataset("out/alpha", data=out["alpha"].detach().to(torch.float32).numpy())


# -- the check ----------------------------------------------------------------------
class Report:
    """One row per compared tensor; failures lists the names that failed."""

    def __init__(self):
        self.rows, self.failures = [], []
        self.near_kinks = 0

    def add(self, name, shape, scale, err, noise, bound, note=""):
        ok = err <= bound
        rel = err / scale if scale > 0 else (float("inf") if err > 0 else 0.0)
        self.rows.append({"name": name, "shape": shape, "scale": scale, "err": err, "rel": rel, "noise": noise,
                          "bound": bound, "ok": ok, "note": note})
        if not ok:
            self.failures.append(name)

    def print(self, file=None):
        print(f"{'tensor':52} {'shape':>10} {'max|ref|':>9} {'max abs err':>11} {'rel err':>9} {'f32 noise':>9} "
              f"{'bound':>9}  result", file=file)
        for r in self.rows:
            print(f"{r['name']:52} {r['shape']:>10} {r['scale']:9.3g} {r['err']:11.3g} {r['rel']:9.3g} "
                  f"{r['noise']:9.3g} {r['bound']:9.3g}  {'ok' if r['ok'] else 'FAIL'}"
                  f"{'  ' + r['note'] if r['note'] else ''}", file=file)
        if self.failures and self.near_kinks:
            print(f"note: {self.near_kinks} ReLU inputs lie within {KINK_REL:g} (relative) of 0 in the float64 forward: "
                  "a float32 computation may take the other side of the kink there, which changes the gradients "
                  "of the rows that example touches (a failure confined to such rows is rounding, not a bug)",
                  file=file)


KINK_REL = 1e-6


class _KinkWatch:
    """Counts the inputs of the model's ReLUs (the outputs of the Linear layers
    that feed one) within KINK_REL * max |input| of 0."""

    def __init__(self, model):
        self.count = 0
        self.hooks = [mod.register_forward_hook(self._hook) for name, mod in model.named_modules()
                      if name.endswith("fc1") or name == "content.fc2"]

    def _hook(self, mod, inputs, out):
        x = out.detach().abs()
        if x.numel():
            self.count += int((x <= KINK_REL * x.max()).sum())

    def close(self):
        for h in self.hooks:
            h.remove()


def _shape(t):
    return "x".join(map(str, t.shape)) or "1"


def _maxabs(t):
    return float(t.abs().max()) if t.numel() else 0.0


def check_dump(path, dataset=None, rtol=None, atol=None, noise_factor=None, loss_tol=None):
    """Recomputes a dump in float64 (and in float32, for each tensor's own
    rounding noise); returns a Report (report.failures empty: pass)."""
    import h5py

    tol = dict(FLOAT32_TOL)
    for k, v in (("rtol", rtol), ("atol", atol), ("noise_factor", noise_factor), ("loss_tol", loss_tol)):
        if v is not None:
            tol[k] = v
    with h5py.File(path, "r") as f:
        a = dict(f.attrs)
        text = lambda v: v if isinstance(v, str) else v.decode()
        if text(a.get("format", "")) != FORMAT or int(a.get("format_version", -1)) != FORMAT_VERSION:
            raise ValueError(f"{path}: not a {FORMAT} version {FORMAT_VERSION} file")
        if int(a.get("dropout_off", 0)) != 1:
            raise ValueError(f"{path}: the step must run with dropout off (attribute dropout_off = 1)")
        loss = text(a["loss"])
        if loss not in LOSSES:
            raise ValueError(f"{path}: loss {loss!r} is not one of {LOSSES}")
        ck = text(a["checkpoint"])
        if not os.path.isabs(ck):
            ck = os.path.join(os.path.dirname(os.path.abspath(path)), ck)
        lam = float(a["lambda_ent"]), float(a["lambda_bal"])
        model, cfg = load_checkpoint(ck)
        tfidf = None
        if model.use_content:
            tfidf = load_tfidf(dataset or cfg["data"]["output"])
        batch = read_batch(f)
        if model.use_gate and batch.ctx.shape[1] != (7 if model.version == 3 else 5):
            raise ValueError(f"{path}: /batch/context has {batch.ctx.shape[1]} columns, the gate takes "
                             f"{7 if model.version == 3 else 5}")
        if model.use_dynamic and batch.windows is None:
            raise ValueError(f"{path}: the model has a dynamic tower but the dump has no /batch/windows")
        model32 = copy.deepcopy(model)
        b32 = Batch(batch.users, batch.cands, batch.windows, batch.ctx.float(), batch.shared)
        out32, grads32 = compute(model32, b32, loss, *lam, tfidf_row_fn(tfidf, torch.float32) if tfidf is not None else None)
        model.double()
        kinks = _KinkWatch(model)
        out, grads = compute(model, batch, loss, *lam, tfidf_row_fn(tfidf, torch.float64) if tfidf is not None else None)
        kinks.close()

        def bound(scale, noise):
            return tol["atol"] + tol["rtol"] * scale + tol["noise_factor"] * noise

        def cmp(name, got, ref, ref32):
            got = torch.as_tensor(np.asarray(got), dtype=torch.float64)
            if tuple(got.shape) != tuple(ref.shape):
                report.add(name, _shape(got), 0.0, float("inf"), 0.0, 0.0, f"shape, expected {_shape(ref)}")
                return
            scale, noise = _maxabs(ref), _maxabs(ref32.double() - ref)
            report.add(name, _shape(ref), scale, _maxabs(got - ref), noise, bound(scale, noise))

        report = Report()
        for k in ("total", "ranking", "entropy", "balance"):
            ref, got = float(out[k]), float(f["loss"].attrs[k])
            noise = abs(float(out32[k]) - ref)
            report.add(f"loss.{k}", "1", abs(ref), abs(got - ref), noise,
                       tol["loss_tol"] * max(1.0, abs(ref)) + tol["noise_factor"] * noise)
        for k in ("scores", "alpha"):
            if f"out/{k}" in f:
                cmp(f"out.{k}", f[f"out/{k}"][()], out[k].detach(), out32[k].detach())
        dense = f["grad/dense"] if "grad/dense" in f else {}
        tables = f["grad/tables"] if "grad/tables" in f else {}
        for name in list(dense) + list(tables):
            if name not in grads:
                report.add(f"grad.{name}", "?", 0.0, float("inf"), 0.0, 0.0, "not a parameter of the model")
        for name, ref in grads.items():
            if name in dense:
                cmp(f"grad.{name}", dense[name][()], ref, grads32[name])
                continue
            if name not in tables and name not in model.table_names():
                report.add(f"grad.{name}", _shape(ref), _maxabs(ref), float("inf"), 0.0, 0.0, "missing from the dump")
                continue
            # a table given by its touched rows; rows it leaves out must have no gradient
            scale, noise = _maxabs(ref), _maxabs(grads32[name].double() - ref)
            listed = torch.zeros(ref.shape[0], dtype=torch.bool)
            if name in tables:
                rows = torch.as_tensor(tables[name]["rows"][()], dtype=torch.long)
                if rows.numel() != torch.unique(rows).numel() or (rows.numel() and
                                                                    (rows.min() < 0 or rows.max() >= ref.shape[0])):
                    report.add(f"grad.{name}", "?", scale, float("inf"), noise, 0.0, "rows repeated or out of range")
                    continue
                listed[rows] = True
                cmp(f"grad.{name}[{rows.numel()} rows]", tables[name]["values"][()], ref[rows], grads32[name][rows])
            rest = ref[~listed]
            err = _maxabs(rest)
            report.add(f"grad.{name}[rows not listed]", str(int((~listed).sum())), scale, err, noise,
                       bound(scale, noise), "" if err <= bound(scale, noise) else "a row with a gradient is not listed")
    report.near_kinks = kinks.count
    return report
