"""Time and peak memory of ulsad.metrics on a synthetic test set at full resolution.

Default: 150 images of 1100 x 1600 pixels (an MVTec LOCO AD category at full
size), a third of them good, float32 anomaly maps. Peak memory is what each
metric allocates beyond its inputs (tracemalloc sees numpy's buffers).

    python benchmarks/bench_metrics.py [--images 150 --height 1100 --width 1600]
"""
import argparse
import resource
import time
import tracemalloc

import numpy as np

from ulsad import metrics


def synthetic_test_set(n_images: int, height: int, width: int, seed: int = 0):
    """Noise maps, with rectangular defects scored higher (but overlapping the normal range) in 2 of 3 images."""
    rng = np.random.default_rng(seed)
    maps = np.empty((n_images, height, width), dtype=np.float32)
    masks = np.zeros((n_images, height, width), dtype=bool)
    defects = [[] for _ in range(n_images)]
    for i in range(n_images):
        rng.random(dtype=np.float32, out=maps[i])
        if i % 3 == 0:
            continue  # a good image
        for _ in range(rng.integers(1, 4)):
            h, w = rng.integers(height // 20, height // 4), rng.integers(width // 20, width // 4)
            y, x = rng.integers(0, height - h), rng.integers(0, width - w)
            region = np.zeros((height, width), dtype=bool)
            region[y:y + h, x:x + w] = True
            masks[i] |= region
            maps[i, y:y + h, x:x + w] += 0.5
            defects[i].append((region, min(int(region.sum()), 5000)))  # absolute saturation, LOCO-like
    return masks, maps, defects


def measure(name, fn):
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - base
    print(f"{name:12s} {value:.6f}  {seconds:7.2f} s  peak +{peak / 2**30:.2f} GiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--height", type=int, default=1100)
    parser.add_argument("--width", type=int, default=1600)
    args = parser.parse_args()

    masks, maps, defects = synthetic_test_set(args.images, args.height, args.width)
    labels = masks.any(axis=(1, 2))
    print(f"{args.images} images of {args.height} x {args.width} = {maps.size / 1e6:.0f} M pixels, "
          f"{masks.mean():.1%} anomalous; inputs: maps {maps.nbytes / 2**30:.2f} GiB (float32), "
          f"masks {masks.nbytes / 2**30:.2f} GiB (bool)")

    tracemalloc.start()
    measure("image_auroc", lambda: metrics.image_auroc(labels, maps.max(axis=(1, 2))))
    measure("pixel_auroc", lambda: metrics.pixel_auroc(masks, maps))
    measure("aupro", lambda: metrics.aupro(masks, maps))
    measure("spro", lambda: metrics.spro(defects, maps))
    tracemalloc.stop()
    # ru_maxrss is in KiB on Linux: the whole process, inputs included.
    print(f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
