"""benchmarks/results.md is shared: `benchmarks.run` writes the top, other benchmarks own a marked section.

A section sits between `<!-- NAME -->` and `<!-- /NAME -->`; writing one replaces only it, and
`benchmarks.run` carries every section over when it rewrites the rest of the file.
"""

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.md"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name} -->", f"<!-- /{name} -->"


def write(name: str, lines: list[str]) -> None:
    start, end = markers(name)
    block = "\n".join([start, *lines, end])
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if start in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def existing() -> str:
    """Every marked section of the current file, to append after a rewrite."""
    if not RESULTS.exists():
        return ""
    found = re.findall(r"<!-- (\w+) -->.*?<!-- /\1 -->", RESULTS.read_text(), flags=re.S)
    blocks = [re.search(rf"<!-- {name} -->.*?<!-- /{name} -->", RESULTS.read_text(), flags=re.S).group(0) for name in found]
    return "\n\n".join(blocks)
