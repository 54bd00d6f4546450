"""Record-linkage metrics against ground truth, in O(n) time and memory (no pair is enumerated).

Labels are index-aligned lists of ints: ``predicted[i]`` is the cluster a matcher put record ``i``
in, ``truth[i]`` the true person of record ``i``. Label values are arbitrary (only equality counts),
so relabelling a clustering changes no score.

- **Pairwise** precision, recall and F1 count record pairs. A predicted cluster is taken as what a
  merge does with it: every pair inside it counts as predicted-same (the transitive closure of
  the matcher's links; ``closure_labels`` turns matched pairs into such clusters). With
  ``a`` the predicted cluster sizes, ``b`` the true ones and ``n_ij`` the records that predicted
  cluster ``i`` and true person ``j`` share: true positives ``sum C(n_ij, 2)``, predicted pairs
  ``sum C(a_i, 2)``, true pairs ``sum C(b_j, 2)``.
- **B-cubed** precision and recall average over records: for record ``r``, the share of its
  predicted cluster that is its true person, and the share of its true person that is in its
  predicted cluster; as sums, ``(1/n) sum n_ij^2 / a_i`` and ``(1/n) sum n_ij^2 / b_j``.

Conventions for empty denominators: no predicted pair gives pairwise precision 1.0 (nothing
wrongly merged), no true pair gives pairwise recall 1.0 (nothing to find); an empty input scores
1.0 everywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LinkageScores", "closure_labels", "exact_email_labels", "score"]


@dataclass(frozen=True)
class LinkageScores:
    """How a clustering compares with the truth.

    Attributes:
        records: number of records.
        pairwise_precision: share of predicted-same pairs that are one true person.
        pairwise_recall: share of true same-person pairs that are predicted-same.
        pairwise_f1: their harmonic mean.
        bcubed_precision: mean over records of the true share of its predicted cluster.
        bcubed_recall: mean over records of the found share of its true person's records.
        bcubed_f1: their harmonic mean.
        predicted_pairs: pairs inside predicted clusters.
        true_pairs: pairs inside true clusters.
        true_positive_pairs: pairs inside both.
        clusters: number of predicted clusters.
        true_clusters: number of true persons.
        largest_cluster: size of the largest predicted cluster.
        largest_true_cluster: size of the largest true cluster.
    """

    records: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    predicted_pairs: int
    true_pairs: int
    true_positive_pairs: int
    clusters: int
    true_clusters: int
    largest_cluster: int
    largest_true_cluster: int

    def as_dict(self) -> dict[str, Any]:
        """The scores as a JSON-ready dict."""
        return asdict(self)


def _pairs(count: int) -> int:
    return count * (count - 1) // 2


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def score(predicted: Sequence[int], truth: Sequence[int]) -> LinkageScores:
    """Score a clustering against the truth (pairwise after transitive closure, and B-cubed).

    Args:
        predicted: the predicted cluster of each record.
        truth: the true person of each record, index-aligned with ``predicted``.

    Returns:
        The scores.

    Raises:
        ValueError: when the two lists differ in length.
    """
    n = len(predicted)
    if len(truth) != n:
        raise ValueError(f"score(): {n} predicted labels but {len(truth)} true labels; they must be index-aligned")
    if n == 0:
        return LinkageScores(0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0, 0, 0, 0, 0, 0, 0)
    predicted_sizes = Counter(predicted)
    true_sizes = Counter(truth)
    joint = Counter(zip(predicted, truth, strict=True))
    tp = 0
    bc_precision = 0.0
    bc_recall = 0.0
    for (p, t), count in joint.items():
        tp += _pairs(count)
        square = count * count
        bc_precision += square / predicted_sizes[p]
        bc_recall += square / true_sizes[t]
    predicted_pairs = sum(_pairs(c) for c in predicted_sizes.values())
    true_pairs = sum(_pairs(c) for c in true_sizes.values())
    precision = tp / predicted_pairs if predicted_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    bc_precision /= n
    bc_recall /= n
    return LinkageScores(
        records=n,
        pairwise_precision=precision,
        pairwise_recall=recall,
        pairwise_f1=_f1(precision, recall),
        bcubed_precision=bc_precision,
        bcubed_recall=bc_recall,
        bcubed_f1=_f1(bc_precision, bc_recall),
        predicted_pairs=predicted_pairs,
        true_pairs=true_pairs,
        true_positive_pairs=tp,
        clusters=len(predicted_sizes),
        true_clusters=len(true_sizes),
        largest_cluster=max(predicted_sizes.values()),
        largest_true_cluster=max(true_sizes.values()),
    )


def closure_labels(records: int, pairs: Iterable[tuple[int, int]]) -> list[int]:
    """Clusters of the transitive closure of matched pairs (union-find; what merging them does).

    Args:
        records: number of records; pairs name records ``0 .. records - 1``.
        pairs: matched record pairs.

    Returns:
        A label per record: the smallest record index of its connected component.

    Raises:
        ValueError: when a pair names a record outside ``0 .. records - 1``.
    """
    parent = list(range(records))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        if not (0 <= a < records and 0 <= b < records):
            raise ValueError(f"closure_labels(): pair ({a}, {b}) names a record outside 0..{records - 1}")
        ra, rb = root(a), root(b)
        if ra != rb:
            if ra < rb:
                parent[rb] = ra
            else:
                parent[ra] = rb
    return [root(i) for i in range(records)]


def exact_email_labels(rows: Iterable[Sequence[str]], columns: Sequence[str]) -> list[int]:
    """The baseline: records with the same lower-cased, stripped email are one cluster.

    What Relay's identity did before fuzzy matching: one exact key. A record without an email
    is a cluster of its own.

    Args:
        rows: the records (streamed is fine), each a sequence of values in ``columns`` order.
        columns: the column names; one must be ``email``.

    Returns:
        A cluster label per record, index-aligned with ``rows``.

    Raises:
        ValueError: when ``columns`` has no ``email`` column.
    """
    try:
        at = list(columns).index("email")
    except ValueError:
        raise ValueError(f"exact_email_labels(): no 'email' column among {list(columns)!r}") from None
    labels: list[int] = []
    by_email: dict[str, int] = {}
    for index, row in enumerate(rows):
        email = row[at].strip().lower() if at < len(row) else ""
        if email:
            labels.append(by_email.setdefault(email, index))
        else:
            labels.append(index)
    return labels
