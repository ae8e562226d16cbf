"""How long the ablation trains: seconds per epoch per 1,000 slices of 112 px on this CPU.

Trains the default U-Net (16 base filters, 3 levels; batch 16, Dice + BCE, Adam) on
1,000 real demo slices of 112 px with the ablation's own step loop
(``poissonblend.ablate.model.train``: one ``train_on_batch`` per step, so a tqdm
bar and Ctrl-C work between steps) and, as the baseline in the same run, with
Keras's ``model.fit`` over the same batches. Each is timed after its first
step, which compiles the program (that time is printed apart). Scoring a
slice costs about a third of training one and is not included.

Run: ``python benchmarks/bench_ablate.py [--slices N] [--size PX] [--base-filters F]``.
The number of an epoch over a set is ``seconds per 1,000 slices × slices / 1,000``
(per arm and fold: the fold's training slices).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from poissonblend.ablate.config import ModelOptions  # noqa: E402
from poissonblend.ablate.data import batch_order, padded_shape, to_arrays  # noqa: E402
from poissonblend.dataset import open_dataset  # noqa: E402
from poissonblend.demo import make_demo  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=1000, help="training slices (default 1000)")
    parser.add_argument("--size", type=int, default=112, help="slice size in px (default 112)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--base-filters", type=int, default=ModelOptions().base_filters)
    parser.add_argument("--levels", type=int, default=ModelOptions().levels)
    args = parser.parse_args(argv)

    from poissonblend.ablate.model import backend, build_unet, initial_weights, optimizer_state, reset, train

    with tempfile.TemporaryDirectory() as tmp:
        cases = -(-args.slices // 12)
        input_dir, mask_dir = make_demo(Path(tmp) / "demo", cases=cases, slices=12, size=args.size)
        dataset = open_dataset(input_dir, mask_dir, cache_dir=Path(tmp) / "cache")
        names = [s.name for s in dataset.slices][:args.slices]
        options = ModelOptions(base_filters=args.base_filters, levels=args.levels)
        shape_rc = padded_shape([(args.size, args.size)], 2 ** options.levels)
        x, y = to_arrays([dataset.load(n) for n in names], shape_rc)

    t0 = time.perf_counter()
    model = build_unet(shape_rc, options)
    weights, fresh = initial_weights(model, 0), optimizer_state(model)
    built = time.perf_counter() - t0
    steps = len(x) // args.batch_size
    batches = batch_order(len(x), steps=steps + 1, batch_size=args.batch_size, rng=0)
    print(f"Keras backend {backend()}, U-Net of {model.count_params():,} parameters, {len(x)} slices of "
          f"{args.size} px, batch {args.batch_size}; model built in {built:.1f} s")

    reset(model, weights, fresh)
    t0 = time.perf_counter()
    train(model, x, y, batches[:1])
    compiled = time.perf_counter() - t0
    t0 = time.perf_counter()
    train(model, x, y, batches[1:])
    ours = time.perf_counter() - t0

    reset(model, weights, fresh)
    order = [int(i) for b in batches for i in b]
    xs, ys = x[order], y[order]
    t0 = time.perf_counter()
    model.fit(xs[:args.batch_size], ys[:args.batch_size], batch_size=args.batch_size, epochs=1,
              shuffle=False, verbose=0)
    fit_compiled = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.fit(xs[args.batch_size:], ys[args.batch_size:], batch_size=args.batch_size, epochs=1,
              shuffle=False, verbose=0)
    fit = time.perf_counter() - t0

    per_k = lambda seconds: seconds / (steps * args.batch_size) * 1000  # noqa: E731
    print(f"first step (compiles): ablate loop {compiled:.1f} s, model.fit {fit_compiled:.1f} s")
    print(f"model.fit (baseline): {per_k(fit):.1f} s per epoch per 1,000 slices")
    print(f"ablate step loop:     {per_k(ours):.1f} s per epoch per 1,000 slices "
          f"({fit / ours:.2f}x the speed of model.fit)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
