#!/usr/bin/env python3
"""PyTorch reference for `ratflow bench-train`: seconds per training epoch on the same job.

Same job as ratflow's benchmark: the 8,000 bundled MNIST training images, batch 64,
784-128-64-10 MLP with ReLU, Adam, inputs p/255, no augmentation; the epoch time covers the
training steps only (shuffle, batch gather, forward, backward, optimizer step).

Modes:
  float     plain nn.Linear layers
  fakequant hand-written fake quantization with straight-through estimators: int8 symmetric
            per-channel weights, int8 affine per-tensor activations with EMA ranges, int32 bias
            (the same quantizers ratflow's QAT stage uses, in the real domain)

Not part of CI (needs `pip install torch numpy`). Usage:
  python3 bench/torch_mlp.py --threads 2 --epochs 5 [--data data] [--mode float|fakequant|both]
Prints one line per mode: the median seconds per epoch, and the final test accuracy.
"""

import argparse
import gzip
import os
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_split(data_dir, prefix):
    def read(name):
        path = os.path.join(data_dir, name)
        opener = gzip.open if os.path.exists(path + ".gz") else open
        with opener(path + ".gz" if opener is gzip.open else path, "rb") as f:
            return f.read()

    img = read(f"{prefix}-images-idx3-ubyte")
    lbl = read(f"{prefix}-labels-idx1-ubyte")
    n, rows, cols = struct.unpack(">III", img[4:16])
    x = np.frombuffer(img[16:], dtype=np.uint8).reshape(n, rows * cols)
    y = np.frombuffer(lbl[8:], dtype=np.uint8)
    return torch.tensor(x, dtype=torch.float32) / 255.0, torch.tensor(y, dtype=torch.long)


def round_ste(x):
    return x + (torch.round(x) - x).detach()


class FakeQuantLinear(torch.nn.Module):
    """Linear layer with per-channel int8 weights, int32 bias and an int8 EMA-range output."""

    def __init__(self, fan_in, out, relu, momentum=0.99):
        super().__init__()
        self.lin = torch.nn.Linear(fan_in, out)
        self.relu = relu
        self.momentum = momentum
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.register_buffer("seen", torch.tensor(False))

    def forward(self, x, in_scale):
        w = self.lin.weight
        s_w = (w.detach().abs().amax(dim=1, keepdim=True) / 127.0).clamp_min(1e-12)
        wq = torch.clamp(round_ste(w / s_w), -127, 127) * s_w
        b_scale = in_scale * s_w.squeeze(1)
        bq = round_ste(self.lin.bias / b_scale) * b_scale
        y = F.linear(x, wq, bq)
        if self.relu:
            y = F.relu(y)
        if self.training:
            with torch.no_grad():
                lo = torch.minimum(y.min(), torch.tensor(0.0))
                hi = torch.maximum(y.max(), torch.tensor(0.0))
                if not bool(self.seen):
                    self.lo.copy_(lo)
                    self.hi.copy_(hi)
                    self.seen.fill_(True)
                else:
                    self.lo.mul_(self.momentum).add_((1 - self.momentum) * lo)
                    self.hi.mul_(self.momentum).add_((1 - self.momentum) * hi)
        scale = ((self.hi - self.lo) / 255.0).clamp_min(1e-8).detach()
        zp = torch.clamp(torch.round(-128.0 - self.lo / scale), -128, 127).detach()
        lo_code = zp if self.relu else torch.tensor(-128.0)
        q = torch.clamp(round_ste(y / scale) + zp, lo_code, 127)
        return (q - zp) * scale, scale


class Net(torch.nn.Module):
    def __init__(self, fakequant):
        super().__init__()
        self.fakequant = fakequant
        sizes = [784, 128, 64, 10]
        if fakequant:
            self.layers = torch.nn.ModuleList(
                FakeQuantLinear(a, b, i < 2) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))
            )
        else:
            self.layers = torch.nn.ModuleList(
                torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])
            )

    def forward(self, x):
        if self.fakequant:
            s = torch.tensor(1.0 / 255.0)
            for layer in self.layers:
                x, s = layer(x, s)
            return x
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < 2:
                x = F.relu(x)
        return x


def run(mode, args, train, test):
    torch.manual_seed(1)
    xtr, ytr = train
    net = Net(mode == "fakequant")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    times = []
    for _ in range(args.epochs):
        net.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = perm[i : i + 64]
            loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    net.eval()
    with torch.no_grad():
        acc = (net(test[0]).argmax(1) == test[1]).float().mean().item() * 100
    times.sort()
    return times[len(times) // 2], acc


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join(here, "..", "data"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--mode", choices=["float", "fakequant", "both"], default="both")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    train = load_split(args.data, "train")
    test = load_split(args.data, "t10k")
    modes = ["float", "fakequant"] if args.mode == "both" else [args.mode]
    print(f"torch {torch.__version__}, {args.threads} thread(s), {len(train[0])} images, batch 64")
    for mode in modes:
        secs, acc = run(mode, args, train, test)
        print(f"  {mode:<9} {secs:.3f} s/epoch (median of {args.epochs}), test {acc:.2f}% after {args.epochs} epochs")


if __name__ == "__main__":
    main()
