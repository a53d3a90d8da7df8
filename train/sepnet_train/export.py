"""PyTorch model -> ``.sepnet`` file (``docs/FORMAT.md``), plus the web app's model manifest.

Every model describes itself by calling a ``GraphBuilder`` from its ``export_graph(g)``; the
builder folds batch norm into the convolutions, picks each weight's encoding for the variant
(R: f32; B: binarized convs -> ``pattern``, rest f32; BQ: as B with every other weight int8)
and records the graph, tensors, parameter count and multiply-accumulates.

Paper facts relied on (``shared/paper/NOTES.md``): only k×k filters with k > 1 become patterns,
1×1 filters stay real or 8-bit (line 10-11); one scale per output filter with sign(0) = +1
(line 12-13); sizes count 4 bytes per real weight, 1 bit per pattern weight, 1 byte per 8-bit
weight (line 61), which is what the f32 / pattern / int8 encodings store.

CLI::

    python -m sepnet_train.export --model sepnet_small --variant BQ --untrained
    python -m sepnet_train.export --checkpoint runs/x/best.pth --variant BQ \
        --out www/models/sepnet_cifar-bq.sepnet --manifest www/models/manifest.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from . import __version__, quant
from .models import create_model, get_spec

FORMAT_VERSION = "1"
EXPORTER = f"sepnet-train {__version__}"
VARIANTS = ("R", "B", "BQ")

CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                  "ship", "truck"]
PREPROCESS = {
    "cifar10": {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616],
                "crop_ratio": 1.0},
    "imagenet": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                 "crop_ratio": 0.875},
}


def _json(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _pair(v) -> list[int]:
    if isinstance(v, (tuple, list)):
        assert len(v) == 2, v
        return [int(v[0]), int(v[1])]
    return [int(v), int(v)]


def default_labels(dataset: str, num_classes: int) -> list[str]:
    if dataset == "cifar10" and num_classes == 10:
        return list(CIFAR10_LABELS)
    # Bare class indices: ImageNet's names are not shipped here, and short labels keep the
    # untrained sepnet_small R file within the paper's 5.2 MB (the header is counted too).
    return [str(i) for i in range(num_classes)]


def default_preprocess(dataset: str, input_size: int) -> dict:
    p = PREPROCESS["cifar10" if dataset == "cifar10" else "imagenet"]
    return {"input_size": [input_size, input_size], "channel_order": "RGB",
            "mean": list(p["mean"]), "std": list(p["std"]), "crop_ratio": p["crop_ratio"],
            "resize": "bilinear"}


def pack_pattern(pattern) -> np.ndarray:
    """±1 filters [O, ...] -> U8 [O, ceil(n/8)] in the format's bit order.

    Element i of a filter (row-major (c, ky, kx)) is bit i mod 8 (LSB first) of byte i div 8;
    set = +1. Anything >= 0 counts as +1 (sign(0) = +1); padding bits stay 0.
    """
    p = pattern.detach().cpu().numpy() if isinstance(pattern, torch.Tensor) else np.asarray(pattern)
    bits = (p.reshape(p.shape[0], -1) >= 0).astype(np.uint8)
    n = bits.shape[1]
    padded = np.zeros((bits.shape[0], (n + 7) // 8 * 8), dtype=np.uint8)
    padded[:, :n] = bits
    return np.packbits(padded, axis=1, bitorder="little")


def _bn_fold(bn: nn.BatchNorm2d | None, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BN as y = s·x + b (float64): s = γ/sqrt(var+eps), b = β − mean·s."""
    if bn is None:
        return torch.ones(channels, dtype=torch.float64), torch.zeros(channels, dtype=torch.float64)
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("batch norm without running statistics cannot be folded")
    mean = bn.running_mean.detach().double().cpu()
    var = bn.running_var.detach().double().cpu()
    gamma = bn.weight.detach().double().cpu() if bn.weight is not None else torch.ones_like(mean)
    beta = bn.bias.detach().double().cpu() if bn.bias is not None else torch.zeros_like(mean)
    s = gamma / torch.sqrt(var + bn.eps)
    return s, beta - mean * s


_DEFAULTS = {"stride": [1, 1], "padding": [0, 0], "groups": 1, "bias": None}


def _drop_defaults(node: dict) -> dict:
    """Omit attributes equal to FORMAT.md's defaults (keeps headers small: the untrained
    sepnet_small R file must fit the paper's 5.2 MB, header included)."""
    out = {k: v for k, v in node.items() if not (k in _DEFAULTS and v == _DEFAULTS[k])}
    if isinstance(out.get("weight"), dict) and out["weight"].get("encoding") == "f32":
        out["weight"] = {k: v for k, v in out["weight"].items() if k != "encoding"}
    return out


class GraphBuilder:
    """The ``g`` a model's ``export_graph(g)`` calls; collects nodes, tensors and statistics."""

    def __init__(self, variant: str, input_shape: list[int], input_name: str = "input"):
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
        self.variant = variant
        self.input = input_name
        self.input_shape = [int(d) for d in input_shape]
        self.nodes: list[dict] = []
        self.tensors: dict[str, np.ndarray] = {}
        self.shapes: dict[str, list[int]] = {input_name: list(self.input_shape)}
        self.params = 0  # logical weights + biases of the exported graph
        self.macs = 0  # conv + linear multiply-accumulates for one image
        self.binarized_layers: list[str] = []  # node names stored as pattern

    # -- bookkeeping -------------------------------------------------------------------------
    def _node(self, node: dict, shape: list[int]) -> str:
        name = node["name"]
        if name in self.shapes:
            raise ValueError(f"duplicate value name {name!r}")
        for x in node["inputs"]:
            if x not in self.shapes:
                raise ValueError(f"node {name!r} reads unknown value {x!r}")
        self.nodes.append(node)
        self.shapes[name] = shape
        return name

    def _tensor(self, name: str, arr: np.ndarray) -> str:
        if name in self.tensors:
            raise ValueError(f"duplicate tensor name {name!r}")
        self.tensors[name] = np.ascontiguousarray(arr)
        return name

    def _weight(self, name: str, w: torch.Tensor, allow_int8: bool) -> dict:
        """f32, or int8 in BQ (per-output-channel symmetric, via ``quant.quantize_int8``)."""
        w32 = w.to(torch.float32)
        if self.variant == "BQ" and allow_int8:
            q, s = quant.quantize_int8(w32)
            return {"encoding": "int8",
                    "tensor": self._tensor(f"{name}.weight", q.numpy().astype(np.int8)),
                    "scale": self._tensor(f"{name}.scale", s.to(torch.float32).numpy())}
        return {"encoding": "f32", "tensor": self._tensor(f"{name}.weight", w32.numpy())}

    # -- convolutions --------------------------------------------------------------------------
    def _conv_node(self, name, conv: nn.Conv2d, x, s, bias) -> str:
        """One conv2d node with the per-output-channel factor ``s`` folded into its weight."""
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"{name}: expected a Conv2d, got {type(conv).__name__}")
        if isinstance(conv.padding, str) or _pair(conv.dilation) != [1, 1]:
            raise ValueError(f"{name}: only explicit padding and dilation 1 are supported")
        if conv.padding_mode != "zeros":
            raise ValueError(f"{name}: only zero padding is supported")
        c, h, w = self.shapes[x]
        o, g = conv.out_channels, conv.groups
        kh, kw = _pair(conv.kernel_size)
        sh, sw = _pair(conv.stride)
        ph, pw = _pair(conv.padding)
        if c != conv.in_channels:
            raise ValueError(f"{name}: input has {c} channels, conv expects {conv.in_channels}")
        binarized = isinstance(conv, quant.PatternConv2d) and conv.binarized
        if binarized and self.variant == "R":
            raise ValueError(f"{name}: variant R cannot hold the binarized layer (export B/BQ)")
        if binarized:
            # Keep the exact ±1 bits; the BN factor (possibly negative) joins α in the scale.
            scale = conv.alpha.detach().double().cpu() * s
            weight = {"encoding": "pattern",
                      "tensor": self._tensor(f"{name}.weight", pack_pattern(conv.pattern)),
                      "scale": self._tensor(f"{name}.scale", scale.to(torch.float32).numpy())}
            self.binarized_layers.append(name)
        else:
            wt = conv.weight.detach().double().cpu() * s.view(-1, 1, 1, 1)
            weight = self._weight(name, wt, allow_int8=True)
        if conv.bias is not None:
            b = conv.bias.detach().double().cpu() * s
            bias = b if bias is None else bias + b
        bias_name = None
        if bias is not None:
            bias_name = self._tensor(f"{name}.bias", bias.to(torch.float32).numpy())
            self.params += o
        n_in = (c // g) * kh * kw
        self.params += o * n_in
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        self.macs += o * ho * wo * n_in
        node = {"name": name, "op": "conv2d", "inputs": [x], "out_channels": o,
                "kernel": [kh, kw], "stride": [sh, sw], "padding": [ph, pw], "groups": g,
                "weight": weight, "bias": bias_name}
        return self._node(_drop_defaults(node), [o, ho, wo])

    def conv(self, name: str, conv: nn.Conv2d, x: str, bn: nn.BatchNorm2d | None = None) -> str:
        s, b = _bn_fold(bn, conv.out_channels)
        return self._conv_node(name, conv, x, s, b if bn is not None else None)

    def conv_sum(self, name: str, branches, x: str, bn: nn.BatchNorm2d | None = None) -> str:
        """BN(Σ convs(x)): the BN factor goes into every branch, its bias into the last only."""
        branches = list(branches)
        if len(branches) < 2:
            raise ValueError(f"{name}: conv_sum needs at least two branches")
        s, b = _bn_fold(bn, branches[0][1].out_channels)
        outs = [self._conv_node(f"{name}.{suffix}", conv, x, s,
                                b if (bn is not None and i == len(branches) - 1) else None)
                for i, (suffix, conv) in enumerate(branches)]
        acc = outs[0]
        for i, y in enumerate(outs[1:], start=1):
            acc = self.add(name if i == len(outs) - 1 else f"{name}.add{i}", acc, y)
        return acc

    # -- other ops -----------------------------------------------------------------------------
    def relu(self, name: str, x: str) -> str:
        return self._node({"name": name, "op": "relu", "inputs": [x]}, list(self.shapes[x]))

    def add(self, name: str, a: str, b: str) -> str:
        if self.shapes[a] != self.shapes[b]:
            raise ValueError(f"{name}: add of shapes {self.shapes[a]} and {self.shapes[b]}")
        return self._node({"name": name, "op": "add", "inputs": [a, b]}, list(self.shapes[a]))

    def concat(self, name: str, xs) -> str:
        xs = list(xs)
        hw = {tuple(self.shapes[v][1:]) for v in xs}
        if len(hw) != 1:
            raise ValueError(f"{name}: concat of different spatial sizes {hw}")
        c = sum(self.shapes[v][0] for v in xs)
        return self._node({"name": name, "op": "concat", "inputs": xs},
                          [c, *self.shapes[xs[0]][1:]])

    def maxpool(self, name: str, x: str, k, stride, pad) -> str:
        (kh, kw), (sh, sw), (ph, pw) = _pair(k), _pair(stride), _pair(pad)
        c, h, w = self.shapes[x]
        shape = [c, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1]
        return self._node({"name": name, "op": "maxpool2d", "inputs": [x], "kernel": [kh, kw],
                           "stride": [sh, sw], "padding": [ph, pw]}, shape)

    def gap(self, name: str, x: str) -> str:
        return self._node({"name": name, "op": "global_avg_pool", "inputs": [x]},
                          [self.shapes[x][0]])

    def softmax(self, name: str, x: str) -> str:
        return self._node({"name": name, "op": "softmax", "inputs": [x]}, list(self.shapes[x]))

    def linear(self, name: str, fc: nn.Linear, x: str) -> str:
        i = int(np.prod(self.shapes[x]))
        if i != fc.in_features:
            raise ValueError(f"{name}: input has {i} features, linear expects {fc.in_features}")
        weight = self._weight(name, fc.weight.detach().double().cpu(), allow_int8=True)
        bias_name = None
        if fc.bias is not None:
            bias_name = self._tensor(f"{name}.bias",
                                     fc.bias.detach().to(torch.float32).cpu().numpy())
            self.params += fc.out_features
        self.params += fc.out_features * i
        self.macs += fc.out_features * i
        return self._node(_drop_defaults({"name": name, "op": "linear", "inputs": [x],
                                          "out_features": fc.out_features, "weight": weight,
                                          "bias": bias_name}), [fc.out_features])

    def graph(self, output: str) -> dict:
        return {"input": {"name": self.input, "shape": list(self.input_shape)},
                "output": output, "nodes": self.nodes}


def build_graph(model: nn.Module, variant: str, input_shape) -> GraphBuilder:
    """Run ``model.export_graph`` against a fresh builder; returns it with ``.output`` set."""
    g = GraphBuilder(variant, list(input_shape))
    with torch.no_grad():
        out = model.export_graph(g)
    if variant in ("B", "BQ") and not g.binarized_layers:
        raise ValueError(f"variant {variant} needs a binarized model (quant.binarize_model)")
    if len(g.shapes[out]) != 1:
        raise ValueError(f"graph output {out!r} has shape {g.shapes[out]}, expected a vector")
    g.output = out
    return g


_ST_DTYPES = {np.dtype("<f4"): "F32", np.dtype("i1"): "I8", np.dtype("u1"): "U8"}


def save_safetensors(path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """A safetensors file with a deterministic byte layout.

    ``safetensors.save_file`` writes the metadata map in hash order, so two exports of the same
    model differ byte-wise; here header keys are sorted and the data laid out 4-byte types
    first (so every F32 tensor stays aligned), then by name. The header is padded with spaces
    to a multiple of 8, as the reference implementation does.
    """
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    for k, v in arrays.items():
        if v.dtype.newbyteorder("<") not in _ST_DTYPES:
            raise TypeError(f"tensor {k!r}: dtype {v.dtype} not supported")
    order = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))
    header: dict = {"__metadata__": dict(sorted(metadata.items()))}
    offset, chunks = 0, []
    for k in order:
        a = arrays[k].astype(arrays[k].dtype.newbyteorder("<"), copy=False)
        raw = a.tobytes()
        header[k] = {"dtype": _ST_DTYPES[a.dtype], "shape": list(a.shape),
                     "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    h = _json(header).encode("utf-8")
    h += b" " * (-len(h) % 8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for c in chunks:
            f.write(c)


def write_sepnet(path, g: GraphBuilder, labels, preprocess: dict, provenance: dict) -> None:
    if len(labels) != g.shapes[g.output][0]:
        raise ValueError(f"{len(labels)} labels for {g.shapes[g.output][0]} outputs")
    metadata = {
        "sepnet.format": "sepnet",
        "sepnet.version": FORMAT_VERSION,
        "sepnet.graph": _json(g.graph(g.output)),
        "sepnet.labels": _json(list(labels)),
        "sepnet.preprocess": _json(preprocess),
        "sepnet.provenance": _json(provenance),
    }
    save_safetensors(path, g.tensors, metadata)


def _binarization_method(model: nn.Module) -> str | None:
    """The method guessed from the model when the caller did not say (offset freezes α)."""
    for m in model.modules():
        if isinstance(m, quant.PatternConv2d) and m.binarized:
            return "alpha" if m.alpha.requires_grad else "offset"
    return None


def export_sepnet(model: nn.Module, model_name: str, variant: str, path, *, labels=None,
                  preprocess=None, provenance_extra=None, trained: bool = True,
                  accuracy: dict | None = None, binarization: dict | None = None) -> dict:
    """Write ``model`` (in eval semantics) as a ``.sepnet`` file; returns a summary dict.

    ``binarization``: ``{"method", "policy", "offset"}`` as used to binarize (B/BQ); recorded in
    the provenance. ``provenance_extra`` entries are added last (they may override ``created``,
    which golden files pin to stay reproducible).
    """
    spec = get_spec(model_name)
    was_training = model.training
    model.eval()
    try:
        g = build_graph(model, variant, [3, spec.input_size, spec.input_size])
    finally:
        model.train(was_training)
    num_classes = g.shapes[g.output][0]
    labels = list(labels) if labels is not None else default_labels(spec.dataset, num_classes)
    preprocess = preprocess or default_preprocess(spec.dataset, spec.input_size)
    binarization = dict(binarization or {})
    if variant != "R" and "method" not in binarization:
        binarization["method"] = _binarization_method(model)
    prov = {
        "model": model_name, "variant": variant, "dataset": spec.dataset,
        "trained": bool(trained), "accuracy": accuracy if trained else None,
        "binarization": binarization.get("method") if variant != "R" else None,
        "binarization_policy": binarization.get("policy") if variant != "R" else None,
        "binarized_layers": list(g.binarized_layers),
        "exporter": EXPORTER,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if variant != "R" and binarization.get("method") == "offset":
        prov["binarization_offset"] = binarization.get("offset")
    prov.update(provenance_extra or {})
    write_sepnet(path, g, labels, preprocess, prov)
    return {"name": display_name(model_name, variant, trained), "file": Path(path).name,
            "model": model_name, "variant": variant, "dataset": spec.dataset, "params": g.params,
            "bytes": os.path.getsize(path), "macs": g.macs, "trained": bool(trained),
            "accuracy": prov["accuracy"]}


def display_name(model_name: str, variant: str, trained: bool) -> str:
    pretty = {"sepnet_small": "SEP-Net small", "sepnet_large": "SEP-Net large",
              "sepnet_cifar": "SEP-Net CIFAR"}.get(model_name,
                                                   model_name.replace("resnet", "ResNet-"))
    return f"{pretty} {variant}" + ("" if trained else " (untrained)")


MANIFEST_KEYS = ("file", "name", "model", "variant", "dataset", "params", "bytes", "macs",
                 "trained", "accuracy", "default")


def update_manifest(manifest_path, entry: dict) -> dict:
    """Insert or replace (same ``file``) an entry of ``{"version": 1, "models": [...]}``.

    If the new entry is ``default``, every other entry stops being default; if afterwards no
    entry is default, the first one becomes the default (the app needs one to open with).
    """
    p = Path(manifest_path)
    data = json.loads(p.read_text()) if p.exists() else {"version": 1, "models": []}
    e = {k: entry.get(k) for k in MANIFEST_KEYS}
    e["default"] = bool(entry.get("default", False))
    models = [m for m in data.get("models", []) if m.get("file") != e["file"]]
    if e["default"]:
        for m in models:
            m["default"] = False
    # Replace in place when the file was listed already, so the manifest order stays stable.
    old = [m.get("file") for m in data.get("models", [])]
    if e["file"] in old:
        models.insert(min(old.index(e["file"]), len(models)), e)
    else:
        models.append(e)
    if models and not any(m.get("default") for m in models):
        models[0]["default"] = True
    data = {"version": 1, "models": models}
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, indent=2) + "\n")
    return data


def load_checkpoint(path, model_name: str | None = None) -> tuple[nn.Module, dict]:
    """(model in eval mode, checkpoint dict); creates pattern/α slots for binarized checkpoints."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    args = dict(ckpt.get("args") or {})
    name = args.get("model") or model_name
    if model_name and name != model_name:
        raise ValueError(f"checkpoint is for {name!r}, not {model_name!r}")
    if not name:
        raise ValueError("checkpoint has no args.model; pass --model")
    classes = ckpt.get("classes")  # the training folders' class names, when recorded
    model = create_model(name, num_classes=len(classes) if classes else None)
    state = ckpt["model"]
    if any(k.endswith(".pattern") for k in state):
        quant.prepare_state_for(model, state)
    model.load_state_dict(state)
    model.eval()
    ckpt.setdefault("args", args)
    ckpt["args"]["model"] = name
    return model, ckpt


def is_binarized(model: nn.Module) -> bool:
    return any(isinstance(m, quant.PatternConv2d) and m.binarized for m in model.modules())


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="registry name (taken from the checkpoint when omitted)")
    ap.add_argument("--variant", required=True, choices=VARIANTS)
    ap.add_argument("--checkpoint", help="training checkpoint (.pth)")
    ap.add_argument("--untrained", action="store_true", help="random weights (fixed --seed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--binarize", choices=("alpha", "offset"), default=None,
                    help="binarization for B/BQ of a real-valued model (default alpha)")
    ap.add_argument("--offset", type=float, default=None, help="offset method constant (0.09)")
    ap.add_argument("--policy", choices=("all", "prb"), default=None, help="default all")
    ap.add_argument("--accuracy", help="JSON accuracy dict to record (overrides the checkpoint's)")
    ap.add_argument("--out", help="output file (default "
                    "www/models/<model>-<variant>[-untrained].sepnet)")
    ap.add_argument("--manifest", help="manifest.json to update")
    ap.add_argument("--default", action="store_true", help="make this the app's default model")
    ap.add_argument("--evaluate", action="store_true",
                    help="CIFAR-10: measure the written file's accuracy (through "
                         "sepnet_train.reference) on the fixed validation split and record it")
    ap.add_argument("--data-path", help="CIFAR-10 training folder (default: the shared one)")
    ap.add_argument("--val-per-class", type=int, default=500)
    ap.add_argument("--limit-val", type=int, default=None, help="evaluate a subset (quick check)")
    ap.add_argument("--device", default="cpu", help="device for --evaluate")
    a = ap.parse_args(argv)
    if bool(a.checkpoint) == bool(a.untrained):
        ap.error("give exactly one of --checkpoint and --untrained")

    if a.untrained:
        if not a.model:
            ap.error("--untrained needs --model")
        torch.manual_seed(a.seed)
        model, ckpt_args, accuracy, trained = create_model(a.model).eval(), {}, None, False
        labels = None
    else:
        model, ckpt = load_checkpoint(a.checkpoint, a.model)
        ckpt_args, accuracy, trained = ckpt["args"], ckpt.get("accuracy"), True
        labels = ckpt.get("classes")
    if a.accuracy:
        accuracy = json.loads(a.accuracy)
    name = a.model or ckpt_args["model"]

    ckpt_method = ckpt_args.get("binarize")
    binarization = {
        "method": a.binarize or (ckpt_method if ckpt_method in ("alpha", "offset", "ste") else "alpha"),
        "policy": a.policy or ckpt_args.get("policy") or "all",
        "offset": a.offset if a.offset is not None else ckpt_args.get("offset", 0.09),
    }
    extra = {} if trained else {"seed": a.seed}
    if trained:
        # Which run, and how far into it, the file comes from (results.py checks the shipped
        # files against the runs its tables name).
        run_dir = ckpt_args.get("output_dir")
        extra["training_run"] = Path(run_dir).name if run_dir else None
        extra["training_epochs"] = ckpt["epoch"] + 1 if "epoch" in ckpt else None
        pbn = ckpt.get("extra", {}).get("precise_bn")
        if pbn:  # batch-norm statistics re-estimated after training (sepnet_train.precise_bn)
            extra["precise_bn"] = {k: pbn[k] for k in ("images", "batch_size", "augmentation",
                                                      "cutout") if k in pbn}
    if a.variant != "R" and not is_binarized(model):
        # Post-hoc binarization (no fine-tuning) of a real-valued or untrained model: the
        # checkpoint's accuracy was the real-valued model's, so it is not recorded.
        quant.binarize_model(model, binarization["method"], binarization["offset"],
                             binarization["policy"])
        extra["finetuned"] = False
        if not a.accuracy:
            accuracy = None
    if binarization["method"] != "offset":
        binarization.pop("offset")

    # The default lands in the repository's www/models wherever the command is run from.
    out = a.out or str(Path(__file__).resolve().parents[2] / "www" / "models" /
                       f"{name}-{a.variant.lower()}{'' if trained else '-untrained'}.sepnet")
    summary = export_sepnet(model, name, a.variant, out, labels=labels, trained=trained,
                            accuracy=accuracy, binarization=binarization, provenance_extra=extra)
    if a.evaluate:
        if get_spec(name).dataset != "cifar10":
            ap.error("--evaluate supports CIFAR-10 models only")
        from . import reference
        accuracy = reference.evaluate_cifar_val(
            reference.load(out, a.device), a.data_path, a.val_per_class, limit=a.limit_val)
        accuracy["measured"] = "sepnet file via sepnet_train.reference"
        # Write again with the measured accuracy (the export is deterministic).
        summary = export_sepnet(model, name, a.variant, out, labels=labels, trained=trained,
                                accuracy=accuracy, binarization=binarization,
                                provenance_extra=extra)
    if a.manifest:
        update_manifest(a.manifest, {**summary, "default": a.default})
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
