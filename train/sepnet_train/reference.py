"""Reference interpreter of ``.sepnet`` files in PyTorch: the "deployed model" evaluator.

Written from ``docs/FORMAT.md`` alone (it shares no code with ``export.py``): it parses the
safetensors container by hand, checks the file the way the runtime must (version, required
keys, topological order, tensor dtypes and shapes, pattern padding bits, limits), decodes
``pattern`` bits and ``int8`` weights to f32, and runs the graph with ``torch.nn.functional``.
The accuracy of B / BQ models is measured through it, so what is reported is the accuracy of
the converted file rather than of the training module.

    ref = load("www/models/sepnet_cifar-bq.sepnet")
    logits, acts = ref.run(x, capture=["conv1", "pool"])   # x: [N, 3, H, W] float32
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SUPPORTED_VERSION = "1"
REQUIRED_KEYS = ("sepnet.format", "sepnet.version", "sepnet.graph", "sepnet.labels",
                 "sepnet.preprocess", "sepnet.provenance")
MAX_NODES = 4096
MAX_KERNEL = 31
MAX_STRIDE = 16
MAX_ELEMENTS = 1 << 26
MAX_CHANNELS = 65536
_DTYPES = {"F32": np.dtype("<f4"), "I8": np.dtype("i1"), "U8": np.dtype("u1")}


class FormatError(ValueError):
    """The file breaks the ``.sepnet`` contract."""


def read_safetensors(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, {name: array}) from the raw bytes of a safetensors file."""
    if len(data) < 8:
        raise FormatError("file too short for a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise FormatError("safetensors header runs past the end of the file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = memoryview(data)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        dt = info["dtype"]
        if dt not in _DTYPES:
            continue  # never referenced legitimately: the graph may only name F32/I8/U8
        shape = [int(d) for d in info["shape"]]
        b, e = info["data_offsets"]
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= b <= e <= len(body)) or e - b != count * _DTYPES[dt].itemsize:
            raise FormatError(f"tensor {name!r}: bad data offsets {b}..{e}")
        tensors[name] = np.frombuffer(body[b:e], dtype=_DTYPES[dt]).reshape(shape).copy()
    return meta, tensors


def _json_key(meta: dict, key: str):
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as e:
        raise FormatError(f"{key} is not valid JSON: {e}") from None


def _pair(node, key) -> tuple[int, int]:
    v = node.get(key)
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(i, int) for i in v)):
        raise FormatError(f"node {node['name']!r}: {key} must be two integers, got {v!r}")
    return v[0], v[1]


# FORMAT.md section 3: optional attributes and their defaults.
_DEFAULTS = {"conv2d": {"stride": [1, 1], "padding": [0, 0], "groups": 1, "bias": None},
             "maxpool2d": {"stride": [1, 1], "padding": [0, 0]},
             "linear": {"bias": None}}


def _with_defaults(graph):
    """Fill in omitted optional attributes so the rest of the reader sees explicit values."""
    if isinstance(graph, dict) and isinstance(graph.get("nodes"), list):
        for node in graph["nodes"]:
            if not isinstance(node, dict):
                continue
            for k, v in _DEFAULTS.get(node.get("op"), {}).items():
                node.setdefault(k, v)
            if isinstance(node.get("weight"), dict):
                node["weight"].setdefault("encoding", "f32")
    return graph


class RefModel:
    """A decoded ``.sepnet`` file: graph, f32 weights, labels, preprocessing, provenance."""

    def __init__(self, meta: dict, tensors: dict[str, np.ndarray], device="cpu"):
        missing = [k for k in REQUIRED_KEYS if k not in meta]
        if missing:
            raise FormatError(f"missing metadata keys: {', '.join(missing)}")
        if meta["sepnet.format"] != "sepnet":
            raise FormatError(f"sepnet.format is {meta['sepnet.format']!r}, not 'sepnet'")
        if meta["sepnet.version"] != SUPPORTED_VERSION:
            raise FormatError(f"unsupported version {meta['sepnet.version']!r}")
        self.graph = _with_defaults(_json_key(meta, "sepnet.graph"))
        self.labels = _json_key(meta, "sepnet.labels")
        self.preprocess = _json_key(meta, "sepnet.preprocess")
        self.provenance = _json_key(meta, "sepnet.provenance")
        self.device = torch.device(device)
        self._raw = tensors
        self.weights: dict[str, torch.Tensor] = {}  # node name -> decoded f32 weight
        self.biases: dict[str, torch.Tensor | None] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._check_and_decode()

    # -- validation and decoding ---------------------------------------------------------------
    def _tensor(self, node, name, dtype, shape) -> np.ndarray:
        if not isinstance(name, str) or name not in self._raw:
            raise FormatError(f"node {node['name']!r}: tensor {name!r} does not exist")
        t = self._raw[name]
        if t.dtype != _DTYPES[dtype] or list(t.shape) != list(shape):
            raise FormatError(f"node {node['name']!r}: tensor {name!r} is {t.dtype}{list(t.shape)},"
                              f" expected {dtype}{list(shape)}")
        return t

    def _decode_weight(self, node, spec, shape, allow_pattern) -> np.ndarray:
        enc = spec.get("encoding")
        o = shape[0]
        if enc == "f32":
            return self._tensor(node, spec.get("tensor"), "F32", shape).astype(np.float32)
        if enc == "int8":
            q = self._tensor(node, spec.get("tensor"), "I8", shape)
            if (q == -128).any():
                raise FormatError(f"node {node['name']!r}: int8 weight outside [-127, 127]")
            s = self._tensor(node, spec.get("scale"), "F32", [o])
            return q.astype(np.float32) * s.reshape(o, *([1] * (len(shape) - 1)))
        if enc == "pattern" and allow_pattern:
            n = int(np.prod(shape[1:]))
            packed = self._tensor(node, spec.get("tensor"), "U8", [o, (n + 7) // 8])
            bits = np.unpackbits(packed, axis=1, bitorder="little")
            if bits[:, n:].any():
                raise FormatError(f"node {node['name']!r}: pattern padding bits are not zero")
            s = self._tensor(node, spec.get("scale"), "F32", [o])
            signs = bits[:, :n].astype(np.float32) * 2.0 - 1.0
            return (signs * s.reshape(o, 1)).reshape(shape)
        raise FormatError(f"node {node['name']!r}: encoding {enc!r} not allowed here")

    def _check_and_decode(self) -> None:
        g = self.graph
        inp = g.get("input") or {}
        in_name, in_shape = inp.get("name"), inp.get("shape")
        if not isinstance(in_name, str) or not (isinstance(in_shape, list) and len(in_shape) == 3):
            raise FormatError("graph.input must have a name and a [C, H, W] shape")
        nodes = g.get("nodes")
        if not isinstance(nodes, list) or not nodes:
            raise FormatError("graph.nodes must be a non-empty list")
        if len(nodes) > MAX_NODES:
            raise FormatError(f"{len(nodes)} nodes (at most {MAX_NODES})")
        shapes = {in_name: tuple(int(d) for d in in_shape)}
        self._check_shape(in_name, shapes[in_name])
        for node in nodes:
            name, op, ins = node.get("name"), node.get("op"), node.get("inputs")
            if not isinstance(name, str) or name in shapes:
                raise FormatError(f"node name {name!r} is missing or not unique")
            if not isinstance(ins, list) or any(x not in shapes for x in ins):
                raise FormatError(f"node {name!r}: inputs {ins!r} name no earlier value")
            xs = [shapes[x] for x in ins]
            shapes[name] = self._infer(node, op, xs)
            self._check_shape(name, shapes[name])
        out = g.get("output")
        if out not in shapes or len(shapes[out]) != 1:
            raise FormatError(f"graph.output {out!r} is not a vector value")
        if not isinstance(self.labels, list) or len(self.labels) != shapes[out][0]:
            raise FormatError(f"{len(self.labels)} labels for an output of width {shapes[out][0]}")
        self.shapes = shapes

    @staticmethod
    def _check_shape(name, shape) -> None:
        if any(d < 1 for d in shape) or int(np.prod(shape)) > MAX_ELEMENTS:
            raise FormatError(f"value {name!r} has shape {list(shape)} outside the limits")
        if len(shape) == 3 and shape[0] > MAX_CHANNELS:
            raise FormatError(f"value {name!r} has too many channels")

    def _infer(self, node, op, xs) -> tuple[int, ...]:
        name = node["name"]

        def arity(k):
            if len(xs) != k:
                raise FormatError(f"node {name!r}: {op} takes {k} input(s), got {len(xs)}")

        def spatial(x):
            if len(x) != 3:
                raise FormatError(f"node {name!r}: {op} needs a [C, H, W] input")
            return x

        if op == "conv2d":
            arity(1)
            c, h, w = spatial(xs[0])
            o, g = node.get("out_channels"), node.get("groups")
            (kh, kw), (sh, sw), (ph, pw) = (_pair(node, "kernel"), _pair(node, "stride"),
                                            _pair(node, "padding"))
            if not (isinstance(o, int) and isinstance(g, int)
                    and 1 <= o <= MAX_CHANNELS and g >= 1):
                raise FormatError(f"node {name!r}: bad out_channels / groups")
            if c % g or o % g:
                raise FormatError(f"node {name!r}: channels not divisible by groups {g}")
            if not (1 <= kh <= MAX_KERNEL and 1 <= kw <= MAX_KERNEL and 1 <= sh <= MAX_STRIDE
                    and 1 <= sw <= MAX_STRIDE and ph >= 0 and pw >= 0):
                raise FormatError(f"node {name!r}: kernel / stride / padding outside the limits")
            if h + 2 * ph < kh or w + 2 * pw < kw:
                raise FormatError(f"node {name!r}: kernel larger than the padded input")
            shape = [o, c // g, kh, kw]
            self.weights[name] = torch.from_numpy(
                self._decode_weight(node, node.get("weight") or {}, shape, True))
            self._decode_bias(node, o)
            return (o, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
        if op == "linear":
            arity(1)
            i, o = int(np.prod(xs[0])), node.get("out_features")
            if not (isinstance(o, int) and o >= 1):
                raise FormatError(f"node {name!r}: bad out_features")
            self.weights[name] = torch.from_numpy(
                self._decode_weight(node, node.get("weight") or {}, [o, i], False))
            self._decode_bias(node, o)
            return (o,)
        if op == "add":
            arity(2)
            if xs[0] != xs[1]:
                raise FormatError(f"node {name!r}: add of shapes {xs[0]} and {xs[1]}")
            return xs[0]
        if op in ("relu",):
            arity(1)
            return xs[0]
        if op == "softmax":
            arity(1)
            if len(xs[0]) != 1:
                raise FormatError(f"node {name!r}: softmax needs a vector")
            return xs[0]
        if op == "concat":
            if not xs or any(len(x) != 3 or x[1:] != xs[0][1:] for x in xs):
                raise FormatError(f"node {name!r}: concat needs [C, H, W] inputs of equal H, W")
            return (sum(x[0] for x in xs), *xs[0][1:])
        if op == "maxpool2d":
            arity(1)
            c, h, w = spatial(xs[0])
            (kh, kw), (sh, sw), (ph, pw) = (_pair(node, "kernel"), _pair(node, "stride"),
                                            _pair(node, "padding"))
            if not (1 <= kh <= MAX_KERNEL and 1 <= kw <= MAX_KERNEL and 1 <= sh <= MAX_STRIDE
                    and 1 <= sw <= MAX_STRIDE and 0 <= ph < kh and 0 <= pw < kw):
                raise FormatError(f"node {name!r}: kernel / stride / padding outside the limits")
            if h + 2 * ph < kh or w + 2 * pw < kw:
                raise FormatError(f"node {name!r}: kernel larger than the padded input")
            return (c, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
        if op == "global_avg_pool":
            arity(1)
            return (spatial(xs[0])[0],)
        raise FormatError(f"node {name!r}: unknown op {op!r}")

    def _decode_bias(self, node, o) -> None:
        b = node.get("bias")
        self.biases[node["name"]] = (None if b is None else
                                     torch.from_numpy(self._tensor(node, b, "F32", [o]).copy()))

    # -- execution ------------------------------------------------------------------------------
    def to(self, device) -> "RefModel":
        self.device = torch.device(device)
        self.weights = {k: v.to(self.device) for k, v in self.weights.items()}
        self.biases = {k: (v.to(self.device) if v is not None else None)
                       for k, v in self.biases.items()}
        return self

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.graph["input"]["shape"])

    @torch.no_grad()
    def run(self, x: torch.Tensor, capture=()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(logits [N, K], {name: activation [N, ...]}) for a batch x [N, C, H, W]."""
        in_name = self.graph["input"]["name"]
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"input {tuple(x.shape)} does not match [N, {self.input_shape}]")
        want = set(capture)
        unknown = want - set(self.shapes)
        if unknown:
            raise KeyError(f"no such values: {sorted(unknown)}")
        vals = {in_name: x.to(self.device, torch.float32)}
        for node in self.graph["nodes"]:
            name, op = node["name"], node["op"]
            xs = [vals[i] for i in node["inputs"]]
            if op == "conv2d":
                y = F.conv2d(xs[0], self.weights[name], self.biases[name],
                             stride=tuple(node["stride"]), padding=tuple(node["padding"]),
                             groups=node["groups"])
            elif op == "linear":
                y = F.linear(xs[0].flatten(1), self.weights[name], self.biases[name])
            elif op == "add":
                y = xs[0] + xs[1]
            elif op == "relu":
                y = torch.relu(xs[0])
            elif op == "concat":
                y = torch.cat(xs, dim=1)
            elif op == "maxpool2d":
                ph, pw = node["padding"]
                # Padding is −∞ (never selected); pad explicitly, since F.max_pool2d only
                # accepts padding up to half the kernel while the format allows up to k − 1.
                y = F.pad(xs[0], (pw, pw, ph, ph), value=float("-inf"))
                y = F.max_pool2d(y, tuple(node["kernel"]), tuple(node["stride"]))
            elif op == "global_avg_pool":
                y = xs[0].mean(dim=(2, 3))
            elif op == "softmax":
                y = torch.softmax(xs[0], dim=1)
            else:  # unreachable: rejected at load
                raise FormatError(f"unknown op {op!r}")
            vals[name] = y
        acts = {k: vals[k] for k in capture}
        return vals[self.graph["output"]], acts

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]


def load(path, device="cpu") -> RefModel:
    meta, tensors = read_safetensors(Path(path).read_bytes())
    return RefModel(meta, tensors).to(device)


def cifar_val_split(data_path=None, per_class: int = 500):
    """(uint8 images, labels, class names) of the fixed validation split's first ``per_class``
    images of each class (``sepnet_train.data``; 500 is the whole split)."""
    from . import data as D
    images, labels, classes, files = D.load_folder_uint8(Path(data_path or D.DEFAULT_CIFAR_TRAIN), 32)
    idx = np.flatnonzero(D.validation_mask(files, labels, per_class))
    return images[idx], labels[idx], classes


def batches_for(ref: RefModel, images, labels, batch_size: int = 250):
    """Evaluation batches of uint8 images with the file's own preprocessing (so a wrong mean/std
    in the file shows up as lost accuracy)."""
    from . import data as D
    return D.TensorLoader(images, labels, batch_size=batch_size, train=False,
                          mean=ref.preprocess["mean"], std=ref.preprocess["std"],
                          device=str(ref.device), channels_last=False)


@torch.no_grad()
def evaluate(ref: RefModel, batches, topk=(1, 5)) -> dict:
    """Top-k accuracy of a loaded file over an iterable of (images [N,C,H,W], labels [N])."""
    correct, n = {k: 0 for k in topk}, 0
    for x, y in batches:
        logits = ref(x)
        y = y.to(logits.device)
        top = logits.topk(max(topk), dim=1).indices
        for k in topk:
            correct[k] += int((top[:, :k] == y[:, None]).any(dim=1).sum())
        n += len(y)
    return {"n": n, **{f"top{k}": correct[k] / max(n, 1) for k in topk}}


def evaluate_cifar_val(ref: RefModel, data_path=None, per_class: int = 500,
                       batch_size: int = 250, limit: int | None = None) -> dict:
    """Accuracy of a CIFAR-10 file on the fixed validation split (``sepnet_train.data``), using
    the file's own preprocessing (so a wrong mean/std in the file shows up as lost accuracy)."""
    images, labels, _ = cifar_val_split(data_path, per_class)
    if limit:
        keep = np.random.RandomState(1).permutation(len(labels))[:limit]
        images, labels = images[keep], labels[keep]
    acc = evaluate(ref, batches_for(ref, images, labels, batch_size))
    return {"split": f"val{per_class * 10}", **acc}
