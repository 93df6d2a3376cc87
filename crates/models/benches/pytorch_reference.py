"""Times PyTorch's nn.LSTM and nn.GRU at the shapes of `cargo bench -p models --bench
recurrent` (batch 32, 100 steps, 40 inputs, 128 hidden, batch_first), forward and
forward+backward, median of 7, on the CPU with 2 threads. For users who have PyTorch
(`pip install torch`); the project's tests do not need it.

    python crates/models/benches/pytorch_reference.py [--threads N]
"""

import argparse
import statistics
import time

import torch

BATCH, TIME, INPUT, HIDDEN = 32, 100, 40, 128


def median_ms(function, repeats=7):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(BATCH, TIME, INPUT)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {BATCH}, {TIME} steps, "
          f"{INPUT} inputs, {HIDDEN} hidden, median of {args.repeats}")
    print(f"{'module':24} {'forward ms':>12} {'forward+backward ms':>20}")
    for name, module in [("nn.LSTM", torch.nn.LSTM(INPUT, HIDDEN, batch_first=True)),
                         ("nn.GRU", torch.nn.GRU(INPUT, HIDDEN, batch_first=True))]:
        def forward():
            with torch.no_grad():
                module(x)

        def forward_backward():
            module.zero_grad()
            output, _ = module(x)
            output.sum().backward()

        print(f"{name:24} {median_ms(forward, args.repeats):12.1f} "
              f"{median_ms(forward_backward, args.repeats):20.1f}")


if __name__ == "__main__":
    main()
