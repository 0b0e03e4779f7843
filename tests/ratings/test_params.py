"""Malformed parameters answer 400, never 500; expensive ones are bounded per role."""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.models import Role
from exports.reports import BOOT_LIMITS, DEFAULT_BOOT
from ratings.models import DriftFlag, Item

pytestmark = pytest.mark.django_db


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def flagged(project, lead, member):
    rater = member(Role.EVALUATOR)
    now = timezone.now()
    flag = DriftFlag.objects.create(
        project=project,
        rater=rater,
        detector="agreement",
        window_kind="day",
        window_start=now - timedelta(days=1),
        window_end=now,
    )
    return project, rater, flag


# ---------------------------------------------------------------------------
# The four inputs the audit found answering 500
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"flag": "abc", "state": "acknowledged"},
        {"flag": "\x00", "state": "acknowledged"},
        {"flag": "1", "state": "gone"},
        {"state": "acknowledged"},
    ],
)
def test_rater_page_flag_form_answers_400(client, flagged, lead, data):
    project, rater, flag = flagged
    client.force_login(lead)
    response = client.post(f"/projects/{project.slug}/quality/raters/{rater.pk}/", data)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    flag.refresh_from_db()
    assert flag.state == "open"


def test_rater_page_flag_form_still_works(client, flagged, lead):
    project, rater, flag = flagged
    client.force_login(lead)
    response = client.post(
        f"/projects/{project.slug}/quality/raters/{rater.pk}/",
        {"flag": flag.pk, "state": "acknowledged", "note": "seen"},
    )
    assert response.status_code == 302
    flag.refresh_from_db()
    assert (flag.state, flag.note) == ("acknowledged", "seen")


@pytest.mark.parametrize("extra", ["abc", "\x00", "-1", "2.5", "²"])
def test_rerate_with_a_malformed_extra_answers_400(client, rated_project, lead, extra):
    item = Item.objects.filter(project=rated_project).first()
    overlap = item.overlap
    client.force_login(lead)
    response = client.post(f"/items/{item.pk}/", {"action": "rerate", "extra": extra})
    assert response.status_code == 400
    item.refresh_from_db()
    assert item.overlap == overlap


def test_rerate_with_a_number_still_works(client, rated_project, lead):
    item = Item.objects.filter(project=rated_project).first()
    client.force_login(lead)
    response = client.post(f"/items/{item.pk}/", {"action": "rerate", "extra": "3"})
    assert response.status_code == 302
    assert Item.objects.get(pk=item.pk).overlap == item.overlap + 3


@pytest.mark.parametrize(
    "query",
    [
        {"kind": "\x00"},
        {"kind": "nonsense"},
        {"criterion": "\x00"},
        {"metric": "\x00"},
        {"metric": "x" * 100},
    ],
)
def test_agreement_api_answers_400_for_bad_filters(project, lead, query):
    response = api(lead).get(f"/api/v1/projects/{project.slug}/quality/agreement/", query)
    assert response.status_code == 400
    assert set(response.json()) == set(query)  # names the parameter


def test_agreement_api_filters_still_work(project, lead):
    response = api(lead).get(
        f"/api/v1/projects/{project.slug}/quality/agreement/",
        {"kind": "pairwise", "criterion": "", "metric": "alpha_ordinal"},
    )
    assert response.status_code == 200 and response.json() == []


@pytest.mark.parametrize("kind", ["\x00", "nonsense"])
def test_item_list_api_answers_400_for_a_bad_kind(rated_project, lead, kind):
    response = api(lead).get(f"/api/v1/projects/{rated_project.slug}/items/", {"kind": kind})
    assert response.status_code == 400 and "kind" in response.json()


def test_item_list_api_kind_filter_still_works(rated_project, lead):
    response = api(lead).get(f"/api/v1/projects/{rated_project.slug}/items/", {"kind": "pairwise"})
    assert response.status_code == 200
    kinds = {row["kind"] for row in response.json()["results"]}
    assert kinds == {"pairwise"}


# ---------------------------------------------------------------------------
# Bootstrap sizes per role
# ---------------------------------------------------------------------------


def test_the_documented_limits():
    assert BOOT_LIMITS == {Role.LEAD: 2000, Role.CONSUMER: 1000} and DEFAULT_BOOT == 1000


@pytest.mark.parametrize("role", [Role.LEAD, Role.CONSUMER])
def test_leaderboard_api_refuses_more_replicates_than_the_role_may_ask(project, member, role):
    user = member(role)
    url = f"/api/v1/projects/{project.slug}/reports/leaderboard/"
    limit = BOOT_LIMITS[role]
    started = time.process_time()
    response = api(user).get(url, {"n_boot": limit + 1})
    assert response.status_code == 400
    assert str(limit) in response.json()["n_boot"][0]
    assert api(user).get(url, {"n_boot": 10_000, "format": "csv"}).status_code == 400
    assert time.process_time() - started < 1  # refused before any bootstrap
    assert api(user).get(url, {"n_boot": limit}).status_code == 200


@pytest.mark.parametrize("role", [Role.LEAD, Role.CONSUMER])
def test_leaderboard_page_refuses_more_replicates_than_the_role_may_ask(
    client, project, member, role
):
    client.force_login(member(role))
    url = f"/projects/{project.slug}/reports/leaderboard/"
    limit = BOOT_LIMITS[role]
    response = client.get(url, {"n_boot": limit + 1})
    assert response.status_code == 400
    assert f"less than or equal to {limit}" in response.content.decode()
    assert client.get(url, {"n_boot": limit}).status_code == 200


@pytest.mark.parametrize("value", ["abc", "\x00", "1e3", "0", "-5"])
def test_leaderboard_rejects_malformed_n_boot(client, project, member, value):
    user = member(Role.CONSUMER)
    assert (
        api(user)
        .get(f"/api/v1/projects/{project.slug}/reports/leaderboard/", {"n_boot": value})
        .status_code
        == 400
    )
    client.force_login(user)
    response = client.get(f"/projects/{project.slug}/reports/leaderboard/", {"n_boot": value})
    assert response.status_code == 400


# ---------------------------------------------------------------------------
# Every page and API of ratings and exports: NUL in any query parameter is no 500
# ---------------------------------------------------------------------------

PARAMS = [
    "kind",
    "criterion",
    "metric",
    "model",
    "topic",
    "source",
    "date_from",
    "date_to",
    "n_boot",
    "seed",
    "confidence",
    "include_external",
    "limit",
    "offset",
    "current",
    "format",
    "state",
    "flag",
    "extra",
]


def get_routes(patterns=None, prefix=""):
    """(route, names of its URL arguments) of every URL of the ratings and exports apps."""
    from django.urls import URLPattern, URLResolver, get_resolver

    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            yield from get_routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            module = getattr(p.callback, "__module__", "")
            if module.startswith(("ratings.", "exports.")):
                yield prefix + str(p.pattern), list(p.pattern.converters)


def test_nul_in_the_query_parameters_is_never_a_server_error(client, rated_project, lead):
    """Every GET of the ratings and exports apps, with a NUL in each parameter any of them
    reads: a refusal (400, 404, 405) or an answer that ignores them, never a 500."""
    item = Item.objects.filter(project=rated_project).first()
    values = {"slug": rated_project.slug, "pk": item.pk, "rater_id": lead.pk}
    values |= {"kind": "score", "name": "x.jsonl"}
    client.force_login(lead)
    tried = 0
    for route, args in get_routes():
        path = "/" + route
        for arg in args:
            path = re.sub(rf"<(\w+:)?{arg}>", str(values[arg]), path)
        assert "<" not in path, path
        response = client.get(path, dict.fromkeys(PARAMS, "\x00"))
        assert response.status_code < 500, (path, response.status_code)
        tried += 1
    assert tried > 20


# ---------------------------------------------------------------------------
# Export options through the API: the types ExportOptions and ExportFilters declare
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"model": "\x00"}, "model"),
        ({"source": "a\x00b"}, "source"),
        ({"kto_criterion": "\x00"}, "kto_criterion"),
        ({"reveal_raters": "\x00"}, "reveal_raters"),
        ({"seed": "abc"}, "seed"),
        ({"seed": "9" * 5000}, "seed"),
        ({"seed": True}, "seed"),
        ({"min_raters": 1.5}, "min_raters"),
        ({"tie_margin": "abc"}, "tie_margin"),
        ({"include_external": "yes"}, "include_external"),
        ({"min_agreement": [1]}, "min_agreement"),
    ],
)
def test_export_api_refuses_options_of_the_wrong_type(project, lead, options, key):
    from exports.models import ExportJob

    response = api(lead).post(
        f"/api/v1/projects/{project.slug}/exports/",
        {"format": "trl", "options": options},
        format="json",
    )
    assert response.status_code == 400 and key in response.json()
    assert not ExportJob.objects.exists()


def test_export_api_takes_options_of_the_declared_types(project, lead):
    options = {
        "seed": 3,
        "min_agreement": 1,  # an int where a float is declared
        "tie_margin": 0.5,
        "model": "m",
        "include_external": False,
        "date_from": "2024-01-01T00:00:00+00:00",
        "kto_criterion": None,
    }
    response = api(lead).post(
        f"/api/v1/projects/{project.slug}/exports/",
        {"format": "trl", "options": options},
        format="json",
    )
    assert response.status_code == 202, response.content
