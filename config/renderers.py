"""CSV for any API view whose data is a list of flat rows (or ``{"results": [...]}``); text
cells that a spreadsheet would run as formulas are neutralised (``config/spreadsheet.py``)."""

import csv
import io

from rest_framework.renderers import BaseRenderer

from config.spreadsheet import safe_cell


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        rows = data.get("results", data) if isinstance(data, dict) else data
        if isinstance(rows, dict):
            rows = [rows]
        buffer = io.StringIO()
        if rows:
            columns = list(dict.fromkeys(k for row in rows for k in row))
            writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
            writer.writerow({k: safe_cell(k) for k in columns})  # the header, neutralised too
            for row in rows:
                writer.writerow({k: ("" if v is None else safe_cell(v)) for k, v in row.items()})
        return buffer.getvalue().encode(self.charset)
