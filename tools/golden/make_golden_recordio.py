#!/usr/bin/env python3
"""RecordIO and ImageRecordIter golden fixtures for KilnData, written by real MXNet 1.9.1.

    pip download --no-deps -d /tmp/foolbox foolbox==3.3.4
    (cd /tmp/foolbox && unzip -o -q foolbox-3.3.4-py3-none-any.whl 'foolbox/data/cifar10_*')
    MXNET_SUBGRAPH_BACKEND=NONE python tools/golden/make_golden_recordio.py /tmp/foolbox/foolbox/data

The interpreter needs mxnet==1.9.1, numpy==1.23.5 and pillow (MXNet's `pack_img` needs cv2, which
its venv may lack, so images are encoded with PIL and packed with `mx.recordio.pack`). Output goes to
Tests/Fixtures/golden/recordio/; its README.md says what each file holds. Deterministic: two runs give
identical files (PIL's encoders are deterministic for fixed settings).
"""
import io
import json
import os
import struct
import sys

if os.environ.get("MXNET_SUBGRAPH_BACKEND", "") != "NONE":
    sys.exit("make_golden_recordio.py: set MXNET_SUBGRAPH_BACKEND=NONE")

import numpy as np
import mxnet as mx
from PIL import Image

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "Tests", "Fixtures", "golden", "recordio")
MAGIC = struct.pack("<I", 0xCED7230A)


def write_json(name, obj):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def encode(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def raw_records():
    """Plain payloads through MXIndexedRecordIO: every length mod 4, and the magic inside payloads."""
    rng = np.random.RandomState(7)
    payloads = [
        b"", b"a", b"ab", b"abc", b"abcd", b"hello world",
        MAGIC,                                   # the whole payload is the magic: two empty parts
        b"head" + MAGIC + b"tail!",              # magic at an aligned offset: split into two parts
        MAGIC + MAGIC + b"xy",                   # magic twice at the start
        b"ab" + MAGIC + b"cd",                   # magic at an unaligned offset: not split
        b"0123" + MAGIC + b"4567" + MAGIC,       # ends with the magic: an empty last part
        rng.randint(0, 256, size=1001).astype(np.uint8).tobytes(),
    ]
    rec = mx.recordio.MXIndexedRecordIO(os.path.join(OUT, "raw.idx"), os.path.join(OUT, "raw.rec"), "w")
    for i, p in enumerate(payloads):
        rec.write_idx(i, p)
    rec.close()
    write_json("raw.json", [p.hex() for p in payloads])


def image_records():
    """Six images packed with IRHeader: three PNG (RGB, gray, RGBA) and three JPEG."""
    rng = np.random.RandomState(11)
    rgb = rng.randint(0, 256, size=(7, 9, 3)).astype(np.uint8)
    gray = rng.randint(0, 256, size=(6, 8)).astype(np.uint8)
    rgba = rng.randint(0, 256, size=(8, 6, 4)).astype(np.uint8)
    # Smooth JPEG sources, so that decoders agree to a level or two.
    yy, xx = np.mgrid[0:12, 0:16]
    smooth = np.stack([xx * 15, yy * 20, (xx + yy) * 9], axis=-1).astype(np.uint8)
    yy, xx = np.mgrid[0:13, 0:17]
    smooth2 = np.stack([255 - xx * 14, yy * 18, 128 + (xx - yy) * 4], axis=-1).clip(0, 255).astype(np.uint8)
    gray_smooth = (np.add.outer(np.arange(10), np.arange(10)) * 12).astype(np.uint8)

    entries = [
        ("png_rgb", encode(Image.fromarray(rgb, "RGB"), "PNG"), rgb),
        ("png_gray", encode(Image.fromarray(gray, "L"), "PNG"), np.repeat(gray[:, :, None], 3, axis=2)),
        # OpenCV (MXNet's decoder) drops the alpha channel of a colour read; it does not composite.
        ("png_rgba", encode(Image.fromarray(rgba, "RGBA"), "PNG"), rgba[:, :, :3]),
        ("jpeg_q95_444", encode(Image.fromarray(smooth, "RGB"), "JPEG", quality=95, subsampling=0), None),
        ("jpeg_q75_420", encode(Image.fromarray(smooth2, "RGB"), "JPEG", quality=75, subsampling=2), None),
        ("jpeg_gray", encode(Image.fromarray(gray_smooth, "L"), "JPEG", quality=90), None),
    ]
    rec = mx.recordio.MXIndexedRecordIO(os.path.join(OUT, "images.idx"), os.path.join(OUT, "images.rec"), "w")
    meta = []
    for i, (name, data, expected) in enumerate(entries):
        label = float(i) * 1.5
        header = mx.recordio.IRHeader(0, label, 100 + i, 0)
        rec.write_idx(i, mx.recordio.pack(header, data))
        if expected is None:  # PIL's own decode of the JPEG, to compare within a tolerance
            expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        np.save(os.path.join(OUT, "images_%d_%s.npy" % (i, name)), np.ascontiguousarray(expected))
        meta.append({"name": name, "label": label, "id": 100 + i, "shape": list(expected.shape),
                     "exact": name.startswith("png")})
    rec.close()
    write_json("images.json", meta)

    # Multi-label records: flag = 3 extra float labels before the image bytes.
    rec = mx.recordio.MXIndexedRecordIO(os.path.join(OUT, "multilabel.idx"),
                                        os.path.join(OUT, "multilabel.rec"), "w")
    for i in range(2):
        header = mx.recordio.IRHeader(0, [i, 0.5 + i, -2.0 * i], 7 + i, 0)
        rec.write_idx(i, mx.recordio.pack(header, encode(Image.fromarray(rgb, "RGB"), "PNG")))
    rec.close()


def cifar_records(cifar_dir):
    """The first 20 CIFAR-10 test images shipped with foolbox 3.3.4, PNG bytes packed as they are."""
    names = sorted(n for n in os.listdir(cifar_dir) if n.startswith("cifar10_") and n.endswith(".png"))
    if len(names) != 20:
        sys.exit("expected 20 cifar10_*.png files in %s, found %d" % (cifar_dir, len(names)))
    rec = mx.recordio.MXIndexedRecordIO(os.path.join(OUT, "cifar10.idx"), os.path.join(OUT, "cifar10.rec"), "w")
    labels = []
    for i, n in enumerate(names):
        label = int(n[:-4].split("_")[2])
        with open(os.path.join(cifar_dir, n), "rb") as f:
            data = f.read()
        rec.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, float(label), i, 0), data))
        labels.append(label)
    rec.close()
    write_json("cifar10.json", {"files": names, "labels": labels})


def run_iter(case, **kw):
    """Every batch of one pass of mx.io.ImageRecordIter, as data/label .npy files per batch."""
    it = mx.io.ImageRecordIter(preprocess_threads=1, shuffle=False, **kw)
    batches = []
    for b, batch in enumerate(it):
        data = batch.data[0].asnumpy()
        # Unnormalized pixels are whole numbers in 0...255: stored as uint8 to keep the fixtures small.
        if np.array_equal(data, np.round(data)) and data.min() >= 0 and data.max() <= 255:
            data = data.astype(np.uint8)
        np.save(os.path.join(OUT, "iter_%s_%d_data.npy" % (case, b)), data)
        np.save(os.path.join(OUT, "iter_%s_%d_label.npy" % (case, b)), batch.label[0].asnumpy())
        # MXNet 1.9.1's ImageRecordIter leaves batch.index zero, so it is not recorded.
        batches.append({"pad": batch.pad})
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}
    settings["path_imgrec"] = os.path.basename(settings["path_imgrec"])
    settings.pop("path_imgidx", None)
    return {"case": case, "settings": settings, "batches": batches,
            "provide_data": [list(d.shape) for d in it.provide_data],
            "provide_label": [list(d.shape) for d in it.provide_label]}


def iterator_cases():
    cifar = os.path.join(OUT, "cifar10.rec")
    images = os.path.join(OUT, "images.rec")
    norm = dict(mean_r=125.3, mean_g=123.0, mean_b=113.9, std_r=63.0, std_g=62.1, std_b=66.7)
    cases = [
        run_iter("cifar_crop28", path_imgrec=cifar, data_shape=(3, 28, 28), batch_size=8),
        run_iter("cifar_resize40", path_imgrec=cifar, data_shape=(3, 32, 32), batch_size=10, resize=40),
        # No crop after the upscale: the border rows, where OpenCV clamps row indices but not weights.
        run_iter("cifar_resize36", path_imgrec=cifar, data_shape=(3, 36, 36), batch_size=10, resize=36),
        # An exact 2:1 reduction, which OpenCV does as INTER_AREA (2x2 means).
        run_iter("cifar_resize16", path_imgrec=cifar, data_shape=(3, 16, 16), batch_size=10, resize=16),
        run_iter("cifar_resize24", path_imgrec=cifar, data_shape=(3, 20, 20), batch_size=10, resize=24),
        run_iter("cifar_gray", path_imgrec=cifar, data_shape=(1, 28, 28), batch_size=10),
        run_iter("images_gray6", path_imgrec=images, data_shape=(1, 6, 6), batch_size=3),
        run_iter("images_crop6", path_imgrec=images, data_shape=(3, 6, 6), batch_size=4, scale=1.0 / 255, **norm),
        run_iter("multilabel", path_imgrec=os.path.join(OUT, "multilabel.rec"), data_shape=(3, 5, 5),
                 batch_size=2, label_width=3, mean_r=10.0, mean_g=20.0, mean_b=30.0, std_r=2.0, std_g=4.0,
                 std_b=8.0),
    ]
    write_json("iterators.json", cases)


def main():
    cifar_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/foolbox/foolbox/data"
    os.makedirs(OUT, exist_ok=True)
    raw_records()
    image_records()
    cifar_records(cifar_dir)
    iterator_cases()
    print("wrote", OUT)


if __name__ == "__main__":
    main()
