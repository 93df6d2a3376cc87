"""Times one PyTorch recurrent module on the CPU, as `cargo bench -p models --bench recurrent`
times ours: forward under no_grad and forward+backward (of the output's sum), median of
`--repeats`, batch_first input from U(0, 1). Prints three numbers: forward ms,
forward+backward ms, and the growth of the process's peak resident memory over the first
forward+backward, in MB. The Rust bench calls it when `BENCH_PYTHON` names a Python with
torch (requirements: torch==2.15.0); the project's tests do not need it. With --peak it prints the GFLOP/s of
torch.mm at 2048² on the same threads: the machine's sgemm peak the bench compares with.

    python crates/models/benches/pytorch_reference.py --module lstm --batch 32 --time 100 \\
        --input-size 40 --hidden-size 128 [--num-layers 2] [--bidirectional] [--threads 2]

With --step it prints the microseconds of one step of a stream instead: batch 1 (or --batch),
one frame per call with the state carried, as a live recogniser calls it.

With --quantize qint8 the module is PyTorch's dynamically quantised one
(`torch.ao.quantization.quantize_dynamic(..., dtype=torch.qint8)`, which `cargo bench -p models
--bench quantized` compares with ours), and only the forward ms (or the step's µs) is printed.
"""

import argparse
import resource
import statistics
import time
import warnings

import torch


def median_ms(function, repeats):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def build(name, args):
    common = dict(num_layers=args.num_layers, bidirectional=args.bidirectional, batch_first=True)
    if name == "lstm":
        return torch.nn.LSTM(args.input_size, args.hidden_size, **common)
    if name == "gru":
        return torch.nn.GRU(args.input_size, args.hidden_size, **common)
    nonlinearity = {"rnn_tanh": "tanh", "rnn_relu": "relu"}[name]
    return torch.nn.RNN(args.input_size, args.hidden_size, nonlinearity=nonlinearity, **common)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", choices=["rnn_tanh", "rnn_relu", "lstm", "gru"])
    parser.add_argument("--peak", action="store_true",
                        help="print the GFLOP/s of torch.mm at 2048² instead (the machine's sgemm peak)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--time", type=int, default=100)
    parser.add_argument("--input-size", type=int, default=40)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=1)
    parser.add_argument("--bidirectional", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quantize", choices=["qint8"],
                        help="run torch.ao.quantization.quantize_dynamic's int8 module instead "
                             "(forward only)")
    parser.add_argument("--step", action="store_true",
                        help="print the microseconds of one step at a time instead: the module "
                             "called on one frame per call, (h, c) carried, under no_grad "
                             "(as `cargo bench -p models --bench step` times ours)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.peak:
        n = 2048
        a, b = torch.rand(n, n), torch.rand(n, n)
        print(f"{2 * n ** 3 / (median_ms(lambda: torch.mm(a, b), args.repeats) * 1e-3) / 1e9:.1f}")
        return
    if args.module is None:
        parser.error("--module or --peak is needed")
    module = build(args.module, args)
    if args.quantize:
        # quantize_dynamic swaps the children it maps (and warns that eager mode is deprecated).
        warnings.simplefilter("ignore")
        wrapped = torch.ao.quantization.quantize_dynamic(
            torch.nn.Sequential(module), {torch.nn.LSTM, torch.nn.GRU}, dtype=torch.qint8)
        module = wrapped[0]
        assert "Dynamic" in type(module).__name__ or "quantized" in type(module).__module__, type(module)
    x = torch.rand(args.batch, args.time, args.input_size)
    if args.step:
        frames = [x[:, t:t + 1] for t in range(args.time)]

        def stream():
            with torch.no_grad():
                state = None
                for frame in frames:
                    _, state = module(frame, state)

        print(f"{median_ms(stream, args.repeats) * 1e3 / args.time:.3f}")
        return

    def forward():
        with torch.no_grad():
            module(x)

    if args.quantize:
        print(f"{median_ms(forward, args.repeats):.3f}")
        return

    def forward_backward():
        module.zero_grad()
        output, _ = module(x)
        output.sum().backward()

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    forward_backward()
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 / 1e6
    print(f"{median_ms(forward, args.repeats):.3f} {median_ms(forward_backward, args.repeats):.3f} "
          f"{peak_mb:.1f}")


if __name__ == "__main__":
    main()
