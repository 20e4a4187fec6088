"""Worst time per paste of up to 1 MB through redaction alone and through redaction + matching.

    python bench/redact_worst.py            # prints one line per input and the worst of each (CPU time)

The inputs aim at what made redaction slow before (a PEM header repeated over 1 MB took 4.2 s in one
rule) and at every mechanism of `kb.redact`: escapes and entities to decode, lines to join, base64 runs,
invisible characters, named tokens, key pastes.
"""

from __future__ import annotations

import base64
import random
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb.redact import redact

SIZE = 1_000_000


def _rep(unit: str) -> str:
    return (unit * (SIZE // len(unit) + 1))[:SIZE]


def inputs() -> dict[str, str]:
    rnd = random.Random(1)
    b64_line = "".join(rnd.choice(string.ascii_letters) for _ in range(64))
    return {
        "PEM header repeated": _rep("-----BEGIN PRIVATE KEY-----"),
        "PEM header + line repeated": _rep("-----BEGIN PRIVATE KEY-----\nMIIE"),
        "one PEM body of 1 MB": "-----BEGIN PRIVATE KEY-----\n" + _rep(b64_line + "\n"),
        # the fake key is split so that no scanner takes it for a real one
        "40 KB key pastes, repeated": _rep(
            "AIza" + "SyFAKE-Leak3dKey_0123456789abcdefgh token: Xk9fPq2LmZ8rT4vW6yB1nC3d\n"
        ),
        "percent escapes": _rep("%41%42%43"),
        "unicode escapes": _rep("\\u0041"),
        "zero-width every other char": _rep("a\u200b"),
        "entities": _rep("&amp;"),
        "one long word": "A" * SIZE,
        "base64 of text": base64.b64encode(_rep("hello world token ").encode()[: SIZE * 3 // 4]).decode(),
        "base64 words that decode": _rep("QUl6YVN5RDNtby1MZWFr "),
        "prose": _rep("the quick brown fox jumps over the lazy dog key secret token "),
        "short lines of key characters": _rep("abcdefghij\n"),
        "random printable": "".join(rnd.choice(string.printable) for _ in range(SIZE)),
        "hex": "".join(rnd.choice("0123456789abcdef") for _ in range(SIZE)),
    }


def main() -> None:
    import os

    from ingest.bootstrap import open_or_build
    from kb.matcher import match
    from kb.settings import load_settings

    kb = open_or_build(load_settings(dict(os.environ)).kb_path)
    worst = {"redact": (0.0, ""), "redact strict": (0.0, ""), "match": (0.0, "")}
    for name, text in inputs().items():
        times = {}
        for label, run in (
            ("redact", lambda t=text: redact(t)),
            ("redact strict", lambda t=text: redact(t, strict=True)),
            ("match", lambda t=text: match(t, kb)),
        ):
            start = time.process_time()  # CPU time: the machine is shared, wall time says more about neighbours
            run()
            times[label] = time.process_time() - start
            if times[label] > worst[label][0]:
                worst[label] = (times[label], name)
        print(f"{name:32s} " + "  ".join(f"{k} {v * 1000:6.0f} ms" for k, v in times.items()))
    for label, (seconds, name) in worst.items():
        print(f"worst {label}: {seconds * 1000:.0f} ms ({name})")


if __name__ == "__main__":
    main()
