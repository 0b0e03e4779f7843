"""The account pages: my profile and API tokens, my password, and the invited user's
one-time page to choose a password."""

from django.contrib import messages
from django.contrib.auth import password_validation
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from accounts.forms import TokenCreateForm
from accounts.models import ApiToken
from accounts.services import api_token_create, api_token_revoke


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """My account: who I am, my projects' roles, and my API tokens (create, see, revoke)."""
    form = TokenCreateForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            token, new_key = api_token_create(user=request.user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form = TokenCreateForm()
            messages.success(request, f"Token “{token.name}” created. Copy its key now.")
    memberships = request.user.memberships.select_related("project").order_by("project__name")
    return render(
        request,
        "accounts/profile.html",
        {
            "form": form,
            "new_key": new_key,
            "tokens": ApiToken.objects.of_user(request.user),
            "memberships": memberships,
        },
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        api_token_revoke(user=request.user, token_id=pk)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Token revoked: requests with its key now fail.")
    return redirect("accounts:profile")


class PasswordRulesMixin:
    """The new password's help lists the rules, leaving out validators with nothing to say
    (a hook such as the token revocation has no rule for the user)."""

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        field = form.fields.get("new_password1")
        if field is not None:
            rules = [t for t in password_validation.password_validators_help_texts() if t]
            field.help_text = format_html(
                "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((r,) for r in rules))
            )
        return form


class SetPasswordView(PasswordRulesMixin, auth_views.PasswordResetConfirmView):
    """The invitation link: choose a password once, then log in."""

    template_name = "accounts/set_password.html"
    success_url = reverse_lazy("login")

    def form_valid(self, form):
        messages.success(self.request, "Password set. Log in with your user name and password.")
        return super().form_valid(form)


class PasswordChangeView(PasswordRulesMixin, auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:profile")

    def form_valid(self, form):
        messages.success(self.request, "Password changed.")
        return super().form_valid(form)
