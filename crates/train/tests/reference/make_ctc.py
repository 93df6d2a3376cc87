#!/usr/bin/env python3
"""Golden values for the CTC loss (tests/ctc.rs): PyTorch's torch.nn.functional.ctc_loss,
loss per sequence and the gradient of their sum (zero_infinity) with respect to the logits (through
log_softmax, so the value does not depend on how a library writes the gradient with
respect to log-probabilities).

    python3 make_ctc.py > ctc.json      # versions pinned in requirements.txt

Cases: ragged input and target lengths with repeated labels; a target exactly as long as
its input allows (labels + repeats = frames); a target that no alignment fits (infinite
loss, and zero with zero_infinity).
"""

import json

import torch


def case(name, logits, targets, input_lengths, target_lengths, blank=0):
    logits = torch.tensor(logits, dtype=torch.float64, requires_grad=True)  # [N, T, C]
    log_probs = torch.log_softmax(logits, dim=2).transpose(0, 1)  # [T, N, C]
    loss = torch.nn.functional.ctc_loss(log_probs, torch.tensor(targets), torch.tensor(input_lengths),
                                        torch.tensor(target_lengths), blank=blank, reduction="none",
                                        zero_infinity=False)
    finite = torch.isfinite(loss)
    # zero_infinity: an impossible target adds nothing, to the sum or to the gradient.
    torch.nn.functional.ctc_loss(log_probs, torch.tensor(targets), torch.tensor(input_lengths),
                                 torch.tensor(target_lengths), blank=blank, reduction="sum",
                                 zero_infinity=True).backward()
    mean = torch.nn.functional.ctc_loss(log_probs, torch.tensor(targets), torch.tensor(input_lengths),
                                        torch.tensor(target_lengths), blank=blank, reduction="mean",
                                        zero_infinity=True)
    return {
        "name": name,
        "blank": blank,
        "logits": logits.detach().tolist(),
        "targets": targets,
        "input_lengths": input_lengths,
        "target_lengths": target_lengths,
        "loss": [float(v) if f else None for v, f in zip(loss.tolist(), finite.tolist())],
        "mean_zero_infinity": float(mean.detach()),
        "grad_logits": logits.grad.tolist(),
    }


def main():
    g = torch.Generator().manual_seed(2006)
    cases = []
    logits = torch.randn(3, 12, 5, generator=g, dtype=torch.float64) * 2
    cases.append(case("ragged_with_repeats", logits.tolist(), [[1, 2, 2, 3], [4, 1, 0, 0], [2, 0, 0, 0]],
                      [12, 9, 5], [4, 2, 1]))
    logits = torch.randn(2, 6, 4, generator=g, dtype=torch.float64) * 2
    # [1, 1, 2, 2] needs a blank between each repeat: 4 labels + 2 repeats = 6 frames.
    cases.append(case("target_as_long_as_input_allows", logits.tolist(), [[1, 1, 2, 2], [3, 3, 3, 0]],
                      [6, 5], [4, 3]))
    logits = torch.randn(2, 4, 4, generator=g, dtype=torch.float64) * 2
    cases.append(case("target_too_long_for_its_input", logits.tolist(), [[1, 1, 1], [2, 3, 0]],
                      [4, 4], [3, 2]))
    logits = torch.randn(2, 8, 11, generator=g, dtype=torch.float64) * 2
    cases.append(case("blank_last", logits.tolist(), [[3, 1, 4, 1], [5, 9, 2, 0]], [8, 7], [4, 3], blank=10))
    print(json.dumps({"torch": torch.__version__, "cases": cases}))


if __name__ == "__main__":
    main()
