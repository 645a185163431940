"""Pack FER2013 into one file small enough to travel to a lent GPU machine, and unpack it there.

    python scripts/explore/devdata.py pack ../shared/fer2013 .devdata/fer2013-jpeg.npz   # JPEG bytes, ~57 MB
    python scripts/explore/devdata.py unpack .devdata/fer2013-jpeg.npz /tmp/fer2013.npz  # decoded arrays

The unpacked .npz holds train/public/private _images (N,48,48 uint8) and _labels, which
`ferkit.data.load_split` reads directly (`--data /tmp/fer2013.npz`). Decoding uses the same Pillow path
as the folder reader (ferkit.data.decode_file), so the pixels are those of the folder layout.
"""

import io
import sys

import numpy as np
from PIL import Image

SPLITS = ("train", "public", "private")


def pack(root: str, out: str) -> None:
    from ferkit.data.readers import list_split_files, resolve_root

    arrays = {}
    for s in SPLITS:
        r, files = list_split_files(root, s)
        blobs = [open(resolve_root(root) / rel, "rb").read() for rel, _ in files]
        arrays[f"{s}_bytes"] = np.frombuffer(b"".join(blobs), np.uint8)
        arrays[f"{s}_offsets"] = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        arrays[f"{s}_labels"] = np.array([lab for _, lab in files], np.uint8)
    np.savez(out, **arrays)


def unpack(src: str, out: str) -> None:
    from ferkit.data.readers import to_gray48

    z = np.load(src)
    arrays = {}
    for s in SPLITS:
        b, off = z[f"{s}_bytes"], z[f"{s}_offsets"]
        imgs = np.stack([to_gray48(Image.open(io.BytesIO(b[off[i]:off[i + 1]].tobytes())))
                         for i in range(len(off) - 1)])
        arrays[f"{s}_images"] = imgs
        arrays[f"{s}_labels"] = z[f"{s}_labels"].astype(np.int64)
        print(s, imgs.shape)
    np.savez(out, **arrays)


if __name__ == "__main__":
    {"pack": pack, "unpack": unpack}[sys.argv[1]](sys.argv[2], sys.argv[3])
