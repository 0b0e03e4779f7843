"""Stable rater pseudonyms for data consumers.

A pseudonym is an HMAC of (project, user id) under ``RATELOOP_PSEUDONYM_KEY`` (default: the
secret key): the same rater keeps the same pseudonym in every export of a project, other
projects cannot link it, and nobody without the key can reverse it.
"""

import hashlib
import hmac

from django.conf import settings


def rater_pseudonym(project_id: int, user_id: int) -> str:
    key = (getattr(settings, "PSEUDONYM_KEY", "") or settings.SECRET_KEY).encode()
    digest = hmac.new(key, f"{project_id}:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"rater-{digest[:12]}"


def rater_labels(*, project, user_ids, reveal: bool) -> dict[int, str]:
    """Map user ids to what a consumer may see: user names when the project (or the lead
    asking) allows it, else pseudonyms."""
    from django.contrib.auth import get_user_model

    ids = list(set(user_ids))
    if reveal:
        return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    return {uid: rater_pseudonym(project.pk, uid) for uid in ids}
