"""Makes the JPEG fixtures of src/bin/sepnet/jpeg.rs's tests: a 4:2:0 baseline and a progressive
JPEG of a synthetic scene (PIL's encoder), each beside PIL's own decode of it as a lossless PNG
(PIL decodes with libjpeg-turbo, as Chromium does). Run from this folder: python make.py
"""
import numpy as np
from PIL import Image

y, x = np.mgrid[0:37, 0:45]  # odd sizes: partial MCUs at the right and bottom edges
rgb = np.stack([(x * 5 + y * 2) % 256, (y * 7) % 256, ((x - y) * 11) % 256], -1).astype(np.uint8)
rgb[10:20, 12:30] = (250, 30, 40)  # a sharp-edged block: chroma upsampling shows at its edges
scene = Image.fromarray(rgb)
for name, opts in (("q75-420", dict(quality=75, subsampling=2)),
                   ("progressive", dict(quality=90, subsampling=2, progressive=True))):
    scene.save(f"{name}.jpg", **opts)
    Image.open(f"{name}.jpg").convert("RGB").save(f"{name}.pil.png")
data = open("q75-420.jpg", "rb").read()
open("truncated.jpg", "wb").write(data[: len(data) // 2])
scene.convert("CMYK").save("cmyk.jpg", quality=90)
