"""The benchmarks' command lines: asking for help or giving a value out of range never runs a benchmark or
rewrites its committed results."""

from __future__ import annotations

import pytest

from benchmarks import dollars, report, stadium


def test_dollars_help_prints_the_usage_and_leaves_its_results_alone(capsys: pytest.CaptureFixture[str]) -> None:
    results = report.RESULTS_DIR / "dollars.json"
    before = results.read_bytes()
    with pytest.raises(SystemExit) as exited:
        dollars.main(["--help"])
    assert exited.value.code == 0
    assert "usage:" in capsys.readouterr().out
    assert results.read_bytes() == before


@pytest.mark.parametrize("seats", ["10000", "100001", "0"])
def test_stadium_refuses_seats_it_cannot_measure_before_starting_anything(
    seats: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        stadium.main(["--seats", seats])
    assert exited.value.code == 2
    assert "--seats must be above 10,000 and at most 100,000" in capsys.readouterr().err
