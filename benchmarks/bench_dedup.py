"""Dedup speed and memory, measured against what users reach for, in the same run.

    python benchmarks/bench_dedup.py [--n 200000] [--brute-n N] [--bktree-n 10000] [--max-hamming 6] [--min-jaccard 0.8]

Image side: ``--n`` random 64-bit perceptual hashes, 10% of them planted copies of others with
0..max_hamming+2 bits flipped. Multi-index hashing (``MultiIndexHash.self_pairs``) against
(1) a brute-force numpy ground truth (all pairs, in blocks, upper triangle only) over the first
``--brute-n`` hashes (default: all of them), and (2) imagededup, the library users reach for to
dedup images by perceptual hash, over the first ``--bktree-n`` hashes: its BK-tree
(``imagededup.handlers.search.bktree.BKTree``, ``search_method="bktree"``, its index; built and
queried with every hash, distance ``(a ^ b).bit_count()``, faster than imagededup's own hex-string
Hamming) and its Unix default, a Cython popcount scan of all hashes per query
(``brute_force_cython_ext.query``). The BK-tree is pure Python and, on hashes spread over all 64
bits, a radius of 6 prunes few branches, so its time grows about quadratically: hence the
subset. Recall must be 1.0.

Text side: ``--n`` synthetic questions (Zipf-distributed words), 10% of them planted
paraphrases of others (case and punctuation, a replaced or inserted word, a typo). Ours (numpy
MinHash + sorted LSH bands, ``NearDedup`` on text-only rows) against ``datasketch``
(``MinHash.bulk`` + ``MinHashLSH``, the usual Python choice), with the same 64 permutations,
16 bands x 4 rows and character 5-gram shingles, compared like with like: both checking LSH
candidates with the exact shingle Jaccard (what ``NearDedup`` does), and both with the MinHash
estimate (what ``datasketch`` users usually do). Each contender runs in its own process, timed in
CPU seconds (wall time printed beside; all contenders are single-threaded here); memory
is the peak RSS (VmHWM, reset once the input texts exist) minus the RSS at that moment. Linux only.

Goals (issue 4): image search >= 20x faster than brute force at equal recall; text dedup >= 2x
faster than datasketch with no more memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import xxhash

from slime_data.dedup.hamming import MultiIndexHash, hamming
from slime_data.dedup.minhash import band_keys, estimated_jaccard, lsh_pairs
from slime_data.dedup.plan import NearDedup, NearDedupParams
from slime_data.dedup.signatures import Signatures
from slime_data.dedup.text import normalize_text
from slime_data.dedup.unionfind import UnionFind

NUM_PERM, BANDS, ROWS, SHINGLE = 64, 16, 4, 5

# --------------------------------------------------------------------------------------
# Synthetic data (deterministic)
# --------------------------------------------------------------------------------------


def planted_hashes(n: int, max_hamming: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    copies = n // 10
    sources = rng.integers(0, n - copies, size=copies)
    flips = rng.integers(0, max_hamming + 3, size=copies)
    for k in range(copies):
        bits = rng.choice(64, size=int(flips[k]), replace=False)
        hashes[n - copies + k] = hashes[sources[k]] ^ np.uint64(sum(1 << int(b) for b in bits))
    return hashes[rng.permutation(n)]


def synthetic_questions(n: int, seed: int = 1) -> tuple[list[str], list[tuple[int, int]]]:
    """Questions of 6-24 words drawn from a 20K-word vocabulary with Zipf-like frequencies (a few
    words very common, like "the" and "of"), and 10% planted paraphrases of other questions:
    upper-cased with extra punctuation, one word replaced, one word inserted, or one typo."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = ["".join(rng.choice(letters, size=int(rng.integers(2, 10)))) for _ in range(20_000)]
    weights = 1.0 / np.arange(1, len(vocabulary) + 1) ** 1.1
    lengths = rng.integers(6, 25, size=n - n // 10)
    words = rng.choice(len(vocabulary), size=int(lengths.sum()), p=weights / weights.sum())
    questions = [" ".join(vocabulary[w] for w in chunk) + "?" for chunk in np.split(words, np.cumsum(lengths)[:-1])]
    planted = []
    for _ in range(n // 10):
        source = int(rng.integers(0, len(questions)))
        tokens = questions[source].split(" ")
        at, word = int(rng.integers(0, len(tokens))), vocabulary[int(rng.integers(0, len(vocabulary)))]
        edit = int(rng.integers(0, 4))
        if edit == 0:
            text = questions[source].upper().replace("?", " ?!")
        elif edit == 1:
            text = " ".join(tokens[:at] + [word] + tokens[at + 1 :])
        elif edit == 2:
            text = " ".join(tokens[:at] + [word] + tokens[at:])
        else:
            text = questions[source]
            cut = int(rng.integers(1, len(text) - 1))
            text = text[:cut] + text[cut + 1 :]
        planted.append((source, len(questions)))
        questions.append(text)
    return questions, planted


def shingle_set(text: str) -> set[bytes]:
    data = text.encode()
    return {data} if len(data) < SHINGLE else {data[i : i + SHINGLE] for i in range(len(data) - SHINGLE + 1)}


def true_jaccard(a: str, b: str) -> float:
    sa, sb = shingle_set(a), shingle_set(b)
    return len(sa & sb) / len(sa | sb)


# --------------------------------------------------------------------------------------
# Workers (each in its own process, so peak memory is its own)
# --------------------------------------------------------------------------------------


def _timer() -> Callable[[], dict[str, float]]:
    """``elapsed = _timer()``; ``elapsed()`` -> wall and CPU seconds (this process, all threads) since then.

    The ratios use CPU seconds: the machine may be shared, which inflates wall time, not CPU time.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    return lambda: {"seconds": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def image_mih(n: int, max_hamming: int, brute_n: int) -> dict:
    hashes = planted_hashes(n, max_hamming)[:brute_n]
    elapsed = _timer()
    pairs = [np.stack([i, j]) for i, j, _ in MultiIndexHash(hashes, max_hamming).self_pairs()]
    timing = elapsed()
    found = np.concatenate(pairs, axis=1) if pairs else np.zeros((2, 0), np.int64)
    return {**timing, "pairs": found.T.tolist()}


def image_brute(n: int, max_hamming: int, brute_n: int) -> dict:
    hashes = planted_hashes(n, max_hamming)[:brute_n]
    elapsed = _timer()
    found, block = [], 2048
    for a in range(0, len(hashes), block):
        rows = hashes[a : a + block]
        distance = hamming(rows[:, None], hashes[None, a:])  # upper triangle only: columns from a
        i, j = np.nonzero(distance <= max_hamming)
        keep = a + i < a + j
        found.append(np.stack([a + i[keep], a + j[keep]]))
    timing = elapsed()
    return {**timing, "pairs": np.concatenate(found, axis=1).T.tolist()}


def image_bktree(n: int, max_hamming: int, brute_n: int) -> dict:
    from imagededup.handlers.search.bktree import BKTree

    hashes = [int(h) for h in planted_hashes(n, max_hamming)[:brute_n]]
    elapsed = _timer()
    tree = BKTree(dict(enumerate(hashes)), lambda a, b: (a ^ b).bit_count())
    found = [[i, j] for i, query in enumerate(hashes) for j, _ in tree.search(query, max_hamming) if i < j]
    return {**elapsed(), "pairs": found}


def image_imagededup_cython(n: int, max_hamming: int, brute_n: int) -> dict:
    """imagededup's Unix default search: its Cython popcount scan of every hash per query.

    Called directly with the hash list built once (its ``BruteForceCython.search`` wrapper
    rebuilds the list from hex strings on every query, which would only make it slower).
    """
    import brute_force_cython_ext

    hashes = [int(h) for h in planted_hashes(n, max_hamming)[:brute_n]]
    names = [str(i).encode() for i in range(len(hashes))]
    elapsed = _timer()
    found = []
    for i, query in enumerate(hashes):
        matches = brute_force_cython_ext.query(names, hashes, query, max_hamming)  # [(name, distance)]
        found.extend([i, int(j)] for j, _ in matches if i < int(j))
    return {**elapsed(), "pairs": found}


def _start_peak() -> int:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs``) and return the current RSS."""
    Path("/proc/self/clear_refs").write_text("5")
    return psutil.Process().memory_info().rss


def _peak() -> int:
    """Peak RSS since ``_start_peak`` (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def text_ours(n: int, min_jaccard: float, verify: str) -> dict:
    """``exact``: ``NearDedup`` as the mix runs it; ``estimate``: its LSH candidates kept on the MinHash estimate."""
    questions, _ = synthetic_questions(n)
    texts = [normalize_text(q) for q in questions]
    baseline = _start_peak()
    elapsed = _timer()
    params = NearDedupParams(min_jaccard=min_jaccard, num_perm=NUM_PERM, bands=BANDS, rows=ROWS, shingle=SHINGLE)
    dedup = NearDedup(params)
    text_array = pa.array(texts, pa.large_string())
    minhash = dedup.hasher.signatures(text_array)
    if verify == "exact":
        text_key = np.array([xxhash.xxh3_64_intdigest(t.encode()) for t in texts], dtype=np.uint64)
        zeros = np.zeros(len(texts), np.uint64)
        ids = pa.array([f"q/{i:07d}" for i in range(len(texts))])
        sigs = Signatures(
            ids,
            np.zeros(len(texts), bool),
            zeros,
            zeros,
            zeros.astype(np.int64),
            text_key,
            np.arange(len(texts)),
            text_array,
            minhash,
        )
        pairs = [np.stack([i, j]) for i, j in dedup.pairs(sigs)]
    else:
        pairs = []
        for i, j in lsh_pairs(band_keys(minhash, BANDS, ROWS)):
            keep = estimated_jaccard(minhash, i, j) >= min_jaccard
            pairs.append(np.stack([i[keep], j[keep]]))
    timing = elapsed()
    found = np.concatenate(pairs, axis=1).T.tolist() if pairs else []
    return {**timing, "peak_bytes": _peak() - baseline, "pairs": found}


def text_datasketch(n: int, min_jaccard: float, verify: str) -> dict:
    """``estimate``: candidates kept on ``MinHash.jaccard``; ``exact``: on the shingle sets' Jaccard."""
    from datasketch import MinHash, MinHashLSH

    questions, _ = synthetic_questions(n)
    texts = [normalize_text(q) for q in questions]
    baseline = _start_peak()
    elapsed = _timer()
    shingles = [shingle_set(t) for t in texts]
    signatures = MinHash.bulk(shingles, num_perm=NUM_PERM)
    lsh = MinHashLSH(threshold=min_jaccard, num_perm=NUM_PERM, params=(BANDS, ROWS))
    with lsh.insertion_session() as session:
        for i, signature in enumerate(signatures):
            session.insert(i, signature, check_duplication=False)

    def similar(i: int, j: int) -> bool:
        if verify == "estimate":
            return signatures[i].jaccard(signatures[j]) >= min_jaccard
        return len(shingles[i] & shingles[j]) / len(shingles[i] | shingles[j]) >= min_jaccard

    found = [[i, j] for i, signature in enumerate(signatures) for j in lsh.query(signature) if j > i and similar(i, j)]
    timing = elapsed()
    return {**timing, "peak_bytes": _peak() - baseline, "pairs": found}


WORKERS = {
    "image_mih": image_mih,
    "image_brute": image_brute,
    "image_bktree": image_bktree,
    "image_imagededup_cython": image_imagededup_cython,
    "text_ours": text_ours,
    "text_datasketch": text_datasketch,
}


def run_worker(name: str, **kwargs: object) -> dict:
    """Run one worker in a fresh interpreter; returns its JSON result."""
    command = [sys.executable, __file__, "--worker", name, "--kwargs", json.dumps(kwargs)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"worker {name} failed:\n{result.stderr}")
    return json.loads(result.stdout)


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _seconds(result: dict) -> str:
    return f"{result['cpu']:8.3f} CPU s ({result['seconds']:.2f} s wall)"


def _image_report(name: str, result: dict, truth: set) -> None:
    found = {tuple(p) for p in result["pairs"]}
    recall = len(found & truth) / max(len(truth), 1)
    precision = len(found & truth) / max(len(found), 1)
    print(f"  {name:<24} {_seconds(result)}   {len(found):,} pairs   recall {recall:.4f}   precision {precision:.4f}")


def image_side(args: argparse.Namespace) -> None:
    brute_n = min(args.brute_n or args.n, args.n)
    bktree_n = min(args.bktree_n, brute_n)
    print("speed-ups are ratios of CPU seconds (a shared machine inflates wall time)")
    print(f"image side: {brute_n:,} 64-bit hashes (10% planted copies), Hamming <= {args.max_hamming}")
    common = {"n": args.n, "max_hamming": args.max_hamming}
    mih = run_worker("image_mih", **common, brute_n=brute_n)
    brute = run_worker("image_brute", **common, brute_n=brute_n)
    truth = {tuple(p) for p in brute["pairs"]}
    print(f"  {'brute force (numpy)':<24} {_seconds(brute)}   {len(truth):,} pairs (ground truth)")
    _image_report("multi-index hash", mih, truth)
    print(f"  speed-up vs brute force  {brute['cpu'] / mih['cpu']:8.1f} x   (goal >= 20x at recall 1.0)")

    print(f"  on the first {bktree_n:,} hashes:")
    mih_small = run_worker("image_mih", **common, brute_n=bktree_n)
    bktree = run_worker("image_bktree", **common, brute_n=bktree_n)
    truth_small = {tuple(p) for p in run_worker("image_brute", **common, brute_n=bktree_n)["pairs"]}
    cython = run_worker("image_imagededup_cython", **common, brute_n=bktree_n)
    _image_report("imagededup BK-tree", bktree, truth_small)
    _image_report("imagededup Cython scan", cython, truth_small)
    _image_report("multi-index hash", mih_small, truth_small)
    print(f"  speed-up vs BK-tree      {bktree['cpu'] / mih_small['cpu']:8.1f} x")
    print(f"  speed-up vs Cython scan  {cython['cpu'] / mih_small['cpu']:8.1f} x")


def _text_report(name: str, result: dict, texts: list[str], positives: list, min_jaccard: float) -> None:
    pairs = np.array(result["pairs"], dtype=np.int64).reshape(-1, 2)
    clusters = UnionFind(len(texts))
    clusters.union(pairs[:, 0], pairs[:, 1])
    roots = clusters.roots()
    recall = np.mean([roots[a] == roots[b] for a, b in positives])
    true_pairs = np.mean([true_jaccard(texts[a], texts[b]) >= min_jaccard for a, b in pairs.tolist()])
    dropped = len(texts) - len(np.unique(roots))
    print(
        f"  {name:<24} {_seconds(result)}   peak +{result['peak_bytes'] / 2**20:7.1f} MiB   "
        f"{dropped:,} rows dropped   planted pairs caught {recall:.4f}   "
        f"pairs with true J >= {min_jaccard}: {true_pairs:.4f}"
    )


def text_side(args: argparse.Namespace) -> None:
    print(
        f"\ntext side: {args.n:,} questions (10% planted paraphrases), MinHash {NUM_PERM} perms, "
        f"{BANDS}x{ROWS} bands, J >= {args.min_jaccard}"
    )
    questions, planted = synthetic_questions(args.n)
    texts = [normalize_text(q) for q in questions]
    positives = [(a, b) for a, b in planted if true_jaccard(texts[a], texts[b]) >= args.min_jaccard]
    print(f"  {len(positives):,} planted pairs have a true shingle Jaccard >= {args.min_jaccard}")
    for verify in ("exact", "estimate"):
        print(f"  candidates checked with the {verify} Jaccard:")
        kwargs = {"n": args.n, "min_jaccard": args.min_jaccard, "verify": verify}
        theirs = run_worker("text_datasketch", **kwargs)
        ours = run_worker("text_ours", **kwargs)
        _text_report("datasketch", theirs, texts, positives, args.min_jaccard)
        _text_report("slime numpy", ours, texts, positives, args.min_jaccard)
        print(f"  speed-up                 {theirs['cpu'] / ours['cpu']:8.1f} x   (goal >= 2x)")
        memory = ours["peak_bytes"] / max(theirs["peak_bytes"], 1)
        print(f"  memory ratio             {memory:8.2f}     (ours / datasketch, goal <= 1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--brute-n", type=int, default=None, help="hashes for the image comparison (default: --n)")
    parser.add_argument("--bktree-n", type=int, default=10_000, help="hashes for the BK-tree comparison (quadratic)")
    parser.add_argument("--max-hamming", type=int, default=6)
    parser.add_argument("--min-jaccard", type=float, default=0.8)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--kwargs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](**json.loads(args.kwargs))))
        return
    image_side(args)
    text_side(args)


if __name__ == "__main__":
    main()
