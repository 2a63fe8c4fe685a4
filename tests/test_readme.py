"""What the README states about the code stays true: its feature table is the registry, its exit codes the tree."""

from __future__ import annotations

import re
from pathlib import Path

from streamguard.contracts import FEATURES
from streamguard.errors import EXIT_CODES

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _feature_rows() -> list[list[str]]:
    header = "| feature | definition | unit | type | in model |"
    lines = README[README.index(header):].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("| `"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_the_readme_feature_table_is_the_registry() -> None:
    expected = [[f"`{f.name}`", f.definition, f.unit, f.dtype,
                 "yes" if f.in_model else ("rare-event test" if f.rare_events else "")] for f in FEATURES]
    assert _feature_rows() == expected


def test_every_exit_code_is_in_the_readme() -> None:
    section = README[README.index("### Exit codes"):]
    section = section[: section.index("\n### ", 5)]
    documented = {int(code) for code in re.findall(r"\b(\d{1,3}) [a-zA-Z(]", section)}
    assert set(EXIT_CODES.values()) <= documented
