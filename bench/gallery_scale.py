"""Gallery at scale: p50/p95 of every filter+sort first-page query, a rating change, facet counts and the
memory of listing a page, with 100,000 items (rows and small files) and again with 1,000,000 rows.

Rows are inserted directly (what years of generation would leave: 20 models of 4 families, ratings,
flags, 30 tags on a fifth of the items, 5 collections, a year of dates); queries go through
`GalleryRepository`, exactly as the CLI and UI run them. Each figure is the p50 and p95 of `--repeat`
runs after a warm-up; the baseline column is a primary-key lookup measured in the same run, so the
ratio says how far a page query is from the cheapest possible read on this machine.
Usage: python bench/gallery_scale.py [--items 100000] [--million] [--repeat 40] [--no-files]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image
from sqlalchemy import insert

from studio.home import DataHome
from studio.store.database import Store, open_store
from studio.store.gallery import GalleryFilter, GalleryRepository
from studio.store.tables import Collection, GalleryItem, GalleryItemCollection, GalleryItemTag, Tag

PAGE = 100  # the UI grid fetches this many per page
FAMILIES = ("gan", "vae", "pixelcnn", "diffusion")
START = datetime(2025, 11, 1)


def populate(store: Store, count: int, with_files: bool, seed: int = 0) -> None:
    """`count` gallery rows (and 8x8 PNG files when asked) with realistic curation spread over them."""
    rng = random.Random(seed)
    buffer = BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, format="PNG")
    png = buffer.getvalue()
    folder = store.home.gallery / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    with store.session() as session:
        session.execute(insert(Tag), [{"id": i + 1, "name": f"tag{i}", "key": f"tag{i}"} for i in range(30)])
        session.execute(
            insert(Collection),
            [{"id": i + 1, "name": f"album{i}", "key": f"album{i}", "created_at": START} for i in range(5)],
        )
    batch = 20_000
    for first in range(0, count, batch):
        rows, tags, collections = [], [], []
        for item_id in range(first + 1, min(count, first + batch) + 1):
            model = rng.randrange(20)
            path = f"gallery/bench/{item_id}.png"
            if with_files:
                (store.home.root / path).write_bytes(png)
            rating = rng.choices(range(6), weights=(60, 8, 8, 10, 9, 5))[0]
            rows.append(
                {
                    "id": item_id,
                    "path": path,
                    "model_name": f"model{model}",
                    "family": FAMILIES[model % 4],
                    "operation": rng.choices(("sample", "interpolate", "inpaint"), weights=(80, 12, 8))[0],
                    "seed": rng.randrange(2**31),
                    "params": {"steps": 50},
                    "backend": rng.choice(("torch", "onnx")),
                    "provider": rng.choice(("cpu", "cuda")),
                    "width": 8,
                    "height": 8,
                    "rating": rating,
                    "flag": rng.choices(("none", "pick", "reject"), weights=(80, 15, 5))[0],
                    "note": "",
                    "created_at": START + timedelta(seconds=item_id * 365 * 86400 // count + rng.randrange(60)),
                }
            )
            if rng.random() < 0.2:
                for tag in rng.sample(range(1, 31), rng.randint(1, 3)):
                    tags.append({"item_id": item_id, "tag_id": tag})
            if rng.random() < 0.05:
                collections.append({"item_id": item_id, "collection_id": rng.randint(1, 5), "added_at": START})
        with store.session() as session:
            session.execute(insert(GalleryItem), rows)
            if tags:
                session.execute(insert(GalleryItemTag), tags)
            if collections:
                session.execute(insert(GalleryItemCollection), collections)
    with sqlite3.connect(store.home.database) as connection:
        connection.execute("ANALYZE")  # what a long-lived database has; the planner uses the statistics


def timed(run: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds after two warm-up runs."""
    for _ in range(2):
        run()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]


def measure(store: Store, count: int, repeat: int) -> list[tuple[str, float, float]]:
    """Every query of the gallery's filter bar, sort menu and curation keys."""
    repo = GalleryRepository(store)
    rng = random.Random(1)
    middle = START + timedelta(days=180)
    queries: list[tuple[str, GalleryFilter, str]] = [
        ("newest", GalleryFilter(), "newest"),
        ("oldest", GalleryFilter(), "oldest"),
        ("sort by rating", GalleryFilter(), "rating"),
        ("model", GalleryFilter(model="model7"), "newest"),
        ("family", GalleryFilter(family="vae"), "newest"),
        ("rating >= 4", GalleryFilter(min_rating=4), "newest"),
        ("rating >= 4, by rating", GalleryFilter(min_rating=4), "rating"),
        ("flag reject", GalleryFilter(flag="reject"), "newest"),
        ("tag", GalleryFilter(tag="tag3"), "newest"),
        ("collection", GalleryFilter(collection="album2"), "newest"),
        ("one month", GalleryFilter(since=middle, until=middle + timedelta(days=30)), "newest"),
        ("one month, oldest", GalleryFilter(since=middle, until=middle + timedelta(days=30)), "oldest"),
        ("backend + provider", GalleryFilter(backend="onnx", provider="cuda"), "newest"),
        ("seed", GalleryFilter(seed=12345), "newest"),
        ("model + rating >= 3 + pick", GalleryFilter(model="model3", min_rating=3, flag="pick"), "newest"),
        ("family + tag, by rating", GalleryFilter(family="gan", tag="tag5"), "rating"),
        ("operation inpaint", GalleryFilter(operation="inpaint"), "oldest"),
    ]
    results = []
    for name, filters, sort in queries:
        p50, p95 = timed(lambda filters=filters, sort=sort: repo.query(filters, sort, PAGE), repeat)
        results.append((f"page: {name}", p50, p95))
    # A deep page: 100 pages in, reached through cursors as scrolling does.
    cursor = None
    for _ in range(100):
        cursor = repo.query(GalleryFilter(), "newest", PAGE, cursor).next_cursor
    p50, p95 = timed(lambda: repo.query(GalleryFilter(), "newest", PAGE, cursor), repeat)
    results.append(("page: newest, 100 pages in", p50, p95))
    ids = [rng.randint(1, count) for _ in range(repeat + 2)]
    stars = iter(rng.randint(0, 5) for _ in range(repeat + 2))
    picks = iter(ids)
    results.append(
        ("rating change (one item, committed)", *timed(lambda: repo.rate([next(picks)], next(stars)), repeat))
    )
    results.append(("baseline: get one item by id", *timed(lambda: repo.get(rng.randint(1, count)), repeat)))
    results.append(("count: rating >= 4", *timed(lambda: repo.count(GalleryFilter(min_rating=4)), max(5, repeat // 4))))
    results.append(("facets: all counts, no filter", *timed(lambda: repo.facets(), max(5, repeat // 8))))
    results.append(
        (
            "facets: all counts, one model",
            *timed(lambda: repo.facets(GalleryFilter(model="model7")), max(5, repeat // 8)),
        )
    )
    tracemalloc.start()
    repo.query(GalleryFilter(), "newest", PAGE)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    results.append(("memory: peak while listing a page (KiB)", peak / 1024, peak / 1024))
    return results


def run(count: int, with_files: bool, repeat: int) -> list[str]:
    """Build a gallery of `count` items in a temporary home, measure, return the table's lines."""
    root = Path(tempfile.mkdtemp(prefix="studio-gallery-bench-"))
    try:
        home = DataHome(root / "home").ensure()
        store = open_store(home)
        started = time.perf_counter()
        populate(store, count, with_files)
        built = time.perf_counter() - started
        results = measure(store, count, repeat)
        store.close()
        size = home.database.stat().st_size / 2**20
    finally:
        shutil.rmtree(root, ignore_errors=True)
    baseline = next(p50 for name, p50, _ in results if name.startswith("baseline"))
    lines = [
        f"{count:,} items ({'rows and files' if with_files else 'rows only'}), built in {built:.0f}s, "
        f"database {size:.0f} MiB; page = {PAGE} items; p50/p95 of {repeat} runs",
        f"{'operation':<44} {'p50 ms':>8} {'p95 ms':>8} {'x baseline':>10}",
    ]
    for name, p50, p95 in results:
        if name.startswith("memory"):
            lines.append(f"{name:<44} {p50:>8.0f}")
            continue
        lines.append(f"{name:<44} {p50:>8.2f} {p95:>8.2f} {p50 / baseline:>9.1f}x")
    pages = [p95 for name, _, p95 in results if name.startswith("page")]
    rate = next(p95 for name, _, p95 in results if name.startswith("rating change"))
    lines.append(
        f"target: every page query p95 < 20 ms (worst {max(pages):.1f} ms: "
        f"{'met' if max(pages) < 20 else 'NOT met'}); rating change p95 < 5 ms "
        f"({rate:.1f} ms: {'met' if rate < 5 else 'NOT met'})"
    )
    return lines


def main() -> None:
    """Run at 100,000 items with files, then (with --million) 1,000,000 rows without files."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--million", action="store_true", help="also run 1,000,000 rows without files")
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--no-files", action="store_true", help="rows only (faster to build)")
    parser.add_argument("--output", default=None, help="also write the table here")
    args = parser.parse_args()
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    ]
    lines += run(args.items, not args.no_files, args.repeat)
    if args.million:
        lines += ["", *run(1_000_000, False, args.repeat)]
    text = "\n".join(lines)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
