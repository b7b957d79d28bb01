"""Benchmark: training-step speed of SimCLR's model by backbone width, memory format and precision.

Times full optimisation steps (forward of both views, NT-Xent, backward, SGD) on random
32 px batches, the best of several repeats, to show where easyssl's CPU defaults come from
(bf16 autocast where the CPU has AMX-BF16 or AVX512-BF16, channels-last, quarter width for small images).
Also times the batched augmentation of one batch.

    python examples/benchmarks/step_speed.py
    python examples/benchmarks/step_speed.py --threads 1 --widths 0.25 0.5 1.0
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine  # noqa: E402

from easyssl.loss import NTXentLoss  # noqa: E402
from easyssl.models import SimCLR, backbone  # noqa: E402
from easyssl.transforms.batched import batch_two_view_augment  # noqa: E402


def images_per_second(width: float, channels_last: bool, bf16: bool, batch: int, size: int, repeats: int) -> float:
    model = SimCLR(backbone("resnet-18", width=width, input_size=size), out_dim=128)
    criterion = NTXentLoss(0.2)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(2 * batch, 3, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    best = float("inf")
    for i in range(repeats + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = criterion(*model(x).chunk(2))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i:  # the first step sets up kernels
            best = min(best, time.perf_counter() - start)
    return batch / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}; {args.threads} thread(s); batch {args.batch_size} images x 2 views at {args.input_size} px")
    augment = batch_two_view_augment(args.input_size)
    raw = torch.randint(0, 256, (args.batch_size, 3, args.input_size, args.input_size), dtype=torch.uint8)
    augment(raw)
    start = time.perf_counter()
    for _ in range(5):
        augment(raw)
    print(f"batched augmentation: {(time.perf_counter() - start) / 5 * 1000:.0f} ms per batch")
    print(f"{'width':>6s} {'format':>14s} {'precision':>9s} {'img/s':>7s}")
    for width in args.widths:
        for channels_last in (False, True):
            for bf16 in (False, True):
                speed = images_per_second(width, channels_last, bf16, args.batch_size, args.input_size, args.repeats)
                print(f"{width:6.2f} {'channels-last' if channels_last else 'contiguous':>14s} {'bf16' if bf16 else 'fp32':>9s} {speed:7.0f}", flush=True)


if __name__ == "__main__":
    main()
