"""A whole campaign through the web pages only, as a newcomer runs it after ``dev.py up``:
a lead (allowed by an administrator to create projects) makes a pairwise project, uploads
their own transcripts, queues the pairs, invites a rater who chooses a password through the
one-time link, the rater judges every pair, and the lead exports and downloads the preference
file. Nothing is set up in the database beyond the lead's account and permission."""

import json
import re

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Three conversations, each with two candidate answers to the same question: three pairs.
TRANSCRIPTS = [
    {
        "id": f"ticket-{i}",
        "occurred_at": "2026-03-02T10:00:00Z",
        "messages": [{"role": "user", "content": question}],
        "candidates": [
            {"id": f"ticket-{i}-a", "model": "bot-a", "content": a},
            {"id": f"ticket-{i}-b", "model": "bot-b", "content": b},
        ],
    }
    for i, (question, a, b) in enumerate(
        [
            (
                "How do I get a refund?",
                "Open Orders, pick the order and press Refund.",
                "Write to billing and wait.",
            ),
            (
                "Can I change my delivery address?",
                "Yes, until the parcel ships: Orders, then Edit address.",
                "No.",
            ),
            (
                "Where is my invoice?",
                "Invoices are under Account, then Documents.",
                "Ask your bank.",
            ),
        ]
    )
]
PROMPTS = {t["messages"][0]["content"] for t in TRANSCRIPTS}


def log_in(page, username, password):
    page.goto("/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My projects")).to_be_visible()


def test_a_new_lead_runs_a_campaign_from_upload_to_export(new_page, tmp_path):
    # What an administrator does once for a newcomer: an account allowed to create projects.
    lead = UserFactory(username="lena-lead")
    lead.set_password("lead-pass-1234")
    lead.save()
    lead.user_permissions.add(Permission.objects.get(codename="add_project"))

    page = new_page()
    log_in(page, "lena-lead", "lead-pass-1234")

    # A pairwise project, one rater per item.
    page.get_by_role("link", name="New project").click()
    page.get_by_label("Name").fill("Support bot")
    page.get_by_label("Guidelines").fill("Prefer the answer that **solves the problem**.")
    page.get_by_label("Rubric scoring").uncheck()
    page.get_by_label("Pairwise preference").check()
    page.get_by_label("Overlap").fill("1")
    page.get_by_label("Gold rate").fill("0")
    page.get_by_role("button", name="Create project").click()
    expect(page).to_have_url(re.compile(r"/projects/support-bot/rubric/$"))

    # The lead's own transcripts, uploaded on the import page.
    upload = tmp_path / "support.jsonl"
    upload.write_text("".join(json.dumps(t) + "\n" for t in TRANSCRIPTS), encoding="utf-8")
    page.get_by_role("link", name="Import transcripts").first.click()
    page.locator("input[name=file]").set_input_files(str(upload))
    page.get_by_role("button", name="Upload and import").click()
    expect(page.get_by_test_id("job-state")).to_have_text("succeeded")
    expect(page.get_by_test_id("imported")).to_have_text("3")

    # Queue the pairs on the set-up page.
    page.goto("/projects/support-bot/settings/")
    queue = page.locator("#queue")
    queue.get_by_label("Pairwise preference").check()
    queue.get_by_role("button", name="Queue items").click()
    expect(page.locator(".flash").first).to_contain_text("Queued: 3 pairwise")

    # Invite a rater; the lead reads the one-time link from the page.
    page.get_by_role("link", name="Members").first.click()
    invite = page.locator("#invite")
    invite.get_by_label("User name").fill("rita")
    invite.get_by_role("button", name="Invite").click()
    link = page.locator("#invite-link").inner_text()

    # The rater, in a browser of their own, chooses a password and logs in.
    rater = new_page()
    rater.goto(link)
    rater.locator("#id_new_password1").fill("rita-pass-5678")
    rater.locator("#id_new_password2").fill("rita-pass-5678")
    rater.get_by_role("button", name="Set password").click()
    expect(rater.locator(".flash")).to_contain_text("Password set")
    rater.get_by_label("User name").fill("rita")
    rater.get_by_label("Password").fill("rita-pass-5678")
    rater.get_by_role("button", name="Log in").click()
    card = rater.locator("[data-project=support-bot]")
    expect(card.get_by_test_id("remaining-pairwise")).to_have_text("3")

    # Every pair judged by keyboard: the answer shown on the left is much better.
    card.get_by_role("link", name=re.compile("Compare pairs")).click()
    expected = set()
    for _ in range(3):
        left = rater.locator('.response[data-slot="left"] .markdown').inner_text().strip()
        right = rater.locator('.response[data-slot="right"] .markdown').inner_text().strip()
        expected.add((left, right))
        rater.wait_for_timeout(50)  # time on the item, as a reader takes
        rater.keyboard.press("Shift+A")
        expect(rater.locator('input[name="choice"][value="left_much_better"]')).to_be_checked()
        with rater.expect_navigation():
            rater.keyboard.press("Enter")
        expect(rater.locator(".flash")).to_have_text("Saved.")
    expect(rater.get_by_role("heading", name="Nothing left for you here")).to_be_visible()
    answers = {c["content"] for t in TRANSCRIPTS for c in t["candidates"]}
    assert len(expected) == 3 and {text for pair in expected for text in pair} == answers

    # The lead exports the preference pairs (TRL) and downloads the file.
    page.goto("/")
    page.locator("[data-project=support-bot]").get_by_role("link", name="Exports").click()
    page.select_option("select[name=format]", "trl")
    page.select_option("select[name=file_type]", "jsonl")
    page.get_by_role("button", name="Start export").click()
    jobs = page.get_by_test_id("export-jobs")
    expect(jobs.locator("tbody tr").first).to_contain_text("succeeded")
    with page.expect_download() as download:
        jobs.get_by_role("link", name=re.compile(r"^support-bot-trl-.*\.jsonl$")).click()
    with open(download.value.path(), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    assert len(records) == 3
    assert {(r["chosen"], r["rejected"]) for r in records} == expected
    assert {r["prompt"] for r in records} == PROMPTS
