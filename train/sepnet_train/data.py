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
    """(a path or the encoded bytes, size) -> uint8 [size, size, 3], RGB, resized if need be."""
    source, size = args
    import io
    from PIL import Image
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def _cache_dir(cache_dir: Path | None) -> Path:
    return Path(cache_dir or os.environ.get("SEPNET_CACHE", Path.home() / ".cache" / "sepnet"))


def _decode_all_cached(cache: Path, jobs: list, workers: int) -> np.ndarray:
    """Decode ``jobs`` (``_decode``'s arguments) in parallel once; later calls read ``cache``."""
    if cache.exists():
        if cache.suffix == ".npz":
            with np.load(cache) as z:
                return z["images"]
        return np.load(cache)
    from tqdm import tqdm
    with ProcessPoolExecutor(max_workers=workers) as ex:
        images = np.stack(list(tqdm(ex.map(_decode, jobs, chunksize=256), total=len(jobs),
                                    desc="decode", unit="img")))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.stem}.tmp{os.getpid()}{cache.suffix}")
    if cache.suffix == ".npz":
        np.savez(tmp, images=images)
    else:
        np.save(tmp, images)
    os.replace(tmp, cache)  # atomic: concurrent stages never read a half-written cache
    return images


def load_folder_uint8(root: Path, size: int = 32, cache_dir: Path | None = None,
                      workers: int = 2):
    """Decode every image of an ImageFolder to uint8 [N, size, size, 3], cached on disk."""
    classes, items = list_image_folder(root)
    key = hashlib.sha1(("\n".join(r for r, _ in items) + f"|{size}|{Path(root).resolve()}")
                       .encode()).hexdigest()[:16]
    labels = np.array([c for _, c in items], dtype=np.int64)
    files = [r for r, _ in items]
    jobs = [(str(Path(root) / r), size) for r in files]
    images = _decode_all_cached(_cache_dir(cache_dir) / f"folder-{key}.npz", jobs, workers)
    return images, labels, classes, files


def pack_jpegs(root: Path, out: Path) -> int:
    """Store an ImageFolder's encoded files in one ``.npz`` (bytes, offsets, labels, names).

    The pack is the dataset as it is on disk (no re-encoding), in one file, so it can travel to a
    machine the shared dataset folder does not reach. Deflated: CIFAR-10's 50,000 JPEGs repeat the
    same headers and tables (about half of each ~960-byte file), 47.8 MB stored, 15.4 MB deflated,
    which leaves room for checkpoints in a lent GPU's 64 MiB.
    """
    classes, items = list_image_folder(root)
    blobs = [(Path(root) / r).read_bytes() for r, _ in items]
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, data=np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets=offsets,
             labels=np.array([c for _, c in items], dtype=np.int64),
             files=np.array([r.encode() for r, _ in items]),  # bytes: 4x smaller than str
             classes=np.array([c.encode() for c in classes]))
    os.replace(tmp, out)
    return len(items)


def load_pack_uint8(path: Path, size: int = 32, cache_dir: Path | None = None,
                    workers: int | None = None):
    """``load_folder_uint8`` for a pack made by ``pack_jpegs``: same decoding, same cache."""
    with np.load(path) as z:
        data, offsets = z["data"], z["offsets"]
        labels = z["labels"]
        text = lambda a: [v.decode() if isinstance(v, bytes) else str(v) for v in a.tolist()]
        files, classes = text(z["files"]), text(z["classes"])
    key = hashlib.sha1(("\n".join(files) + f"|{size}|pack|{int(offsets[-1])}").encode()).hexdigest()[:16]
    jobs = [(data[offsets[i]:offsets[i + 1]].tobytes(), size) for i in range(len(files))]
    images = _decode_all_cached(_cache_dir(cache_dir) / f"pack-{key}.npy", jobs,
                                workers or os.cpu_count())
    return images, labels, classes, files


def load_uint8(path: Path, size: int = 32):
    """An ImageFolder directory or a ``.npz`` pack of one, decoded to uint8 [N, size, size, 3]."""
    path = Path(path)
    if path.suffix == ".npz":
        return load_pack_uint8(path, size)
    return load_folder_uint8(path, size)


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


class DeviceLoader:
    """A DataLoader's batches moved to ``device``, images in channels_last, behind TensorLoader's
    interface (``set_epoch``, ``len``): the ImageNet-style folder path trains from it, since its
    JPEGs are decoded on the CPU by DataLoader workers rather than cached on the device."""

    def __init__(self, loader, device="cpu", sampler=None):
        self.loader, self.device, self.sampler = loader, device, sampler

    def set_epoch(self, epoch: int) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)  # DistributedSampler reshuffles per epoch

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            yield x, y.to(self.device, non_blocking=True)


class TensorLoader:
    """Batches from an in-memory uint8 array: random 4-pixel-padded crop + flip when training,
    plus an optional Cutout square (``cutout`` pixels a side, zero after normalization).

    With ``world_size > 1`` each rank takes its own shard of the same per-epoch permutation
    (what DistributedSampler does), so DDP sees every image once per epoch.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, train: bool,
                 mean=CIFAR10_MEAN, std=CIFAR10_STD, seed: int = 0, rank: int = 0,
                 world_size: int = 1, device="cpu", channels_last: bool = True, pad: int = 4,
                 cutout: int = 0):
        # On a GPU the whole uint8 set (150 MB for CIFAR-10) lives there: no copies per batch.
        self.images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(device)
        self.labels = torch.from_numpy(labels).to(device)
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.rank, self.world_size, self.device = rank, world_size, device
        self.channels_last, self.pad, self.cutout = channels_last, pad, cutout
        self.mean = torch.tensor(mean).view(1, 3, 1, 1).to(device) * 255
        self.std = torch.tensor(std).view(1, 3, 1, 1).to(device) * 255
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
        """Random ``pad``-padded crop + horizontal flip, one gather for the whole batch.

        The draws (crop offsets, then flips, from ``g`` on the CPU) are the same as the
        per-image loop this replaced, so CPU runs resumed across the change see identical
        batches; one gather instead of a loop is what makes it cheap on a GPU.
        """
        b, _, h, w = x.shape
        p = self.pad
        padded = torch.nn.functional.pad(x, (p, p, p, p)).permute(0, 2, 3, 1)  # [B, H+2p, W+2p, C]
        oy = torch.randint(0, 2 * p + 1, (b,), generator=g).to(x.device)
        ox = torch.randint(0, 2 * p + 1, (b,), generator=g).to(x.device)
        flip = (torch.rand(b, generator=g) < 0.5).to(x.device)
        ar_h = torch.arange(h, device=x.device)
        ar_w = torch.arange(w, device=x.device)
        rows = oy[:, None] + ar_h                                            # [B, h]
        cols = ox[:, None] + torch.where(flip[:, None], w - 1 - ar_w, ar_w)   # [B, w]
        bi = torch.arange(b, device=x.device)[:, None, None]
        return padded[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # NCHW view

    def _cutout_keep(self, b: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
        """[B, 1, H, W] mask that is 0 on one ``cutout``-sided square per image (DeVries & Taylor).

        The square's centre is uniform over the image, so it may hang off an edge. Drawn after
        the crop and flip draws, so runs without cutout see the same batches as before.
        """
        s = self.cutout
        top = torch.randint(0, h, (b,), generator=g) - s // 2
        left = torch.randint(0, w, (b,), generator=g) - s // 2
        ys, xs = torch.arange(h), torch.arange(w)
        in_y = (ys >= top[:, None]) & (ys < top[:, None] + s)     # [B, H]
        in_x = (xs >= left[:, None]) & (xs < left[:, None] + s)   # [B, W]
        keep = ~(in_y[:, :, None] & in_x[:, None, :])
        return keep[:, None].to(self.images.device, torch.float32)

    def __iter__(self):
        idx = self._indices()
        g = torch.Generator().manual_seed(self.seed * 7919 + self.epoch * 31 + self.rank)
        for s in range(0, len(idx), self.batch_size):
            bi = idx[s:s + self.batch_size].to(self.images.device)
            x = self.images[bi]
            if self.train:
                x = self._augment(x, g)
            x = (x.float() - self.mean) / self.std
            if self.train and self.cutout > 0:
                x = x * self._cutout_keep(x.shape[0], x.shape[2], x.shape[3], g)
            x = x.contiguous(memory_format=torch.channels_last if self.channels_last
                             else torch.contiguous_format)
            yield x, self.labels[bi]


# The IJG (libjpeg) reference luminance table, row by row: what `quality` scales.
_IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
_SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def ijg_quality(luma_table) -> int | None:
    """The libjpeg quality (1-100) whose scaled reference table is exactly this luminance table
    (row order, as Pillow gives it), or None for a table libjpeg's scaling does not make."""
    table = np.asarray(list(luma_table), dtype=np.int64)
    for q in range(1, 101):
        scale = 5000 // q if q < 50 else 200 - 2 * q
        if np.array_equal(np.clip((_IJG_LUMA * scale + 50) // 100, 1, 255), table):
            return q
    return None


def jpeg_survey(root: Path, every: int = 1) -> dict:
    """How an ImageFolder's JPEGs were encoded: counts of (libjpeg quality, chroma subsampling)
    over every ``every``-th file. The lossy encoding bounds what a classifier can learn, so
    docs/RESULTS.md states it beside any comparison with numbers measured on the PNG originals."""
    from collections import Counter
    from PIL import Image, JpegImagePlugin
    _, items = list_image_folder(root)
    counts: Counter = Counter()
    for rel, _ in items[::every]:
        with Image.open(Path(root) / rel) as im:
            if im.format != "JPEG":
                counts[(im.format, None, None)] += 1
                continue
            sub = _SUBSAMPLING.get(JpegImagePlugin.get_sampling(im), "other")
            counts[("JPEG", ijg_quality(im.quantization[0]), sub)] += 1
    return {"files": sum(counts.values()), "of": len(items),
            "encodings": [{"format": f, "quality": q, "chroma_subsampling": c, "files": n}
                          for (f, q, c), n in counts.most_common()]}


def main(argv=None):
    """``python -m sepnet_train.data pack OUT [--root DIR]`` / ``decode PACK`` (fills the cache) /
    ``jpeg [--root DIR] [--json-out F]`` (how the JPEGs were encoded)."""
    import argparse
    p = argparse.ArgumentParser(description=main.__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack", help="store an ImageFolder's files in one .npz")
    a.add_argument("out")
    a.add_argument("--root", default=str(DEFAULT_CIFAR_TRAIN))
    b = sub.add_parser("decode", help="decode a pack or folder once, into the cache")
    b.add_argument("path")
    j = sub.add_parser("jpeg", help="survey the JPEG quality and chroma subsampling of a folder")
    j.add_argument("--root", default=str(DEFAULT_CIFAR_TRAIN))
    j.add_argument("--every", type=int, default=1, help="look at every N-th file only")
    j.add_argument("--json-out", default=None)
    args = p.parse_args(argv)
    if args.cmd == "jpeg":
        import json
        report = jpeg_survey(Path(args.root), args.every)
        text = json.dumps(report, indent=1)
        print(text)
        if args.json_out:
            Path(args.json_out).write_text(text + "\n")
    elif args.cmd == "pack":
        n = pack_jpegs(Path(args.root), Path(args.out))
        print(f"packed {n} files into {args.out} ({Path(args.out).stat().st_size} bytes)")
    else:
        images, labels, classes, _ = load_uint8(Path(args.path))
        print(f"decoded {len(images)} images, {len(classes)} classes")


if __name__ == "__main__":
    main()
