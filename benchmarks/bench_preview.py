"""How fast the Compose preview recomputes: render + draw + PNG-encode, server side.

Target: median <= 50 ms for a 256 px slice. Measures the exact functions the app
calls on a change (``pictures.compute_preview`` for the four views, the close-up and
the quality report; ``pictures.compute_target_click`` for the clickable target with
the valid-spot shading, the lesion footprint and marker), uncached, on a 256 px demo set:

- *move*: a new spot (the lesion patch is reused, as when the user clicks);
- *transform*: a new scale/rotation (the lesion patch is cut and warped again).

Run: ``python benchmarks/bench_preview.py [--repeats N] [--size PX]``.
Exit status 1 if a median misses the target (so CI can use it).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
logging.getLogger("streamlit").setLevel(logging.ERROR)

import numpy as np  # noqa: E402

from ui import pictures  # noqa: E402
from poissonblend.dataset import open_dataset  # noqa: E402
from poissonblend.demo import make_demo  # noqa: E402
from poissonblend.errors import PoissonBlendError  # noqa: E402
from poissonblend.recipe import SamplingOptions, sample_recipe, valid_spots_for  # noqa: E402

TARGET_MS = 50.0


def measure(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return (time.perf_counter() - t0) * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--size", type=int, default=256, help="slice size in px (default 256)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        input_dir, mask_dir = make_demo(Path(tmp) / "demo", cases=3, slices=8, size=args.size)
        dataset = open_dataset(input_dir, mask_dir, cache_dir=Path(tmp) / "cache")
        dataset.preload()
        rng = np.random.default_rng(0)
        options = SamplingOptions(scale_range=(0.8, 1.3), rotation_range=(-40, 40), flip=True)
        base = [sample_recipe(dataset, rng, options) for _ in range(8)]
        for recipe in base:  # warm-up: imports, first-call allocations
            pictures.compute_preview(dataset, recipe)

        results = {"move": [], "transform": []}
        clicks = {"move": [], "transform": []}
        for i in range(args.repeats):
            recipe = base[i % len(base)]
            # a new spot for the same (cached) lesion patch
            valid = valid_spots_for(dataset, recipe)
            ys, xs = np.nonzero(valid)
            j = int(rng.integers(len(xs)))
            moved = replace(recipe, x=int(xs[j]), y=int(ys[j]))
            # a new transform: the patch is cut and warped again
            turned = replace(recipe, rotation=round(float(rng.uniform(-90, 90)), 1),
                             scale=round(float(rng.uniform(0.8, 1.2)), 3))
            for kind, r, known in (("move", moved, valid), ("transform", turned, None)):
                # a move reuses the valid-spot map of its transform (cached by the app)
                try:
                    results[kind].append(measure(pictures.compute_preview, dataset, r))
                    clicks[kind].append(measure(pictures.compute_target_click, dataset, r, (r.x, r.y),
                                                valid=known))
                except PoissonBlendError:
                    continue  # the new transform may not fit at this spot: not a preview

    shape = dataset.slices[0].shape
    print(f"preview benchmark: {shape[1]}x{shape[0]} px slices, display {pictures.PREVIEW_PX} px, "
          f"{args.repeats} changes per kind (target: median <= {TARGET_MS:.0f} ms)")
    ok = True
    for kind in results:
        pv, click = results[kind], clicks[kind]
        both = [a + b for a, b in zip(pv, click)]
        med = statistics.median(pv)
        med_both = statistics.median(both)
        p90 = float(np.percentile(pv, 90))
        verdict = "OK" if med_both <= TARGET_MS else "SLOW"
        ok &= med_both <= TARGET_MS
        print(f"  {kind:9s}: preview median {med:5.1f} ms (p90 {p90:5.1f}) · "
              f"+ click image {statistics.median(click):4.1f} ms · total median {med_both:5.1f} ms "
              f"vs {TARGET_MS:.0f} ms target: {verdict}  (n={len(pv)})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
