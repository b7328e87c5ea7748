"""docs/BENCHMARKS.md renders from the committed results (docs/benchmarks/*.json): every section, and every table
with as many cells in each row as its header has columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import render, report


def test_columns_table_takes_each_cell_by_key_or_by_function() -> None:
    columns: list[render.Column] = [("name", "name"), ("twice", lambda item: item["n"] * 2)]

    text = render.columns_table(columns, [{"name": "a", "n": 1}, {"name": "b", "n": 5}])

    assert text == "| name | twice |\n|---|---|\n| a | 2 |\n| b | 10 |"


def test_every_section_renders_from_the_committed_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "DOC_PATH", tmp_path / "BENCHMARKS.md")

    report.render()

    text = report.DOC_PATH.read_text()
    assert "Not run yet" not in text
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        *(f"## {render.TITLES[name]}" for name in report.ORDER),
        "## Method notes",
    ]
    tables = [block.splitlines() for block in text.split("\n\n") if block.startswith("| ")]
    assert len(tables) >= 15
    for lines in tables:
        header, rule, *rows = (line.split(" | ") for line in lines)
        assert rule == ["|" + "|".join("---" for _ in header) + "|"], lines[0]
        assert rows, lines[0]
        assert all(len(row) == len(header) for row in rows), lines[0]


def test_dollar_table_has_a_row_per_call_of_the_journey() -> None:
    result = report.load("dollars")
    assert result is not None

    lines = render.dollar_table(result).splitlines()

    assert lines[0].startswith("| call | calls per ticket | WRU | RRU |")
    assert [line.split(" | ")[0] for line in lines[2:]] == [f"| {call['call']}" for call in result["calls"]]
