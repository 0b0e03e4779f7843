"""Personal API tokens: made, named, listed with their last use and revoked on the profile
page; sent as ``Authorization: Token <key>`` like DRF's tokens, which keep working."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import ApiToken, key_hash
from accounts.services import api_token_create, api_token_revoke
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PROJECTS = "/api/v1/projects/"


def api(key: str | None) -> APIClient:
    client = APIClient()
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_a_token_is_stored_as_a_hash_and_authenticates_its_user(lead, project):
    token, key = api_token_create(user=lead, name="labelling script")
    assert key.startswith("rl_") and len(key) > 40
    assert token.key_hash == key_hash(key) and key not in (token.key_hash, token.key_start)
    assert token.key_start == key[:8] and token.last_used_at is None
    response = api(key).get(PROJECTS)
    assert response.status_code == 200
    assert [p["slug"] for p in response.json()] == [project.slug]
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_last_use_is_written_at_most_once_a_minute(lead, django_assert_num_queries):
    token, key = api_token_create(user=lead, name="ci")
    client = api(key)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client.get(PROJECTS)
        first = ApiToken.objects.get().last_used_at
        clock.shift(timedelta(seconds=30))
        client.get(PROJECTS)
        assert ApiToken.objects.get().last_used_at == first
        clock.shift(timedelta(seconds=31))
        client.get(PROJECTS)
        assert ApiToken.objects.get().last_used_at > first


def test_a_user_may_hold_several_named_tokens_and_revoke_one(lead):
    _, key_a = api_token_create(user=lead, name="a")
    b, key_b = api_token_create(user=lead, name="b")
    api_token_revoke(user=lead, token_id=b.pk)
    assert api(key_a).get(PROJECTS).status_code == 200
    revoked = api(key_b).get(PROJECTS)
    assert revoked.status_code == 401 and revoked["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(("name", "message"), [("", "Give the token a name"), ("x" * 101, "100")])
def test_token_names_are_required_and_bounded(lead, name, message):
    with pytest.raises(ValidationError, match=message):
        api_token_create(user=lead, name=name)


def test_a_name_is_unique_per_user_only(lead):
    api_token_create(user=lead, name="ci")
    with pytest.raises(ValidationError, match="already have a token named"):
        api_token_create(user=lead, name="ci")
    api_token_create(user=UserFactory(), name="ci")


def test_nobody_revokes_another_users_token(lead):
    token, key = api_token_create(user=lead, name="mine")
    with pytest.raises(ValidationError, match="No such token"):
        api_token_revoke(user=UserFactory(), token_id=token.pk)
    assert api(key).get(PROJECTS).status_code == 200


@pytest.mark.parametrize("key", [None, "rl_not-a-token", "not-a-token", ""])
def test_missing_and_bad_tokens_answer_401_with_www_authenticate(key):
    response = api(key).get(PROJECTS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_an_inactive_users_token_is_refused(lead):
    _, key = api_token_create(user=lead, name="old")
    lead.is_active = False
    lead.save()
    assert api(key).get(PROJECTS).status_code == 401


def test_drf_tokens_keep_working(lead):
    assert api(Token.objects.create(user=lead).key).get(PROJECTS).status_code == 200


def test_profile_page_creates_lists_and_revokes_tokens(client, lead):
    client.force_login(lead)
    page = client.post("/account/", {"name": "notebook"})
    assert page.status_code == 200
    key = page.context["new_key"]
    assert key in page.content.decode()  # shown once, here
    assert api(key).get(PROJECTS).status_code == 200
    listed = client.get("/account/").content.decode()
    assert "notebook" in listed and key not in listed and key[:8] in listed
    token = ApiToken.objects.get()
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 302
    assert not ApiToken.objects.exists()


def test_profile_page_refuses_a_blank_name_next_to_the_field(client, lead):
    client.force_login(lead)
    page = client.post("/account/", {"name": "  "})
    assert page.status_code == 200 and not ApiToken.objects.exists()
    assert page.context["form"].errors["name"]


def test_profile_page_does_not_revoke_another_users_token(client, lead):
    token, _ = api_token_create(user=UserFactory(), name="theirs")
    client.force_login(lead)
    client.post(f"/account/tokens/{token.pk}/revoke/")
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_profile_needs_a_login(client):
    assert client.get("/account/").status_code == 302


def test_a_personal_token_costs_one_query_between_last_use_writes(lead, django_assert_num_queries):
    from accounts.authentication import ApiTokenAuthentication

    token, key = api_token_create(user=lead, name="ci")
    auth = ApiTokenAuthentication()
    with django_assert_num_queries(2):  # the lookup, and the first last-use write
        user, found = auth.authenticate_credentials(key)
    assert (user, found.pk, found.name) == (lead, token.pk, "ci")
    with django_assert_num_queries(1):
        auth.authenticate_credentials(key)


def test_changing_the_password_on_the_profile_revokes_the_users_tokens(client, lead):
    _, key = api_token_create(user=lead, name="laptop")
    client.force_login(lead)
    page = client.get("/account/password/")
    assert b"at least 8 characters" in page.content and b"<li></li>" not in page.content
    changed = client.post(
        "/account/password/",
        {
            "old_password": "pw",
            "new_password1": "a-long-pass-42",
            "new_password2": "a-long-pass-42",
        },
    )
    assert changed.status_code == 302 and changed["Location"] == "/account/"
    assert api(key).get(PROJECTS).status_code == 401
