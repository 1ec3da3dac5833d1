from __future__ import annotations

from airflow_provider_alta.masking import mask_email, mask_phone, mask_text


def test_mask_phone_keeps_prefix_and_last_four():
    assert mask_phone("+12025550143") == "+1202***0143"
    assert mask_phone("+442079460123") == "+4420***0123"
    assert mask_phone("12345") == "***45"
    assert mask_phone("12") == "***"
    assert mask_phone(None) == "***"


def test_mask_email():
    assert mask_email("ada@example.com") == "a***@example.com"
    assert mask_email("nonsense") == "***"


def test_mask_text_masks_numbers_and_emails_inside_messages():
    text = "call +1 202-555-0143 or ada@example.com about +442079460123, id 42"
    masked = mask_text(text)
    assert "555-0143" not in masked
    assert "7946" not in masked
    assert "ada@" not in masked
    assert "a***@example.com" in masked
    assert masked.endswith("id 42")


def test_scrub_answer_masks_every_rendering_of_the_person_and_nothing_else():
    from airflow_provider_alta.masking import scrub_answer

    answer = {
        "id": "call_987654321",
        "phoneNumber": "+12025550143",
        "national": "(202) 555-0143",
        "spaced": "+1 202 555 0143",
        "digits": "12025550143",
        "dotted": "202.555.0143",
        "echo": ["called ADA@EXAMPLE.COM at 2025550143"],
        "Ada@Example.com": "as a key",
        "echoed_as_a_number": 12025550143,
        "count": 3,
    }
    scrubbed = scrub_answer(answer, "+12025550143", "ada@example.com")
    text = str(scrubbed)
    assert "555-0143" not in text
    assert "5550143" not in text.replace("***", "")
    assert "555 0143" not in text
    assert "ada@example.com" not in text.lower()
    assert scrubbed["id"] == "call_987654321"  # other digits stay
    assert scrubbed["count"] == 3
    assert scrubbed["echoed_as_a_number"] == "120***0143"
    assert scrubbed["phoneNumber"] == "+1202***0143"


def test_scrub_answer_handles_deep_and_odd_answers():
    from airflow_provider_alta.masking import scrub_answer

    deep: object = "+12025550143"
    for _ in range(200):
        deep = [deep]
    assert "2025550143" not in str(scrub_answer(deep, "+12025550143", None))
    assert scrub_answer(None, "+12025550143", None) is None
    assert scrub_answer("plain", None, None) == "plain"


def test_mask_value_masks_strings_inside_structures():
    from airflow_provider_alta.masking import mask_value

    masked = mask_value({"note": "call +1 202 555 0143", "who": ["ada@example.com"], "n": 3})
    assert "555 0143" not in str(masked)
    assert "ada@" not in str(masked)
    assert masked["n"] == 3
