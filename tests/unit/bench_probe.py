"""Run by tests/unit/test_benchlib.py through benchlib.before_and_after: says which tree's code it
imported and which options reached it."""

import sys

import shared

print(f"probe: shared from {shared.__file__}; options {sys.argv[1:]}", flush=True)
