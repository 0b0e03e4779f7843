"""Every page of the demo opens without a server error for every demo role: the demo is
loaded (its tasks run, as a worker would run them), each demo user logs in and the links of
each page are followed breadth-first within the site. On SQLite and on PostgreSQL alike
(``dev.py test --sqlite`` and ``dev.py test``).

Filter forms (GET) are sent too, each menu set to its first choice: the KB-correctness page
once answered 500 on SQLite for a topic filter only. Pages of one kind (one URL pattern and set of query keys: an item, a rater, a filter) are
opened a few times each rather than once per row, so that the walk covers every kind of page
in seconds instead of opening every item of the demo."""

from collections import Counter, deque
from html.parser import HTMLParser
from io import StringIO
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import Resolver404, resolve

from ratings.management.commands.load_demo import DEMO_USERS

pytestmark = pytest.mark.django_db

SAME_KIND = 3  # pages opened per URL pattern and set of query keys
SKIP_PREFIXES = ("/static/", "/media/")


class Links(HTMLParser):
    """The links of a page, and for each GET form (filters) the URL it asks for with every
    menu set to its first non-empty choice."""

    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.form: dict | None = None
        self.select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if (
            tag == "a"
            and a.get("href")
            and not a["href"].startswith(("#", "mailto:", "javascript:"))
        ):
            self.hrefs.append(a["href"])
        elif tag == "form" and (a.get("method") or "get").lower() == "get":
            self.form = {"action": a.get("action") or "", "fields": {}}
        elif self.form is not None and tag == "input" and a.get("name"):
            if a.get("type") not in ("submit", "button", "checkbox", "radio"):
                self.form["fields"].setdefault(a["name"], a.get("value") or "")
        elif self.form is not None and tag == "select" and a.get("name"):
            self.select = a["name"]
            self.form["fields"].setdefault(self.select, "")
        elif self.select and tag == "option" and not self.form["fields"][self.select]:
            self.form["fields"][self.select] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "select":
            self.select = None
        elif tag == "form" and self.form is not None:
            query = urlencode({k: v for k, v in self.form["fields"].items() if v})
            if query:
                self.hrefs.append(f"{self.form['action']}?{query}")
            self.form = None


def kind_of(url: str) -> tuple:
    parts = urlsplit(url)
    try:
        route = resolve(parts.path).route
    except Resolver404:
        route = parts.path
    keys = sorted({pair.split("=", 1)[0] for pair in parts.query.split("&") if pair})
    return route, tuple(keys)


def walk(client: Client) -> tuple[list[str], list[str]]:
    """Open every page reachable from the home page; return them and the server errors."""
    queue, seen, kinds = deque(["/"]), {"/"}, Counter()
    opened, errors = [], []
    while queue:
        url = queue.popleft()
        response = client.get(url)
        opened.append(url)
        if response.status_code >= 500:
            errors.append(f"{url} answered {response.status_code}")
            continue
        if response.status_code in (301, 302, 303, 307, 308):
            found = [response["Location"]]
        elif "text/html" in response.get("Content-Type", ""):
            parser = Links()
            parser.feed(response.content.decode())
            found = parser.hrefs
        else:
            continue
        for href in found:
            target = urlsplit(urljoin(url, href))
            if target.netloc not in ("", "testserver") or target.path.startswith(SKIP_PREFIXES):
                continue
            link = target.path + (f"?{target.query}" if target.query else "")
            if link in seen:
                continue
            seen.add(link)
            kind = kind_of(link)
            if kinds[kind] < SAME_KIND:
                kinds[kind] += 1
                queue.append(link)
    return opened, errors


@pytest.fixture
def demo(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # what the worker does after it
        call_command("load_demo", force=True, stdout=StringIO())


def test_every_page_of_the_demo_opens_for_every_role(demo):
    users = get_user_model().objects.in_bulk(
        [name for name, _ in DEMO_USERS], field_name="username"
    )
    assert len(users) == len(DEMO_USERS) >= 6
    report = {}
    for name, _role in DEMO_USERS:
        client = Client(raise_request_exception=False)  # a 500 is reported, not raised
        client.force_login(users[name])
        opened, errors = walk(client)
        report[name] = (opened, errors)
    assert {name: errors for name, (_, errors) in report.items() if errors} == {}
    # a walk that opened only the home page would prove nothing: each role reached its work
    must_reach = {
        "lead": ["/projects/demo/quality/", "/projects/demo/settings/", "/items/"],
        "rater1": ["/projects/demo/rate/pairwise/", "/projects/demo/mine/"],
        "sme": ["/projects/demo/rate/kb_verify/", "/judgments/"],
        "consumer": ["/projects/demo/exports/", "/projects/demo/reports/kb/"],
    }
    for name, prefixes in must_reach.items():
        opened = report[name][0]
        for prefix in prefixes:
            assert any(url.startswith(prefix) for url in opened), (name, prefix, opened)
    assert len(report["lead"][0]) > 30
