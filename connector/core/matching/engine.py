"""The person matcher: normalise, block, score each candidate pair, cluster without chaining.

Pure: records and rules in, clusters and scored pairs out. Built to run a million records on
two cores in about a minute, so everything past normalisation works on numpy arrays of
interned ids:

1. **Features.** One pass over the records interns each normalised value
   (:mod:`~connector.core.matching.normalize`) to an int id per column.
2. **Blocking.** Each kind of key (``BlockKind``) groups the records that share it; every
   pair inside a group of at most ``block_limits[kind]`` records is a candidate. A larger
   group is a value too common to tell people apart (a switchboard phone, "John Smith"):
   those records meet through their other keys or not at all. Candidates grow about
   linearly with the records (``MatchResult.candidate_pairs``).
3. **Scoring.** Each candidate pair gets points per agreement or disagreement
   (``MatchWeights``), vectorised; fuzzy comparisons through ``rapidfuzz`` on the pairs
   that need them. Name weights fall with how common the name is in the data. The
   reasons of a pair are its non-zero components (:meth:`MatchResult.reasons`).
4. **Clustering.** Pairs at ``match_at`` or more join records, strongest first, only while
   the cluster stays consistent: every member scores at least ``cluster_floor`` with every
   member of the other side, none of them conflicts (two different first names), and the
   two sides' pairs average at least ``cluster_average``. A shared phone, domain or name alone
   never joins two people, and a chain of neighbours never becomes one cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jellyfish
import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA
from rapidfuzz.process import cpdist

from connector.core.matching.normalize import (
    company_key,
    email_parts,
    first_name_groups,
    is_disposable_domain,
    is_free_mail_domain,
    is_placeholder,
    is_role_local,
    last_name_key,
    local_fits_name,
    phone_key,
    registered_domain,
    split_first,
    title_key,
    website_domain,
)
from connector.core.rules import MatchingRules

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

PERSON_COLUMNS: tuple[str, ...] = ("id", "first_name", "last_name", "email", "phone", "company", "website",
                                   "title", "country", "state", "source")
"""The canonical person fields the matcher reads (``id`` names the record; the rest may be absent)."""

COMPONENTS: tuple[str, ...] = ("email", "first_name", "last_name", "middle", "phone", "company", "domain",
                               "country", "title")
"""The parts of a pair's score, in the order reasons are given."""

_NONE = -1
_PAIR_CHUNK = 1 << 20


class _Interner:
    """Strings to dense int ids (``""`` and ``None`` are ``-1``)."""

    __slots__ = ("ids", "values")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.values: list[str] = []

    def __call__(self, value: str | None) -> int:
        if not value:
            return _NONE
        found = self.ids.get(value)
        if found is None:
            found = self.ids[value] = len(self.values)
            self.values.append(value)
        return found


@dataclass
class _Features:
    """The normalised records as columns of ids (``-1``: absent)."""

    n: int
    ids: list[str]
    email: IntArray
    local: IntArray
    domain: IntArray
    work_domain: BoolArray
    role: BoolArray
    phone: IntArray
    first: IntArray
    middle: IntArray
    last: IntArray
    company: IntArray
    site: IntArray
    country: IntArray
    title: IntArray
    names: _Interner
    locals_: _Interner
    companies: _Interner
    titles: _Interner
    fits_name: BoolArray

    @property
    def local_letters(self) -> list[str]:
        """Each interned email local part with only its letters (``john.smith2`` -> ``johnsmith``)."""
        cached: list[str] | None = getattr(self, "_local_letters", None)
        if cached is None:
            cached = ["".join(c for c in v if c.isalpha()) for v in self.locals_.values]
            self._local_letters = cached
        return cached





def _clean(value: object) -> str | None:
    """A field's text, stripped; ``None`` when empty or a placeholder (``is_placeholder``)."""
    if is_placeholder(value):
        return None
    return (value if isinstance(value, str) else str(value)).strip()


_RAW_FIELDS = ("email", "first_name", "last_name", "phone", "company", "website", "country", "title")


def _column(raw: list[object], interner: _Interner, key: Callable[[str], str | None]) -> list[int]:
    """Interned ids of ``key(value)`` for a column, computed once per distinct raw value."""
    ids: dict[object, int] = {}
    for value in set(raw):
        text = _clean(value)
        ids[value] = interner(key(text)) if text is not None else _NONE
    return [ids[value] for value in raw]


def _features(records: Iterable[Mapping[str, Any]], progress: Callable[[int], None] | None) -> _Features:
    # Read the records once into raw columns, then normalise each distinct value once
    # (values repeat: a million records hold far fewer companies, domains or names).
    raw: dict[str, list[object]] = {k: [] for k in _RAW_FIELDS}
    columns = [(k, raw[k].append) for k in _RAW_FIELDS]
    ids: list[str] = []
    for count, record in enumerate(records, 1):
        get = record.get
        record_id = get("id")
        ids.append(str(record_id) if record_id is not None and record_id != "" else f"row:{count}")
        for k, append in columns:
            value = get(k)
            # any value reads as text (a number, a list from a JSON export): never a crash of the whole run
            append(value if value is None or isinstance(value, str) else str(value))
        if progress is not None and count % 10_000 == 0:
            progress(10_000)
    n = len(ids)
    if progress is not None and n % 10_000:
        progress(n % 10_000)

    names, locals_, companies = _Interner(), _Interner(), _Interner()
    emails, domains, phones, sites, countries = _Interner(), _Interner(), _Interner(), _Interner(), _Interner()
    titles = _Interner()
    cols: dict[str, list[int]] = {}
    firsts: dict[object, tuple[int, int]] = {}
    for value in set(raw["first_name"]):
        first, middle = split_first(_clean(value))
        firsts[value] = (names(first), names(middle[:1]))
    cols["first"] = [firsts[v][0] for v in raw["first_name"]]
    cols["middle"] = [firsts[v][1] for v in raw["first_name"]]
    cols["last"] = _column(raw["last_name"], names, last_name_key)
    cols["phone"] = _column(raw["phone"], phones, phone_key)
    cols["company"] = _column(raw["company"], companies, company_key)
    cols["site"] = _column(raw["website"], sites, website_domain)
    cols["country"] = _column(raw["country"], countries, _country)
    cols["title"] = _column(raw["title"], titles, title_key)
    # email: the key, its local part and registrable domain, free or work, shared mailbox
    found: dict[object, tuple[int, int, int, bool, bool]] = {}
    for value in set(raw["email"]):
        parts = email_parts(_clean(value))
        if parts is None:
            found[value] = (_NONE, _NONE, _NONE, False, False)
            continue
        local, domain = parts
        found[value] = (emails(f"{local}@{domain}"), locals_(local), domains(registered_domain(domain) or domain),
                        not (is_free_mail_domain(domain) or is_disposable_domain(domain)), is_role_local(local))
    per_record = [found[v] for v in raw["email"]]
    raw.clear()
    cols["email"] = [e[0] for e in per_record]
    cols["local"] = [e[1] for e in per_record]
    cols["domain"] = [e[2] for e in per_record]
    work = [e[3] for e in per_record]
    role = [e[4] for e in per_record]
    del per_record
    values, local_values = names.values, locals_.values
    fits = [local >= 0 and local_fits_name(local_values[local], values[first] if first >= 0 else "",
                                           values[last] if last >= 0 else "")
            for local, first, last in zip(cols["local"], cols["first"], cols["last"], strict=True)]
    arrays = {k: np.asarray(v, dtype=np.int64) for k, v in cols.items()}
    return _Features(
        n=n, ids=ids, work_domain=np.asarray(work, dtype=np.bool_), role=np.asarray(role, dtype=np.bool_),
        names=names, locals_=locals_, companies=companies, titles=titles, fits_name=np.asarray(fits, dtype=np.bool_),
        **arrays,
    )


def _country(text: str) -> str | None:
    """The ISO code of a country as typed; ``None`` when it cannot be read ("République française"
    would otherwise disagree with "FR")."""
    from connector.core._geo import country_code

    return country_code(text)


# --- blocking ------------------------------------------------------------------------------------


def _block_pairs(keys: IntArray, rows: IntArray, limit: int) -> tuple[IntArray, IntArray]:
    """All pairs of rows sharing a key, in groups of 2..``limit`` rows (larger groups dropped)."""
    if len(keys) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.argsort(keys, kind="stable")
    keys, rows = keys[order], rows[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    sizes = np.diff(np.concatenate((starts, [len(keys)])))
    left: list[IntArray] = []
    right: list[IntArray] = []
    for size in np.unique(sizes):
        if size < 2 or size > limit:
            continue
        first = starts[sizes == size]
        a, b = np.triu_indices(int(size), k=1)
        left.append(rows[(first[:, None] + a[None, :]).ravel()])
        right.append(rows[(first[:, None] + b[None, :]).ravel()])
    if not left:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(left), np.concatenate(right)


def _combine(a: IntArray, b: IntArray, width: int) -> IntArray:
    return a * (width + 1) + b


def _block_keys(f: _Features) -> dict[str, tuple[IntArray, IntArray]]:
    """Each blocking kind's (key, row) arrays, rows without the key left out."""
    rows = np.arange(f.n, dtype=np.int64)
    width = max(len(f.names.values), len(f.companies.values), len(f.locals_.values), 1)
    kinds: dict[str, tuple[IntArray, IntArray]] = {}

    def add(kind: str, keys: IntArray, mask: BoolArray) -> None:
        kinds[kind] = (keys[mask], rows[mask])

    add("email", f.email, f.email >= 0)
    add("phone", f.phone, f.phone >= 0)
    # first names by nickname group: a record gets a key per group its first name belongs to
    group_ids: dict[str, int] = {}
    groups_of_name: list[tuple[int, ...]] = [
        tuple(sorted(group_ids.setdefault(g, len(group_ids)) for g in first_name_groups(name)))
        for name in f.names.values
    ]
    name_rows, name_keys, swap_rows, swap_keys = [], [], [], []
    for row, first, last in zip(rows.tolist(), f.first.tolist(), f.last.tolist(), strict=True):
        if first < 0 or last < 0:
            continue
        for g in groups_of_name[first]:
            name_rows.append(row)
            name_keys.append(last * (len(group_ids) + 1) + g)
        for g in groups_of_name[last]:  # swapped first and last name
            swap_rows.append(row)
            swap_keys.append(first * (len(group_ids) + 1) + g)
    # one kind for both orders, so that a record's swapped key meets another's plain one
    kinds["name"] = (np.asarray(name_keys + swap_keys, np.int64), np.asarray(name_rows + swap_rows, np.int64))
    first_group = np.asarray([groups_of_name[i][0] if i >= 0 and groups_of_name[i] else -1
                              for i in f.first.tolist()], np.int64)
    add("company_last", _combine(f.company, f.last, width), (f.company >= 0) & (f.last >= 0))
    add("company_first", _combine(f.company, first_group, max(width, len(group_ids))),
        (f.company >= 0) & (first_group >= 0))
    add("domain_last", _combine(f.domain, f.last, width), f.work_domain & (f.last >= 0))
    local_ok = np.asarray([len(v) >= 5 for v in f.locals_.values] + [False], np.bool_)
    add("email_local", f.local, (f.local >= 0) & local_ok[f.local] & ~f.role)
    sounds: dict[str, int] = {}
    sound = np.asarray([sounds.setdefault(jellyfish.metaphone(v) if v else "", len(sounds)) for v in f.names.values]
                       + [-1], np.int64)
    initial = np.asarray([ord(v[0]) if v else -1 for v in f.names.values] + [-1], np.int64)
    add("sound_last", sound[f.last] * 256 + initial[f.first], (f.last >= 0) & (f.first >= 0))
    return kinds


def _candidates(f: _Features, rules: MatchingRules) -> IntArray:
    """Unique candidate pairs as codes ``i * n + j`` (``i < j``), sorted."""
    codes: list[IntArray] = []
    for kind, (keys, rows) in _block_keys(f).items():
        left, right = _block_pairs(keys, rows, rules.limit(kind))
        if len(left):
            lo, hi = np.minimum(left, right), np.maximum(left, right)
            keep = lo != hi
            codes.append(lo[keep] * f.n + hi[keep])
    if not codes:
        return np.empty(0, np.int64)
    return np.unique(np.concatenate(codes))


# --- scoring -------------------------------------------------------------------------------------


FREQUENCY_BASE = 10_000
"""Name frequencies are counted per this many records, so a weight means the same at any size."""


def _frequency_weight(counts: IntArray, records: int, top: float, bottom: float) -> FloatArray:
    """Weight of agreeing on a name seen ``counts`` times in ``records``: ``top`` for a rare one, down to ``bottom``.

    Half a point less for each doubling of its share of the records past one in
    ``FREQUENCY_BASE`` (the log-likelihood ratio of an agreement falls with the chance
    that two different people share the name). Fewer records than that are counted as
    that many: a name seen 3 times in a file of 7 says little about how common it is.
    """
    share = np.maximum(counts, 1) * (FREQUENCY_BASE / max(records, FREQUENCY_BASE))
    return np.clip(top - 0.5 * np.log2(np.maximum(share, 1.0)), bottom, top)


def _typo_of_nickname(name: str, groups: frozenset[str]) -> bool:
    """True when ``name`` is one swapped or replaced letter away from a name of ``groups``."""
    return len(name) >= 4 and any(len(other) == len(name) and OSA.distance(name, other, score_cutoff=1) <= 1
                                  for other in groups)


def _short_form(a: str, b: str) -> bool:
    """True when one name starts the other and is at least 3 letters and 2 letters shorter.

    Barb/Barbara, Sam/Samantha, Chris/Christopher; not Eric/Erica or Paul/Paula, where a
    letter more makes another person's name.
    """
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    return len(short) >= 3 and len(long_) - len(short) >= 2 and long_.startswith(short)


@dataclass
class _Scorer:
    f: _Features
    rules: MatchingRules
    first_weight: FloatArray = field(init=False)
    last_weight: FloatArray = field(init=False)
    phone_people: IntArray = field(init=False)
    company_weight: FloatArray = field(init=False)
    decisions: _Decisions | None = field(init=False, default=None)
    first_is_name: BoolArray = field(init=False)
    groups: list[frozenset[str]] = field(init=False)

    def __post_init__(self) -> None:
        f, w = self.f, self.rules.weights
        size = len(f.names.values) + 1
        first_counts = np.bincount(f.first[f.first >= 0], minlength=size)
        last_counts = np.bincount(f.last[f.last >= 0], minlength=size)
        self.first_weight = _frequency_weight(first_counts, f.n, w.first_exact_max, w.first_exact_min)
        # a spelling several records use is a name of its own, not a typo (Marc / Mark)
        self.first_is_name = first_counts >= max(3, f.n // 50_000)
        self.last_weight = _frequency_weight(last_counts, f.n, w.last_exact_max, w.last_exact_min)
        company_counts = np.bincount(f.company[f.company >= 0], minlength=len(f.companies.values) + 1)
        self.company_weight = _frequency_weight(company_counts, f.n, w.company_exact_max, w.company_exact_min)
        self.groups = [first_name_groups(v) for v in f.names.values]
        # how many different last names a phone reaches: more than one and it is a switchboard,
        # weak evidence (a family line shares one last name; the first names tell those apart)
        mask = (f.phone >= 0) & (f.last >= 0)
        people = f.last[mask]
        pairs = np.unique(np.stack((f.phone[mask], people), axis=1), axis=0) if mask.any() else np.empty((0, 2),
                                                                                                         np.int64)
        phones = int(f.phone.max(initial=-1)) + 2
        self.phone_people = (np.bincount(pairs[:, 0], minlength=phones) if len(pairs)
                             else np.zeros(phones, np.int64))

    def score(self, i: IntArray, j: IntArray) -> tuple[FloatArray, dict[str, FloatArray], BoolArray]:
        """Scores of the pairs ``(i[k], j[k])``, their components, and which pairs conflict."""
        f, w = self.f, self.rules.weights
        n = len(i)
        comps = {name: np.zeros(n, np.float64) for name in COMPONENTS}
        # names (with swapped first/last)
        fi, fj, li, lj = f.first[i], f.first[j], f.last[i], f.last[j]
        first_c, first_conflict = self._first(fi, fj)
        last_c = self._last(li, lj)
        # a first name that stands in the other record's last-name field (one of them swapped
        # and the other's last name missing) is no conflict
        misplaced = first_conflict & (((fi >= 0) & (fi == lj)) | ((fj >= 0) & (fj == li)))
        first_c[misplaced] = 0.0
        first_conflict &= ~misplaced
        # first and last name swapped on one record: compare them crosswise where straight
        # they disagree (each side may still be a nickname or carry a typo)
        crosswise = np.flatnonzero((fi >= 0) & (li >= 0) & (fj >= 0) & (lj >= 0) & (fi != li)
                                   & ((first_c < 0) | (last_c < 0)))
        if len(crosswise):
            a, b = i[crosswise], j[crosswise]
            swap_first, swap_conflict = self._first(f.first[a], f.last[b])
            swap_last, _ = self._first(f.last[a], f.first[b])  # a first name in the last-name field
            better = (swap_first > 0) & (swap_last > 0)
            keep = crosswise[better]
            first_c[keep] = swap_first[better] - 0.5
            last_c[keep] = swap_last[better] - 0.5
            first_conflict[keep] = swap_conflict[better]
        comps["first_name"], comps["last_name"] = first_c, last_c
        mi, mj = f.middle[i], f.middle[j]
        comps["middle"] = np.where((mi >= 0) & (mj >= 0) & (mi != mj), w.middle_conflict, 0.0)

        # email
        ei, ej = f.email[i], f.email[j]
        both = (ei >= 0) & (ej >= 0)
        same = both & (ei == ej)
        either_role = f.role[i] | f.role[j]
        email = np.where(same, np.where(either_role, w.email_role, w.email_exact), 0.0)
        differ = both & ~same
        same_domain = differ & (f.domain[i] == f.domain[j])
        work_pair = f.work_domain[i] & f.work_domain[j]
        # a typo in the local part: its letters one edit apart (two for long ones). Locals whose
        # letters are equal differ by separators or digits, the convention that tells namesakes
        # at one company apart (john.smith / john_smith / john.smith2): two mailboxes.
        close = np.zeros(n, np.bool_)
        idx = np.flatnonzero(same_domain)
        if len(idx):
            letters = f.local_letters
            left = [letters[v] for v in f.local[i[idx]].tolist()]
            right = [letters[v] for v in f.local[j[idx]].tolist()]
            dist = cpdist(left, right, scorer=OSA.distance, workers=1)
            length_a = np.asarray([len(s) for s in left])
            same_length = length_a == np.asarray([len(s) for s in right])
            # a slip of the finger keeps the length (a letter swapped or replaced); a letter
            # more or less is how a company's convention tells two namesakes apart (jsmith, jsmitha)
            close[idx] = same_length & (dist >= 1) & (dist <= np.where(length_a >= 10, 2, 1)) & (length_a >= 5)
        names_agree = (first_c > 0) & (last_c > 0)
        # each address built from its own record's different name: two people, not a typo
        close &= ~(f.fits_name[i] & f.fits_name[j] & ((fi != fj) | (li != lj)))
        colleague = same_domain & work_pair & ~close & ~either_role
        email = np.where(close & names_agree, w.email_typo, email)
        email = np.where(colleague, w.email_colleague, email)
        email = np.where(differ & ~same_domain & work_pair, w.email_other, email)
        email = np.where(same_domain & ~work_pair & ~close, w.email_other, email)
        comps["email"] = email
        # the same personal address and first name with another last name: a name changed (marriage)
        # or mistyped past one letter, rather than another person, who would have another first name
        renamed = same & ~either_role & (first_c > 0) & (last_c < 0)
        comps["last_name"] = np.where(renamed, last_c / 2, last_c)

        # phone: a line more than one person answers is weak evidence
        pi, pj = f.phone[i], f.phone[j]
        pboth = (pi >= 0) & (pj >= 0)
        shared = self.phone_people[np.maximum(pi, 0)] > 1
        comps["phone"] = np.where(pboth & (pi == pj), np.where(shared, w.phone_shared, w.phone_exact),
                                  np.where(pboth, w.phone_other, 0.0))

        # company
        ci, cj = f.company[i], f.company[j]
        cboth = (ci >= 0) & (cj >= 0)
        company = np.where(cboth & (ci == cj), self.company_weight[np.maximum(ci, 0)], 0.0)
        idx = np.flatnonzero(cboth & (ci != cj))
        if len(idx):
            values = f.companies.values
            # token-set similarity: "boucsein and partners" holds all of "boucsein"
            ratio = cpdist([values[v] for v in ci[idx].tolist()], [values[v] for v in cj[idx].tolist()],
                           scorer=fuzz.token_set_ratio, workers=1)
            company[idx] = np.where(ratio >= 90, w.company_fuzzy, np.where(ratio >= 60, 0.0, w.company_other))
        comps["company"] = company

        # the same organisation's domain (by email or website), where the emails did not already say
        di = np.where(f.work_domain[i], f.domain[i], -1)
        dj = np.where(f.work_domain[j], f.domain[j], -1)
        si, sj = f.site[i], f.site[j]
        org = ((di >= 0) & (di == dj)) | ((si >= 0) & (si == sj))
        comps["domain"] = np.where(org & ~same & ~colleague, w.domain_same, 0.0)

        # country
        ki, kj = f.country[i], f.country[j]
        comps["country"] = np.where((ki >= 0) & (kj >= 0) & (ki != kj), w.country_other, 0.0)

        # title: the same job says a little; a different one says a little against
        ti, tj = f.title[i], f.title[j]
        title = np.zeros(n, np.float64)
        idx = np.flatnonzero((ti >= 0) & (tj >= 0))
        if len(idx):
            values = f.titles.values
            ratio = cpdist([values[v] for v in ti[idx].tolist()], [values[v] for v in tj[idx].tolist()],
                           scorer=fuzz.token_set_ratio, workers=1)
            title[idx] = np.where(ratio >= 90, w.title_same, np.where(ratio < 50, w.title_other, 0.0))
        comps["title"] = title

        total = np.zeros(n, np.float64)
        for part in comps.values():
            total += part
        # names alone never make a match: without a second kind of evidence that agrees (the
        # address, a line one person answers, or the whole name at the same company or
        # domain: a last name there may be a relative's) a pair is at most a review item
        full_name = (first_c > 0) & (last_c > 0)
        contact = (comps["email"] > 0) | (comps["phone"] >= w.phone_exact)
        workplace = full_name & ((comps["company"] > 0) | (comps["domain"] > 0))
        below = self.rules.match_at - 0.5
        total = np.where(contact | workplace, total, np.minimum(total, below))
        # the same name at the same company with no address or line in common: a namesake
        # colleague is likelier there than anywhere, so that evidence needs a margin
        margin = self.rules.workplace_margin
        total = np.where(workplace & ~contact & (total < self.rules.match_at + margin), np.minimum(total, below), total)
        return total, comps, first_conflict

    def _first(self, fi: IntArray, fj: IntArray) -> tuple[FloatArray, BoolArray]:
        """Points of two first names, and whether they conflict (two different names)."""
        w = self.rules.weights
        n = len(fi)
        out = np.zeros(n, np.float64)
        conflict = np.zeros(n, np.bool_)
        both = (fi >= 0) & (fj >= 0)
        equal = both & (fi == fj)
        out[equal] = self.first_weight[fi[equal]]
        idx = np.flatnonzero(both & ~equal)
        if not len(idx):
            return out, conflict
        names = self.f.names.values
        a = [names[v] for v in fi[idx].tolist()]
        b = [names[v] for v in fj[idx].tolist()]
        dist = cpdist(a, b, scorer=OSA.distance, workers=1)
        names_both = (self.first_is_name[fi[idx]] & self.first_is_name[fj[idx]]).tolist()
        groups = self.groups
        values = np.empty(len(idx), np.float64)
        bad = np.zeros(len(idx), np.bool_)
        for k, (x, y, d) in enumerate(zip(fi[idx].tolist(), fj[idx].tolist(), dist.tolist(), strict=True)):
            p, q = names[x], names[y]
            if len(p) == 1 or len(q) == 1:
                values[k] = w.first_initial if p[0] == q[0] else w.first_conflict
                bad[k] = p[0] != q[0]
            elif groups[x] & groups[y]:
                values[k] = w.first_nickname
            elif names_both[k]:
                # two spellings each used by several records are two names (Marc / Mark,
                # Julie / Juliette), whatever their distance
                values[k] = w.first_conflict
                bad[k] = True
            elif d <= 1 and (len(p) == len(q) >= 3 or min(len(p), len(q)) >= 6):
                # a letter swapped or replaced; a letter more only in long names (Eric/Erica,
                # Jan/Jana are different people)
                values[k] = w.first_fuzzy
            elif _typo_of_nickname(p, groups[y]) or _typo_of_nickname(q, groups[x]):
                values[k] = w.first_fuzzy  # Jehn / Johnny: a typo in a nickname's name
            elif _short_form(p, q):
                values[k] = w.first_initial  # Barb / Barbara: a short form the nickname list lacks
            else:
                values[k] = w.first_conflict
                bad[k] = True
        out[idx] = values
        conflict[idx] = bad
        return out, conflict

    def _last(self, li: IntArray, lj: IntArray) -> FloatArray:
        w = self.rules.weights
        out = np.zeros(len(li), np.float64)
        both = (li >= 0) & (lj >= 0)
        equal = both & (li == lj)
        out[equal] = self.last_weight[li[equal]]
        idx = np.flatnonzero(both & ~equal)
        if not len(idx):
            return out
        names = self.f.names.values
        a = [names[v] for v in li[idx].tolist()]
        b = [names[v] for v in lj[idx].tolist()]
        dist = cpdist(a, b, scorer=OSA.distance, workers=1)
        shortest = np.minimum([len(s) for s in a], [len(s) for s in b])
        # a double-barrelled name and one of its parts ("garcia lopez" / "garcia")
        part = np.asarray([(x in y.split() or y in x.split()) and " " in (x + y) for x, y in zip(a, b, strict=True)],
                          np.bool_)
        same_length = np.asarray([len(x) == len(y) for x, y in zip(a, b, strict=True)], np.bool_)
        fuzzy = ((dist <= 1) & ((same_length & (shortest >= 3)) | (shortest >= 6))) | part
        out[idx] = np.where(fuzzy, w.last_fuzzy, w.last_conflict)
        return out


# --- clustering ----------------------------------------------------------------------------------


class _Clusters:
    """Disjoint sets of rows with their members (for the consistency checks)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.members: dict[int, list[int]] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def of(self, x: int) -> list[int]:
        return self.members.get(x, [x])

    def union(self, a: int, b: int) -> int:
        ma, mb = self.of(a), self.of(b)
        if len(ma) < len(mb):
            a, b, ma, mb = b, a, mb, ma
        self.parent[b] = a
        self.members[a] = ma + mb
        self.members.pop(b, None)
        return a


def _components(n: int, i: IntArray, j: IntArray) -> IntArray:
    """Connected-component label (the smallest row) of every row, over edges ``(i, j)``."""
    label = np.arange(n, dtype=np.int64)
    if not len(i):
        return label
    while True:  # min-label propagation, vectorised; converges in about log(diameter) rounds
        low = np.minimum(label[i], label[j])
        changed = False
        for side in (i, j):
            before = label[side]
            np.minimum.at(label, side, low)
            changed = changed or bool((label[side] != before).any())
        label = label[label]
        if not changed:
            return label


@dataclass
class ScoredPair:
    """Two records the matcher compared, with the score and its parts."""

    left: str
    right: str
    score: float
    decision: str
    reasons: str


@dataclass
class MatchResult:
    """What :func:`match_people` found.

    Attributes:
        ids: The records' ids, in input order.
        labels: The cluster of each record (index-aligned with ``ids``): the position of the
            cluster's first record in the input.
        candidate_pairs: Pairs compared (the blocking's output).
        pair_left, pair_right, pair_score: The compared pairs scoring ``review_at`` or more
            (positions into ``ids``).
        components: Each pair's score parts, by ``COMPONENTS`` name.
        rules: The rules used.
    """

    ids: list[str]
    labels: list[int]
    candidate_pairs: int
    pair_left: IntArray
    pair_right: IntArray
    pair_score: FloatArray
    components: dict[str, FloatArray]
    rules: MatchingRules

    @property
    def records(self) -> int:
        """Records matched."""
        return len(self.ids)

    def pairs_per_record(self) -> float:
        """Candidate pairs per record (grows about linearly with the records when blocking works)."""
        return self.candidate_pairs / len(self.ids) if self.ids else 0.0

    def reasons(self, k: int) -> str:
        """The non-zero parts of pair ``k``'s score, e.g. ``"email +9.0; last_name +4.2; phone -0.5"``."""
        return _reasons(self.components, k)

    def decision(self, k: int) -> str:
        """``same`` when both records ended in one cluster, ``review`` otherwise."""
        same = self.labels[int(self.pair_left[k])] == self.labels[int(self.pair_right[k])]
        return "same" if same else "review"

    def pairs(self) -> list[ScoredPair]:
        """Every pair scoring ``review_at`` or more, strongest first."""
        order = np.argsort(-self.pair_score, kind="stable")
        return [ScoredPair(self.ids[int(self.pair_left[k])], self.ids[int(self.pair_right[k])],
                           round(float(self.pair_score[k]), 2), self.decision(int(k)), self.reasons(int(k)))
                for k in order.tolist()]

    def clusters(self) -> dict[int, list[str]]:
        """Clusters of more than one record: label -> ids."""
        found: dict[int, list[str]] = {}
        for position, label in enumerate(self.labels):
            found.setdefault(label, []).append(self.ids[position])
        return {label: ids for label, ids in found.items() if len(ids) > 1}


def _score_all(scorer: _Scorer, i: IntArray, j: IntArray) -> tuple[FloatArray, dict[str, FloatArray], BoolArray]:
    """:meth:`_Scorer.score` in chunks (bounded memory at millions of pairs), stewards' decisions applied."""
    total, parts, conflict = _score_chunks(scorer, i, j)
    if scorer.decisions is not None:
        scorer.decisions.apply(scorer.f.n, i, j, total, conflict)
    return total, parts, conflict


def _score_chunks(scorer: _Scorer, i: IntArray, j: IntArray) -> tuple[FloatArray, dict[str, FloatArray], BoolArray]:
    if len(i) <= _PAIR_CHUNK:
        return scorer.score(i, j)
    totals, conflicts = [], []
    comps: dict[str, list[FloatArray]] = {name: [] for name in COMPONENTS}
    for start in range(0, len(i), _PAIR_CHUNK):
        total, parts, conflict = scorer.score(i[start:start + _PAIR_CHUNK], j[start:start + _PAIR_CHUNK])
        totals.append(total)
        conflicts.append(conflict)
        for name in COMPONENTS:
            comps[name].append(parts[name])
    return (np.concatenate(totals), {k: np.concatenate(v) for k, v in comps.items()}, np.concatenate(conflicts))


def _cluster(n: int, i: IntArray, j: IntArray, score: FloatArray, conflict: BoolArray, scorer: _Scorer,
             rules: MatchingRules) -> IntArray:
    """Cluster labels from the scored candidate pairs (see the module's step 4)."""
    strong = (score >= rules.match_at) & ~conflict
    si, sj, ss = i[strong], j[strong], score[strong]
    component = _components(n, si, sj)
    labels = np.arange(n, dtype=np.int64)
    if not len(si):
        return labels
    # every pair inside each component small enough to score whole
    sizes = np.bincount(component, minlength=n)
    known: dict[tuple[int, int], tuple[float, bool]] = {}
    for a, b, s, c in zip(i.tolist(), j.tolist(), score.tolist(), conflict.tolist(), strict=True):
        if s >= rules.cluster_floor or c:
            known[(a, b)] = (s, c)
    edge_sizes = sizes[component[si]]
    small_roots = np.unique(component[si][(edge_sizes > 2) & (edge_sizes <= rules.max_component)])
    if len(small_roots):
        in_small = np.isin(component, small_roots)
        rows = np.flatnonzero(in_small)
        order = np.argsort(component[rows], kind="stable")
        rows = rows[order]
        groups = np.split(rows, np.flatnonzero(np.diff(component[rows])) + 1)
        extra_i, extra_j = [], []
        for group in groups:
            members = group.tolist()
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    a, b = members[x], members[y]
                    if (a, b) not in known:
                        extra_i.append(a)
                        extra_j.append(b)
        if extra_i:
            ei, ej = np.asarray(extra_i, np.int64), np.asarray(extra_j, np.int64)
            es, _, ec = _score_all(scorer, ei, ej)
            for a, b, s, c in zip(extra_i, extra_j, es.tolist(), ec.tolist(), strict=True):
                known[(a, b)] = (s, c)
    clusters = _Clusters()
    floor, average, cap = rules.cluster_floor, rules.cluster_average, rules.max_cluster_size
    for k in np.argsort(-ss, kind="stable").tolist():
        a, b = int(si[k]), int(sj[k])
        ra, rb = clusters.find(a), clusters.find(b)
        if ra == rb:
            continue
        ma, mb = clusters.of(ra), clusters.of(rb)
        if len(ma) + len(mb) > cap:
            continue
        if len(ma) == 1 and len(mb) == 1:
            clusters.union(ra, rb)
            continue
        total, ok = 0.0, True
        for x in ma:
            for y in mb:
                found = known.get((x, y) if x < y else (y, x))
                if found is None or found[1] or found[0] < floor:
                    ok = False
                    break
                total += found[0]
            if not ok:
                break
        if ok and total / (len(ma) * len(mb)) >= average:
            clusters.union(ra, rb)
    for members in clusters.members.values():
        labels[members] = min(members)
    return labels


DECIDED_SAME = 1000.0
"""The score of a pair a data steward said is one person: above any threshold."""
DECIDED_DIFFERENT = -1000.0
"""The score of a pair a data steward said is two people: never joined, not even through others."""


class _Decisions:
    """Stewards' decisions on pairs, as codes ``i * n + j`` (``i < j``) -> same."""

    def __init__(self, ids: list[str], decisions: Mapping[tuple[str, str], bool] | None) -> None:
        self.codes: dict[int, bool] = {}
        if not decisions:
            return
        position: dict[str, int] = {}
        for k, record_id in enumerate(ids):
            position.setdefault(record_id, k)
        n = len(ids)
        for (a, b), same in decisions.items():
            x, y = position.get(a), position.get(b)
            if x is None or y is None or x == y:
                continue
            self.codes[min(x, y) * n + max(x, y)] = same

    def same_codes(self) -> IntArray:
        return np.asarray(sorted(c for c, same in self.codes.items() if same), np.int64)

    def apply(self, n: int, i: IntArray, j: IntArray, score: FloatArray, conflict: BoolArray) -> None:
        """Override the scores (in place) of the pairs a steward decided."""
        if not self.codes:
            return
        keys = np.asarray(sorted(self.codes), np.int64)
        same = np.asarray([self.codes[k] for k in keys.tolist()], np.bool_)
        codes = i * n + j
        at = np.minimum(np.searchsorted(keys, codes), len(keys) - 1)
        hit = keys[at] == codes
        decided_same = same[at[hit]]
        score[hit] = np.where(decided_same, DECIDED_SAME, DECIDED_DIFFERENT)
        conflict[hit] = ~decided_same


def match_people(records: Iterable[Mapping[str, Any]], rules: MatchingRules | None = None,
                 progress: Callable[[int], None] | None = None,
                 decisions: Mapping[tuple[str, str], bool] | None = None) -> MatchResult:
    """Find the records that are the same person (see the module docstring for how).

    Args:
        records: Person records as mappings of the canonical field names (``PERSON_COLUMNS``;
            absent or empty fields are unknown). Read once, so a ``csv.DictReader`` streams.
        rules: Thresholds, blocking limits and weights; the shipped defaults when ``None``.
        progress: Called with the number of records normalised since the last call.
        decisions: A data steward's word on pairs of record ids: ``True`` the same person (they
            join whatever the score), ``False`` two people (they never share a cluster). Pairs
            naming unknown ids are ignored.

    Returns:
        The clusters, the candidate count and every pair at ``review_at`` or more with its parts.
    """
    rules = rules or MatchingRules()
    features = _features(records, progress)
    codes = _candidates(features, rules)
    steward = _Decisions(features.ids, decisions)
    if steward.codes:
        codes = np.union1d(codes, steward.same_codes())
    i, j = codes // max(features.n, 1), codes % max(features.n, 1)
    scorer = _Scorer(features, rules)
    scorer.decisions = steward
    score, comps, conflict = _score_all(scorer, i, j)
    labels = _cluster(features.n, i, j, score, conflict, scorer, rules)
    keep = score >= rules.review_at
    return MatchResult(
        ids=features.ids, labels=labels.tolist(), candidate_pairs=len(codes),
        pair_left=i[keep], pair_right=j[keep], pair_score=score[keep],
        components={k: v[keep] for k, v in comps.items()}, rules=rules,
    )


def score_records(left: Mapping[str, Any], right: Mapping[str, Any],
                  rules: MatchingRules | None = None) -> tuple[float, str]:
    """The score of two records and its reasons (as :func:`match_people` scores a candidate pair).

    Name weights depend on how common a name is among the records matched together; two
    records alone count each name once or twice.
    """
    rules = rules or MatchingRules()
    features = _features([left, right], None)
    scorer = _Scorer(features, rules)
    total, comps, _ = scorer.score(np.asarray([0], np.int64), np.asarray([1], np.int64))
    return float(total[0]), _reasons(comps, 0)


def _reasons(components: Mapping[str, FloatArray], k: int) -> str:
    """The non-zero parts of the ``k``-th pair's score, in ``COMPONENTS`` order."""
    parts = [(name, float(components[name][k])) for name in COMPONENTS]
    return "; ".join(f"{name} {value:+.1f}" for name, value in parts if value != 0.0)

