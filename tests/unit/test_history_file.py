from pathlib import Path

import pytest

from gridpulse.history import HistoryFileError, read_history


def test_reads_a_cis_export(tmp_path: Path) -> None:
    f = tmp_path / "hist.csv"
    f.write_text("customer_id,period,kwh\nC1,2025-10,1234.5\nC1,2025-11,0\n")
    rows = read_history(f)
    assert [(r.customer_id, r.period, r.kwh, r.source) for r in rows] == [
        ("C1", "2025-10", 1234.5, "hist.csv"),
        ("C1", "2025-11", 0.0, "hist.csv"),
    ]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("customer_id,kwh\nC1,1\n", "header lacks period"),
        ("customer_id,period,kwh\nC1,2025-13,1\n", "hist.csv:2"),
        ("customer_id,period,kwh\nC1,2025-10,1\nC1,2025-11,-5\n", "hist.csv:3"),
        ("customer_id,period,kwh\nC1,2025-10,lots\n", "hist.csv:2"),
    ],
)
def test_a_bad_row_stops_the_load_with_its_line(tmp_path: Path, body: str, where: str) -> None:
    f = tmp_path / "hist.csv"
    f.write_text(body)
    with pytest.raises(HistoryFileError, match=where):
        read_history(f)
