"""The design study's streaming co-occurrence memory (benchmarks/lastfm_study.py) on tiny histories."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from benchmarks.lastfm import history_matrix
from benchmarks.lastfm_study import Scoring, cosine, exact_counts, prepare, stream_counts, top_m_rows

HISTORIES = [
    [(0, "complete"), (1, "complete"), (1, "like"), (2, "complete")],
    [(1, "complete"), (2, "complete"), (3, "complete")],
    [(0, "complete"), (2, "complete"), (4, "complete"), (0, "complete")],
    [(2, "complete"), (4, "complete")],
]
IDENTITY = np.arange(5)


def test_unbounded_stream_equals_the_exact_counts() -> None:
    C, n, stats = stream_counts(HISTORIES, IDENTITY, 5, history_cap=None, row_cap=None, batch=2)
    exact, n_exact = exact_counts(history_matrix(HISTORIES, 5))
    assert np.array_equal(C.toarray(), exact.toarray())
    assert np.array_equal(n, n_exact)
    assert stats.entries == exact.nnz
    assert C[2, 4] == 2 and C[0, 2] == 2 and C[3, 0] == 0


def test_history_cap_forgets_the_oldest_items() -> None:
    C, n, _ = stream_counts([[(0, "complete"), (1, "complete"), (2, "complete")]], IDENTITY, 5,
                            history_cap=1, row_cap=None)
    assert C[0, 1] == 1 and C[1, 2] == 1 and C[0, 2] == 0  # 0 left the history when 1 came
    assert n.tolist() == [1, 1, 1, 0, 0]


def test_row_cap_keeps_the_largest_counts_after_each_batch() -> None:
    histories = [[(0, "complete"), (1, "complete")]] * 3 + [[(0, "complete"), (2, "complete")]]
    C, _, stats = stream_counts(histories, IDENTITY, 5, history_cap=None, row_cap=1, batch=1)
    assert C[0, 1] == 3 and C[0, 2] == 0
    assert stats.max_row == 1
    # item-level mapping: artists of tracks (tracks 0, 1 -> artist 0; track 2 -> artist 1)
    C, n, _ = stream_counts(histories, np.array([0, 0, 1]), 2, history_cap=None, row_cap=None)
    assert C.toarray().tolist() == [[0, 1], [1, 0]] and n.tolist() == [4, 1]


def test_top_m_rows_and_cosine() -> None:
    C = sp.csr_matrix(np.array([[0, 3, 1, 2], [3, 0, 0, 0], [1, 0, 0, 5], [2, 0, 5, 0]], dtype=float))
    assert top_m_rows(C, 2).toarray()[0].tolist() == [0, 3, 0, 2]
    S = cosine(C, np.array([4.0, 3.0, 5.0, 5.0]))
    assert S[0, 1] == 3 / np.sqrt(12)
    P = prepare(S, np.array([4.0, 3.0, 5.0, 5.0]), Scoring(row_max=True, idf=0.5))
    assert np.isclose(P[2].toarray().max(), 5.0 ** -0.5)  # each row's largest entry = n(i)^-idf
