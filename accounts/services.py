"""Accounts: personal API tokens, and accounts made by invitation (a one-time link to set
the password, built on Django's password-reset tokens)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import ApiToken, key_hash, key_new

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


@transaction.atomic
def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """Make a named token for ``user``; return it and its key. The key is shown once: only
    its hash is stored. A blank name or one the user already has -> ValidationError."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, e.g. the script that uses it."})
    if len(name) > 100:
        raise ValidationError({"name": "At most 100 characters."})
    if ApiToken.objects.of_user(user).filter(name=name).exists():
        raise ValidationError({"name": f"You already have a token named {name!r}."})
    key = key_new()
    token = ApiToken.objects.create(user=user, name=name, key_start=key[:8], key_hash=key_hash(key))
    return token, key


@transaction.atomic
def api_token_revoke(*, user, token_id: int) -> None:
    """Delete one of ``user``'s tokens; requests with its key fail from now on. Another
    user's token, or one that does not exist -> ValidationError (nothing is said about it)."""
    deleted, _ = ApiToken.objects.of_user(user).filter(pk=token_id).delete()
    if not deleted:
        raise ValidationError("No such token.")


def set_password_path(user) -> str:
    """The path of the one-time page where ``user`` chooses a password. It stops working once
    a password is set (Django's reset token covers the password hash and the last login) or
    after ``PASSWORD_RESET_TIMEOUT``."""
    return reverse(
        "accounts:set-password",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )


def mail_configured() -> bool:
    """True when Django's email backend can deliver: a non-SMTP backend (console, file, the
    tests' in-memory one) or SMTP with ``EMAIL_HOST`` set."""
    return settings.EMAIL_BACKEND != SMTP_BACKEND or bool(settings.EMAIL_HOST)


@transaction.atomic
def user_invite(*, username: str, email: str = "", invited_by, base_url: str = "") -> tuple:
    """Create an account with no usable password; return (user, set-password path, mailed).

    The invitee sets a password through the returned path (shown to whoever invited them).
    When ``email`` is given and a mail backend is configured, the link (``base_url`` + path)
    is also mailed after the transaction commits. A taken username -> ValidationError.
    """
    username = (username or "").strip()
    User = get_user_model()
    username_field = User._meta.get_field(User.USERNAME_FIELD)
    try:
        username_field.run_validators(username)
    except ValidationError as exc:
        raise ValidationError({"username": exc.messages}) from None
    if not username:
        raise ValidationError({"username": "Give a username."})
    if User.objects.filter(**{f"{User.USERNAME_FIELD}__iexact": username}).exists():
        raise ValidationError(
            {"username": f"{username!r} already has an account: add it as an existing user."}
        )
    user = User(**{User.USERNAME_FIELD: username}, email=(email or "").strip())
    user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    path = set_password_path(user)
    mailed = bool(user.email) and mail_configured()
    if mailed:
        inviter = getattr(invited_by, "get_username", lambda: "A project lead")()
        transaction.on_commit(
            lambda: send_mail(
                subject="Your Rateloop account",
                message=(
                    f"{inviter} made you a Rateloop account, user name {username}.\n"
                    f"Choose your password here (the link works once):\n{base_url}{path}\n"
                ),
                from_email=None,
                recipient_list=[user.email],
            )
        )
    return user, path, mailed
