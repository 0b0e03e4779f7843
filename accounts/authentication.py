"""API authentication by personal tokens (``accounts.ApiToken``) and by DRF's one-per-user
``Token`` (made in the admin or with ``manage.py drf_create_token``), both sent as
``Authorization: Token <key>``. A key's prefix says which table holds it, so each request
costs one lookup. A missing or bad token answers 401 with ``WWW-Authenticate: Token``."""

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions

from accounts.models import KEY_PREFIX, ApiToken, key_hash
from config.authentication import TokenAuthentication

# ``last_used_at`` is written at most this often per token: a rating client sends several
# requests a second, and a write per request would cost more than the request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str):
        if not key.startswith(KEY_PREFIX):
            return super().authenticate_credentials(key)
        token = ApiToken.objects.select_related("user").filter(key_hash=key_hash(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword
