"""Personal API tokens: any number per user, each named, its key stored only as a hash."""

import hashlib
import secrets

from django.conf import settings
from django.db import models

# A personal token's key starts with this, so that the authentication class can tell it from
# a key of DRF's one-per-user ``Token`` (40 hex digits) without a second query.
KEY_PREFIX = "rl_"


def key_hash(key: str) -> str:
    """SHA-256 of a key. Keys are 240 random bits, so a fast hash is enough (no salt, no
    stretching): the table alone never gives a usable key back."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_new() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def of_user(self, user) -> "ApiTokenQuerySet":
        return self.filter(user=user)


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The key's first characters, shown so that its owner can tell tokens apart.
    key_start = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="api_token_name_unique_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_start}…)"
