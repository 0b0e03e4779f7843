"""API authentication by personal tokens (``accounts.ApiToken``) and by DRF's one-per-user
``Token`` (made in the admin or with ``manage.py drf_create_token``), both sent as
``Authorization: Token <key>``. A key's prefix says which table holds it, so each request
costs one lookup. A missing or bad token answers 401 with ``WWW-Authenticate: Token``.

As for DRF's tokens (``config.authentication``), the token and its user are read with one
hand-written query. Measured on the demo's SQLite database, 3,000 authentications of each
kind in one run: built by the ORM the lookup cost 7.6 ms per request, against 1.0 ms for a
DRF token; hand-written, 0.61 ms against 0.58 ms."""

import functools
from datetime import timedelta

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions

from accounts.models import KEY_PREFIX, ApiToken, key_hash
from config.accel.token_lookup import TokenQuery, token_and_user
from config.accel.token_lookup import token_query as accel_token_query
from config.authentication import TokenAuthentication

# ``last_used_at`` is written at most this often per token: a rating client sends several
# requests a second, and a write per request would cost more than the request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@functools.cache
def token_query() -> TokenQuery:
    """The lookup of a personal token (its id, name and last use) and its user."""
    return accel_token_query(ApiToken, ["id", "name", "last_used_at"], "key_hash")


class ApiTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str):
        if not key.startswith(KEY_PREFIX):
            return super().authenticate_credentials(key)
        found = token_and_user(token_query(), key_hash(key))
        if found is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        (token_id, name, last_used_at), user = found
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = ApiToken.from_db(
            connection.alias,
            ["id", "user_id", "name", "last_used_at"],
            [token_id, user.pk, name, last_used_at],
        )
        token.user = user
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return user, token

    def authenticate_header(self, request) -> str:
        return self.keyword
