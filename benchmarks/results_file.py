"""benchmarks/RESULTS.md holds one `## ...` section per benchmark; each script replaces only its own."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(section: str, text: str, path: Path = RESULTS) -> None:
    """Replace the section headed `section` (e.g. "## Speed") with `text`, or append it; written atomically."""
    from paddlefunnel.io_utils import atomic_write_text

    current = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    start = current.find(section + "\n")
    if start < 0:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        end = current.find("\n## ", start + len(section))
        updated = current[:start] + text + ("" if end < 0 else current[end:])
    atomic_write_text(path, updated.rstrip("\n") + "\n")
