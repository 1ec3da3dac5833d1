"""Reading opt-out numbers from lists, rows and CSV exports: E.164 out, invalid entries by index."""

from __future__ import annotations

import pytest

from airflow_provider_alta.opt_outs import InvalidEntry, iter_entries, read_numbers

ANN, BOB, CID = "+12025550143", "+12025550144", "+442079460123"


def test_strings_are_normalised_and_invalid_ones_reported_by_index_without_the_number():
    found = read_numbers(
        ["(202) 555-0143", "+1 202 555 0144 ext. 7", "020 7946 0123", "not a number", "", "+1202555"],
        default_region="US",
    )
    assert found.e164 == [ANN, BOB]
    assert [i.index for i in found.invalid] == [2, 3, 4, 5]
    assert found.invalid[1] == InvalidEntry(3, "is not a phone number")
    assert found.invalid[2].rule == "is empty"
    assert "7946" not in str(found.invalid)
    assert "555" not in str(found.invalid)
    assert found.entries == 6


def test_rows_use_the_phone_column():
    rows = [{"mobile": ANN, "name": "Ann"}, {"name": "Bob"}, {"mobile": 12025550144}, {"mobile": CID}]
    found = read_numbers(rows, phone_column="mobile")
    assert found.e164 == [ANN, CID]
    assert [str(i) for i in found.invalid] == [
        "entry 1: has no 'mobile' field",
        "entry 2: must be a string, not int (a number loses its + and leading 0s: quote it)",
    ]


def test_a_crm_csv_export_as_text_or_bytes():
    text = "\ufeffName , Mobile\nAnn,(202) 555-0143\nBob,\nCid,+44 20 7946 0123\n"
    for value in (text, text.encode("utf-8")):
        found = read_numbers(value, phone_column="Mobile", default_region="US")
        assert found.e164 == [ANN, CID]
        assert found.invalid == [InvalidEntry(1, "is empty")]


def test_a_csv_without_the_column_is_refused_with_its_header_masked():
    with pytest.raises(ValueError, match="no 'phone' column") as error:
        read_numbers("+12025550143,name\n+12025550144,Bob\n", phone_column="phone")
    assert "2025550143" not in str(error.value)
    assert read_numbers("", phone_column="phone").entries == 0


def test_what_is_not_a_list_of_entries_is_refused():
    with pytest.raises(ValueError, match="not dict"):
        list(iter_entries({"phone_number": ANN}))
    with pytest.raises(ValueError, match="not int"):
        list(iter_entries(5))
    with pytest.raises(ValueError, match="default_region"):
        read_numbers([ANN], default_region="XX")
