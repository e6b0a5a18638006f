"""Which FAISS index holds a snapshot of passage vectors, chosen from the number of passages.

    passages < exact_max      IndexIDMap2(IndexFlatIP)              exact; 1,536 B of vector per passage
    passages >= exact_max     IndexIVFScalarQuantizer, 8-bit (SQ8)  approximate; 384 B of codes per passage
                              + hashtable direct map (by chunk id)  (+ 8 B id + the map: ≈ 0.45 KB in all)

An exact scan reads every vector for every query (1.5 GB per query at 1M passages: far over the latency
budget); an inverted file reads `nprobe / nlist` of them. IVF fits the store's update scheme better than
HNSW: it removes and adds vectors in place (a compaction costs one pass over the pending and stale vectors,
not a graph rebuild), and an outlet/date filter is a bitmap checked before a distance is computed (graph
walks lose recall under restrictive filters). 8-bit scalar quantization keeps vector recall@10 ≥ 0.95
against exact search (see `benchmarks/search.py`) at a quarter of the memory.

The type is chosen whenever a snapshot is written: by a full build, and by a compaction. A compaction keeps
the snapshot's type and updates it in place, unless the passages crossed the threshold (an IVF snapshot
turns exact again only below half of it, so an index near the threshold does not flip back and forth), or
an IVF snapshot holds 4x more or fewer passages than its lists were sized for: then it is rebuilt from its
own vectors (an IVF snapshot's decoded 8-bit vectors) plus the pending ones, and retrained.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

EXACT_MAX = 50_000  # default of the `vector_index_exact_max` setting
NPROBE = 32  # inverted lists scanned per query without a filter
TRAIN_PER_LIST = 40  # k-means training sample: this many vectors per inverted list
RETRAIN_FACTOR = 4  # rebuild an IVF snapshot holding this many times more (or fewer) vectors than it was sized for
FLAT = "flat"
IVF = "ivf"


def kind_for(n: int, exact_max: int = EXACT_MAX) -> str:
    """The index type for a snapshot of n vectors (exact_max <= 0: always exact)."""
    return IVF if 0 < exact_max <= n else FLAT


def nlist_for(n: int) -> int:
    """Inverted lists for n vectors: the power of two nearest to 2·sqrt(n) (1M → 2048, 100k → 512), ≥ 16."""
    return int(2 ** max(4, round(math.log2(max(1.0, 2 * math.sqrt(n))))))


def ivf_of(index: faiss.Index) -> faiss.IndexIVF | None:
    return faiss.try_extract_index_ivf(index)


def kind_of(index: faiss.Index) -> str:
    return FLAT if ivf_of(index) is None else IVF


def describe(index: faiss.Index) -> str:
    """"flat", or e.g. "ivf2048-sq8"."""
    ivf = ivf_of(index)
    return FLAT if ivf is None else f"ivf{ivf.nlist}-sq8"


def new_flat(dim: int) -> faiss.Index:
    """Exact inner-product search over unit vectors (= cosine), addressed by chunk id."""
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def build(ids: np.ndarray, vectors: np.ndarray, dim: int, exact_max: int = EXACT_MAX) -> faiss.Index:
    """A new index of `vectors` (unit length, shape (n, dim)) addressed by `ids`, of `kind_for(n)`."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
    if kind_for(len(ids), exact_max) == FLAT:
        index = new_flat(dim)
        if len(ids):
            index.add_with_ids(vectors, ids)
        return index
    nlist = nlist_for(len(ids))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT)
    quantizer.this.disown()
    index.own_fields = True
    index.cp.spherical = True  # centroids on the unit sphere, like the vectors
    sample = len(ids) if len(ids) <= TRAIN_PER_LIST * nlist else TRAIN_PER_LIST * nlist
    rng = np.random.default_rng(12345)  # deterministic: the same vectors give the same index
    index.train(vectors if sample == len(ids) else vectors[np.sort(rng.choice(len(ids), sample, replace=False))])
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct(chunk id) for re-scoring; remove_ids
    index.nprobe = NPROBE
    for start in range(0, len(ids), 100_000):
        index.add_with_ids(vectors[start : start + 100_000], ids[start : start + 100_000])
    return index


def all_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of every vector in the index, in id order (an IVF index's are decoded from 8 bits)."""
    ivf = ivf_of(index)
    if ivf is None:
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        vectors = index.index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
    else:
        invlists, parts_ids, parts_codes = ivf.invlists, [], []
        for lst in range(ivf.nlist):  # compaction only: a loop over lists, not over vectors
            size = invlists.list_size(lst)
            if size:
                parts_ids.append(faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy())
                parts_codes.append(faiss.rev_swig_ptr(invlists.get_codes(lst), size * invlists.code_size).copy())
        if not parts_ids:
            return np.zeros(0, np.int64), np.zeros((0, ivf.d), np.float32)
        ids = np.concatenate(parts_ids).astype(np.int64)
        codes = np.concatenate(parts_codes).reshape(len(ids), invlists.code_size)
        vectors = faiss.downcast_index(ivf).sq.decode(codes)
    order = np.argsort(ids, kind="stable")
    return ids[order], vectors[order]


def compact(index: faiss.Index, stale: np.ndarray, pending_ids: np.ndarray, pending: np.ndarray, dim: int,
            exact_max: int = EXACT_MAX) -> faiss.Index:
    """The snapshot after a compaction: without the `stale` ids, with the pending vectors (see the module doc)."""
    n = index.ntotal - len(stale) + len(pending_ids)
    current = kind_of(index)
    if current == IVF:
        sized_for = (ivf_of(index).nlist / 2) ** 2  # nlist_for: nlist ≈ 2·sqrt(n)
        keep = 0 < exact_max and n >= exact_max // 2 and sized_for / RETRAIN_FACTOR <= n <= sized_for * RETRAIN_FACTOR
    else:
        keep = kind_for(n, exact_max) == FLAT
    if keep:  # in place
        if len(stale):
            gone = np.ascontiguousarray(stale, dtype=np.int64)  # the hashtable direct map wants an array selector
            sel = faiss.IDSelectorArray(len(gone), faiss.swig_ptr(gone)) if current == IVF else faiss.IDSelectorBatch(gone)
            index.remove_ids(sel)
        if len(pending_ids):
            index.add_with_ids(np.ascontiguousarray(pending, dtype=np.float32).reshape(-1, dim),
                               np.ascontiguousarray(pending_ids, dtype=np.int64))
        return index
    ids, vectors = all_vectors(index)
    if len(stale):
        alive = ~np.isin(ids, stale)
        ids, vectors = ids[alive], vectors[alive]
    ids = np.concatenate([ids, np.asarray(pending_ids, dtype=np.int64)])
    vectors = np.concatenate([vectors, np.asarray(pending, dtype=np.float32).reshape(-1, dim)])
    return build(ids, vectors, dim, exact_max)


def search_params(index: faiss.Index, sel: faiss.IDSelector | None, share: float = 1.0) -> faiss.SearchParameters | None:
    """Per-call parameters: the selector, and for IVF an nprobe scaled by 1/sqrt(share), where share is the
    share of passages a filter allows. Scaling by 1/share would show a filtered search as many allowed
    vectors as an unfiltered one, at 1/share the cost (each vector of a probed list is checked against the
    filter); 1/sqrt(share) keeps filtered recall@10 ≥ 0.97 at 1M passages (benchmarks/search.py) for a
    third of the time."""
    ivf = ivf_of(index)
    if ivf is None:
        return faiss.SearchParameters(sel=sel) if sel is not None else None
    probes = min(ivf.nlist, math.ceil(ivf.nprobe / math.sqrt(max(share, 1e-12))))
    params = faiss.SearchParametersIVF(nprobe=max(1, probes))
    if sel is not None:
        params.sel = sel
    return params


def bytes_per_vector(index: faiss.Index) -> float:
    """Memory per stored vector: codes (or the fp32 vector), its id, the id map, the centroids' share."""
    n = max(1, index.ntotal)
    ivf = ivf_of(index)
    if ivf is None:
        return index.d * 4 + 8 + 16  # vector, id, IndexIDMap2's reverse map entry
    return ivf.invlists.code_size + 8 + 40 + ivf.nlist * ivf.d * 4 / n  # codes, id, hashtable entry, centroids
