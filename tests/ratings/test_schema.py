"""The OpenAPI schema says what the busiest endpoints really accept and answer.

The schema is generated as ``/api/v1/schema/`` serves it; each real answer is validated
against the documented body of its status code (undocumented keys fail), each documented
required field is really required, and the documented examples are really accepted.
"""

import json

import jsonschema
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from conversations.models import Role
from ratings.models import Judgment

pytestmark = pytest.mark.django_db

NEXT = "/api/v1/projects/{slug}/next/"
SUBMIT = "/api/v1/assignments/{id}/submit/"
SKIP = "/api/v1/assignments/{id}/skip/"
REVISE = "/api/v1/judgments/{id}/revise/"
IMPORT = "/api/v1/projects/{slug}/imports/"
IMPORT_DETAIL = "/api/v1/imports/{id}/"
EXPORT = "/api/v1/projects/{slug}/exports/"
EXPORT_DETAIL = "/api/v1/exports/{id}/"


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _resolve(schema: dict, node):
    """The node with every $ref inlined and OpenAPI 3.0's ``nullable`` made JSON Schema;
    objects with declared properties allow no others (an undocumented key fails)."""
    if isinstance(node, list):
        return [_resolve(schema, n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _resolve(schema, schema["components"]["schemas"][name])
    out = {k: _resolve(schema, v) for k, v in node.items() if k not in ("nullable", "readOnly")}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if "enum" in out and node.get("nullable"):
        out["enum"] = [*out["enum"], None]
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def operation(schema: dict, path: str, method: str) -> dict:
    return schema["paths"][path][method]


def request_body(schema: dict, path: str, method: str, media="application/json") -> dict:
    return _resolve(
        schema, operation(schema, path, method)["requestBody"]["content"][media]["schema"]
    )


def check_answer(schema: dict, path: str, method: str, response) -> None:
    """The real answer's status is documented, and so is its body."""
    documented = operation(schema, path, method)["responses"]
    code = str(response.status_code)
    assert code in documented, f"{method} {path} answered {code}; documented {list(documented)}"
    content = documented[code].get("content")
    if response.status_code == 204:
        assert content is None and not response.content
        return
    body = response.json()
    jsonschema.validate(body, _resolve(schema, content["application/json"]["schema"]))


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_schema_generates_with_no_warning_and_is_valid_openapi(tmp_path):
    # an operation whose body cannot be guessed, or two components with one name, warn
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )


def test_no_component_is_shared_by_accident(schema):
    names = schema["components"]["schemas"]
    assert "Input" not in names and "Output" not in names
    assert not [n for n in names if any(c.isdigit() for c in n.removesuffix("Enum")[-3:])], (
        "generated enum names (like StateF6eEnum): add them to ENUM_NAME_OVERRIDES"
    )
    assert {"JobStateEnum", "TaskKindEnum", "VerdictEnum"} <= set(names)


def test_every_operation_has_a_summary_and_its_errors(schema):
    missing = [
        f"{method.upper()} {path}"
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if not op.get("summary")
    ]
    assert missing == []
    for path, method in [(NEXT, "post"), (SUBMIT, "post"), (SKIP, "post"), (REVISE, "post")]:
        assert {"400", "401", "403", "404"} <= set(operation(schema, path, method)["responses"])


def test_next_documents_its_body_and_answers(schema, rated_project, raters, member):
    body = request_body(schema, NEXT, "post")
    assert set(body["properties"]) == {"kind"} and body["required"] == ["kind"]
    assert set(body["properties"]["kind"]["enum"]) == {"score", "pairwise", "kb_verify"}
    documented = operation(schema, NEXT, "post")["responses"]
    assert "content" not in documented["204"]
    url = NEXT.format(slug=rated_project.slug)
    client = api(raters[0])

    refused = client.post(url, {}, format="json")  # no kind: refused, nothing leased
    assert refused.status_code == 400 and "kind" in refused.json()
    check_answer(schema, NEXT, "post", refused)

    for example in operation(schema, NEXT, "post")["requestBody"]["content"]["application/json"][
        "examples"
    ].values():
        jsonschema.validate(example["value"], body)
    task = client.post(url, {"kind": "pairwise"}, format="json")
    assert task.status_code == 200
    check_answer(schema, NEXT, "post", task)
    not_mine = client.post(url, {"kind": "kb_verify"}, format="json")  # evaluators don't
    assert not_mine.status_code == 403
    check_answer(schema, NEXT, "post", not_mine)
    # nothing left of a kind the project does not run: 204, no body
    empty = api(member(Role.SME)).post(url, {"kind": "kb_verify"}, format="json")
    assert empty.status_code == 204
    check_answer(schema, NEXT, "post", empty)


def test_submit_skip_and_revise_answer_as_documented(schema, rated_project, raters):
    rated_project.allow_edits = True
    rated_project.save(update_fields=["allow_edits"])
    client = api(raters[0])
    url = NEXT.format(slug=rated_project.slug)
    answer = {"choice": "right_much_better", "both_bad": False, "rationale": "B cites a source"}
    body = request_body(schema, SUBMIT, "post")
    jsonschema.validate(answer, body)
    assert set(body["properties"]["choice"]["enum"]) >= {"left_much_better", "right_much_better"}

    first = client.post(url, {"kind": "pairwise"}, format="json").json()
    bad = client.post(SUBMIT.format(id=first["assignment_id"]), {"choice": "A"}, format="json")
    assert bad.status_code == 400
    check_answer(schema, SUBMIT, "post", bad)
    done = client.post(SUBMIT.format(id=first["assignment_id"]), answer, format="json")
    assert done.status_code == 201
    check_answer(schema, SUBMIT, "post", done)
    assert done.json()["answer"]["choice"] == "right_much_better"

    skip_body = request_body(schema, SKIP, "post")
    assert skip_body["required"] == ["reason"]
    second = client.post(url, {"kind": "pairwise"}, format="json").json()
    no_reason = client.post(SKIP.format(id=second["assignment_id"]), {}, format="json")
    assert no_reason.status_code == 400
    check_answer(schema, SKIP, "post", no_reason)
    skipped = client.post(
        SKIP.format(id=second["assignment_id"]), {"reason": "unreadable"}, format="json"
    )
    assert skipped.status_code == 200
    check_answer(schema, SKIP, "post", skipped)

    judgment = Judgment.objects.get(rater=raters[0])
    revised = client.post(REVISE.format(id=judgment.pk), {**answer, "choice": "tie"}, format="json")
    assert revised.status_code == 201
    check_answer(schema, REVISE, "post", revised)
    missing = client.post(REVISE.format(id=judgment.pk + 999), answer, format="json")
    assert missing.status_code == 404
    check_answer(schema, REVISE, "post", missing)


def test_import_job_is_documented_as_202_with_a_status_url(
    schema, project, lead, django_capture_on_commit_callbacks
):
    body = request_body(schema, IMPORT, "post", media="multipart/form-data")
    assert body["required"] == ["file"]
    assert body["properties"]["file"]["format"] == "binary"
    client = api(lead)
    url = IMPORT.format(slug=project.slug)
    assert set(operation(schema, IMPORT, "post")["responses"]) >= {"202", "400", "403"}
    no_file = client.post(url, {}, format="multipart")
    assert no_file.status_code == 400
    check_answer(schema, IMPORT, "post", no_file)
    record = {"id": "a", "messages": [{"role": "user", "content": "Q"}]}
    upload = SimpleUploadedFile("t.jsonl", json.dumps(record).encode())
    with django_capture_on_commit_callbacks(execute=True):
        accepted = client.post(url, {"file": upload}, format="multipart")
    assert accepted.status_code == 202
    check_answer(schema, IMPORT, "post", accepted)
    status = client.get(accepted["Location"])
    assert status.status_code == 200
    check_answer(schema, IMPORT_DETAIL, "get", status)


def test_export_job_is_documented_as_202_with_a_status_url(
    schema, rated_project, member, django_capture_on_commit_callbacks
):
    body = request_body(schema, EXPORT, "post")
    assert body["required"] == ["format"]
    client = api(member(Role.CONSUMER))
    url = EXPORT.format(slug=rated_project.slug)
    unknown = client.post(url, {"format": "xml"}, format="json")
    assert unknown.status_code == 400
    check_answer(schema, EXPORT, "post", unknown)
    with django_capture_on_commit_callbacks(execute=True):
        accepted = client.post(url, {"format": "trl"}, format="json")
    assert accepted.status_code == 202
    check_answer(schema, EXPORT, "post", accepted)
    status = client.get(accepted["Location"])
    check_answer(schema, EXPORT_DETAIL, "get", status)
    listed = client.get(url)
    check_answer(schema, EXPORT, "get", listed)


def test_the_item_list_is_documented_as_the_page_it_answers(schema, rated_project, lead):
    path = "/api/v1/projects/{slug}/items/"
    response = api(lead).get(path.format(slug=rated_project.slug) + "?limit=2")
    assert response.status_code == 200 and len(response.json()["results"]) == 2
    check_answer(schema, path, "get", response)
