"""Safe by default: production mode unless asked, debug pages without secrets, login lockout
on every password path, Content-Security-Policy, HSTS, token revocation on password change,
401 for the API, 405 for methods a web page does not serve."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, path, reverse
from rest_framework.authtoken.models import Token

from accounts.services import api_token_create
from conversations.auth import API_TOKEN_MODELS
from conversations.models import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

ROOT = Path(__file__).resolve().parents[1]
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
PASSWORD = "Correct-horse-battery-9"


def _boom(request):
    raise RuntimeError("a bug")


# The URLs of the debug page test (pytest.mark.urls points here).
urlpatterns = [path("boom/", _boom)]


def _manage(args: list[str], env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "RATELOOP_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**clean, **env, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )


def documented_production_env() -> dict[str, str]:
    """The variables of the production environment file in docs/deploy.md (the block that
    starts with ``# /etc/rateloop/env``), with its placeholders as they are."""
    text = DEPLOY_DOC.read_text()
    block = re.search(r"```sh\n# /etc/rateloop/env\n(.*?)```", text, re.S)
    assert block, "docs/deploy.md has no '# /etc/rateloop/env' block"
    env = {}
    for line in block.group(1).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    return env


# --- production mode is the default -----------------------------------------------------


def test_with_no_variable_set_the_service_runs_in_production_mode_and_refuses_dev_defaults():
    result = _manage(["check"], {})
    assert result.returncode == 2
    assert "Refusing to start in production mode" in result.stderr
    assert "DJANGO_DEBUG=1" in result.stderr  # the message says how to develop locally
    assert "Traceback" not in result.stderr


def test_development_mode_is_asked_for_with_django_debug_1(tmp_path):
    result = _manage(
        ["shell", "-c", "from django.conf import settings; print(settings.DEBUG)"],
        {"DJANGO_DEBUG": "1", "RATELOOP_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True"


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    env = documented_production_env()
    for name in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DJANGO_HSTS_SECONDS"):
        assert name in env
    env["RATELOOP_VAR_DIR"] = str(tmp_path)
    result = _manage(["check", "--deploy"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    reported = set(re.findall(r"\(([\w.]+\.[EWC]\d+)\)", result.stdout + result.stderr))
    assert not reported, result.stdout + result.stderr
    shown = _manage(
        [
            "shell",
            "-c",
            "from django.conf import settings as s; print(s.DEBUG, s.SECURE_HSTS_SECONDS,"
            " s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER)",
        ],
        env,
    )
    last = shown.stdout.strip().splitlines()[-1]
    assert last.split(" ", 3)[:3] == ["False", env["DJANGO_HSTS_SECONDS"], "True"]


def test_check_deploy_warns_without_hsts(tmp_path):
    """The test above can fail: the same settings without HSTS are reported."""
    env = {**documented_production_env(), "RATELOOP_VAR_DIR": str(tmp_path)}
    del env["DJANGO_HSTS_SECONDS"]
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode != 0
    assert "security.W004" in result.stdout + result.stderr


# --- debug pages hide secrets -------------------------------------------------------------


@pytest.mark.urls("tests.test_security")
def test_debug_500_page_shows_no_database_or_broker_password(settings):
    settings.DEBUG = True
    settings.DATABASE_URL = "postgres://rateloop:db-pw-4471@db.internal:5432/rateloop"
    settings.CELERY_BROKER_URL = "redis://:broker-pw-9912@redis.internal:6379/0"
    settings.SOME_NEW_SERVICE = "amqp://worker:amqp-pw-3310@mq.internal:5672//"
    client = Client(raise_request_exception=False)
    # The development server copies the environment into every request's META.
    response = client.get(
        "/boom/",
        DATABASE_URL=settings.DATABASE_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
    )
    assert response.status_code == 500
    page = response.content.decode()
    assert "RuntimeError" in page and "DATABASE_URL" in page  # it is the technical page
    for secret in ("db-pw-4471", "broker-pw-9912", "amqp-pw-3310"):
        assert secret not in page


# --- login lockout ------------------------------------------------------------------------


def _web_login(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


def _admin_login(client, username, password):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
    )


def _api_login(client, username, password):
    return client.post(
        reverse("api-token"),
        {"username": username, "password": password},
        content_type="application/json",
    )


def _logged_in(path_name: str, client, response) -> bool:
    if path_name == "api":
        return response.status_code == 200 and "token" in response.json()
    return "_auth_user_id" in client.session


LOGINS = {"web": _web_login, "admin": _admin_login, "api": _api_login}


@pytest.mark.django_db
@pytest.mark.parametrize("where", LOGINS)
def test_thirty_wrong_passwords_then_the_right_one_is_refused(where):
    user = UserFactory(password=PASSWORD, is_staff=True)
    login = LOGINS[where]
    client = Client()
    for _ in range(30):
        response = login(client, user.username, "wrong-password")
        assert not _logged_in(where, client, response)
    response = login(client, user.username, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert response.headers["Retry-After"] == "900"
    assert not _logged_in(where, client, response)
    assert not Token.objects.filter(user=user).exists()
    # another client (another address too) is refused as well: the lock is on the user name
    other = Client(REMOTE_ADDR="10.9.8.7")
    assert login(other, user.username, PASSWORD).status_code == 429


@pytest.mark.django_db
@pytest.mark.parametrize("where", LOGINS)
def test_a_few_wrong_passwords_then_the_right_one_logs_in(where):
    user = UserFactory(password=PASSWORD, is_staff=True)
    client = Client()
    for _ in range(3):
        LOGINS[where](client, user.username, "wrong-password")
    response = LOGINS[where](client, user.username, PASSWORD)
    assert response.status_code in (200, 302)
    assert _logged_in(where, client, response)


@pytest.mark.django_db
def test_api_token_login_answers_the_token_that_authenticates():
    user = UserFactory(password=PASSWORD)
    response = _api_login(Client(), user.username, PASSWORD)
    assert response.status_code == 200
    key = response.json()["token"]
    api = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get(reverse("api:project-list")).status_code == 200
    wrong = _api_login(Client(), user.username, "nope")
    assert wrong.status_code == 400


@pytest.mark.django_db
def test_the_lockout_page_explains_itself():
    user = UserFactory(password=PASSWORD)
    client = Client()
    for _ in range(30):
        _web_login(client, user.username, "wrong")
    page = _web_login(client, user.username, PASSWORD).content.decode()
    assert "Login refused" in page and "15 minutes" in page


# --- Content-Security-Policy --------------------------------------------------------------


def _csp(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return {d.strip().split(" ", 1)[0]: d.strip().partition(" ")[2] for d in header.split(";")}


@pytest.mark.django_db
def test_pages_send_a_content_security_policy_without_inline_scripts():
    response = Client().get(reverse("login"))
    policy = _csp(response)
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy["default-src"]


@pytest.mark.django_db
def test_the_api_docs_page_has_no_inline_script_and_works_under_its_policy():
    user = UserFactory()
    client = Client()
    client.force_login(user)
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    policy = _csp(response)
    assert policy["script-src"] == "'self'"
    page = response.content.decode()
    assert not re.search(r"<script>(?!\s*</script>)", page)  # every script comes from a URL
    script = re.search(r'<script src="([^"]*\?script[^"]*)"', page)
    assert script and client.get(script.group(1).replace("&amp;", "&")).status_code == 200


def test_no_template_holds_an_inline_script_or_event_handler():
    """What the policy refuses: <script> without src, on...= attributes, javascript: URLs."""
    bad = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|javascript:", re.I)
    offenders = [
        str(p.relative_to(ROOT))
        for p in ROOT.glob("**/templates/**/*.html")
        if ".venv" not in p.parts and bad.search(p.read_text())
    ]
    assert offenders == []


# --- API tokens end with a password change ------------------------------------------------


def _tokens_of(user) -> int:
    return sum(
        apps.get_model(label).objects.filter(user_id=user.pk).count() for label in API_TOKEN_MODELS
    )


def _give_tokens(user) -> None:
    """One token of each kind: DRF's and a personal one."""
    Token.objects.create(user=user)
    api_token_create(user=user, name="script")


@pytest.mark.django_db
@pytest.mark.parametrize("path_name", ["password_change_form", "set_password_form", "method"])
def test_a_password_change_revokes_every_api_token(path_name):
    user = UserFactory(password=PASSWORD)
    _give_tokens(user)
    assert _tokens_of(user) == 2
    new = "Another-horse-staple-7"
    if path_name == "password_change_form":
        form = PasswordChangeForm(
            user, {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
        )
        assert form.is_valid(), form.errors
        form.save()
    elif path_name == "set_password_form":
        form = SetPasswordForm(user, {"new_password1": new, "new_password2": new})
        assert form.is_valid(), form.errors
        form.save()
    else:
        user.set_password(new)
        user.save()
    assert _tokens_of(user) == 0


@pytest.mark.django_db
def test_after_a_change_on_the_password_page_the_old_keys_answer_401():
    user = UserFactory(password=PASSWORD)
    drf_key = Token.objects.create(user=user).key
    _, personal_key = api_token_create(user=user, name="script")
    for key in (drf_key, personal_key):
        api = Client(HTTP_AUTHORIZATION=f"Token {key}")
        assert api.get(reverse("api:project-list")).status_code == 200
    client = Client()
    client.force_login(user)
    new = "Another-horse-staple-7"
    response = client.post(
        reverse("accounts:password-change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    for key in (drf_key, personal_key):
        api = Client(HTTP_AUTHORIZATION=f"Token {key}")
        assert api.get(reverse("api:project-list")).status_code == 401


@pytest.mark.django_db
def test_an_admin_changing_a_users_password_revokes_the_users_tokens():
    admin = UserFactory(is_staff=True, is_superuser=True)
    user = UserFactory(password=PASSWORD)
    _give_tokens(user)
    client = Client()
    client.force_login(admin)
    new = "Another-horse-staple-7"
    response = client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"password1": new, "password2": new, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert _tokens_of(user) == 0


@pytest.mark.django_db
def test_saving_a_user_without_a_password_change_keeps_the_tokens():
    user = UserFactory(password=PASSWORD)
    _give_tokens(user)
    before = _tokens_of(user)
    user.first_name = "Ada"
    user.save()
    assert _tokens_of(user) == before == 2


# --- API answers 401 with WWW-Authenticate; session auth keeps CSRF -----------------------


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", [None, "Token not-a-real-key", "Token "])
def test_api_without_valid_credentials_answers_401_with_www_authenticate(authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = Client().get(reverse("api:project-list"), **headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_session_authenticated_api_still_works_and_still_checks_csrf():
    project = ProjectFactory()
    lead = UserFactory()
    MembershipFactory(project=project, user=lead, role=Role.LEAD)
    client = Client(enforce_csrf_checks=True)
    client.force_login(lead)
    assert client.get(reverse("api:project-list")).status_code == 200
    url = reverse("api:import-create", args=[project.slug])
    refused = client.post(url, {})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    client.get(reverse("login"))  # sets the CSRF cookie
    allowed = client.post(url, {}, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert allowed.status_code == 400  # past authentication and CSRF: the file is missing


# --- web pages answer 405 to methods they do not serve ------------------------------------


def _web_patterns(resolver=None, prefix="", namespace=""):
    """(name, converters) of every named URL of the web UI: everything but the API and the
    admin, read from the URL resolver so that a new page is covered when it is added."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if route.startswith(("api/", "admin/")):
            continue
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _web_patterns(entry, route, ns)
        elif isinstance(entry, URLPattern) and entry.name:
            converters = dict(getattr(resolver.pattern, "converters", {}))
            converters.update(getattr(entry.pattern, "converters", {}))
            yield f"{namespace}{entry.name}", converters


@pytest.mark.django_db
def test_every_web_page_answers_405_to_put_and_delete():
    project = ProjectFactory()
    lead = UserFactory(is_staff=True, is_superuser=True)
    MembershipFactory(project=project, user=lead, role=Role.LEAD)
    client = Client()
    client.force_login(lead)
    values = {"SlugConverter": project.slug, "IntConverter": 1}
    urls = []
    for name, converters in _web_patterns():
        kwargs = {k: values.get(type(c).__name__, "x") for k, c in converters.items()}
        urls.append(reverse(name, kwargs=kwargs))
    assert len(urls) >= 15 and reverse("ratings:project", args=[project.slug]) in urls
    answers = {
        (url, m): getattr(client, m)(url).status_code for url in urls for m in ("put", "delete")
    }
    assert {k: v for k, v in answers.items() if v != 405} == {}
    # and the methods they do serve still work
    assert client.get(reverse("ratings:project", args=[project.slug])).status_code == 200


@pytest.mark.django_db
def test_405_names_the_methods_a_page_serves():
    client = Client()
    client.force_login(UserFactory())
    response = client.put(reverse("home"))
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, POST"
