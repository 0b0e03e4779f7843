"""The examples in docs/formats.md are valid: against the JSON Schema and for the importer."""

import io
import json
import re
from pathlib import Path

import jsonschema
import pytest

from conversations.services.imports import transcript_import

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMA = json.loads((DOCS / "schemas" / "native-conversation.schema.json").read_text())


def examples(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", (DOCS / "formats.md").read_text(), re.S)


def test_native_example_matches_the_schema():
    native = json.loads(examples("json")[0])
    jsonschema.validate(native, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"messages": [{"role": "wizard", "content": "x"}]}, SCHEMA)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("index", "fmt"), [(0, "native"), (1, "openai"), (2, "sharegpt"), (3, "hh-rlhf")]
)
def test_json_examples_import_as_documented(project, index, fmt):
    line = examples("json")[index].strip().encode() + b"\n"
    summary = transcript_import(project=project, stream=io.BytesIO(line), source_name="doc.jsonl")
    assert (summary.format, summary.imported) == (fmt, 1)


@pytest.mark.django_db
def test_csv_example_imports_as_documented(project):
    data = examples("csv")[0].encode()
    summary = transcript_import(project=project, stream=io.BytesIO(data), source_name="doc.csv")
    assert (summary.format, summary.imported) == ("csv", 1)
    assert project.conversations.get().messages.filter(candidate=1).get().model == "bot-b"
