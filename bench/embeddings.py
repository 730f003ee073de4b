"""Embeddings: encoder throughput, similar-item query latency, the cost of a cold start, and whether the
in-app quality score ranks the families as bench/quality.py's judge does.

1. throughput: a dataset's encoder embeds the digits sample (1,797 images, 32 px) with torch (the
   trained EmbeddingNetwork, eval, no_grad) and with ONNX Runtime (studio's Embedder, what the app
   uses); images/s of each, the ratio ONNX/torch and the largest difference between their vectors.
2. query: "more like this" over 100,000 and 1,000,000 unit vectors (128-d float32, in 2,000 clusters
   of varied spread, as a gallery of many models and prompts makes them): p50/p95 of
   studio.engine.embedding.analysis.nearest (numpy over the BLOB matrix, the design chosen; target p95
   < 50 ms at 100k) against a naive full argsort in the same run, and against sqlite-vec's vec0 KNN when
   the `sqlite_vec` package is installed (it is not a dependency) and Python's sqlite3 can load
   extensions (not every build can: the output says which). Then the store: 100,000 rows
   written with EmbeddingRepository.put into a temporary data home, the first load of the vectors
   (what a cold start costs) and an incremental refresh after 1,000 more.
3. agreement: each family (gan, vae, pixelcnn, diffusion) trains on bench/quality.py's digits split for
   --minutes; its Frechet distance in the judge's classifier space (bench/quality.py) and studio's
   score (Frechet distance in the dataset encoder's space, precision, recall; the encoder trained for
   --encoder-minutes) rank the families; Spearman's rho and whether the order is the same. Precision
   and recall (k=3 balls) are given in both spaces.
--quick shrinks everything (seconds of training, fewer items and queries) to check the script works:
its figures are not measurements. Nothing is written outside a temporary folder unless --save PATH.
Usage: python bench/embeddings.py [--quick] [--only throughput|query|agreement] [--minutes 1.5]
       [--encoder-minutes 2] [--samples 500] [--queries 200] [--save bench/results/embeddings-cpu.txt]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.engine.datasets.samples import add_sample
from studio.engine.datasets.storage import DatasetWriter, load_images
from studio.engine.embedding.analysis import nearest
from studio.engine.embedding.preprocess import to_input
from studio.engine.embedding.runtime import WEIGHTS_FILE, Embedder, EncoderConfig
from studio.engine.embedding.training import EncoderOptions, train_encoder
from studio.engine.jobs import run_job
from studio.home import DataHome
from studio.store.database import Store, open_store
from studio.store.embeddings import EmbeddingRepository, EncoderRecord, VectorRow

DIMS = 128  # the default encoder's embedding length (4 x width 32)
K = 12  # neighbours a "more like this" asks for (the CLI's default)
FAMILIES = ("gan", "vae", "pixelcnn", "diffusion")
TARGET_P95_MS = 50.0


class Report:
    """Prints each line as it comes and keeps them for --save."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    values = np.array(seconds) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def timed_each(run: Callable[[int], Any], count: int, warm: int = 3) -> list[float]:
    """Seconds of each of `count` calls run(i), after `warm` untimed ones."""
    for index in range(warm):
        run(index)
    times = []
    for index in range(count):
        begun = time.perf_counter()
        run(index)
        times.append(time.perf_counter() - begun)
    return times


# --- 1. throughput ----------------------------------------------------------------------


def torch_network(folder: Path) -> torch.nn.Module:
    """The encoder folder's EmbeddingNetwork in torch (what the ONNX file was exported from)."""
    from safetensors.torch import load_file

    from studio.engine.embedding.network import EmbeddingNetwork, build_networks

    config = EncoderConfig.read(folder)
    encoder, _ = build_networks(config.channels, config.settings)
    network = EmbeddingNetwork(encoder)
    network.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    return network.eval()


def throughput(report: Report, work: Path, quick: bool) -> None:
    """Images/s embedding the digits sample with torch and with ONNX Runtime."""
    store = open_store(DataHome(work / "throughput"))
    try:
        run_job(add_sample(store, "digits", size=32))
        begun = time.perf_counter()
        # The weights' values do not change the speed: a short training gives a real, exported encoder.
        result = run_job(train_encoder(store, EncoderOptions("digits", steps=3 if quick else 20)))
        encoder = result.encoder
        folder = store.home.absolute(encoder.folder)
        images = np.asarray(load_images(store, "digits"))
        if quick:
            images = images[:512]
        repeats = 1 if quick else 5
        network = torch_network(folder)
        embedder = Embedder(folder)
        config = embedder.config

        @torch.no_grad()
        def with_torch() -> np.ndarray:
            out = []
            for start in range(0, len(images), 256):  # the ONNX Embedder's batch too
                batch = to_input(images[start : start + 256], config.input_size, config.channels)
                out.append(network(torch.from_numpy(batch)).numpy())
            return np.concatenate(out)

        rates: dict[str, float] = {}
        outputs: dict[str, np.ndarray] = {}
        for name, run in (("torch", with_torch), ("onnx", lambda: embedder.embed(images))):
            outputs[name] = run()  # warm-up (and the vectors compared below)
            best = min(_seconds(run) for _ in range(repeats))
            rates[name] = len(images) / best
        difference = float(np.abs(outputs["torch"] - outputs["onnx"]).max())
        report(
            f"1. throughput: {len(images)} digits at {config.input_size} px, encoder width "
            f"{config.settings['width']} ({config.dims}-d), batches of 256, best of {repeats}; torch "
            f"{torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__} "
            f"({getattr(embedder.provider, 'provider', embedder.provider)}) "
            f"(setup {time.perf_counter() - begun:.0f}s)"
        )
        report(f"{'backend':<10} {'images/s':>10} {'ms/image':>9}")
        for name in ("torch", "onnx"):
            report(f"{name:<10} {rates[name]:>10.0f} {1000 / rates[name]:>9.3f}")
        report(f"ratio onnx/torch: {rates['onnx'] / rates['torch']:.2f}x; largest |torch - onnx|: {difference:.1e}")
    finally:
        store.close()


def _seconds(run: Callable[[], Any]) -> float:
    begun = time.perf_counter()
    run()
    return time.perf_counter() - begun


# --- 2. query -----------------------------------------------------------------------------


def clustered_vectors(count: int, seed: int = 0, clusters: int = 2000) -> np.ndarray:
    """`count` unit vectors (float32, DIMS) around `clusters` centres with spreads from tight to loose."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIMS), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = rng.uniform(0.02, 0.12, clusters).astype(np.float32)  # per dimension: near-duplicates to loose themes
    out = np.empty((count, DIMS), np.float32)
    for start in range(0, count, 100_000):  # in chunks: the noise of a million rows at once is 0.5 GB more
        size = min(100_000, count - start)
        members = rng.integers(0, clusters, size)
        chunk = centres[members] + spread[members, None] * rng.standard_normal((size, DIMS), dtype=np.float32)
        out[start : start + size] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def naive(query: np.ndarray, matrix: np.ndarray, k: int) -> np.ndarray:
    """The baseline: every distance, fully sorted."""
    return np.argsort(1.0 - matrix @ query, kind="stable")[:k]


def query_latency(report: Report, sizes: tuple[int, ...], queries: int, sqlite_vec_size: int | None) -> None:
    """p50/p95 of a k-NN query: studio's blocked numpy search, a naive full sort, sqlite-vec."""
    report(
        f"2. query: k={K} nearest of one item among N unit vectors ({DIMS}-d float32, 2,000 clusters); "
        f"{queries} queries (items of the set) after 3 warm-ups; target p95 < {TARGET_P95_MS:.0f} ms at 100k; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    report(f"{'N':>9} {'method':<26} {'p50 ms':>8} {'p95 ms':>8} {'x studio p95':>13} {'matrix MB':>10}")
    for size in sizes:
        query_size(report, size, queries, with_sqlite_vec=size == sqlite_vec_size)


def query_size(report: Report, size: int, queries: int, with_sqlite_vec: bool) -> None:
    """The rows of one N: studio's search, the naive baseline and (if asked) sqlite-vec."""
    matrix = clustered_vectors(size)
    picks = np.random.default_rng(1).choice(size, queries + 3, replace=False)
    found = nearest(matrix[picks[:5]], matrix, K)[0]
    expected = np.stack([naive(matrix[p], matrix, K) for p in picks[:5]])
    agree = all(set(a) == set(b) for a, b in zip(found, expected, strict=True))
    studio_p50, studio_p95 = percentiles(timed_each(lambda i: nearest(matrix[picks[i]][None], matrix, K), queries))
    naive_p50, naive_p95 = percentiles(timed_each(lambda i: naive(matrix[picks[i]], matrix, K), queries))
    verdict = ""
    if size == 100_000:
        verdict = "  met" if studio_p95 < TARGET_P95_MS else "  NOT met"
    report(
        f"{size:>9,} {'studio nearest (numpy)':<26} {studio_p50:>8.2f} {studio_p95:>8.2f} {1.0:>12.2f}x "
        f"{matrix.nbytes / 2**20:>10.0f}{verdict}"
    )
    report(
        f"{size:>9,} {'naive full argsort':<26} {naive_p50:>8.2f} {naive_p95:>8.2f} "
        f"{naive_p95 / studio_p95:>12.2f}x {'':>10}  same neighbours: {'yes' if agree else 'NO'}"
    )
    if with_sqlite_vec:
        report(sqlite_vec_latency(matrix, picks, queries, studio_p95))


def sqlite_vec_latency(matrix: np.ndarray, picks: np.ndarray, queries: int, studio_p95: float) -> str:
    """sqlite-vec's vec0 KNN over the same vectors (a file in a temporary folder), when installed."""
    try:
        import sqlite_vec
    except ImportError:
        return f"{len(matrix):>9,} {'sqlite-vec vec0':<26} not installed (pip install sqlite-vec): not measured"
    folder = Path(tempfile.mkdtemp(prefix="studio-vec0-"))
    connection = sqlite3.connect(folder / "vec.db")
    try:
        if not hasattr(connection, "enable_load_extension"):
            # Some Python builds (this one among them) compile sqlite3 without extension loading: there
            # the app could not use sqlite-vec at all.
            return (
                f"{len(matrix):>9,} {'sqlite-vec vec0':<26} installed, but this Python's sqlite3 cannot load "
                "extensions: not measured (nor usable by the app here)"
            )
        connection.enable_load_extension(True)
        sqlite_vec.load(connection)
        connection.enable_load_extension(False)
        version = connection.execute("select vec_version()").fetchone()[0]
        connection.execute(f"create virtual table v using vec0(embedding float[{DIMS}] distance_metric=cosine)")
        begun = time.perf_counter()
        connection.executemany(
            "insert into v(rowid, embedding) values (?, ?)",
            ((index + 1, row.tobytes()) for index, row in enumerate(matrix)),
        )
        connection.commit()
        inserted = time.perf_counter() - begun
        sql = "select rowid, distance from v where embedding match ? and k = ? order by distance"

        def run(index: int) -> list[Any]:
            return connection.execute(sql, (matrix[picks[index]].tobytes(), K)).fetchall()

        rows = run(0)
        expected = set(naive(matrix[picks[0]], matrix, K))
        agree = {row[0] - 1 for row in rows} == expected
        p50, p95 = percentiles(timed_each(run, queries))
        return (
            f"{len(matrix):>9,} {'sqlite-vec ' + version + ' vec0':<26} {p50:>8.2f} {p95:>8.2f} "
            f"{p95 / studio_p95:>12.2f}x {'':>10}  same neighbours: {'yes' if agree else 'NO'}; "
            f"insert {inserted:.1f}s"
        )
    finally:
        connection.close()
        shutil.rmtree(folder, ignore_errors=True)


def store_load(report: Report, work: Path, count: int, added: int) -> None:
    """Write `count` vectors through the repository, then time the first load and a refresh by id."""
    from studio.engine.embedding.queries import vector_cache

    store = open_store(DataHome(work / "store"))
    try:
        encoder = _vector_dataset(store, count + added)
        repository = EmbeddingRepository(store)
        rows = repository.dataset("vectors")
        matrix = clustered_vectors(count + added, seed=2)
        begun = time.perf_counter()
        for start in range(0, count, 10_000):  # in chunks, as the embedding worker writes: short write transactions
            stop = min(count, start + 10_000)
            repository.put(
                encoder.id, [VectorRow(matrix[i], dataset_item_id=int(rows.item_ids[i])) for i in range(start, stop)]
            )
        written = time.perf_counter() - begun
        size_mb = store.home.database.stat().st_size / 2**20
        begun = time.perf_counter()
        direct = repository.vectors(encoder, "dataset")
        read_all = time.perf_counter() - begun
        begun = time.perf_counter()
        held = vector_cache.get(store, encoder, "dataset")
        cold = time.perf_counter() - begun
        begun = time.perf_counter()
        vector_cache.get(store, encoder, "dataset")
        unchanged = time.perf_counter() - begun
        repository.put(
            encoder.id,
            [VectorRow(matrix[i], dataset_item_id=int(rows.item_ids[i])) for i in range(count, count + added)],
        )
        begun = time.perf_counter()
        refreshed = vector_cache.get(store, encoder, "dataset")
        refresh = time.perf_counter() - begun
        assert len(direct.rows) == len(held.rows) == count and len(refreshed.rows) == count + added
        assert np.array_equal(refreshed.matrix[:count], matrix[:count])
        report(
            f"   store: {count:,} vectors written with EmbeddingRepository.put in {written:.1f}s "
            f"({count / written:,.0f} rows/s, database {size_mb:.0f} MB)"
        )
        report(f"{'store read':<44} {'seconds':>8}")
        report(f"{'repository.vectors, all rows':<44} {read_all:>8.3f}")
        report(f"{'first load (vector cache, cold start)':<44} {cold:>8.3f}")
        report(f"{'refresh, nothing new':<44} {unchanged:>8.3f}")
        report(f"{f'refresh after {added:,} more rows':<44} {refresh:>8.3f}")
    finally:
        store.close()


def _vector_dataset(store: Store, count: int) -> EncoderRecord:
    """A dataset of `count` tiny images and an encoder row for it (no files: only its vectors are read)."""
    writer = DatasetWriter(store, "vectors", 8, 1, origin="bench")
    for index in range(count):
        pixels = index.to_bytes(8, "little") * 8
        writer.add(pixels, hashlib.blake2b(pixels, digest_size=16).hexdigest(), f"v#{index}", None)
    writer.commit()
    repository = EmbeddingRepository(store)
    return repository.add_encoder(
        {
            "dataset_id": repository.dataset("vectors").id,
            "folder": "encoders/vectors/none",
            "weights_hash": "0" * 64,
            "input_size": 8,
            "channels": 1,
            "dims": DIMS,
            "steps": 0,
            "settings": {},
            "metrics": {},
            "duplicate_threshold": 0.0,
            "memorised_threshold": 0.0,
        }
    )


# --- 3. agreement -----------------------------------------------------------------------------


def euclidean_precision_recall(real: np.ndarray, generated: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Kynkaanniemi et al.'s precision and recall with k-NN balls in plain Euclidean space (the judge's)."""

    def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T
        return np.sqrt(np.maximum(squared, 0))

    def radii(points: np.ndarray) -> np.ndarray:
        own = distances(points, points)
        np.fill_diagonal(own, np.inf)
        return np.sort(own, axis=1)[:, k - 1]

    precision = float((distances(generated, real) <= radii(real)[None]).any(1).mean())
    recall = float((distances(real, generated) <= radii(generated)[None]).any(1).mean())
    return precision, recall


def ranks(values: list[float]) -> np.ndarray:
    """1 for the smallest (best) value."""
    return np.argsort(np.argsort(values)) + 1


def spearman(first: list[float], second: list[float]) -> float:
    """Spearman's rank correlation (no ties expected among Frechet distances)."""
    a, b = ranks(first), ranks(second)
    count = len(a)
    return float(1 - 6 * ((a - b) ** 2).sum() / (count * (count**2 - 1)))


def agreement(
    report: Report,
    work: Path,
    minutes: float,
    encoder_minutes: float,
    samples: int,
    families: tuple[str, ...],
    quick: bool,
) -> None:
    """Rank the families by the judge's FD and by studio's score; do they agree?"""
    from bench.quality import (
        Scorer,
        digits_split,
        features_and_classes,
        frechet_distance,
        make_dataset,
        train_classifier,
    )
    from studio.engine.checkpoints import load_model
    from studio.engine.embedding.scoring import score_model
    from studio.engine.library import model_folder
    from studio.engine.training import train
    from studio.engine.training_options import TrainOptions

    store = open_store(DataHome(work / "agreement"))
    try:
        x_train, y_train, x_held, _ = digits_split()
        make_dataset(store, x_train, y_train)
        begun = time.perf_counter()
        classifier = train_classifier(x_train, y_train, epochs=3 if quick else 15)
        held_features, _ = features_and_classes(classifier, x_held)
        floor_sample = x_train[np.random.default_rng(1).choice(len(x_train), len(x_held), replace=False)]
        floor = frechet_distance(features_and_classes(classifier, floor_sample)[0], held_features)
        judge_seconds = time.perf_counter() - begun
        begun = time.perf_counter()
        encoded = run_job(train_encoder(store, EncoderOptions("digits-train", minutes=encoder_minutes)))
        record = encoded.encoder
        report(
            f"3. agreement: digits 16x16, {len(x_train)} train / {len(x_held)} held out; judge: bench/quality.py's "
            f"classifier ({judge_seconds:.0f}s, floor FD {floor:.2f}); studio encoder {encoded.steps} steps in "
            f"{time.perf_counter() - begun:.0f}s, probe accuracy {record.metrics.get('probe_accuracy')}; "
            f"{minutes:g} min per family, {samples} samples each"
        )
        scorer = Scorer(classifier, held_features, floor, samples)
        rows: list[dict[str, Any]] = []
        for family in families:
            result = run_job(
                train(
                    store,
                    TrainOptions(
                        family,
                        family=family,
                        dataset="digits-train",
                        minutes=minutes,
                        seed=0,
                        checkpoint_every=10**9,
                        milestone_every=0,  # the budget goes to training, as in the figures before milestones existed
                        preview_every=0,
                    ),
                )
            )
            loaded = load_model(model_folder(store, family), with_optimizers=False)
            model = loaded.family
            model.train_mode(False)
            images = scorer.images(model, list(range(samples)), {})
            features, predicted = features_and_classes(classifier, images)
            shares = np.bincount(predicted, minlength=10) / len(predicted)
            judge_precision, judge_recall = euclidean_precision_recall(held_features[:samples], features)
            score = run_job(score_model(store, family, samples=samples))
            rows.append(
                {
                    "family": family,
                    "steps": result.steps,
                    "judge": frechet_distance(features, held_features),
                    "classes": int((shares >= 0.02).sum()),
                    "judge_pr": (judge_precision, judge_recall),
                    "studio": score.frechet,
                    "studio_pr": (score.precision, score.recall),
                }
            )
            row = rows[-1]
            report(
                f"   {family}: {row['steps']} steps; judge FD {row['judge']:.2f}, studio FD {row['studio']:.4f}",
            )
        judge_ranks = ranks([row["judge"] for row in rows])
        studio_ranks = ranks([row["studio"] for row in rows])
        report(
            f"{'family':<10} {'steps':>6} {'judge FD':>9} {'x floor':>8} {'rank':>5} {'classes':>8} {'P judge':>8} "
            f"{'R judge':>8} {'studio FD':>10} {'rank':>5} {'P studio':>9} {'R studio':>9}"
        )
        for row, judge_rank, studio_rank in zip(rows, judge_ranks, studio_ranks, strict=True):
            report(
                f"{row['family']:<10} {row['steps']:>6} {row['judge']:>9.2f} {row['judge'] / floor:>7.1f}x "
                f"{judge_rank:>5} {row['classes']:>6}/10 {row['judge_pr'][0]:>8.2f} {row['judge_pr'][1]:>8.2f} "
                f"{row['studio']:>10.4f} {studio_rank:>5} {row['studio_pr'][0]:>9.2f} {row['studio_pr'][1]:>9.2f}"
            )
        rho = spearman([row["judge"] for row in rows], [row["studio"] for row in rows])
        same = list(judge_ranks) == list(studio_ranks)
        report(
            f"judge order (best first):  {' < '.join(row['family'] for row in sorted(rows, key=lambda r: r['judge']))}"
        )
        report(
            f"studio order (best first): {' < '.join(row['family'] for row in sorted(rows, key=lambda r: r['studio']))}"
        )
        report(f"Spearman rho {rho:.2f} over {len(rows)} families: {'same ranking' if same else 'rankings DIFFER'}")
    finally:
        store.close()


def main() -> None:
    """Run the sections asked for and print (and --save) the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and budgets: checks the script, no figures")
    parser.add_argument("--only", choices=("throughput", "query", "agreement"), help="run one section")
    parser.add_argument("--minutes", type=float, default=1.5, help="training budget per family (agreement)")
    parser.add_argument("--encoder-minutes", type=float, default=2.0, help="the encoder's training budget")
    parser.add_argument("--samples", type=int, default=500, help="samples per family (agreement)")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per size")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--save", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.encoder_minutes, args.samples, args.queries = 0.05, 0.1, 64, 20
    report = Report()
    quick = "; QUICK run: sizes and budgets shrunk, not measurements" if args.quick else ""
    report(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, numpy {np.__version__}, "
        f"SQLite {sqlite3.sqlite_version}{quick}"
    )
    work = Path(tempfile.mkdtemp(prefix="studio-embeddings-"))
    try:
        if args.only in (None, "throughput"):
            throughput(report, work, args.quick)
            report()
        if args.only in (None, "query"):
            sizes = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
            query_latency(report, sizes, args.queries, 100_000)
            store_load(report, work, 20_000 if args.quick else 100_000, 1_000)
            report()
        if args.only in (None, "agreement"):
            families = tuple(name for name in args.families.split(",") if name)
            agreement(report, work, args.minutes, args.encoder_minutes, args.samples, families, args.quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text("\n".join(report.lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
