"""PyTorch on the GPU machine, the peer of Kiln's GPU numbers: gluoncv's cifar_resnet56_v1
architecture (CIFARBasicBlockV1, 3 stages of 9 blocks, 16/32/64 channels) with random weights, at
the given batch sizes, in these configurations:

  eager-fp32            eager, float32, NCHW
  eager-fp16-cl         eager, float16, channels-last
  cudagraph-fp16-cl     float16, channels-last, the forward captured once in a CUDA graph and replayed
  compile-fp16-cl       torch.compile(mode="max-autotune"), float16, channels-last (--torch-compile;
                        about a minute of compilation per batch size)

Each prints one JSON line: runtime, config, model, batch, images_per_s (a synchronization after
each forward, as Kiln's forward returns host arrays), latency_ms_p50, images_per_s_async
(back-to-back forwards, one synchronization at the end), first_result_s (model built, moved,
compiled or captured, first forward done). The input is on the GPU already (Kiln's includes the
copy from the host and back).
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn


class BasicBlockV1(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        r = x if self.down is None else self.down(x)
        return self.relu(self.body(x) + r)


class CIFARResNetV1(nn.Module):
    def __init__(self, depth=56, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True)]
        cin = 16
        for stage, cout in enumerate([16, 32, 64]):
            for i in range(n):
                layers.append(BasicBlockV1(cin, cout, 2 if (i == 0 and stage > 0) else 1))
                cin = cout
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.output = nn.Linear(64, classes)

    def forward(self, x):
        return self.output(self.features(x))


def timed(fn, batch, seconds):
    """images/s with a synchronization after every forward (as `kiln bench`, whose forward returns
    host arrays), its p50 latency, and images/s of back-to-back forwards synchronized once at the end
    (PyTorch queues work asynchronously; `kiln bench --async` measures Kiln so)."""
    torch.cuda.synchronize()
    lat = []
    start = time.perf_counter()
    while len(lat) < 10 or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        lat.append(time.perf_counter() - t)
    synced = batch * len(lat) / (time.perf_counter() - start)
    n = max(10, len(lat))
    t = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    wall = time.perf_counter() - t
    return synced, statistics.median(lat) * 1000, batch * n / wall


def run(config, batch, seconds, depth):
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = CIFARResNetV1(depth).cuda().eval()
    half = config != "eager-fp32"
    x = torch.randn(batch, 3, 32, 32, device="cuda")
    if half:
        model = model.half().to(memory_format=torch.channels_last)
        x = x.half().contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        if config == "compile-fp16-cl":
            model = torch.compile(model, mode="max-autotune")
        if config == "cudagraph-fp16-cl":
            static_x = x.clone()
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(3):
                    model(static_x)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                static_y = model(static_x)
            fn = g.replay
        else:
            fn = lambda: model(x)
        fn()
        torch.cuda.synchronize()
        first = time.perf_counter() - t0
        for _ in range(5):
            fn()
        ips, p50, unsynced = timed(fn, batch, seconds)
    return {"runtime": "pytorch", "config": config, "model": f"cifar_resnet{depth}_v1", "batch": batch,
            "images_per_s": ips, "latency_ms_p50": p50, "first_result_s": first, "images_per_s_async": unsynced,
            "torch": torch.__version__, "device": torch.cuda.get_device_name(0)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batches", default="1,16,64")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--depth", type=int, default=56)
    p.add_argument("--torch-compile", action="store_true")
    a = p.parse_args()
    configs = ["eager-fp32", "eager-fp16-cl", "cudagraph-fp16-cl"] + (["compile-fp16-cl"] if a.torch_compile else [])
    for b in [int(v) for v in a.batches.split(",")]:
        for c in configs:
            try:
                print(json.dumps(run(c, b, a.seconds, a.depth)), flush=True)
            except Exception as e:  # a failing configuration is reported, the others still run
                print(json.dumps({"runtime": "pytorch", "config": c, "batch": b, "error": str(e)}), flush=True)


if __name__ == "__main__":
    main()
