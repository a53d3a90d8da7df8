"""Data: CIFAR-10 from an ImageFolder of JPEGs, the fixed validation split, fast augmentation.

The JPEGs are decoded once (both cores) and cached as one uint8 array, so an epoch costs only
the network's compute. The validation split takes, per class, the files whose SHA-1 of
``"<class>/<file name>"`` sorts first: deterministic, independent of directory listing order,
and never trained on.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTS = (".jpg", ".jpeg", ".png")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CIFAR_TRAIN = REPO_ROOT.parent / "shared" / "datasets" / "cifar10" / "train"


def list_image_folder(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """(classes sorted by name, [(relative path, class index)] sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise FileNotFoundError(f"no class folders in {root}")
    items = []
    for ci, c in enumerate(classes):
        for f in sorted(os.listdir(root / c)):
            if f.lower().endswith(IMAGE_EXTS):
                items.append((f"{c}/{f}", ci))
    return classes, items


def _decode(args):
    root, rel, size = args
    from PIL import Image
    with Image.open(Path(root) / rel) as im:
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def load_folder_uint8(root: Path, size: int = 32, cache_dir: Path | None = None,
                      workers: int = 2):
    """Decode every image of an ImageFolder to uint8 [N, size, size, 3], cached on disk."""
    classes, items = list_image_folder(root)
    key = hashlib.sha1(("\n".join(r for r, _ in items) + f"|{size}|{Path(root).resolve()}")
                       .encode()).hexdigest()[:16]
    cache_dir = Path(cache_dir or os.environ.get("SEPNET_CACHE", Path.home() / ".cache" / "sepnet"))
    cache = cache_dir / f"folder-{key}.npz"
    labels = np.array([c for _, c in items], dtype=np.int64)
    files = [r for r, _ in items]
    if cache.exists():
        with np.load(cache) as z:
            return z["images"], labels, classes, files
    from tqdm import tqdm
    jobs = [(str(root), r, size) for r in files]
    with ProcessPoolExecutor(max_workers=workers) as ex:
        images = np.stack(list(tqdm(ex.map(_decode, jobs, chunksize=256), total=len(jobs),
                                    desc="decode", unit="img")))
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, images=images)
    os.replace(tmp, cache)
    return images, labels, classes, files


def validation_mask(files: list[str], labels: np.ndarray, per_class: int = 500) -> np.ndarray:
    """Boolean mask of the fixed validation split (``per_class`` files per class, by SHA-1 of name)."""
    mask = np.zeros(len(files), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        ranked = sorted(idx, key=lambda i: hashlib.sha1(files[i].encode()).hexdigest())
        mask[ranked[:per_class]] = True
    return mask


def export_split(root: Path, out: Path, per_class: int = 500, split: str = "val",
                 limit_per_class: int | None = None) -> int:
    """Materialise the validation split as an ImageFolder of symlinks (for ``sepnet eval``)."""
    classes, items = list_image_folder(root)
    files = [r for r, _ in items]
    labels = np.array([c for _, c in items])
    mask = validation_mask(files, labels, per_class)
    if split == "train":
        mask = ~mask
    n = 0
    counts = {c: 0 for c in classes}
    for rel, m in zip(files, mask):
        c = rel.split("/")[0]
        if not m or (limit_per_class is not None and counts[c] >= limit_per_class):
            continue
        dst = Path(out) / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            os.symlink(Path(root).resolve() / rel, dst)
        counts[c] += 1
        n += 1
    return n


class TensorLoader:
    """Batches from an in-memory uint8 array: random 4-pixel-padded crop + flip when training.

    With ``world_size > 1`` each rank takes its own shard of the same per-epoch permutation
    (what DistributedSampler does), so DDP sees every image once per epoch.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, train: bool,
                 mean=CIFAR10_MEAN, std=CIFAR10_STD, seed: int = 0, rank: int = 0,
                 world_size: int = 1, device="cpu", channels_last: bool = True, pad: int = 4):
        self.images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        self.labels = torch.from_numpy(labels)
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.rank, self.world_size, self.device = rank, world_size, device
        self.channels_last, self.pad = channels_last, pad
        self.mean = torch.tensor(mean).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std).view(1, 3, 1, 1) * 255
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        n = len(self.labels)
        if self.train:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            idx = torch.randperm(n, generator=g)
        else:
            idx = torch.arange(n)
        if self.world_size > 1:
            per = (n + self.world_size - 1) // self.world_size
            idx = torch.cat([idx, idx[: per * self.world_size - n]])  # pad so shards are equal
            idx = idx[self.rank::self.world_size]
        return idx

    def __len__(self) -> int:
        n = len(self._indices())
        return (n + self.batch_size - 1) // self.batch_size

    def _augment(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, _, h, w = x.shape
        p = self.pad
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        oy = torch.randint(0, 2 * p + 1, (b,), generator=g)
        ox = torch.randint(0, 2 * p + 1, (b,), generator=g)
        flip = torch.rand(b, generator=g) < 0.5
        out = torch.empty_like(x)
        for i in range(b):
            crop = padded[i, :, oy[i]:oy[i] + h, ox[i]:ox[i] + w]
            out[i] = crop.flip(-1) if flip[i] else crop
        return out

    def __iter__(self):
        idx = self._indices()
        g = torch.Generator().manual_seed(self.seed * 7919 + self.epoch * 31 + self.rank)
        for s in range(0, len(idx), self.batch_size):
            bi = idx[s:s + self.batch_size]
            x = self.images[bi]
            if self.train:
                x = self._augment(x, g)
            x = (x.float() - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x.to(self.device, non_blocking=True), self.labels[bi].to(self.device)
