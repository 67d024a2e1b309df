"""Loads a checkpoint that Kiln saved into real MXNet 1.9.1 and scores it on the MNIST test set.

Usage: python check_in_mxnet.py PREFIX EPOCH MNIST_DIR [EXPECTED_ACCURACY]

Run by tools/check_in_mxnet.sh, which makes the venv. Prints MXNet's accuracy; with
EXPECTED_ACCURACY (Kiln's), exits 1 unless the two agree within 0.1 percentage points.
"""
import gzip
import os
import sys

import mxnet as mx
import numpy as np


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    prefix, epoch, mnist_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    expected = float(sys.argv[4]) if len(sys.argv) > 4 else None
    # MXNet's MNISTIter (and so Kiln's) scales pixels by 1/256.
    images = read_idx(os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 256.0
    labels = read_idx(os.path.join(mnist_dir, "t10k-labels-idx1-ubyte.gz")).astype(np.float32)
    sym, args, aux = mx.model.load_checkpoint(prefix, epoch)
    batch = 100
    it = mx.io.NDArrayIter(images.reshape(-1, 1, 28, 28), labels, batch_size=batch, label_name="softmax_label")
    mod = mx.mod.Module(sym, data_names=["data"], label_names=["softmax_label"], context=mx.cpu())
    mod.bind(data_shapes=it.provide_data, label_shapes=it.provide_label, for_training=False)
    mod.set_params(args, aux)
    acc = mod.score(it, mx.metric.Accuracy())[0][1]
    print("MXNet %s: accuracy of %s-%04d on the 10,000 MNIST test images: %.4f" % (mx.__version__, prefix, epoch, acc))
    if expected is not None:
        diff = abs(acc - expected)
        print("Kiln reported %.4f; difference %.4f" % (expected, diff))
        if diff > 0.001:
            sys.exit(1)


if __name__ == "__main__":
    main()
