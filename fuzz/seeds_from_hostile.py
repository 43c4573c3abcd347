#!/usr/bin/env python3
"""Writes the request parser fuzzer's seeds (fuzz/corpus/request_parser/) from the hostile-input
corpus (tests/e2e/hostile/corpus.toml): every case under 4 KB, with the target's two leading
bytes (how the bytes are sliced, which limits). Run it again after adding cases."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from test_hostile import load_cases  # noqa: E402  (the corpus reader the e2e test uses)

out = os.path.join(HERE, "corpus", "request_parser")
os.makedirs(out, exist_ok=True)
written = 0
for i, case in enumerate(load_cases()):
    raw = case["raw"]
    if len(raw) > 4096:
        continue  # libFuzzer's default -max_len; the over-long ones are reached with small limits
    # Alternate: all at once with the default limits, and 7-byte reads with small limits.
    prefix = b"\xc0\x00" if i % 2 == 0 else b"\x06\x01"
    with open(os.path.join(out, case["name"]), "wb") as f:
        f.write(prefix + raw)
    written += 1
print("wrote %d seeds to %s" % (written, out))
