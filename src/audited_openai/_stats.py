"""The statistics ``compare`` uses, from counts and histograms (no samples kept).

* :func:`wilson`: the Wilson score interval of a proportion (Newcombe 1998, method 3);
* :func:`newcombe`: the interval of a difference of two proportions from their Wilson
  intervals (Newcombe 1998, method 10);
* :func:`two_proportions`: the pooled two-proportion z test, with :func:`fisher` (the
  exact test, two-sided by summing the tables no more likely than the one seen) where
  an expected count is under 5 and the normal approximation does not hold;
* :func:`mann_whitney`: the Mann-Whitney U test of two distributions given as
  histograms (value -> count), midranks for ties, the normal approximation with the
  tie correction and a continuity correction;
* :func:`percentile`: the nearest-rank percentile of a sorted histogram.

Everything is exact arithmetic on counts, so memory is the number of distinct values,
never the number of rows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
SMALL = 5  # an expected count under this: Fisher's exact test, not the z test


class Test(NamedTuple):
    """A test's outcome: its name, the statistic and the two-sided p-value."""

    name: str
    statistic: float
    p: float


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``k`` successes in ``n`` (``(0, 1)`` when n is 0)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return (max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator))


def newcombe(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """The interval of p1 - p2 from the two Wilson intervals (Newcombe's hybrid score)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    return (
        d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


def two_proportions(k1: int, n1: int, k2: int, n2: int) -> Test:
    """Whether two proportions differ: pooled z, or Fisher's exact test for small counts."""
    pooled = (k1 + k2) / (n1 + n2)
    expected = min(n * share for n in (n1, n2) for share in (pooled, 1 - pooled))
    if expected < SMALL:
        return Test("Fisher's exact test", math.nan, fisher(k1, n1, k2, n2))
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (k1 / n1 - k2 / n2) / se
    return Test("two-proportion z test", z, min(1.0, 2 * normal_sf(abs(z))))


def fisher(k1: int, n1: int, k2: int, n2: int) -> float:
    """Fisher's exact test of the 2x2 table (k1, n1 - k1; k2, n2 - k2), two-sided.

    The p-value sums the hypergeometric probabilities of every table with the same
    margins that is no more likely than the one observed (as R and SciPy do).
    """
    total, successes = n1 + n2, k1 + k2
    low, high = max(0, successes - n2), min(successes, n1)

    def log_p(x: int) -> float:
        return _log_choose(n1, x) + _log_choose(n2, successes - x) - _log_choose(total, successes)

    observed = log_p(k1)
    tolerance = 1e-7  # relative: tables as likely as the observed one, up to rounding
    p = sum(math.exp(lp) for x in range(low, high + 1) if (lp := log_p(x)) <= observed + tolerance)
    return min(1.0, p)


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def mann_whitney(a: Mapping[float, int], b: Mapping[float, int]) -> Test | None:
    """The Mann-Whitney U test of two histograms; ``None`` if either is empty.

    The statistic is U of ``a`` (how often a value of ``a`` exceeds one of ``b``, ties
    counting a half); the p-value is two-sided, from the normal approximation with the
    tie correction and a continuity correction of 0.5.
    """
    n1, n2 = sum(a.values()), sum(b.values())
    if not n1 or not n2:
        return None
    rank_sum, ties, below = 0.0, 0.0, 0
    for value in sorted(set(a) | set(b)):
        in_a, in_b = a.get(value, 0), b.get(value, 0)
        t = in_a + in_b
        midrank = below + (t + 1) / 2
        rank_sum += in_a * midrank
        ties += t**3 - t
        below += t
    n = n1 + n2
    u = rank_sum - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:  # every value the same: no difference can show
        return Test("Mann-Whitney U", u, 1.0)
    z = max(0.0, abs(u - mean) - 0.5) / math.sqrt(variance)
    return Test("Mann-Whitney U", u, min(1.0, 2 * normal_sf(z)))


def percentile(counts: Iterable[tuple[float, int]], percent: float) -> float | None:
    """The nearest-rank percentile of a histogram given as sorted (value, count) pairs."""
    pairs = list(counts)
    total = sum(n for _, n in pairs)
    if not total:
        return None
    rank = max(1, math.ceil(percent * total / 100))  # the smallest rank covering it
    seen = 0
    for value, n in pairs:
        seen += n
        if seen >= rank:
            return value
    return pairs[-1][0]


def mean(counts: Mapping[float, int]) -> float | None:
    """The mean of a histogram (``None`` if empty)."""
    total = sum(counts.values())
    return sum(value * n for value, n in counts.items()) / total if total else None
