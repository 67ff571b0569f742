"""dtrain checkpoints (HDF5: root attribute `config`, group /params) into and
out of HybridModel. The tables are stored under their own names
(`static.user_emb`, ...); nn.Embedding calls them `.weight`."""
import json
import re

import torch

from .model import HybridModel


def _model_for(cfg, params):
    """A HybridModel shaped like the checkpoint's parameters."""
    cfg = json.loads(json.dumps(cfg))  # a copy we may complete
    m = cfg["model"]
    n_items = params["static.item_bias"].shape[0] if "static.item_bias" in params else \
        params["static.item_emb"].shape[0] if "static.item_emb" in params else params["dynamic.item_emb"].shape[0] - 1
    n_users = params["static.user_emb"].shape[0] if "static.user_emb" in params else 0
    vocab = params["content.fc1.weight"].shape[1] if "content.fc1.weight" in params else 0
    if "dynamic.pos_emb" in params:  # SASRec: what the parameters say wins over missing config keys
        m.setdefault("encoder", "sasrec")
        cfg.setdefault("data", {})["history_len"] = params["dynamic.pos_emb"].shape[0] // 2
        blocks = {int(k) for n in params for k in re.findall(r"^dynamic\.blocks\.(\d+)\.", n)}
        m["sasrec_blocks"] = len(blocks)
    return HybridModel(cfg, n_users, n_items, vocab), cfg


def load_state(model, params, where="checkpoint"):
    """Copies {checkpoint name: tensor} into the model (no transposes)."""
    params = dict(params)
    for table in ("static.user_emb", "static.item_emb", "dynamic.item_emb"):
        if table in params:
            params[table + ".weight"] = params.pop(table)
    if not model.use_static:
        # dynamic_only scores without the static embeddings: a checkpoint may
        # leave them out, or carry them unused
        for name in ("user_emb", "item_emb"):
            if f"static.{name}.weight" not in params:
                setattr(model.static, name, None)
    missing, unexpected = model.load_state_dict(params, strict=False)
    if not model.use_static:
        missing = [k for k in missing if not k.startswith("static.fc")]
        unexpected = [k for k in unexpected if not k.startswith("static.fc")]
    if missing or unexpected:
        raise ValueError(f"{where}: checkpoint and module disagree: missing {missing}, unexpected {unexpected}")


def load_checkpoint(path):
    """A HybridModel with a dtrain checkpoint's parameters, and its config."""
    import h5py

    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["config"])
        params = {name: torch.as_tensor(f["params"][name][()]) for name in f["params"]}
    model, cfg = _model_for(cfg, params)
    load_state(model, params, path)
    return model, cfg


def save_checkpoint(model, cfg, path):
    """Writes the parameters in dtrain's checkpoint layout (attribute
    `config`, /params/<name>, float32): enough for load_checkpoint and the
    tools here, not a resumable dtrain checkpoint (no optimiser state)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["config"] = json.dumps(cfg)
        g = f.create_group("params")
        for name, p in model.checkpoint_params().items():
            g.create_dataset(name, data=p.detach().to(torch.float32).numpy())
