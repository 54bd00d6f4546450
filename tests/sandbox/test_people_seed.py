"""People-only seed data with ground truth (``crm_sandbox.seed.people``) and the linkage metrics.

The generator's output is checked from the rows alone, the way a matcher sees it: duplicates and
their messiness, and the hard negatives (records of different people that look alike).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import combinations
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_sandbox.cli import main as sandbox_main
from crm_sandbox.seed import people as ps
from crm_sandbox.seed._geo import COUNTRIES
from crm_sandbox.seed._names import NICKNAMES
from crm_sandbox.seed.linkage import LinkageScores, closure_labels, exact_email_labels, score
from crm_sandbox.seed.people import (
    COLUMNS,
    PeopleData,
    describe,
    generate_people,
    read_truth,
    write_csv,
)

ROWS = 20_000
FREE = {"gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com",
        "gmx.de", "web.de", "yahoo.co.uk", "orange.fr", "mail.com"}
CODES = {a.lower(): c.code for c in COUNTRIES for a in (c.code, *c.aliases)}
COL = {name: i for i, name in enumerate(COLUMNS)}


def fold(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(plain.lower().split())


def email_of(row: tuple[str, ...]) -> str:
    return row[COL["email"]].strip().lower()


def domain_of(row: tuple[str, ...]) -> str:
    email = email_of(row)
    return email.rpartition("@")[2] if "@" in email else ""


def mailbox(email: str) -> str:
    local, _, domain = email.strip().lower().partition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        return local.replace(".", "") + "@gmail.com"
    return f"{local}@{domain}"


def phone_digits(phone: str) -> str:
    digits = "".join(c for c in re.split(r"ext|x", phone.lower())[0] if c.isdigit())
    return digits[-9:] if len(digits) >= 7 else ""


def cross_person_pairs(groups: Iterable[list[int]], truth: list[int]) -> int:
    """Pairs of rows sharing a group's key but belonging to different true people."""
    total = 0
    for members in groups:
        if len(members) > 1:
            by_person = Counter(truth[m] for m in members)
            total += len(members) * (len(members) - 1) // 2 - sum(c * (c - 1) // 2 for c in by_person.values())
    return total


@pytest.fixture(scope="module")
def data() -> PeopleData:
    return generate_people(ROWS, seed=7)


@pytest.fixture(scope="module")
def clusters(data: PeopleData) -> dict[int, list[tuple[str, ...]]]:
    out: dict[int, list[tuple[str, ...]]] = defaultdict(list)
    for row, person in zip(data.rows, data.truth, strict=True):
        out[person].append(row)
    return out


# --- shape and determinism ----------------------------------------------------------------------


def test_same_arguments_give_the_same_data_and_another_seed_other_data() -> None:
    first, again, other = generate_people(3000, seed=11), generate_people(3000, seed=11), generate_people(3000, seed=12)
    assert first.rows == again.rows and first.truth == again.truth
    assert first.rows != other.rows


def test_rows_have_the_canonical_columns_unique_ids_and_aligned_truth(data: PeopleData) -> None:
    assert data.columns == COLUMNS == (
        "id", "first_name", "last_name", "email", "phone", "company", "website", "title", "country", "state", "source")
    assert len(data.rows) == len(data.truth) == ROWS
    assert all(len(row) == len(COLUMNS) and all(isinstance(v, str) for v in row) for row in data.rows)
    ids = [row[0] for row in data.rows]
    assert len(set(ids)) == ROWS and all(re.fullmatch(r"r\d{7}", i) for i in ids)
    assert all(isinstance(t, int) for t in data.truth)


def test_duplicates_of_a_person_are_spread_through_the_file(data: PeopleData) -> None:
    neighbours_same = sum(1 for a, b in zip(data.truth, data.truth[1:], strict=False) if a == b)
    assert neighbours_same < ROWS * 0.01


@pytest.mark.parametrize("bad", [-1, True, "10", 2.5])
def test_bad_arguments_are_named(bad: object) -> None:
    with pytest.raises(ValueError, match=r"rows=.*non-negative int"):
        generate_people(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"seed=.*non-negative int"):
        generate_people(10, seed=bad)  # type: ignore[arg-type]


def test_zero_rows_is_an_empty_data_set() -> None:
    empty = generate_people(0)
    assert empty.rows == [] and empty.truth == []


# --- duplicates and their messiness ----------------------------------------------------------------


def test_records_per_person_match_the_configured_distribution(data: PeopleData) -> None:
    counts = Counter(Counter(data.truth).values())
    persons = sum(counts.values())
    total_weight = sum(w for _, w in ps.RECORDS_PER_PERSON)
    expected_mean = sum(k * w for k, w in ps.RECORDS_PER_PERSON) / total_weight
    mean = ROWS / persons
    assert 1.1 <= mean <= 1.6
    assert mean == pytest.approx(expected_mean, abs=0.03)
    assert counts[1] / persons == pytest.approx(ps.RECORDS_PER_PERSON[0][1] / total_weight, abs=0.02)
    assert max(counts) <= max(k for k, _ in ps.RECORDS_PER_PERSON)


def test_field_level_rates_are_within_tolerance(data: PeopleData) -> None:
    stats = describe(data)
    missing = stats["missing"]
    assert missing["phone"] == pytest.approx(ps.MISSING_PHONE_RATE, abs=0.02)
    assert missing["title"] == pytest.approx(ps.MISSING_TITLE_RATE, abs=0.015)
    assert missing["country"] == pytest.approx(ps.MISSING_COUNTRY_RATE, abs=0.01)
    assert missing["first_name"] == pytest.approx(ps.MISSING_FIRST_RATE, abs=0.004)
    assert missing["last_name"] == pytest.approx(ps.MISSING_LAST_RATE, abs=0.005)
    assert ps.MISSING_EMAIL_RATE <= missing["email"] <= ps.MISSING_EMAIL_RATE + 0.04
    assert stats["country_as_name"] == pytest.approx(0.35 * (1 - ps.MISSING_COUNTRY_RATE), abs=0.03)
    phones = [row[COL["phone"]] for row in data.rows if row[COL["phone"]]]
    e164 = sum(1 for p in phones if re.fullmatch(r"\+\d{8,15}", p))
    assert 0.35 < e164 / len(phones) < 0.6
    assert any(p.startswith("00") for p in phones)
    assert any("ext." in p or " x" in p for p in phones)
    assert any(re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", p) for p in phones)
    sites = [row[COL["website"]] for row in data.rows if row[COL["website"]]]
    forms: Counter[str] = Counter()
    for site in sites:
        host_and_path = re.sub(r"^https?://", "", site, flags=re.I)
        forms["scheme"] += host_and_path != site
        forms["www"] += host_and_path.lower().startswith("www.")
        forms["bare"] += host_and_path == site and not site.lower().startswith("www.")
        forms["path"] += bool(host_and_path.partition("/")[2])
    assert all(forms[f] > len(sites) * 0.1 for f in ("scheme", "www", "bare", "path")), forms


def test_duplicates_differ_the_way_crm_records_do(clusters: dict[int, list[tuple[str, ...]]]) -> None:
    seen: Counter[str] = Counter()
    nick_pairs = {(full, nick) for full, nicks in NICKNAMES.items() for nick in nicks}
    dup_clusters = [rows for rows in clusters.values() if len(rows) > 1]
    for rows in dup_clusters:
        emails = [r[COL["email"]] for r in rows]
        raw = {e for e in emails if e}
        keys = {mailbox(e) for e in raw}
        lowered = {e.strip().lower() for e in raw}
        domains = {e.strip().lower().rpartition("@")[2] for e in raw}
        if len(keys) > 1:
            seen["different mailboxes"] += 1
        if len(lowered) > len(keys):
            seen["same mailbox written differently"] += 1
        if any(e != e.strip() for e in raw):
            seen["spaces"] += 1
        if any(e.strip() != e.strip().lower() for e in raw):
            seen["case"] += 1
        if any("+" in e for e in raw) and len(keys) < len(lowered):
            seen["+tag"] += 1
        if "googlemail.com" in domains:
            seen["googlemail"] += 1
        if "gmail.com" in domains and len({e.strip().lower() for e in raw if e.strip().lower().endswith("@gmail.com")}) > len(
                {mailbox(e) for e in raw if e.strip().lower().endswith("@gmail.com")}):
            seen["gmail dots"] += 1
        if domains & FREE and domains - FREE:
            seen["personal and work address"] += 1
        work = sorted({e.strip().lower().split("+")[0] for e in raw if e.strip().lower().rpartition("@")[2] not in FREE})
        if any(a.partition("@")[2] == b.partition("@")[2] and len(a) == len(b)
               and sum(x != y for x, y in zip(a, b, strict=True)) == 1 for a, b in combinations(work, 2)):
            seen["email typo"] += 1
        if "" in emails and raw:
            seen["no email on one record"] += 1
        firsts = {r[COL["first_name"]].strip() for r in rows}
        lasts = {r[COL["last_name"]].strip() for r in rows}
        if any((a, b) in nick_pairs for a in firsts for b in firsts):
            seen["nickname"] += 1
        if any(r[COL["first_name"]] == s[COL["last_name"]] and r[COL["last_name"]] == s[COL["first_name"]]
               and r[COL["first_name"]] for r, s in combinations(rows, 2)):
            seen["swapped names"] += 1
        if any(re.search(r" [A-Z]\.$", f) for f in firsts):
            seen["middle initial"] += 1
        folded = {fold(x) for x in firsts | lasts}
        if len({x.lower() for x in firsts | lasts}) > len(folded):
            seen["accents dropped"] += 1
        if any(" " in x for x in lasts) and len(lasts) > 1:
            seen["one or two surnames"] += 1
        companies = {r[COL["company"]] for r in rows if r[COL["company"]]}
        if len(companies) > 1:
            seen["company written differently"] += 1
        if any(c.lower().startswith("the ") for c in companies) and len(companies) > 1:
            seen["company with The"] += 1
        phones = {phone_digits(r[COL["phone"]]) for r in rows if phone_digits(r[COL["phone"]])}
        formats = {r[COL["phone"]] for r in rows if r[COL["phone"]]}
        if len(phones) == 1 and len(formats) > 1:
            seen["phone formats"] += 1
        countries = {r[COL["country"]] for r in rows if r[COL["country"]]}
        if len({CODES.get(c.lower(), c) for c in countries}) == 1 and len(countries) > 1:
            seen["country code and name"] += 1
    n = len(dup_clusters)
    assert n > 2500
    # every kind of mess is there, and the rates are plausible for CRM data
    for kind in ("spaces", "case", "+tag", "googlemail", "gmail dots", "personal and work address", "email typo",
                 "no email on one record", "nickname", "swapped names", "middle initial", "accents dropped",
                 "one or two surnames", "company with The", "phone formats", "country code and name"):
        assert seen[kind] >= 10, (kind, seen)
    assert 0.15 < seen["different mailboxes"] / n < 0.6
    assert 0.3 < seen["company written differently"] / n < 0.8


# --- hard negatives --------------------------------------------------------------------------------


def test_namesakes_at_other_companies_and_in_other_countries(data: PeopleData) -> None:
    rows, truth = data.rows, data.truth
    by_name: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        first, last = fold(row[COL["first_name"]]), fold(row[COL["last_name"]])
        if first and last:
            by_name[(first, last)].append(i)
    assert cross_person_pairs(by_name.values(), truth) > 500
    other_country = other_company = 0
    for members in by_name.values():
        for a, b in combinations(members[:30], 2):
            if truth[a] == truth[b]:
                continue
            ca, cb = CODES.get(rows[a][COL["country"]].lower()), CODES.get(rows[b][COL["country"]].lower())
            other_country += bool(ca and cb and ca != cb)
            da, db = domain_of(rows[a]), domain_of(rows[b])
            other_company += bool(da and db and da != db and da not in FREE and db not in FREE)
    assert other_country > 100
    assert other_company > 500


def test_very_common_names_recur_across_many_people(data: PeopleData) -> None:
    people_per_name: dict[tuple[str, str], set[int]] = defaultdict(set)
    for row, person in zip(data.rows, data.truth, strict=True):
        people_per_name[(fold(row[COL["first_name"]]), fold(row[COL["last_name"]]))].add(person)
    top = sorted((len(p) for k, p in people_per_name.items() if all(k)), reverse=True)
    # linear in the rows: 8 people at 20,000 rows are 400 at 1,000,000
    assert top[0] >= 8
    assert top[9] >= 5
    assert len(people_per_name[("john", "smith")]) >= 3


def test_colleagues_share_domain_convention_switchboard_and_surnames(data: PeopleData) -> None:
    rows, truth = data.rows, data.truth
    by_domain: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        domain = domain_of(row)
        if domain and domain not in FREE:
            by_domain[domain].append(i)
    phone_and_domain: dict[tuple[str, str], list[int]] = defaultdict(list)
    surname_and_domain: dict[tuple[str, str], list[int]] = defaultdict(list)
    convention = 0
    for domain, members in by_domain.items():
        first_dot_last = {truth[m] for m in members
                          if email_of(rows[m]).partition("@")[0] ==
                          f"{fold(rows[m][COL['first_name']])}.{fold(rows[m][COL['last_name']])}".replace(" ", "")}
        convention += len(first_dot_last) >= 2
        for m in members:
            digits = phone_digits(rows[m][COL["phone"]])
            if digits:
                phone_and_domain[(domain, digits)].append(m)
            last = fold(rows[m][COL["last_name"]])
            if last:
                surname_and_domain[(domain, last)].append(m)
    assert cross_person_pairs(by_domain.values(), truth) > 10_000
    assert convention > 100  # domains where several people follow first.last@
    assert cross_person_pairs(phone_and_domain.values(), truth) > 200  # the switchboard
    family = 0
    for members in surname_and_domain.values():
        for a, b in combinations(members, 2):
            if truth[a] != truth[b] and fold(rows[a][COL["first_name"]]) != fold(rows[b][COL["first_name"]]) \
                    and email_of(rows[a]) != email_of(rows[b]):
                family += 1
    assert family > 100


def test_similar_first_names_at_one_company_are_different_people(data: PeopleData) -> None:
    rows, truth = data.rows, data.truth
    similar = {frozenset((a, b)) for group in ps.SIMILAR_FIRST_NAMES for a, b in combinations(group, 2)}
    by_domain: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        domain = domain_of(row)
        if domain and domain not in FREE:
            by_domain[domain].append(i)
    found: Counter[frozenset[str]] = Counter()
    for members in by_domain.values():
        names = defaultdict(set)
        for m in members:
            names[rows[m][COL["first_name"]].strip()].add(truth[m])
        for a, b in combinations(names, 2):
            if frozenset((a, b)) in similar and names[a] != names[b]:
                found[frozenset((a, b))] += 1
    assert sum(found.values()) > 20
    assert len(found) > 5


def test_role_addresses_and_household_mail_are_shared_by_different_people(data: PeopleData) -> None:
    rows, truth = data.rows, data.truth
    by_mailbox: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        if email_of(row):
            by_mailbox[mailbox(email_of(row))].append(i)
    role = household = 0
    for box, members in by_mailbox.items():
        people = {truth[m] for m in members}
        if len(people) < 2:
            continue
        local, domain = box.split("@")
        if local in ps.ROLE_LOCALS:
            role += 1
        elif domain in FREE:
            surnames = {fold(rows[m][COL["last_name"]]).split(" ")[0] for m in members if rows[m][COL["last_name"]]}
            household += len(surnames) == 1
    assert role > 30
    assert household > 5


def test_companies_of_the_same_name_in_other_countries(data: PeopleData) -> None:
    rows = data.rows
    by_name: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for row in rows:
        domain = domain_of(row)
        country = CODES.get(row[COL["country"]].lower())
        if row[COL["company"]] and domain and domain not in FREE and country:
            by_name[ps._company_key(row[COL["company"]])].add((domain, country))
    clashes = [v for v in by_name.values() if len({d for d, _ in v}) > 1 and len({c for _, c in v}) > 1]
    assert len(clashes) > 50


def test_describe_reports_every_hard_negative(data: PeopleData) -> None:
    hard = describe(data)["hard_negatives"]
    assert set(hard) == {"namesake", "shared_phone", "colleagues_same_domain", "same_surname_same_domain",
                         "similar_first_name_same_domain", "shared_role_address", "shared_free_mail",
                         "same_company_name_other_domain"}
    assert all(v > 0 for v in hard.values()), hard


# --- files and command line -------------------------------------------------------------------------


def test_csv_and_truth_round_trip(tmp_path: Path) -> None:
    small = generate_people(500, seed=3)
    people, truth = tmp_path / "people.csv", tmp_path / "truth.csv"
    write_csv(small, people, truth)
    with open(people, newline="", encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert [tuple(r[c] for c in COLUMNS) for r in read] == small.rows
    assert read_truth(truth, [r["id"] for r in read]) == small.truth


def test_read_truth_names_the_line_that_does_not_line_up(tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("id,person\nr1,0\nr2,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"truth.csv: line 3: person 'x' of id 'r2' is not an int"):
        read_truth(truth)
    truth.write_text("id,person\nr1,0\nr3,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 3: id 'r3' but the people file has 'r2' at row 2"):
        read_truth(truth, ["r1", "r2"])
    truth.write_text("id,cluster\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 1: expected the header 'id,person'"):
        read_truth(truth)


def test_command_line_writes_people_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    people, truth = tmp_path / "p.csv", tmp_path / "t.csv"
    code = sandbox_main(["people", "--rows", "400", "--seed", "5", "--out", str(people), "--truth", str(truth)])
    assert code == 0
    assert "400 records of" in capsys.readouterr().out
    expected = generate_people(400, seed=5)
    with open(people, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        assert tuple(next(reader)) == COLUMNS
        assert [tuple(r) for r in reader] == expected.rows
    assert read_truth(truth) == expected.truth


def test_command_line_rejects_a_negative_row_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        sandbox_main(["people", "--rows", "-5", "--out", str(tmp_path / "p.csv")])
    assert exit_info.value.code == 2
    assert "--rows: must be 0 or more, got -5" in capsys.readouterr().err


# --- metrics -----------------------------------------------------------------------------------------


def brute_force(predicted: list[int], truth: list[int]) -> tuple[float, float, float, float]:
    """Pairwise and B-cubed precision/recall by enumerating every pair and every record."""
    n = len(predicted)
    pairs = list(combinations(range(n), 2))
    pred = {(a, b) for a, b in pairs if predicted[a] == predicted[b]}
    true = {(a, b) for a, b in pairs if truth[a] == truth[b]}
    precision = len(pred & true) / len(pred) if pred else 1.0
    recall = len(pred & true) / len(true) if true else 1.0
    b3p = sum(sum(1 for j in range(n) if predicted[j] == predicted[i] and truth[j] == truth[i])
              / sum(1 for j in range(n) if predicted[j] == predicted[i]) for i in range(n)) / n
    b3r = sum(sum(1 for j in range(n) if predicted[j] == predicted[i] and truth[j] == truth[i])
              / sum(1 for j in range(n) if truth[j] == truth[i]) for i in range(n)) / n
    return precision, recall, b3p, b3r


def test_perfect_labels_score_one() -> None:
    s = score([5, 5, 9, 9, 7], [0, 0, 1, 1, 2])
    assert (s.pairwise_precision, s.pairwise_recall, s.pairwise_f1) == (1.0, 1.0, 1.0)
    assert (s.bcubed_precision, s.bcubed_recall, s.bcubed_f1) == (1.0, 1.0, 1.0)
    assert (s.clusters, s.true_clusters, s.largest_cluster, s.true_pairs) == (3, 3, 2, 2)


def test_everything_merged() -> None:
    s = score([0] * 5, [0, 0, 1, 1, 2])
    assert (s.predicted_pairs, s.true_pairs, s.true_positive_pairs) == (10, 2, 2)
    assert s.pairwise_precision == pytest.approx(0.2)
    assert s.pairwise_recall == 1.0
    assert s.pairwise_f1 == pytest.approx(1 / 3)
    assert s.bcubed_precision == pytest.approx((0.4 * 4 + 0.2) / 5)
    assert s.bcubed_recall == 1.0
    assert s.bcubed_f1 == pytest.approx(2 * 0.36 / 1.36)
    assert (s.clusters, s.largest_cluster) == (1, 5)


def test_all_singletons() -> None:
    s = score([0, 1, 2, 3, 4], [0, 0, 1, 1, 2])
    assert s.pairwise_precision == 1.0  # nothing merged, nothing merged wrongly
    assert s.pairwise_recall == 0.0 and s.pairwise_f1 == 0.0
    assert s.bcubed_precision == 1.0
    assert s.bcubed_recall == pytest.approx(0.6)
    assert s.bcubed_f1 == pytest.approx(0.75)
    assert (s.clusters, s.largest_cluster) == (5, 1)


def test_a_chain_is_scored_after_transitive_closure() -> None:
    # two people of three records each; a matcher links 0-1, 1-2, 2-3 (a false link), 3-4
    truth = [0, 0, 0, 1, 1, 1]
    labels = closure_labels(6, [(0, 1), (1, 2), (2, 3), (3, 4)])
    assert labels == [0, 0, 0, 0, 0, 5]
    s = score(labels, truth)
    assert (s.predicted_pairs, s.true_pairs, s.true_positive_pairs) == (10, 6, 4)
    assert s.pairwise_precision == pytest.approx(0.4)
    assert s.pairwise_recall == pytest.approx(4 / 6)
    assert s.pairwise_f1 == pytest.approx(0.5)
    assert s.bcubed_precision == pytest.approx(0.6)
    assert s.bcubed_recall == pytest.approx((3 + 4 / 3 + 1 / 3) / 6)
    assert s.largest_cluster == 5


def test_score_names_misaligned_input_and_handles_empty() -> None:
    with pytest.raises(ValueError, match="3 predicted labels but 2 true labels"):
        score([0, 1, 2], [0, 1])
    empty = score([], [])
    assert empty.pairwise_f1 == 1.0 and empty.records == 0 and empty.largest_cluster == 0


def test_closure_labels_rejects_a_record_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"pair \(1, 4\) names a record outside 0..3"):
        closure_labels(4, [(1, 4)])


def test_exact_email_baseline_is_the_lowercased_stripped_address() -> None:
    rows = [("a", " Ann@X.com"), ("b", "ann@x.com "), ("c", ""), ("d", ""), ("e", "a.nn@gmail.com"),
            ("f", "ann@gmail.com"), ("g", "ann+tag@x.com")]
    labels = exact_email_labels(iter(rows), ["id", "email"])
    assert labels[0] == labels[1]
    assert len({labels[2], labels[3], labels[4], labels[5], labels[6], labels[0]}) == 6
    with pytest.raises(ValueError, match=r"no 'email' column among \['id', 'mail'\]"):
        exact_email_labels(rows, ["id", "mail"])


def test_exact_email_baseline_on_the_generated_data(data: PeopleData) -> None:
    s = score(exact_email_labels(data.rows, data.columns), data.truth)
    # shared role and household addresses cost it precision; the messiness costs it recall
    assert 0.7 < s.pairwise_precision < 0.97
    assert 0.4 < s.pairwise_recall < 0.75


labels_strategy = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(labels_strategy)
def test_scores_match_pair_enumeration_and_stay_in_range(pairs: list[tuple[int, int]]) -> None:
    predicted, truth = [p for p, _ in pairs], [t for _, t in pairs]
    s = score(predicted, truth)
    for value in (s.pairwise_precision, s.pairwise_recall, s.pairwise_f1,
                  s.bcubed_precision, s.bcubed_recall, s.bcubed_f1):
        assert 0.0 <= value <= 1.0
    if pairs:
        p, r, b3p, b3r = brute_force(predicted, truth)
        assert (s.pairwise_precision, s.pairwise_recall) == pytest.approx((p, r))
        assert (s.bcubed_precision, s.bcubed_recall) == pytest.approx((b3p, b3r))


@settings(max_examples=200, deadline=None)
@given(labels_strategy, st.permutations(list(range(6))), st.integers(-1000, 1000))
def test_perfect_labels_score_one_and_relabelling_changes_nothing(
        pairs: list[tuple[int, int]], permutation: list[int], shift: int) -> None:
    predicted, truth = [p for p, _ in pairs], [t for _, t in pairs]
    perfect = score(truth, truth)
    assert perfect.pairwise_f1 == perfect.bcubed_f1 == 1.0
    relabelled = score([permutation[p] * 7 + shift for p in predicted], [t - shift for t in truth])
    assert relabelled == score(predicted, truth)
    swapped: LinkageScores = score(truth, predicted)  # precision and recall trade places
    assert swapped.pairwise_recall == pytest.approx(score(predicted, truth).pairwise_precision)
    assert swapped.bcubed_recall == pytest.approx(score(predicted, truth).bcubed_precision)
