"""De-vig methods: reference vectors (odds-api.md §3.1), refusals, and properties over random books."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mmcore.errors import DevigError
from mmcore.odds.devig import (
    MAX_DECIMAL_ODDS,
    METHODS,
    Devigged,
    american_to_decimal,
    band,
    devig,
    implied_probabilities,
    worst_case,
)
from tests.refvectors import devig_vectors

TOL = 1e-6  # vectors are rounded to 6 dp (params to 9)
NEGATIVE = "3way_additive_goes_negative"
ADDITIVE_LIKE = ("additive", "margin_proportional_to_odds")
SOLVED = ("power", "shin", "odds_ratio", "logit_shift")


@pytest.fixture(scope="module")
def raw_vectors() -> dict[str, Any]:
    return devig_vectors()


@pytest.fixture(scope="module")
def vectors(raw_vectors: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw_vectors.items() if not k.startswith("_")}


# --- reference vectors ------------------------------------------------------------------------


def test_vector_file_covers_every_method(vectors: dict[str, Any]) -> None:
    assert len(vectors) >= 9
    for name, vec in vectors.items():
        assert set(vec["methods"]) == set(METHODS), name


@pytest.mark.parametrize("method", METHODS)
def test_vectors_reproduced(vectors: dict[str, Any], method: str) -> None:
    for name, vec in vectors.items():
        exp = vec["methods"][method]
        if name == NEGATIVE and method in ADDITIVE_LIKE:
            continue  # refused; see test_negative_additive_is_refused_with_raw_values
        got = devig(vec["decimal_odds"], method)  # type: ignore[arg-type]
        assert isinstance(got, Devigged)
        assert got.method == method
        assert got.probs == pytest.approx(exp["p"], abs=TOL), name
        assert set(got.params) == set(exp["params"]), name
        for key, value in exp["params"].items():
            assert got.params[key] == pytest.approx(value, abs=TOL), (name, key)
        assert got.booksum == pytest.approx(vec["booksum"], abs=TOL), name
        assert got.margin == pytest.approx(vec["margin"], abs=TOL), name
        assert math.fsum(got.probs) == pytest.approx(1.0, abs=1e-12), name
        assert all(0.0 <= p <= 1.0 for p in got.probs), name


@pytest.mark.parametrize("method", ADDITIVE_LIKE)
def test_negative_additive_is_refused_with_raw_values(vectors: dict[str, Any], method: str) -> None:
    vec = vectors[NEGATIVE]
    with pytest.raises(DevigError, match="outcome 3") as info:
        devig(vec["decimal_odds"], method)  # type: ignore[arg-type]
    assert "-0.01" in str(info.value)
    assert info.value.probs == pytest.approx(vec["methods"][method]["p"], abs=TOL)  # type: ignore[attr-defined]


def test_worst_case_vectors(vectors: dict[str, Any]) -> None:
    for name, vec in vectors.items():
        expected = vec["worst_case_per_side_min_of_mult_add_power_shin"]
        assert worst_case(vec["decimal_odds"]) == pytest.approx(expected, abs=TOL), name


def test_shin_matches_fixed_point_check(vectors: dict[str, Any]) -> None:
    for name, vec in vectors.items():
        check = vec["shin_fixed_point_check"]
        got = devig(vec["decimal_odds"], "shin")
        assert got.probs == pytest.approx(check["p"], abs=TOL), name
        assert got.params["z"] == pytest.approx(check["z"], abs=TOL), name


def test_american_to_decimal_vectors(raw_vectors: dict[str, Any]) -> None:
    table = raw_vectors["_american_to_decimal"]
    assert table
    for american, decimal in table.items():
        assert american_to_decimal(float(american)) == pytest.approx(decimal, abs=TOL), american


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_price_of_one_refused(method: str) -> None:
    with pytest.raises(DevigError, match=r"1\.0 for outcome 1.*settled or suspended"):
        devig([1.0, 20], method)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("odds", "match"),
    [
        ([2.0, math.nan], "outcome 2 is not finite"),
        ([math.inf, 2.0], "outcome 1 is not finite"),
        (["2.0", 2.0], "outcome 1 is a str"),
        ("2.0,2.0", "sequence"),
        (None, "sequence"),
        ([1.9], "at least 2 outcomes"),
        ([], "at least 2 outcomes"),
        ([0.5, 3.0], "must be > 1.0"),
        ([-110.0, 2.0], "must be > 1.0"),
        ([1.001, MAX_DECIMAL_ODDS * 2], "MAX_DECIMAL_ODDS"),
        ([True, 2.0], "outcome 1 is a bool"),
    ],
)
def test_bad_odds_refused(odds: Any, match: str) -> None:
    with pytest.raises(DevigError, match=match):
        implied_probabilities(odds)
    for method in METHODS:
        with pytest.raises(DevigError, match=match):
            devig(odds, method)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", METHODS)
def test_underround_refused_by_every_method(method: str) -> None:
    with pytest.raises(DevigError, match=r"booksum 0\.952381.*stale, mixed or arbitrage quotes"):
        devig([2.1, 2.1], method)  # type: ignore[arg-type]


def test_underround_refused_by_worst_case_and_band() -> None:
    for fn in (worst_case, band):
        with pytest.raises(DevigError, match="underround"):
            fn([2.1, 2.1])


@pytest.mark.parametrize("american", [50, -50, 99.9, -99.99, 0, math.nan, math.inf, "150"])
def test_bad_american_refused(american: Any) -> None:
    with pytest.raises(DevigError):
        american_to_decimal(american)


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(DevigError, match="unknown") as info:
        devig([1.9, 1.9], "basic")  # type: ignore[arg-type]
    assert all(m in str(info.value) for m in METHODS)


# --- small exact cases ------------------------------------------------------------------------


def test_methods_tuple_and_default() -> None:
    assert len(METHODS) == 7 and len(set(METHODS)) == 7
    assert devig([1.5, 2.74]).method == "shin"


def test_american_edges() -> None:
    assert american_to_decimal(100) == 2.0
    assert american_to_decimal(-100) == 2.0
    assert american_to_decimal(150) == 2.5
    assert american_to_decimal(-200) == 1.5


@pytest.mark.parametrize("odds", [[2.0, 2.0], [1.5, 3.0], [2.0, 4.0, 4.0]])
@pytest.mark.parametrize("method", METHODS)
def test_fair_book_returns_implied(odds: list[float], method: str) -> None:
    got = devig(odds, method)  # type: ignore[arg-type]
    assert got.probs == pytest.approx([1 / o for o in odds], abs=1e-12)
    assert got.margin == pytest.approx(0.0, abs=1e-12)


def test_result_is_frozen() -> None:
    got = devig([1.9, 1.9])
    with pytest.raises(AttributeError):
        got.probs = (0.4, 0.6)  # type: ignore[misc]


# --- properties -------------------------------------------------------------------------------


@st.composite
def books(draw: st.DrawFn, n: int | None = None) -> list[float]:
    """A valid book: 2 or 3 outcomes, odds in (1.01, 50], booksum >= 1 (up to rounding)."""
    n = n if n is not None else draw(st.sampled_from([2, 3]))
    weights = draw(st.lists(st.floats(0.02, 1.0), min_size=n, max_size=n))
    margin = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.3), st.floats(0.3, 1.5)))
    total = math.fsum(weights)
    odds = [total / (w * (1.0 + margin)) for w in weights]
    assume(all(1.01 < o <= 50.0 for o in odds))
    assume(math.fsum(1 / o for o in odds) >= 1.0 - 1e-12)
    return odds


def _succeeding(odds: list[float]) -> dict[str, Devigged]:
    out = {}
    for method in METHODS:
        try:
            out[method] = devig(odds, method)  # type: ignore[arg-type]
        except DevigError:
            assert method in ADDITIVE_LIKE
    return out


@given(books())
def test_every_method_gives_a_distribution(odds: list[float]) -> None:
    for method in METHODS:
        if method in ADDITIVE_LIKE:
            continue
        got = devig(odds, method)  # type: ignore[arg-type]
        assert len(got.probs) == len(odds)
        assert all(0.0 <= p <= 1.0 for p in got.probs), method
        assert math.fsum(got.probs) == pytest.approx(1.0, abs=1e-9), method


@given(books())
def test_fbl_methods_preserve_ordering(odds: list[float]) -> None:
    pi = implied_probabilities(odds)
    for method in ("power", "shin", "odds_ratio"):
        p = devig(odds, method).probs
        for i in range(len(pi)):
            for j in range(len(pi)):
                if pi[i] > pi[j]:
                    assert p[i] >= p[j] - 1e-12, method


@given(books())
def test_shin_gives_the_favourite_at_least_multiplicative(odds: list[float]) -> None:
    fav = max(range(len(odds)), key=lambda i: 1 / odds[i])
    assert devig(odds, "shin").probs[fav] >= devig(odds, "multiplicative").probs[fav] - 1e-12


@given(books(), st.data())
def test_shortening_a_price_never_lowers_its_probability(odds: list[float], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(odds) - 1))
    shorter = data.draw(st.floats(1.01, odds[i], exclude_max=True))
    assume(shorter < odds[i])
    moved = list(odds)
    moved[i] = shorter
    for method in ("shin", "power", "multiplicative", "odds_ratio"):
        before, after = devig(odds, method).probs[i], devig(moved, method).probs[i]
        assert after >= before - 1e-12, method


@given(books())
def test_band_contains_every_method(odds: list[float]) -> None:
    low, high = band(odds)
    for method, got in _succeeding(odds).items():
        for lo, p, hi in zip(low, got.probs, high, strict=True):
            assert lo <= p <= hi, method
    assert all(0.0 <= lo <= hi <= 1.0 for lo, hi in zip(low, high))


@given(books())
def test_worst_case_is_the_minimum_of_the_four(odds: list[float]) -> None:
    wc = worst_case(odds)
    for method in ("multiplicative", "power", "shin"):
        assert all(w <= p for w, p in zip(wc, devig(odds, method).probs))  # type: ignore[arg-type]
    pi = implied_probabilities(odds)
    additive_raw = [p - (math.fsum(pi) - 1) / len(pi) for p in pi]
    assert all(w <= a + 1e-15 for w, a in zip(wc, additive_raw))


@given(books())
def test_equivalent_methods_agree(odds: list[float]) -> None:
    results = _succeeding(odds)
    assert ("additive" in results) == ("margin_proportional_to_odds" in results)
    if "additive" in results:
        assert results["additive"].probs == pytest.approx(results["margin_proportional_to_odds"].probs, abs=1e-12)
    assert results["odds_ratio"].probs == pytest.approx(results["logit_shift"].probs, abs=1e-12)
    lc = results["logit_shift"].params
    assert lc["equivalent_odds_ratio"] == pytest.approx(results["odds_ratio"].params["c"], rel=1e-12)
    assert lc["c"] == pytest.approx(math.log(lc["equivalent_odds_ratio"]), abs=1e-12)


@given(books(n=2))
def test_two_way_shin_is_additive(odds: list[float]) -> None:
    assert devig(odds, "shin").probs == pytest.approx(devig(odds, "additive").probs, abs=1e-9)


@given(books())
def test_params_reproduce_probs_by_the_reference_formulas(odds: list[float]) -> None:
    pi = implied_probabilities(odds)
    total = math.fsum(pi)
    k = devig(odds, "power").params["k"]
    assert devig(odds, "power").probs == pytest.approx([p**k for p in pi], abs=1e-9)
    z = devig(odds, "shin").params["z"]
    assert 0.0 <= z < 1.0
    if 1 - z > 1e-3:  # the textbook form cancels catastrophically as z -> 1 (huge margins)
        shin = [(math.sqrt(z * z + 4 * (1 - z) * p * p / total) - z) / (2 * (1 - z)) for p in pi]
        assert devig(odds, "shin").probs == pytest.approx(shin, abs=1e-9)
    c = devig(odds, "odds_ratio").params["c"]
    assert devig(odds, "odds_ratio").probs == pytest.approx([p / (c + p - c * p) for p in pi], abs=1e-9)
    s = devig(odds, "logit_shift").params["c"]
    logistic = [1 / (1 + math.exp(-(math.log(p / (1 - p)) - s))) for p in pi]
    assert devig(odds, "logit_shift").probs == pytest.approx(logistic, abs=1e-9)
