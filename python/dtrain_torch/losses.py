"""The training loss (MODEL.md section 1 "Loss"), as functions over scores.

Ranking terms (config train.loss), each a mean over the batch's positives
(BPR: over its pairs):

    bpr(s_pos [B], s_neg [B, n])        mean over pairs of -log sigma(s+ - s-)
    bce(s_pos [B], s_neg [B, n])        mean of -log sigma(s+) - sum_j log sigma(-s-_j)
    sampled_softmax(s_pos [B], s_shared [B, S])
                                        mean of -s+ + log(e^{s+} + sum_j e^{s-_j}), the S
                                        negatives shared by the whole global batch
    softmax(s_all [B, N], pos [B])      mean of -s_all[pos] + log sum_i e^{s_all[i]}

Gate regularisers (every loss): entropy(alpha) = mean over the batch of
sum_k alpha_k log(alpha_k + 1e-8) (= -H(alpha)), balance(alpha) =
sum_k (mean over the batch of alpha_k - 1/3)^2; total = ranking +
lambda_ent * entropy + lambda_bal * balance. With a fixed alpha (static_only,
dynamic_only, no_attention) they are constants, as in dtrain.

`batch_loss` runs a model on a Batch and returns every part.
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from .history import Windows

LOSSES = ("bpr", "bce", "sampled_softmax", "softmax")


def bpr(s_pos, s_neg):
    return F.softplus(s_neg - s_pos.unsqueeze(1)).mean()


def bce(s_pos, s_neg):
    return (F.softplus(-s_pos) + F.softplus(s_neg).sum(dim=1)).mean()


def sampled_softmax(s_pos, s_shared):
    return (torch.logsumexp(torch.cat([s_pos.unsqueeze(1), s_shared], dim=1), dim=1) - s_pos).mean()


def softmax(s_all, pos):
    return (torch.logsumexp(s_all, dim=1) - s_all.gather(1, pos.unsqueeze(1)).squeeze(1)).mean()


def entropy(alpha):
    return (alpha * torch.log(alpha + 1e-8)).sum(dim=1).mean()


def balance(alpha):
    return ((alpha.mean(dim=0) - 1.0 / 3.0) ** 2).sum()


@dataclass
class Batch:
    """One training batch. cands [B, C]: column 0 the positive, then its own
    negatives (bpr/bce; C = 1 for the softmax losses); shared [S]: the
    sampled_softmax negatives; windows: the histories (history.Windows)."""
    users: torch.Tensor
    cands: torch.Tensor
    windows: Optional[Windows]
    ctx: torch.Tensor
    shared: Optional[torch.Tensor] = None


def batch_loss(model, batch, loss, lambda_ent, lambda_bal, tfidf_rows=None, n_items=None):
    """Loss parts of a batch: {'total', 'ranking', 'entropy', 'balance',
    'scores' [B, C], 'alpha' [B, 3]} (plus 'scores_shared' [B, S] or
    'scores_all' [B, N] for the softmax losses)."""
    if loss not in LOSSES:
        raise ValueError(f"train.loss {loss!r} is not one of {LOSSES}")
    user = model.encode_users(batch.users, batch.windows, batch.ctx)
    s = model.score(user, batch.cands, tfidf_rows)
    out = {"scores": s, "alpha": user.alpha}
    if loss == "bpr":
        rank = bpr(s[:, 0], s[:, 1:])
    elif loss == "bce":
        rank = bce(s[:, 0], s[:, 1:])
    elif loss == "sampled_softmax":
        if batch.shared is None:
            raise ValueError("sampled_softmax needs the batch's shared negatives")
        out["scores_shared"] = model.score_items(user, batch.shared, tfidf_rows)
        rank = sampled_softmax(s[:, 0], out["scores_shared"])
    else:
        n = n_items if n_items is not None else model.n_items
        out["scores_all"] = model.score_items(user, torch.arange(n), tfidf_rows)
        rank = softmax(out["scores_all"], batch.cands[:, 0])
    out["ranking"] = rank
    out["entropy"] = entropy(user.alpha)
    out["balance"] = balance(user.alpha)
    out["total"] = rank + lambda_ent * out["entropy"] + lambda_bal * out["balance"]
    return out
