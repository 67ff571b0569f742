#!/usr/bin/env python3
"""Loss and gradient parity of one dtrain training batch against PyTorch.

dtrain writes a dump of one training batch (the format is specified in
python/dtrain_torch/graddump.py and printed by --format): the checkpoint the
step started from, the batch's inputs (users, candidates, shared negatives,
history windows with each example's read-out position, context), the loss
parts, and the gradients of every dense parameter and of the touched table
rows, all computed with dropout off. This script recomputes everything with
the PyTorch model (python/dtrain_torch) in float64, and in float32 for each
tensor's own rounding noise, prints per-tensor max abs / relative errors and
fails (exit 1) when a tensor is outside its tolerance:

    max |dump - ref| <= atol + rtol * max |ref| + noise_factor * (float32 PyTorch's own error)

    python3 tools/torch_grad_check.py dump.h5 [--dataset data.h5] [--rtol 1e-4]

Exit codes: 0 pass, 1 a tensor or loss part disagrees, 2 usage or an
unreadable/invalid dump.
"""
import argparse
import sys

try:
    import dtrain_torch
    from dtrain_torch import graddump
except ImportError:
    sys.exit("dtrain_torch is not importable: run `pip install ./python` from the repository root, "
             "or set PYTHONPATH=python")
import torch


def main():
    tol = graddump.FLOAT32_TOL
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump", nargs="?")
    ap.add_argument("--dataset", help="prepared data set for the TF-IDF rows (default: the checkpoint config's "
                    "data.output); only read when the model has a content tower")
    ap.add_argument("--rtol", type=float, default=tol["rtol"], help="relative to the tensor's max |ref| (%(default)g)")
    ap.add_argument("--atol", type=float, default=tol["atol"], help="absolute (%(default)g)")
    ap.add_argument("--noise-factor", type=float, default=tol["noise_factor"],
                    help="times float32 PyTorch's own error on the tensor (%(default)g)")
    ap.add_argument("--loss-tol", type=float, default=tol["loss_tol"],
                    help="loss parts, relative to max(1, |ref|) (%(default)g)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--format", action="store_true", help="print the dump format and exit")
    args = ap.parse_args()
    if args.format:
        doc = graddump.__doc__
        print(doc[doc.index("DUMP FORMAT"):])
        return
    if not args.dump:
        ap.error("the dump path is required")
    torch.set_num_threads(args.threads)
    try:
        report = graddump.check_dump(args.dump, args.dataset, rtol=args.rtol, atol=args.atol,
                                     noise_factor=args.noise_factor, loss_tol=args.loss_tol)
    except (OSError, KeyError, ValueError) as e:
        print(f"torch_grad_check: {args.dump}: {e}", file=sys.stderr)
        sys.exit(2)
    report.print()
    n = len(report.rows)
    if report.failures:
        print(f"FAIL: {len(report.failures)} of {n} tensors disagree: {', '.join(report.failures)}")
        sys.exit(1)
    print(f"ok: {n} tensors within tolerance (rtol {args.rtol:g}, atol {args.atol:g}, "
          f"noise factor {args.noise_factor:g}, loss {args.loss_tol:g})")


if __name__ == "__main__":
    main()
