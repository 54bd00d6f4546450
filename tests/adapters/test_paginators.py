"""The paginators without HTTP: answers are fed in, and what comes out is what a read would deliver.

``LinkPaginator`` (Salesforce ``nextRecordsUrl``, HubSpot ``paging.next.after``) and HubSpot's
``SearchWindow`` (keyset search by ``hs_lastmodifieddate``, tie groups by ``hs_object_id``).
The sandbox suites check the same objects through the adapters over real HTTP; these check
the paging rules themselves on result sets too large or too odd to seed there.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.adapters._paging import PAGING_STUCK, LinkPaginator, PagingStuckError
from connector.adapters.base import Cursor, Page
from connector.adapters.errors import FatalError
from connector.crms.hubspot.paging import (
    MODIFIED,
    OBJECT_ID,
    SETTLED,
    SearchWindow,
    next_after,
    to_epoch_ms,
)

BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HUBSPOT_CAP = 10_000


def at(ms: int) -> datetime:
    return BASE + timedelta(milliseconds=ms)


# --- LinkPaginator ------------------------------------------------------------------------------


class Listing:
    """A CRM's pages by link: ``first`` is in hand, ``pages[link]`` is what fetching ``link`` answers."""

    def __init__(self, first: dict[str, Any], pages: dict[str, dict[str, Any]]) -> None:
        self.first = first
        self.pages = pages
        self.fetched: list[str] = []

    def fetch(self, link: str) -> dict[str, Any]:
        self.fetched.append(link)
        if len(self.fetched) > len(self.pages):
            raise AssertionError(f"fetched {len(self.fetched)} pages of a listing of {len(self.pages) + 1}: "
                                 f"following its links forever ({self.fetched[-3:]})")
        return self.pages[link]


def sf_answer(rows: list[str], link: str | None) -> dict[str, Any]:
    """A Salesforce query answer: ``done`` and ``nextRecordsUrl``."""
    answer: dict[str, Any] = {"totalSize": 99, "done": link is None, "records": [{"Id": r} for r in rows]}
    if link is not None:
        answer["nextRecordsUrl"] = link
    return answer


def sf_next(answer: dict[str, Any]) -> str | None:
    return None if answer["done"] else str(answer["nextRecordsUrl"])


def hs_answer(rows: list[str], after: str | None) -> dict[str, Any]:
    """A HubSpot list answer: ``paging.next.after`` (no ``paging`` on the last page)."""
    answer: dict[str, Any] = {"results": [{"id": r} for r in rows]}
    if after is not None:
        answer["paging"] = {"next": {"after": after, "link": f"https://api.hubapi.com/crm/v3/objects/contacts?after={after}"}}
    return answer


def hs_next(answer: dict[str, Any]) -> str | None:
    return next_after(answer, "list contacts")


def taken(pages: Iterator[dict[str, Any]], key: str) -> tuple[list[str], Exception | None]:
    """The ids of the pages a consumer got before the paginator stopped, and what stopped it (None: the end)."""
    ids: list[str] = []
    try:
        for answer in pages:
            ids.extend(str(row["Id" if key == "records" else "id"]) for row in answer[key])
    except (PagingStuckError, FatalError) as error:
        return ids, error
    return ids, None


def test_a_query_is_followed_link_by_link_and_each_page_is_fetched_only_when_taken() -> None:
    listing = Listing(sf_answer(["a", "b"], "/services/data/v59.0/query/01g-2"), {
        "/services/data/v59.0/query/01g-2": sf_answer(["c", "d"], "/services/data/v59.0/query/01g-4"),
        "/services/data/v59.0/query/01g-4": sf_answer(["e"], None),
    })
    pages = LinkPaginator(listing.first, listing.fetch, sf_next, what="query Lead", crm="salesforce")
    assert next(pages)["records"] == [{"Id": "a"}, {"Id": "b"}]
    assert listing.fetched == [], "no call before the consumer asks for the second page"
    ids, stopped = taken(pages, "records")
    assert (ids, stopped) == (["c", "d", "e"], None)
    assert listing.fetched == ["/services/data/v59.0/query/01g-2", "/services/data/v59.0/query/01g-4"]


def test_a_nextrecordsurl_that_repeats_fails_the_read_after_the_pages_before_it() -> None:
    listing = Listing(sf_answer(["a"], "/query/01g-200"), {
        "/query/01g-200": sf_answer(["b"], "/query/01g-400"),
        "/query/01g-400": sf_answer(["c"], "/query/01g-200"),  # back to a page already read
    })
    ids, stopped = taken(LinkPaginator(listing.first, listing.fetch, sf_next, what="query Lead", crm="salesforce"),
                         "records")
    assert ids == ["a", "b", "c"], "every page before the repeat reaches the consumer"
    assert isinstance(stopped, PagingStuckError) and stopped.code == PAGING_STUCK and stopped.crm == "salesforce"
    assert str(stopped).count("query Lead") >= 1 and "'/query/01g-200' repeats a page already read" in str(stopped)
    assert listing.fetched == ["/query/01g-200", "/query/01g-400"], "the repeated link is never fetched"


@pytest.mark.parametrize(("third", "reason"), [
    ("150", "does not advance past the previous one ('200')"),
    ("200", "repeats a page already read"),
    ("100", "repeats a page already read"),
])
def test_a_numeric_after_that_does_not_grow_fails_the_listing(third: str, reason: str) -> None:
    listing = Listing(hs_answer(["1", "2"], "100"), {"100": hs_answer(["3"], "200"), "200": hs_answer(["4"], third)})
    ids, stopped = taken(LinkPaginator(listing.first, listing.fetch, hs_next, what="list contacts", crm="hubspot",
                                       numeric=True), "results")
    assert ids == ["1", "2", "3", "4"]
    assert isinstance(stopped, PagingStuckError) and stopped.crm == "hubspot"
    assert f"list contacts: the next-page link '{third}' {reason}" in str(stopped)
    assert listing.fetched == ["100", "200"]


def test_opaque_afters_only_must_not_repeat() -> None:
    listing = Listing(hs_answer(["1"], "MjAw"), {"MjAw": hs_answer(["2"], "MTAw"), "MTAw": hs_answer(["3"], None)})
    ids, stopped = taken(LinkPaginator(listing.first, listing.fetch, hs_next, what="list owners", crm="hubspot",
                                       numeric=True), "results")
    assert (ids, stopped) == (["1", "2", "3"], None), "a non-numeric after has no order to check"


def test_a_next_page_without_an_after_is_an_error_not_the_end_of_the_listing() -> None:
    first = hs_answer(["1"], None)
    first["paging"] = {"next": {"link": "https://api.hubapi.com/crm/v3/objects/contacts"}}
    ids, stopped = taken(LinkPaginator(first, Listing(first, {}).fetch, hs_next, what="list contacts", crm="hubspot",
                                       numeric=True), "results")
    assert ids == ["1"]
    assert isinstance(stopped, FatalError) and stopped.code == "UNEXPECTED_ANSWER"
    assert "next page without an 'after'" in str(stopped)


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=12), numeric=st.booleans(),
       repeat_at=st.one_of(st.none(), st.integers(min_value=0, max_value=11)))
def test_every_page_of_a_chain_is_delivered_once_in_order_until_a_link_repeats(
    sizes: list[int], numeric: bool, repeat_at: int | None
) -> None:
    ids = iter(range(1000))
    rows = [[str(next(ids)) for _ in range(size)] for size in sizes]
    links = [str(100 * (k + 1)) if numeric else f"/query/01g-{k + 1}" for k in range(len(sizes))]
    # Page k points to links[k] (page k+1); the last has none, or, at repeat_at, points back to an earlier link.
    following: list[str | None] = [*links[: len(sizes) - 1], None]
    bad = repeat_at is not None and 0 < repeat_at < len(sizes)
    if bad:
        assert repeat_at is not None
        following[repeat_at] = links[repeat_at - 1]
    answers = [hs_answer(r, f) for r, f in zip(rows, following, strict=True)]
    listing = Listing(answers[0], {link: answers[k + 1] for k, link in enumerate(links[: len(sizes) - 1])})
    got, stopped = taken(LinkPaginator(listing.first, listing.fetch, hs_next, what="list contacts", crm="hubspot",
                                       numeric=numeric), "results")
    last = repeat_at if bad and repeat_at is not None else len(sizes) - 1
    assert got == [i for r in rows[: last + 1] for i in r], "each page once, in order, up to where the chain breaks"
    assert listing.fetched == links[:last], "one fetch per link followed, none past a refused one"
    assert isinstance(stopped, PagingStuckError) if bad else stopped is None


# --- SearchWindow -------------------------------------------------------------------------------


def record(record_id: int, ms: int) -> dict[str, Any]:
    return {"id": str(record_id), "properties": {MODIFIED: to_epoch_ms(at(ms)), "email": f"c{record_id}@example.com"},
            "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-01T00:00:00Z", "archived": False}


class SearchRefused(Exception):
    """What HubSpot answers (a 400) to a search paged past its 10,000th result."""


class Search:
    """HubSpot's search over ``rows``: filters, one ascending sort (ties in no promised order), ``after``, the cap.

    ``honest=False`` ignores the filters (a search that would never move on).
    """

    def __init__(self, rows: list[dict[str, Any]], *, seed: int = 0, cap: int = HUBSPOT_CAP, honest: bool = True) -> None:
        self.rows = rows
        self.rng = random.Random(seed)
        self.cap = cap
        self.honest = honest
        self.requests: list[dict[str, Any]] = []
        self.totals: list[int] = []

    @staticmethod
    def value(row: dict[str, Any], name: str) -> int:
        return int(row["id"]) if name == OBJECT_ID else int(row["properties"][name])

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(body)
        test = {"GTE": int.__ge__, "LTE": int.__le__, "GT": int.__gt__, "EQ": int.__eq__}
        filters = body["filterGroups"][0]["filters"] if self.honest else []
        matching = [r for r in self.rows
                    if all(test[f["operator"]](self.value(r, f["propertyName"]), int(f["value"])) for f in filters)]
        self.totals.append(len(matching))
        self.rng.shuffle(matching)
        matching.sort(key=lambda r: self.value(r, body["sorts"][0]["propertyName"]))  # stable: ties stay shuffled
        start = int(body.get("after") or 0)
        if start + body["limit"] > self.cap:
            raise SearchRefused(f"after {start} + limit {body['limit']} is past the {self.cap}-result cap")
        answer: dict[str, Any] = {"total": len(matching), "results": matching[start:start + body["limit"]]}
        if start + body["limit"] < len(matching):
            answer["paging"] = {"next": {"after": str(start + body["limit"])}}
        return answer


def window(cursor: Cursor, *, size: int, hwm: datetime = at(10**7), overlap: timedelta = timedelta(0)) -> SearchWindow:
    return SearchWindow("contacts", ["email"], cursor, hwm=hwm, overlap=overlap, size=size)


def drain(reading: SearchWindow, search: Search, *, limit: int = 10_000) -> list[Page]:
    """Drive the window as the adapter does: request, search, advance, until it is done."""
    pages: list[Page] = []
    for _ in range(limit):
        step = reading.advance(search(reading.request()))
        if step.page is not None:
            pages.append(step.page)
        if step.done:
            return pages
    raise AssertionError(f"the read did not end after {limit} searches")


def ids_of(pages: list[Page]) -> list[int]:
    return [int(r["id"]) for p in pages for r in p.records]


BEFORE_ALL = Cursor(at(-1), "0")


def test_the_first_search_asks_from_the_cursor_less_the_overlap_up_to_the_mark_and_never_uses_after() -> None:
    reading = window(Cursor(at(5_000), "42"), size=50, hwm=at(9_000), overlap=timedelta(seconds=2))
    assert reading.request() == {
        "filterGroups": [{"filters": [
            {"propertyName": MODIFIED, "operator": "GTE", "value": to_epoch_ms(at(3_000))},
            {"propertyName": MODIFIED, "operator": "LTE", "value": to_epoch_ms(at(9_000))},
        ]}],
        "sorts": [{"propertyName": MODIFIED, "direction": "ASCENDING"}],
        "properties": ["email"], "limit": 50,
    }


def test_a_tie_group_larger_than_a_page_is_read_by_id_then_the_window_moves_past_it() -> None:
    rows = ([record(i, 1) for i in range(1, 4)] + [record(i, 5) for i in range(100, 350)]
            + [record(i, 9) for i in range(900, 903)])
    search = Search(rows, seed=3)
    pages = drain(window(BEFORE_ALL, size=100, hwm=at(9)), search)
    assert sorted(ids_of(pages)) == sorted(int(r["id"]) for r in rows) and len(ids_of(pages)) == len(rows)
    tie = [i for i in ids_of(pages) if 100 <= i < 350]
    assert tie == sorted(tie), "the tie group comes in id order"
    filters = [[(f["propertyName"], f["operator"], f["value"]) for f in r["filterGroups"][0]["filters"]]
               for r in search.requests]
    assert [r["sorts"][0]["propertyName"] for r in search.requests] == \
        [MODIFIED, MODIFIED, OBJECT_ID, OBJECT_ID, OBJECT_ID, MODIFIED]
    assert filters[2] == [(MODIFIED, "EQ", to_epoch_ms(at(5)))]
    assert filters[3] == [(MODIFIED, "EQ", to_epoch_ms(at(5))), (OBJECT_ID, "GT", "199")]
    assert filters[4] == [(MODIFIED, "EQ", to_epoch_ms(at(5))), (OBJECT_ID, "GT", "299")]
    assert filters[5][0] == (MODIFIED, "GTE", to_epoch_ms(at(6))), "after the group: from the next millisecond"
    assert [p.cursor for p in pages] == [Cursor(at(1), "3"), Cursor(at(5), "199"), Cursor(at(5), "299"),
                                         Cursor(at(5), "349"), Cursor(at(9), "902")]
    assert all("after" not in r for r in search.requests)


def test_a_result_set_past_the_10000_cap_is_read_whole_by_keyset_searches() -> None:
    # 10,300 records, 40 per millisecond, and one tie group of 250 across the 10,000th result.
    ms = {i: i // 40 for i in range(1, 9_900)}
    ms |= {i: 400 for i in range(9_900, 10_150)}
    ms |= {i: 401 + (i - 10_150) // 40 for i in range(10_150, 10_301)}
    search = Search([record(i, t) for i, t in ms.items()], seed=11)
    pages = drain(window(BEFORE_ALL, size=100, hwm=at(404)), search)
    delivered = ids_of(pages)
    assert search.totals[0] > HUBSPOT_CAP, "the first search matches more than the cap lets a search page through"
    assert len(delivered) == len(ms) and set(delivered) == set(ms), "each record once"
    assert [ms[i] for i in delivered] == sorted(ms.values()), "in modification order"
    tie = [i for i in delivered if ms[i] == 400]
    assert tie == list(range(9_900, 10_150)), "the tie group across the cap, whole and in id order"
    assert all("after" not in r for r in search.requests)
    assert len(search.requests) == len(pages) + 1, "every search delivers, but the one that finds the tie group"
    cursors = [p.cursor for p in pages]
    assert cursors == sorted(c for c in cursors if c is not None) and cursors[-1] == Cursor(at(404), "10300")


def test_a_resume_inside_a_tie_group_reads_only_the_ids_after_the_checkpoint() -> None:
    rows = [record(i, 5) for i in range(1, 251)] + [record(i, 6) for i in range(300, 305)]
    search = Search(rows, seed=5)
    delivered = ids_of(drain(window(Cursor(at(5), "120"), size=100), search))
    assert delivered[:130] == list(range(121, 251)), "the rest of the group, in id order, nothing at or before 120"
    assert sorted(delivered[130:]) == list(range(300, 305))
    group = search.requests[1]["filterGroups"][0]["filters"]
    assert group == [{"propertyName": MODIFIED, "operator": "EQ", "value": to_epoch_ms(at(5))},
                     {"propertyName": OBJECT_ID, "operator": "GT", "value": "120"}]


def test_records_at_or_before_the_checkpoint_that_the_overlap_brings_back_are_not_handed_on() -> None:
    reading = window(Cursor(at(5), "7"), size=10, hwm=at(5), overlap=timedelta(milliseconds=3))
    step = reading.advance({"total": 2, "results": [record(3, 5), record(7, 5)]})
    assert step.page is None and step.done, "nothing new and nothing moved: no page"
    reading = window(Cursor(at(5), "7"), size=10, hwm=at(5), overlap=timedelta(milliseconds=3))
    step = reading.advance({"total": 3, "results": [record(3, 2), record(7, 5), record(8, 5)]})
    assert step.page is not None and [r["id"] for r in step.page.records] == ["3", "8"]
    assert step.page.cursor == Cursor(at(5), "8")


def test_a_finished_read_checkpoints_what_search_had_indexed_so_the_next_does_not_reread_the_overlap() -> None:
    # The last change (an echo of Relay's writes) was at 5 ms; this read runs much later (mark 9,000 ms).
    reading = window(Cursor(at(5), "7"), size=10, hwm=at(9_000), overlap=timedelta(milliseconds=3))
    step = reading.advance({"total": 1, "results": [record(7, 5)]})
    assert step.done and step.page is not None and step.page.records == []
    assert step.page.cursor == Cursor(at(8_997), SETTLED), "everything up to the mark less the overlap is settled"
    following = window(step.page.cursor, size=10, hwm=at(20_000), overlap=timedelta(milliseconds=3))
    assert following.request()["filterGroups"][0]["filters"][0]["value"] == to_epoch_ms(at(8_998)), \
        "the next read starts just past the settled point, not the overlap before it"
    # A read that ends within the overlap of the last change settles nothing: the overlap stays.
    close = window(Cursor(at(5), "7"), size=10, hwm=at(6), overlap=timedelta(milliseconds=3))
    step = close.advance({"total": 1, "results": [record(7, 5)]})
    assert step.page is None, "nothing new and nothing settled past the last change"


def test_after_a_settled_checkpoint_a_record_search_had_not_indexed_yet_is_still_read() -> None:
    # Settled at 8,997 ms (mark 9,000, overlap 3): a record changed at 8,999 may have been invisible
    # then; the next read, from 8,998, brings it.
    search = Search([record(1, 8_999), record(2, 9_500)], seed=1)
    pages = drain(window(Cursor(at(8_997), SETTLED), size=10, hwm=at(20_000),
                         overlap=timedelta(milliseconds=3)), search)
    assert ids_of(pages) == [1, 2]


def test_a_record_changed_during_the_read_never_moves_the_checkpoint_past_the_mark() -> None:
    reading = window(BEFORE_ALL, size=10, hwm=at(10))
    step = reading.advance({"total": 2, "results": [record(1, 4), record(2, 25)]})
    assert step.page is not None and [r["id"] for r in step.page.records] == ["1", "2"]
    assert step.page.cursor == Cursor(at(10), "")


def test_a_search_that_ignores_its_lower_bound_is_refused_instead_of_read_forever() -> None:
    rows = [record(i, i % 3) for i in range(1, 30)]
    search = Search(rows, honest=False)
    reading = window(BEFORE_ALL, size=10)
    first = reading.advance(search(reading.request()))
    assert first.page is not None and not first.done
    second = reading.advance(search(reading.request()))  # the same page again: the window would start where it did
    assert second.page is not None, "the page in hand still reaches the pipeline"
    with pytest.raises(PagingStuckError) as stuck:
        reading.request()
    assert stuck.value.code == PAGING_STUCK and stuck.value.crm == "hubspot"
    assert (f"search contacts: the next search would start at {MODIFIED} {at(1).isoformat()}, not past "
            f"{at(1).isoformat()} where the previous one started") in str(stuck.value)
    assert len(search.requests) == 2


def test_a_tie_group_whose_last_id_does_not_grow_is_refused() -> None:
    rows = [record(i, 5) for i in range(1, 40)]
    search = Search(rows)
    reading = window(BEFORE_ALL, size=10)
    assert reading.advance(search(reading.request())).page is None  # one timestamp fills the page: a tie group
    group = reading.advance(search(reading.request())).page
    assert group is not None and [r["id"] for r in group.records] == [str(i) for i in range(1, 11)]
    search.honest = False  # the next searches forget "hs_object_id > 10" and answer the first ids again
    reading.advance(search(reading.request()))
    with pytest.raises(PagingStuckError, match=rf"search contacts at {MODIFIED} .*: the next-page link '10' repeats"):
        reading.request()


def test_a_whole_page_without_a_readable_timestamp_is_refused_at_once() -> None:
    garbled = [{"id": str(i), "properties": {MODIFIED: "soon"}} for i in range(5)]
    reading = window(BEFORE_ALL, size=5)
    with pytest.raises(PagingStuckError, match="a whole page of records without a readable id"):
        reading.advance({"total": 50, "results": garbled})


def test_a_finished_window_asks_for_no_further_search() -> None:
    reading = window(BEFORE_ALL, size=5)
    assert reading.advance({"total": 1, "results": [record(1, 1)]}).done
    with pytest.raises(RuntimeError, match="the read is over"):
        reading.request()


@settings(max_examples=150, deadline=None)
@given(
    stamps=st.lists(st.integers(min_value=0, max_value=8), min_size=0, max_size=80),
    size=st.integers(min_value=1, max_value=7),
    seed=st.integers(min_value=0, max_value=10**6),
    start=st.one_of(st.none(), st.tuples(st.integers(min_value=0, max_value=8), st.integers(min_value=0, max_value=90))),
    top=st.integers(min_value=0, max_value=9),
)
def test_every_record_after_the_cursor_and_up_to_the_mark_is_delivered_once_in_order(
    stamps: list[int], size: int, seed: int, start: tuple[int, int] | None, top: int
) -> None:
    ms = {i + 1: t for i, t in enumerate(stamps)}
    cursor = BEFORE_ALL if start is None else Cursor(at(start[0]), str(start[1]))
    search = Search([record(i, t) for i, t in ms.items()], seed=seed, cap=2 * size)  # a search paged by after hits it
    pages = drain(window(cursor, size=size, hwm=at(top)), search)
    delivered = ids_of(pages)
    expected = {i for i, t in ms.items() if Cursor(at(t), str(i)) > cursor and t <= top}
    assert sorted(delivered) == sorted(expected), "each record after the cursor and up to the mark, once"
    assert [ms[i] for i in delivered] == sorted(ms[i] for i in delivered), "in modification order"
    cursors = [p.cursor for p in pages if p.cursor is not None]
    assert len(cursors) == len(pages) and cursors == sorted(cursors), "every page checkpoints, only forward"
    for k, page in enumerate(pages):  # a checkpoint covers only what was delivered: a resume from it skips nothing
        assert page.cursor is not None and page.cursor.last_modified <= at(top), "no checkpoint passes the mark"
        covered = {i for i in expected if Cursor(at(ms[i]), str(i)) <= page.cursor}
        done = set(ids_of(pages[: k + 1]))
        assert covered <= done, f"page {k}'s checkpoint {page.cursor} covers undelivered {sorted(covered - done)}"
    bodies = [repr(r) for r in search.requests]
    assert len(bodies) == len(set(bodies)), "no search is asked twice"
