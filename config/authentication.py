"""Token authentication for the API: DRF's ``TokenAuthentication`` with the same checks (the
key names a token, its user is active), reading the token and its user in one hand-written
query, prepared once per connection. Building that query with the ORM cost more CPU than the
rest of a small API request, and every token-authenticated request pays for it."""

import functools

from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from config.accel.token_lookup import TokenQuery, token_and_user
from config.accel.token_lookup import token_query as accel_token_query


@functools.cache
def token_query() -> TokenQuery:
    """The lookup of a DRF token (its ``created``) and its user."""
    return accel_token_query(Token, ["created"], "key")


class TokenAuthentication(authentication.TokenAuthentication):
    model = Token

    def authenticate_credentials(self, key: str):
        found = token_and_user(token_query(), key)
        if found is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        (created,), user = found
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = Token.from_db(
            connection.alias, ["key", "user_id", "created"], [key, user.pk, created]
        )
        token.user = user
        return user, token
