"""console.exports: the consoles' CSV downloads are streamed, and a cell a spreadsheet would run as a formula
is written as text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

from django.http import StreamingHttpResponse

from console.exports import csv_cell, csv_response


def test_formula_cells_are_written_as_text():
    for hostile in ('=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert csv_cell(hostile) == "'" + hostile
    assert csv_cell("ana@example.org") == "ana@example.org"
    assert csv_cell("Ana = the best") == "Ana = the best"


def test_numbers_and_times_keep_their_exact_form():
    assert csv_cell(Decimal("-19.90")) == "-19.90"  # a number, not a string typed by someone
    assert csv_cell(-3) == "-3"
    assert csv_cell(datetime(2026, 12, 4, 12, 0, tzinfo=UTC)) == "2026-12-04T12:00:00+00:00"
    assert csv_cell(None) == ""
    assert csv_cell(True) == "true"


def test_the_response_streams_lazily_and_parses_back():
    pulled = []

    def rows():
        for i in range(3):
            pulled.append(i)
            yield (i, f"=evil{i}", Decimal("1.50"))

    response = csv_response("signups 2026/12.csv", ["n", "name", "amount"], rows())

    assert isinstance(response, StreamingHttpResponse)
    assert pulled == []  # nothing read before the body is
    assert response["Content-Disposition"] == 'attachment; filename="signups_202612.csv"'
    body = b"".join(response.streaming_content).decode()
    assert pulled == [0, 1, 2]
    assert list(csv.reader(io.StringIO(body))) == [
        ["n", "name", "amount"],
        ["0", "'=evil0", "1.50"],
        ["1", "'=evil1", "1.50"],
        ["2", "'=evil2", "1.50"],
    ]
