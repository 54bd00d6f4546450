"""``relay match PEOPLE.csv --out CLUSTERS.csv [--pairs PAIRS.csv]``: list cleaning before an import."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from crm_sandbox.seed import linkage
from crm_sandbox.seed.people import generate_people, write_csv

from ._cli import relay


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_row_gets_its_cluster_and_the_pairs_their_reasons(tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(
        "id,first_name,last_name,email,phone,company\n"
        "1,Robert,Smith,Bob.Smith+x@acme.com,+1 415 555 0134,Acme Inc\n"
        "2,Bob,Smith,bob.smith@acme.com,(415) 555-0134,ACME Incorporated\n"
        "3,Anna,Smith,anna.smith@acme.com,(415) 555-0134,Acme\n"
        "4,Jane,Doe,jane@x.org,,\n", encoding="utf-8")
    result = relay("match", str(people), "--out", str(tmp_path / "clusters.csv"), "--pairs", str(tmp_path / "pairs.csv"))
    assert result.exit_code == 0, result.output
    assert "4 rows, 1 clusters of more than one row holding 2 rows (1 duplicates" in result.output
    assert _rows(tmp_path / "clusters.csv") == [{"id": "1", "cluster": "1"}, {"id": "2", "cluster": "1"},
                                                 {"id": "3", "cluster": "3"}, {"id": "4", "cluster": "4"}]
    pairs = _rows(tmp_path / "pairs.csv")
    assert [(p["left_id"], p["right_id"], p["decision"]) for p in pairs] == [("1", "2", "same")]
    assert "email +9.0" in pairs[0]["reasons"] and "phone +4.0" in pairs[0]["reasons"]


def test_bad_rows_are_named_by_line_and_kept_alone(tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_bytes(
        b"\xef\xbb\xbfid,first_name,last_name,email\n"
        b"1,Ann,Lee,ann.lee@acme.com\n"
        b"2,Ann,Lee\n"                                  # a column short
        b"3,J\xe9r\xf4me,Martin,ann.lee@acme.com\n"     # Latin-1, not UTF-8
        b",Ann,Lee,ann.lee@acme.com\n"                  # no id
        b"5,Ann,Lee,ANN.LEE@acme.com\n")
    result = relay("match", str(people), "--out", str(tmp_path / "clusters.csv"))
    assert result.exit_code == 4, result.output
    assert "rows kept alone, unreadable: 3 (line 3: 3 columns, the header has 4)" in result.output
    clusters = _rows(tmp_path / "clusters.csv")
    assert [c["id"] for c in clusters] == ["1", "2", "3", "line:5", "5"]
    assert {c["id"]: c["cluster"] for c in clusters}["5"] == "1"
    assert {c["id"]: c["cluster"] for c in clusters}["3"] == "3"
    bad = _rows(people.with_name("people.csv.bad-rows.csv"))
    assert [(b["line"], b["id"], b["reason"]) for b in bad] == [
        ("3", "2", "3 columns, the header has 4"), ("4", "3", "not UTF-8 text"), ("5", "line:5", "the id is empty")]


@pytest.mark.parametrize(("header", "message"), [
    ("first_name,last_name,email", "line 1 has no 'id' column"),
    ("id,first_name,shoe_size,favourite_colour", "line 1 names unknown columns: shoe_size, favourite_colour"),
    ("id,email,EMAIL", "line 1 names a column twice: email"),
])
def test_a_header_it_cannot_use_is_named_at_once(tmp_path: Path, header: str, message: str) -> None:
    people = tmp_path / "people.csv"
    people.write_text(header + "\n1,a,b,c\n", encoding="utf-8")
    result = relay("match", str(people), "--out", str(tmp_path / "clusters.csv"))
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "clusters.csv").exists()


def test_a_missing_file_and_a_bad_threshold_are_named(tmp_path: Path) -> None:
    result = relay("match", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "c.csv"))
    assert result.exit_code == 1 and "nope.csv: no such file" in result.output
    people = tmp_path / "p.csv"
    people.write_text("id,email\n1,a@b.com\n", encoding="utf-8")
    result = relay("match", str(people), "--out", str(tmp_path / "c.csv"), "--threshold", "1")
    assert result.exit_code == 1 and "must be above review_at" in result.output


def test_a_generated_list_with_ground_truth_is_matched_well_and_better_than_exact_email(tmp_path: Path) -> None:
    data = generate_people(3_000, seed=3)
    people = tmp_path / "people.csv"
    write_csv(data, people)
    result = relay("match", str(people), "--out", str(tmp_path / "clusters.csv"))
    assert result.exit_code == 0, result.output
    clusters = _rows(tmp_path / "clusters.csv")
    assert len(clusters) == 3_000
    names = {c["cluster"]: k for k, c in enumerate(clusters)}
    labels = [names[c["cluster"]] for c in clusters]
    relay_scores = linkage.score(labels, data.truth)
    baseline = linkage.score(linkage.exact_email_labels(data.rows, data.columns), data.truth)
    assert relay_scores.pairwise_precision >= 0.99
    assert relay_scores.pairwise_f1 >= 0.93
    assert relay_scores.pairwise_f1 > baseline.pairwise_f1 + 0.15


def test_a_repeated_id_and_an_unclosed_quote_are_named(tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text('id,first_name,last_name\n1,Ann,Lee\n1,Bob,Roe\n2,"Cai,Ng\n3,Dee,Orr\n', encoding="utf-8")
    result = relay("match", str(people), "--out", str(tmp_path / "clusters.csv"))
    assert result.exit_code == 4, result.output
    bad = _rows(people.with_name("people.csv.bad-rows.csv"))
    assert [(b["line"], b["id"]) for b in bad] == [("3", "1@line:3"), ("4", "2")]
    assert "the id '1' is also the id of line 2" in bad[0]["reason"]
    assert bad[1]["reason"].startswith("lines 4-5: 2 columns") and "unclosed quote" in bad[1]["reason"]
    assert [c["id"] for c in _rows(tmp_path / "clusters.csv")] == ["1", "1@line:3", "2"]
