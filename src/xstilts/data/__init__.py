"""Data acquisition (pinned registry packages) and helpers for preparing task splits."""
