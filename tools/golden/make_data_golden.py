#!/usr/bin/env python3
"""Golden fixtures for KilnData, written by real MXNet 1.9.1 into Tests/Fixtures/golden/data/.

Run it with the interpreter of a venv that holds mxnet==1.9.1 and numpy==1.23.5:

    MXNET_SUBGRAPH_BACKEND=NONE .venv-golden/bin/python tools/golden/make_data_golden.py

What it records (everything deterministic, no shuffling: MXNet's shuffles draw from numpy's and
C++'s generators, which Kiln does not reproduce):
- ndarray_iter.json: the batches of mx.io.NDArrayIter over arange data for counts, batch sizes and
  the three last-batch modes, three epochs each, and where MXNet raised instead.
- mnist/: a tiny IDX pair (10 images) and mnist_iter.json: what mx.io.MNISTIter yields from it.
- transforms/: inputs and outputs of mx.nd.image.resize, gluon's CenterCrop, ToTensor, Normalize.
"""
import json
import os
import struct
import sys
import zlib

if os.environ.get("MXNET_SUBGRAPH_BACKEND", "") != "NONE":
    sys.exit("make_data_golden.py: set MXNET_SUBGRAPH_BACKEND=NONE")

import numpy as np
import mxnet as mx
from mxnet.gluon.data.vision import transforms as T

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "Tests", "Fixtures", "golden", "data")


def rng_for(name):
    return np.random.RandomState(zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def ints(a):
    return [int(x) for x in np.asarray(a).reshape(-1)]


def ndarray_iter():
    cases = []
    for count in [10, 7, 6, 3]:
        for batch in [1, 3, 4, 5, 6, 7]:
            for mode in ["pad", "discard", "roll_over"]:
                data = np.arange(count, dtype=np.float32).reshape(count, 1)
                label = np.arange(count, dtype=np.float32) + 100
                it = mx.io.NDArrayIter(data, label, batch, False, last_batch_handle=mode)
                epochs, failed = [], None
                for epoch in range(3):
                    batches = []
                    try:
                        for b in it:
                            batches.append({"data": ints(b.data[0].asnumpy()),
                                            "label": ints(b.label[0].asnumpy()), "pad": int(b.pad)})
                    except mx.base.MXNetError:
                        # MXNet cannot roll over more than the data holds; the pass fails here.
                        failed = {"epoch": epoch, "batch": len(batches)}
                        epochs.append(batches)
                        break
                    epochs.append(batches)
                    it.reset()
                cases.append({"count": count, "batchSize": batch, "lastBatch": mode,
                              "epochs": epochs, "failure": failed})
    write_json(os.path.join(OUT, "ndarray_iter.json"), cases)


def mnist():
    folder = os.path.join(OUT, "mnist")
    os.makedirs(folder, exist_ok=True)
    count = 10
    rng = rng_for("mnist")
    images = rng.randint(0, 256, (count, 28, 28)).astype(np.uint8)
    images[:, 0, 0] = np.arange(count)   # a readable marker per image
    images[:, 0, 1] = 255
    labels = (np.arange(count) * 7 % 10).astype(np.uint8)
    image_path = os.path.join(folder, "tiny-images-idx3-ubyte")
    label_path = os.path.join(folder, "tiny-labels-idx1-ubyte")
    with open(image_path, "wb") as f:
        f.write(struct.pack(">iiii", 2051, count, 28, 28))
        f.write(images.tobytes())
    with open(label_path, "wb") as f:
        f.write(struct.pack(">ii", 2049, count))
        f.write(labels.tobytes())
    cases = []
    for batch, flat, parts, part in [(3, False, 1, 0), (4, True, 1, 0), (10, False, 1, 0),
                                     (2, False, 3, 0), (2, True, 3, 1), (2, False, 3, 2), (1, False, 4, 3)]:
        it = mx.io.MNISTIter(image=image_path, label=label_path, batch_size=batch, shuffle=False,
                             flat=flat, num_parts=parts, part_index=part, silent=True)
        batches = []
        for b in it:
            d = b.data[0].asnumpy().reshape(batch, -1)
            # pixel (0, 0) of each image, scaled as MXNet scales, tells which image came; the first
            # batch of the first case is kept whole.
            entry = {"label": ints(b.label[0].asnumpy()), "pad": int(b.pad),
                     "shape": list(b.data[0].shape), "marker": [float(x) for x in d[:, 0]]}
            if not batches and not cases:
                entry["data"] = [float(x) for x in d.reshape(-1)]
            batches.append(entry)
        cases.append({"batchSize": batch, "flat": flat, "numParts": parts, "partIndex": part,
                      "dataShape": list(it.provide_data[0].shape),
                      "labelShape": list(it.provide_label[0].shape), "batches": batches})
    write_json(os.path.join(folder, "mnist_iter.json"), cases)


def transforms():
    folder = os.path.join(OUT, "transforms")
    os.makedirs(folder, exist_ok=True)
    index = []

    def save(name, kind, params, x, y):
        np.save(os.path.join(folder, name + "_in.npy"), x)
        np.save(os.path.join(folder, name + "_out.npy"), y)
        index.append({"name": name, "kind": kind, "params": params})

    for h, w, c, outw, outh, dtype in [(7, 9, 3, 5, 4, "uint8"), (7, 9, 3, 13, 11, "uint8"),
                                       (28, 28, 1, 32, 32, "uint8"), (32, 32, 3, 24, 20, "uint8"),
                                       (5, 6, 3, 17, 3, "uint8"), (7, 9, 3, 13, 11, "float32"),
                                       (32, 32, 3, 16, 16, "float32"), (6, 4, 2, 4, 6, "float32")]:
        name = "resize_%dx%dx%d_to_%dx%d_%s" % (h, w, c, outw, outh, dtype)
        x = rng_for(name).randint(0, 256, (h, w, c)).astype(dtype)
        y = mx.nd.image.resize(mx.nd.array(x, dtype=dtype), size=(outw, outh)).asnumpy()
        save(name, "resize", {"width": outw, "height": outh}, x, y)
    for h, w, size in [(7, 9, 4), (9, 7, 5)]:
        name = "resize_keep_%dx%d_short_%d" % (h, w, size)
        x = rng_for(name).randint(0, 256, (h, w, 3)).astype(np.uint8)
        y = mx.nd.image.resize(mx.nd.array(x, dtype="uint8"), size=size, keep_ratio=True).asnumpy()
        save(name, "resize_keep_ratio", {"size": size}, x, y)
    for h, w, cw, ch in [(7, 9, 4, 3), (8, 8, 5, 5), (7, 9, 12, 12), (6, 10, 8, 8)]:
        name = "center_crop_%dx%d_to_%dx%d" % (h, w, cw, ch)
        x = rng_for(name).randint(0, 256, (h, w, 3)).astype(np.uint8)
        y = T.CenterCrop((cw, ch))(mx.nd.array(x, dtype="uint8")).asnumpy()
        save(name, "center_crop", {"width": cw, "height": ch}, x, y)
    for shape, dtype in [((4, 5, 3), "uint8"), ((2, 4, 5, 3), "uint8"), ((3, 2, 1), "float32")]:
        name = "to_tensor_%s_%s" % ("x".join(map(str, shape)), dtype)
        x = rng_for(name).randint(0, 256, shape).astype(dtype)
        y = T.ToTensor()(mx.nd.array(x, dtype=dtype)).asnumpy()
        save(name, "to_tensor", {}, x, y)
    for shape, mean, std in [((3, 4, 5), [0.1, 0.2, 0.3], [0.5, 0.25, 2.0]),
                             ((2, 3, 2, 2), [0.5, 0.4, 0.3], [0.2, 0.3, 0.4]),
                             ((1, 3, 3), [0.5], [0.25])]:
        name = "normalize_%s" % "x".join(map(str, shape))
        x = rng_for(name).uniform(0, 1, shape).astype(np.float32)
        y = T.Normalize(mean=tuple(mean), std=tuple(std))(mx.nd.array(x)).asnumpy()
        save(name, "normalize", {"mean": mean, "std": std}, x, y)
    write_json(os.path.join(folder, "index.json"), index)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    ndarray_iter()
    mnist()
    transforms()
    print("wrote", OUT)
