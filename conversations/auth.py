"""Authentication rules that hold on every path: a password change revokes the user's API
tokens, and a locked-out login is answered the same way by the web, the admin and the API."""

from django.apps import apps
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework.authtoken.models import Token

# Every model whose rows let a client act as a user without the password: DRF's one token
# per user, and the personal tokens of the accounts app.
API_TOKEN_MODELS = ("authtoken.Token", "accounts.ApiToken")


class RevokeApiTokenOnPasswordChange:
    """Listed in ``AUTH_PASSWORD_VALIDATORS`` for its ``password_changed`` hook, which Django
    calls after any saved password change (the password change and set-password forms, the
    admin, ``manage.py changepassword``, ``set_password()`` then ``save()``), and not when a
    login merely rehashes the same password. A token is a password the user no longer
    controls once it has leaked; changing the password must end every token too, as it ends
    the user's other sessions. It validates nothing."""

    def validate(self, password, user=None) -> None:
        return None

    def password_changed(self, password, user=None) -> None:
        if user is None or user.pk is None:
            return
        for label in API_TOKEN_MODELS:
            try:
                model = apps.get_model(label)
            except LookupError:  # that app is not installed
                continue
            model.objects.filter(user_id=user.pk).delete()

    def get_help_text(self) -> str:
        return ""


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    """What a locked-out login attempt is answered (django-axes' ``AXES_LOCKOUT_CALLABLE``):
    429 with a JSON ``detail`` on the API, 429 with the login page's explanation elsewhere,
    both with ``Retry-After`` (the whole cool-off: each new failure starts it again)."""
    cooloff = int(settings.AXES_COOLOFF_TIME.total_seconds())
    message = (
        "Too many failed logins for this user name: logins are refused for "
        f"{cooloff // 60} minutes after the last failed attempt."
    )
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message}, status=429)
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(cooloff)
    return response


def api_token_issue(*, request: HttpRequest, username: str, password: str) -> Token:
    """The API token of the user with these credentials, made on first use.

    The password is checked by Django's ``authenticate``, so the login lockout counts this
    attempt like a web or admin login, and refuses it while the user name is locked out.
    Raises ``ValidationError`` when the credentials do not log in.
    """
    user = authenticate(request, username=username, password=password)
    if user is None:
        raise ValidationError("Unable to log in with this user name and password.")
    token, _ = Token.objects.get_or_create(user=user)
    return token
