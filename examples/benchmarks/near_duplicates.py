"""Benchmark: precision and recall of ``find_duplicates`` on planted near-duplicates.

Builds a set of distinct images (Fashion-MNIST images, plus 96 px tiles of the sample photos
that scikit-learn / scikit-image ship when they are installed), hides a degraded copy of some
of them in it (one of: JPEG re-encoded at quality 30, a small crop (85-95 % of each side),
a resize (to 75 % and back), a brightness change (x 0.8 or x 1.25)), embeds everything (whole
and as the views of ``easyssl.inference.views.DUPLICATE_VIEWS``: 18 crops, one low-resolution copy) with a checkpoint trained for a short
time budget and measures, for each ratio-test factor, the pair precision and recall of
``find_duplicates`` with the crops and the pixel check (what ``find_duplicate_images`` does),
with the crops alone, without either, and of the rule before them (a cosine threshold alone);
a found group of n images counts its n(n-1)/2 pairs. It also counts the groups found in the
same set *without* planted copies.

Splits, so the default is never tuned on the test images:

* ``--split tuning``: trains on Fashion-MNIST training images 20,000+ and takes the distinct
  images from training images 50,000+ (both cut from the official *training* set).
* ``--split fresh``: the same with training images 30,000+ and 40,000+, for choices made after
  the tuning split had been looked at.
* ``--split test`` (default): trains on the first 10,000 training images, distinct images
  from the official *test* set.
* ``--split demo``: the built-in demo set of 200 shapes (as ``easyssl run`` makes it), 200
  training steps, 40 planted copies.

    python examples/benchmarks/near_duplicates.py --split tuning   # choose the defaults
    python examples/benchmarks/near_duplicates.py --split fresh    # ... and again on other images
    python examples/benchmarks/near_duplicates.py                  # check them on the test images
    python examples/benchmarks/near_duplicates.py --split demo     # the built-in demo set
    python examples/benchmarks/near_duplicates.py --checkpoint runs/last.ckpt   # any checkpoint
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image, ImageEnhance

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fashion_mnist_data import build_folder  # noqa: E402

from easyssl import find_duplicates, train_embedding_model  # noqa: E402
from easyssl.data import make_demo_dataset, open_dataset  # noqa: E402
from easyssl.inference import Embedder  # noqa: E402
from easyssl.inference.views import DUPLICATE_VIEWS, embed_with_views  # noqa: E402
from easyssl.tools.pixels import PixelAgreement  # noqa: E402

DEGRADATIONS = ("jpeg", "crop", "resize", "brightness")
#: A cropped copy keeps this fraction of each side, drawn uniformly (a fixed fraction would let a
#: detector tuned to it look better than it is on crops of other sizes).
CROP_SIDE = (0.85, 0.95)
#: Training steps on the built-in demo set (``--split demo``), where a time budget would give a machine-dependent model.
DEMO_STEPS = 200
#: Below this many training steps the benchmark warns that its figures describe an untrained network.
MIN_STEPS = 200


def degrade(image: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """A near-duplicate of ``image``: what re-saving, a light crop, a resize or an exposure edit makes of it."""
    w, h = image.size
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=30)
        buffer.seek(0)
        return Image.open(buffer).convert(image.mode)
    if kind == "crop":
        side = float(rng.uniform(*CROP_SIDE))
        cw, ch = max(1, round(w * side)), max(1, round(h * side))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        return image.crop((x, y, x + cw, y + ch))
    if kind == "resize":
        small = image.resize((max(1, round(w * 0.75)), max(1, round(h * 0.75))), Image.Resampling.BILINEAR)
        return small.resize((w, h), Image.Resampling.BILINEAR)
    if kind == "brightness":
        return ImageEnhance.Brightness(image).enhance(float(rng.choice([0.8, 1.25])))
    raise ValueError(kind)


def sample_photos(tile: int = 96, packages: tuple[str, ...] = ("sklearn", "skimage")) -> tuple[list[Image.Image], str]:
    """Non-overlapping ``tile`` px tiles of the sample photos installed packages ship, and where they came from."""
    photos, sources = [], []
    try:
        if "sklearn" not in packages:
            raise ImportError
        from sklearn.datasets import load_sample_images

        photos += [Image.fromarray(a) for a in load_sample_images().images]
        sources.append("scikit-learn (china.jpg, flower.jpg)")
    except ImportError:
        pass
    try:
        if "skimage" not in packages:
            raise ImportError
        import skimage.data as sk

        for name in ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "cat"):
            try:
                photos.append(Image.fromarray(getattr(sk, name)()).convert("RGB"))
            except Exception:  # some need a download: skipped
                continue
        sources.append("scikit-image")
    except ImportError:
        pass
    tiles = []
    for photo in photos:
        w, h = photo.size
        for y in range(0, h - tile + 1, tile):
            for x in range(0, w - tile + 1, tile):
                t = photo.crop((x, y, x + tile, y + tile))
                if np.asarray(t.convert("L"), dtype=np.float32).std() >= 40:  # skip plain sky, walls: alike, not distinct
                    tiles.append(t)
    return tiles, ", ".join(sources) or "none (install scikit-learn or scikit-image for photos): Fashion-MNIST only"


def _open(path: str) -> Image.Image:
    """An image file, in grayscale or RGB as it was saved."""
    with Image.open(path) as image:
        return image.convert("L" if image.mode in ("1", "L", "I", "I;16", "F") else "RGB")


def build_sets(distinct_dir: str, out: str, n_distinct: int, n_planted: int, seed: int = 0, photos: bool = True) -> dict:
    """Write ``out/clean`` (distinct images only) and ``out/planted`` (the same plus one copy of ``n_planted`` of them).

    The distinct images are ``n_distinct`` images of ``distinct_dir`` and, with ``photos``,
    the :func:`sample_photos` tiles. Returns the planted ``pairs`` (original, copy, kind) and counts.
    """
    rng = np.random.default_rng(seed)
    files = sorted(os.path.join(d, f) for d, _, names in os.walk(distinct_dir) for f in names if f.endswith(".png"))
    picked = [files[i] for i in sorted(rng.choice(len(files), size=min(n_distinct, len(files)), replace=False))]
    images = [_open(p) for p in picked]
    tiles, photo_source = sample_photos() if photos else ([], "none (photos=False)")
    images += tiles
    planted = sorted(rng.choice(len(images), size=min(n_planted, len(images)), replace=False).tolist())
    for sub in ("clean", "planted"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    names = []
    for i, image in enumerate(images):
        name = f"{'photo' if i >= len(picked) else 'fmnist'}_{i:05d}.png"
        names.append(name)
        image.save(os.path.join(out, "clean", name))
        image.save(os.path.join(out, "planted", name))
    pairs = []
    for j, i in enumerate(planted):
        kind = DEGRADATIONS[j % len(DEGRADATIONS)]
        name = f"copy_{i:05d}_{kind}.png"
        degrade(images[i], kind, rng).save(os.path.join(out, "planted", name))
        pairs.append((names[i], name, kind))
    return {"pairs": pairs, "n_fashion_mnist": len(picked), "n_photo_tiles": len(tiles), "photos": photo_source}


def pair_scores(groups: list[list[int]], filenames: list[str], truth: set[frozenset]) -> tuple[int, int]:
    """(found pairs, of which planted) of a list of groups."""
    found = {frozenset((filenames[a], filenames[b])) for g in groups for a, b in itertools.combinations(g, 2)}
    return len(found), len(found & truth)


def evaluate(emb_planted, files_planted, emb_clean, files_clean, pairs, settings, folder: str | None = None) -> list[dict]:
    """One row per setting (keyword arguments of ``find_duplicates``; ``views`` is taken from the embeddings
    given as ``(embeddings, views)``, ``pixels=True`` checks the pairs' pixels in ``folder``'s ``planted`` and
    ``clean`` sub-folders, as ``find_duplicate_images`` does): pair precision and recall (also per kind of copy)
    and the groups found in the set without copies."""
    truth = {frozenset((a, b)) for a, b, _ in pairs}
    by_kind = {k: {frozenset((a, b)) for a, b, kind in pairs if kind == k} for k in DEGRADATIONS}
    rows = []
    for options in settings:
        planted = _with_views(emb_planted, options, folder and os.path.join(folder, "planted"), files_planted)
        clean = _with_views(emb_clean, options, folder and os.path.join(folder, "clean"), files_clean)
        groups = find_duplicates(planted[0], **planted[1])
        found, correct = pair_scores(groups, files_planted, truth)
        found_pairs = {frozenset((files_planted[a], files_planted[b])) for g in groups for a, b in itertools.combinations(g, 2)}
        clean_groups = find_duplicates(clean[0], **clean[1])
        rows.append({
            **options, "precision": correct / found if found else 1.0, "recall": correct / len(truth),
            "found_pairs": found, "clean_set_groups": len(clean_groups),
            "clean_set_images_in_groups": sum(len(g) for g in clean_groups),
            **{f"recall_{k}": len(found_pairs & v) / max(1, len(v)) for k, v in by_kind.items()},
        })
    return rows


def _with_views(embeddings, options: dict, folder: str | None = None, files: list[str] | None = None) -> tuple:
    """``(embeddings, find_duplicates keyword arguments)``: ``options`` with ``views=True`` replaced by the views'
    embeddings and ``pixels=True`` by the pixel check of the ``files`` of ``folder``."""
    options = dict(options)
    whole, views = embeddings if isinstance(embeddings, tuple) else (embeddings, None)
    options["views"] = views if options.pop("views", False) else None
    if options.pop("pixels", False):
        options["verify"] = PixelAgreement(lambda i: Image.open(os.path.join(folder, files[i])).convert("RGB"))
    return whole, options


def settings_grid(ratios: list[float]) -> dict[str, list[dict]]:
    """The settings measured: the defaults' ratio sweep with and without crops, and the old rule (a threshold alone)."""
    return {
        "with the views and the pixel check (find_duplicate_images)": [{"views": True, "pixels": True, "ratio": r} for r in ratios]
        + [{"views": True, "pixels": True, "ratio": 4.0, "linkage": "single"}],
        "with the views, no pixel check": [{"views": True, "ratio": r} for r in ratios] + [{"views": True, "ratio": 4.0, "linkage": "single"}],
        "embeddings alone (find_duplicates)": [{"views": False, "ratio": r} for r in ratios],
        "threshold alone (the rule before: mutual neighbours, no ratio test)": [
            {"views": False, "ratio": None, "mutual": True, "threshold": t, "linkage": "single"} for t in (0.9, 0.93, 0.95)],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("tuning", "fresh", "test", "demo"), default="test",
                        help="tuning, fresh: splits cut from the training images; test: the test images; demo: the built-in demo set")
    parser.add_argument("--checkpoint", help="use this checkpoint instead of training one")
    parser.add_argument("--budget", type=float, default=90, help="training-time budget in seconds (default: 90)")
    parser.add_argument("--steps", type=int, help="train this many steps instead (figures that do not depend on the machine's load)")
    parser.add_argument("--data", default="bench_data/fashion_mnist")
    parser.add_argument("--n-distinct", type=int, default=1000, help="distinct Fashion-MNIST images (default: 1000)")
    parser.add_argument("--n-planted", type=int, default=100, help="images that get a near-duplicate (default: 100)")
    parser.add_argument("--ratios", type=float, nargs="+", default=[3.0, 3.5, 4.0, 4.5, 5.0, 6.0],
                        help="ratio-test factors measured (the default is 4)")
    parser.add_argument("--seed", type=int, default=0,
                        help="which images get a copy, and how (this seed), and the training's seed (this + 1; default: 0)")
    parser.add_argument("--output", help="write the results as JSON here")
    parser.add_argument("--unplanted", metavar="PNG",
                        help="draw the pairs the defaults link that were not planted (look at them: are they copies?)")
    parser.add_argument("--summarize", nargs="+", metavar="JSON", help="print a table of these result files and stop")
    args = parser.parse_args(argv)
    if args.summarize:
        print(summarize(args.summarize))
        return {}
    if args.split == "demo":  # the built-in demo set as `easyssl run` makes it: the images are both
        train_dir = distinct_dir = make_demo_dataset(tempfile.mkdtemp(prefix="easyssl-demo-"), images_per_class=40, image_size=32)
        args.n_distinct, args.n_planted, args.steps = 200, min(args.n_planted, 40), args.steps or DEMO_STEPS
    else:
        data = args.data + ("" if args.split == "test" else "_" + args.split)
        train_dir, distinct_dir = build_folder(data, 10_000, 2_000, tuning=False if args.split == "test" else args.split)
    result: dict = {"split": args.split, "seed": args.seed, "command": "python examples/benchmarks/near_duplicates.py " + " ".join(argv or sys.argv[1:])}
    checkpoint = args.checkpoint
    if checkpoint is None:
        start = time.perf_counter()
        trainer = {"max_steps": args.steps} if args.steps else {"max_time": args.budget}
        checkpoint = train_embedding_model(train_dir, trainer={**trainer, "progress_bar": False}, seed=args.seed + 1,
                                           checkpoint_dir=tempfile.mkdtemp(prefix="easyssl-dup-"))
        result["train_seconds"] = round(time.perf_counter() - start, 1)
    result["checkpoint"] = str(checkpoint)
    import easyssl

    state = easyssl.load_checkpoint(checkpoint)
    history = state.get("history", [])
    result["train_images"] = int(sum(h.get("images", 0) for h in history))
    batch = state.get("config", {}).get("loader", {}).get("batch_size") or 1
    result["train_steps"] = int(history[-1]["step"]) if history and "step" in history[-1] else result["train_images"] // batch
    if result["train_steps"] < MIN_STEPS:
        print(f"warning: the model was trained for only {result['train_steps']} steps: its embeddings are close to an "
              "untrained network's and confuse look-alikes with copies; train longer (--budget) for figures that mean something")
    embedder = Embedder.from_checkpoint(checkpoint)
    with tempfile.TemporaryDirectory() as folder:
        info = build_sets(distinct_dir, folder, args.n_distinct, args.n_planted, seed=args.seed, photos=args.split != "demo")
        result.update({k: v for k, v in info.items() if k != "pairs"}, n_planted=len(info["pairs"]))
        for whiten in (True, False):
            sets = {}
            start = time.perf_counter()
            for name in ("planted", "clean"):
                data = open_dataset(os.path.join(folder, name), transform=embedder.transform)
                whole, views, _, files = embed_with_views(embedder.model, embedder.loader(data), embedder.device, DUPLICATE_VIEWS,
                                                          embedder.precision, embedder.channels_last, False, whiten)
                sets[name] = ((whole, views), files)
            result.setdefault("embed_seconds_with_views", round(time.perf_counter() - start, 1))
            for title, settings in settings_grid(args.ratios).items():
                name = ("whitened" if whiten else "raw features") + ", " + title
                result[name] = evaluate(*sets["planted"], *sets["clean"], info["pairs"], settings, folder)
                report(name, result[name], len(sets["planted"][1]), len(info["pairs"]), len(sets["clean"][1]))
            if whiten:
                (whole, views), files = sets["planted"]
                truth = {frozenset((a, b)) for a, b, _ in info["pairs"]}
                verify = PixelAgreement(lambda i: Image.open(os.path.join(folder, "planted", files[i])).convert("RGB"))
                found = {tuple(sorted((files[a], files[b]))) for g in find_duplicates(whole, views=views, verify=verify)
                         for a, b in itertools.combinations(g, 2)}
                result["unplanted_pairs_at_the_defaults"] = sorted(p for p in found if frozenset(p) not in truth)
                if args.unplanted:
                    draw_pairs(os.path.join(folder, "planted"), result["unplanted_pairs_at_the_defaults"], args.unplanted)
                    print(f"wrote {args.unplanted}")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}))
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


def summarize(paths: list[str]) -> str:
    """A table of result files (``--output`` JSON): per split and seed, the default's precision and recall, the groups
    in the set without copies, and the same embeddings without the pixel check and under the rules before; then the
    mean over the seeds of each split."""
    lines, means = [], {}
    pick = {"default (pixel check)": ("with the views and the pixel check", lambda r: r.get("ratio") == 4.0 and "linkage" not in r),
            "no pixel check": ("with the views, no pixel check", lambda r: r.get("ratio") == 4.0 and "linkage" not in r),
            "no pixel check, single linkage (the rule before)": ("with the views, no pixel check",
                                                                  lambda r: r.get("ratio") == 4.0 and r.get("linkage") == "single"),
            "threshold 0.93 (the rule before that)": ("threshold alone", lambda r: r.get("threshold") == 0.93)}
    for path in paths:
        with open(path) as handle:
            result = json.load(handle)
        cells = []
        for label, (title, match) in pick.items():
            row = next(r for name, rows in result.items() if isinstance(rows, list) and name.startswith("whitened, " + title)
                       for r in rows if isinstance(r, dict) and match(r))
            cells.append(f"{row['precision']:.3f} / {row['recall']:.3f} ({row['clean_set_groups']})")
            means.setdefault((result["split"], label), []).append((row["precision"], row["recall"]))
        lines.append(f"| {result['split']} | {result.get('seed', 0)} | {result['train_steps']} | " + " | ".join(cells) + " |")
    header = "| split | seed | steps | " + " | ".join(f"{label}: P / R (groups without copies)" for label in pick) + " |"
    lines = [header, "|" + "---|" * (3 + len(pick))] + lines
    for split in dict.fromkeys(key[0] for key in means):
        cells = [" / ".join(f"{np.mean([m[i] for m in means[(split, label)]]):.3f}" for i in (0, 1)) for label in pick]
        lines.append(f"| {split} | mean of {len(means[(split, next(iter(pick)))])} | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def draw_pairs(folder: str, pairs: list[tuple[str, str]], path: str, size: int = 56) -> None:
    """A picture of ``pairs`` of images of ``folder``, side by side, two pairs per row."""
    rows = max(1, (len(pairs) + 1) // 2)
    canvas = Image.new("L", (4 * size + 3 * 4 + size // 2, rows * (size + 4)), 128)
    for n, (a, b) in enumerate(pairs):
        x, y = (n % 2) * (2 * size + 4 + size // 2), (n // 2) * (size + 4)
        for offset, name in ((0, a), (size + 4, b)):
            canvas.paste(Image.open(os.path.join(folder, name)).convert("L").resize((size, size)), (x + offset, y))
    canvas.save(path)


def report(name: str, rows: list[dict], n: int, planted: int, clean: int) -> None:
    print(f"{name}: {n} images ({planted} planted copies), clean set {clean}")
    for row in rows:
        setting = ", ".join(f"{k} {row[k]}" for k in ("ratio", "threshold", "mutual", "linkage") if k in row)
        print(f"  {setting}: precision {row['precision']:.3f} recall {row['recall']:.3f} "
              f"(jpeg {row['recall_jpeg']:.2f} crop {row['recall_crop']:.2f} resize {row['recall_resize']:.2f} "
              f"brightness {row['recall_brightness']:.2f}), clean set: {row['clean_set_groups']} groups", flush=True)


if __name__ == "__main__":
    main()
