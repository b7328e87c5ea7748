"""docs/BENCHMARKS.md renders from the committed results (docs/benchmarks/*.json): every generated block, every table
with as many cells in each row as its header has columns, and not one byte outside the blocks changed."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks import render, report

HAND_WRITTEN = "A paragraph written by hand between two blocks, with a figure: 42 requests/s.\n\n"


def _results() -> dict[str, dict[str, Any] | None]:
    return {name: report.load(name) for name in report.ORDER}


def _stale(document: str, text: str = "stale figures\n") -> str:
    """The document with every generated block's text replaced (by default with text no benchmark renders)."""
    return render.BLOCK.sub(lambda match: match[1] + text + match[5], document)


def test_columns_table_takes_each_cell_by_key_or_by_function() -> None:
    columns: list[render.Column] = [("name", "name"), ("twice", lambda item: item["n"] * 2)]

    text = render.columns_table(columns, [{"name": "a", "n": 1}, {"name": "b", "n": 5}])

    assert text == "| name | twice |\n|---|---|\n| a | 2 |\n| b | 10 |"


def test_every_block_renders_from_the_committed_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    committed = report.DOC_PATH.read_text()
    monkeypatch.setattr(report, "DOC_PATH", tmp_path / "BENCHMARKS.md")
    # Empty blocks, as a new benchmark's markers are first written.
    report.DOC_PATH.write_text(_stale(committed, ""))

    report.render()

    text = report.DOC_PATH.read_text()
    assert text == committed
    assert "stale figures" not in text and "Not run yet" not in text
    assert {match[2] for match in render.BLOCK.finditer(text)} == set(report.ORDER)
    tables = [block.splitlines() for block in re.split(r"\n\n|\n(?=<!--)|(?<=-->)\n", text) if block.startswith("| ")]
    assert len(tables) >= 15
    for lines in tables:
        header, rule, *rows = (line.split(" | ") for line in lines)
        assert rule == ["|" + "|".join("---" for _ in header) + "|"], lines[0]
        assert rows, lines[0]
        assert all(len(row) == len(header) for row in rows), lines[0]


def test_a_hand_written_paragraph_survives_a_re_render() -> None:
    committed = report.DOC_PATH.read_text()
    # After the sale's block, before the hot keys' heading: outside every block.
    at = committed.index("## Hot keys")
    edited = committed[:at] + HAND_WRITTEN + committed[at:]

    assert render.fill_blocks(_stale(edited), _results()) == edited


def test_a_block_missing_from_the_document_fails_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = report.DOC_PATH.read_text()
    marker = render.BLOCK_START.format(name="cost", part="targets")
    start = committed.index(marker)
    without = committed[:start] + committed[committed.index(render.BLOCK_END, start) + len(render.BLOCK_END) :]
    monkeypatch.setattr(report, "DOC_PATH", tmp_path / "BENCHMARKS.md")
    report.DOC_PATH.write_text(without)

    with pytest.raises(ValueError, match=re.escape(f"no block {marker}")):
        report.render()

    assert report.DOC_PATH.read_text() == without


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda doc: doc.replace(render.BLOCK_END, "", 1), "without its end marker"),
        (lambda doc: doc.replace("cost.json, block targets", "cost.json, block target", 1), "block target of cost"),
    ],
)
def test_a_broken_marker_fails(edit: Callable[[str], str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        render.fill_blocks(edit(report.DOC_PATH.read_text()), _results())


def test_a_benchmark_not_run_yet_says_so_in_its_blocks() -> None:
    text = render.fill_blocks(report.DOC_PATH.read_text(), {**_results(), "stadium": None})

    stadium = text[text.index("## Stadium") :]
    assert [match[4] for match in render.BLOCK.finditer(stadium)] == ["Not run yet: `make bench-stadium`."]


def test_dollar_table_has_a_row_per_call_of_the_journey() -> None:
    result = report.load("dollars")
    assert result is not None

    lines = render.dollar_table(result).splitlines()

    assert lines[0].startswith("| call | calls per ticket | WRU | RRU |")
    assert [line.split(" | ")[0] for line in lines[2:]] == [f"| {call['call']}" for call in result["calls"]]
