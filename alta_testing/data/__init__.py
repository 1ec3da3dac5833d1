"""Test data: fictional phone numbers (``numbers``), lead files (``leads``) and checks on the
sandbox's journal (``campaign_checks``)."""
