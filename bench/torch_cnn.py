#!/usr/bin/env python3
"""PyTorch reference for `ratflow bench-train --arch ...`: seconds per training epoch of a CNN.

Same job as ratflow's benchmark: the 8,000 bundled MNIST training images, batch 64, inputs
p/255 as [B, 1, 28, 28], Adam, no augmentation; the epoch time covers the training steps only
(shuffle, batch gather, forward, backward, optimizer step). The network comes from the same
architecture string as ratflow's --arch (this script reads the subset it needs: conv2d:F:K
(SAME, stride 1), batchnorm, relu, relu6, max_pool2d:K, avg_pool2d:K, flatten, dense:N and
res(...) with an identity shortcut).

Modes:
  float     nn.Conv2d / nn.BatchNorm2d / nn.Linear, what ratflow's float stage trains
  fakequant QAT as ratflow runs it: batchnorms folded away (so none), int8 symmetric
            per-channel weights, int8 affine per-tensor activations with EMA ranges after
            every conv/dense (and add), int32 bias, straight-through estimators, written with
            standard torch ops (torch.ao's observers add overhead of their own)

Not part of CI (needs `pip install torch numpy`, see bench/README.md). Usage:
  python3 bench/torch_cnn.py --arch "conv2d:16:3x3,..." --threads 1 --epochs 5 [--mode both]
Prints one line per mode: the median seconds per epoch, and the test accuracy reached.
"""

import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_mlp import load_split, round_ste  # noqa: E402


def split_top(s, sep):
    depth, parts, start = 0, [], 0
    for i, ch in enumerate(s):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def kernel(k):
    return int(k.split("x")[0])


class FakeQuant(torch.nn.Module):
    """int8 affine per-tensor output quantizer with an EMA range (ratflow's QAT)."""

    def __init__(self, relu, momentum=0.99):
        super().__init__()
        self.relu = relu
        self.momentum = momentum
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.register_buffer("seen", torch.tensor(False))

    def forward(self, y):
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


def fq_weight(w, dims):
    s = (w.detach().abs().amax(dim=dims, keepdim=True) / 127.0).clamp_min(1e-12)
    return torch.clamp(round_ste(w / s), -127, 127) * s, s.flatten()


class QConv(torch.nn.Module):
    def __init__(self, cin, cout, k, fakequant):
        super().__init__()
        self.conv = torch.nn.Conv2d(cin, cout, k, padding=k // 2)
        self.fakequant = fakequant
        self.act = None
        self.fq = None

    def forward(self, x, s_in):
        if not self.fakequant:
            y = self.conv(x)
            return (self.act(y) if self.act else y), s_in
        wq, s_w = fq_weight(self.conv.weight, (1, 2, 3))
        b_scale = s_in * s_w
        bq = round_ste(self.conv.bias / b_scale) * b_scale
        y = F.conv2d(x, wq, bq, padding=self.conv.padding)
        if self.act is not None:
            y = self.act(y)
        return self.fq(y)


class QDense(torch.nn.Module):
    def __init__(self, fan_in, out, fakequant):
        super().__init__()
        self.lin = torch.nn.Linear(fan_in, out)
        self.fakequant = fakequant
        self.act = None
        self.fq = None

    def forward(self, x, s_in):
        if not self.fakequant:
            y = self.lin(x)
            return (self.act(y) if self.act else y), s_in
        wq, s_w = fq_weight(self.lin.weight, (1,))
        b_scale = s_in * s_w
        bq = round_ste(self.lin.bias / b_scale) * b_scale
        y = F.linear(x, wq, bq)
        if self.act is not None:
            y = self.act(y)
        return self.fq(y)


class Seq(torch.nn.Module):
    """A list of (kind, module) steps over (x, scale), as ratflow's graph runs them."""

    def __init__(self, text, shape, fakequant):
        super().__init__()
        self.steps = torch.nn.ModuleList()
        self.kinds = []
        self.shape = self.build(text, list(shape), fakequant)

    def add(self, kind, module):
        self.kinds.append(kind)
        self.steps.append(module)

    def build(self, text, shape, fakequant):
        last = None
        for item in split_top(text, ","):
            if item.startswith("res("):
                body = Seq(item[4:-1], shape, fakequant)
                body.fq = FakeQuant(relu=False) if fakequant else None
                self.add("res", body)
                last = body
                continue
            parts = item.split(":")
            name = parts[0]
            if name == "conv2d":
                c, h, w = shape
                f, k = int(parts[1]), kernel(parts[2])
                last = QConv(c, f, k, fakequant)
                self.add("layer", last)
                shape = [f, h, w]
            elif name == "dense":
                last = QDense(shape[0], int(parts[1]), fakequant)
                self.add("layer", last)
                shape = [int(parts[1])]
            elif name == "batchnorm":
                if not fakequant:  # folded into the conv for QAT, as ratflow does
                    self.add("bn", torch.nn.BatchNorm2d(shape[0]))
            elif name in ("relu", "relu6"):
                act = torch.nn.ReLU() if name == "relu" else torch.nn.ReLU6()
                if isinstance(last, (QConv, QDense)) and not any(
                    k == "bn" for k in self.kinds[-1:]
                ):
                    last.act = act
                else:
                    self.add("act", act)
            elif name in ("max_pool2d", "avg_pool2d"):
                k = kernel(parts[1])
                pool = torch.nn.MaxPool2d(k) if name == "max_pool2d" else torch.nn.AvgPool2d(k)
                self.add("pool", pool)
                shape = [shape[0], shape[1] // k, shape[2] // k]
            elif name == "flatten":
                self.add("flatten", torch.nn.Flatten())
                shape = [shape[0] * shape[1] * shape[2]]
            else:
                raise SystemExit(f"error: torch_cnn.py does not read layer {name!r}")
        # Activation quantizers after every layer (and add) in fakequant mode.
        if fakequant:
            for kind, m in zip(self.kinds, self.steps):
                if kind == "layer":
                    m.fq = FakeQuant(relu=m.act is not None)
        return shape

    def forward(self, x, s):
        for kind, m in zip(self.kinds, self.steps):
            if kind == "layer":
                x, s = m(x, s)
            elif kind == "res":
                y, _ = m(x, s)
                x = x + y
                if m.fq is not None:
                    x, s = m.fq(x)
            elif kind == "flatten" or kind == "pool" or kind == "bn" or kind == "act":
                x = m(x)
        return x, s


def run(mode, args, train, test):
    torch.manual_seed(1)
    xtr, ytr = train
    xtr = xtr.reshape(-1, 1, 28, 28)
    xte = test[0].reshape(-1, 1, 28, 28)
    net = Seq(args.arch, [1, 28, 28], mode == "fakequant")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    s0 = torch.tensor(1.0 / 255.0)
    times = []
    for _ in range(args.epochs):
        net.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = perm[i : i + 64]
            loss = F.cross_entropy(net(xtr[idx], s0)[0], ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    net.eval()
    with torch.no_grad():
        acc = (net(xte, s0)[0].argmax(1) == test[1]).float().mean().item() * 100
    times.sort()
    return times[len(times) // 2], acc


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join(here, "..", "data"))
    p.add_argument("--arch", required=True)
    p.add_argument("--threads", type=int, default=1)
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
        print(
            f"  {mode:<9} {secs:.3f} s/epoch (median of {args.epochs}), "
            f"test {acc:.2f}% after {args.epochs} epochs"
        )


if __name__ == "__main__":
    main()
