"""The rater's pages in a real browser: keyboard-only rating, skipping, progress, dialogs,
escaping of transcript text and a tablet-sized screen. Every flow is checked in the database.
"""

import re

import pytest
from playwright.sync_api import expect

from conversations.models import KBReference, Message
from ratings.models import Assignment, AssignmentState, Judgment
from ratings.services import assignments
from ratings.services.rubrics import rubric_set

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def rate_url(project, kind: str) -> str:
    return f"/projects/{project.slug}/rate/{kind}/"


def shown_assignment_id(page) -> int:
    """The assignment the page's rating form submits to."""
    action = page.locator("#rate-form").get_attribute("action")
    return int(re.search(r"/assignments/(\d+)/", action).group(1))


def keep_working(page, ms: int = 50) -> None:
    """Let some time pass on the item, as a rater reading it would."""
    page.wait_for_timeout(ms)


def test_log_in_through_the_form(page, rater, rated_project):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))

    page.get_by_label("User name").fill(rater.username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    expect(page).to_have_url(re.compile(r"/login/"))
    rater.refresh_from_db()
    assert rater.last_login is None

    page.get_by_label("User name").fill(rater.username)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My projects")).to_be_visible()
    expect(page.locator(f'[data-project="{rated_project.slug}"]')).to_contain_text("Support bot")
    expect(page.get_by_role("button", name=f"Log out {rater.username}")).to_be_visible()
    rater.refresh_from_db()
    assert rater.last_login is not None


def test_score_a_response_by_keyboard_only(page, login_as, rater, rated_project):
    login_as(page, rater)
    page.goto(rate_url(rated_project, "score"))
    first = shown_assignment_id(page)
    active = page.locator("fieldset.criterion.active")
    expect(active).to_have_attribute("data-criterion", "helpfulness")

    keep_working(page)
    page.keyboard.press("4")  # helpfulness: Good
    expect(active).to_have_attribute("data-criterion", "accuracy")
    page.keyboard.press("2")  # accuracy: No
    expect(active).to_have_attribute("data-criterion", "tone")
    page.keyboard.press("3")  # tone: warm
    expect(page.locator('input[name="score-helpfulness"][value="4"]')).to_be_checked()
    expect(page.locator('input[name="score-accuracy"][value="no"]')).to_be_checked()
    with page.expect_navigation():
        page.keyboard.press("Enter")

    judgment = Judgment.objects.get(rater=rater)
    assert judgment.assignment_id == first
    assert {s.criterion.key: (s.value, s.choices) for s in judgment.scores.all()} == {
        "helpfulness": (4.0, []),
        "accuracy": (0.0, []),
        "tone": (2.0, ["warm"]),
    }
    assert judgment.time_on_task_ms is not None and judgment.time_on_task_ms > 0
    assert Assignment.objects.get(pk=first).state == AssignmentState.SUBMITTED

    # The page moved on to the next score item, freshly leased to this rater.
    expect(page).to_have_url(re.compile(rate_url(rated_project, "score") + "$"))
    expect(page.locator(".flash")).to_have_text("Saved.")
    expect(page.get_by_test_id("done-today")).to_have_text("1")
    nxt = shown_assignment_id(page)
    assert nxt != first
    assert Assignment.objects.get(pk=nxt).state == AssignmentState.LEASED


def test_ten_point_scale_is_reachable_by_keyboard(page, login_as, rater, lead, rated_project):
    rubric_set(
        project=rated_project,
        user=lead,
        criteria=[
            {
                "key": "overall",
                "label": "Overall",
                "scale": "likert",
                "points": 10,
                "anchors": ["Poor", "Excellent"],
            },
            {"key": "accuracy", "label": "Accuracy", "scale": "binary"},
        ],
    )
    login_as(page, rater)
    page.goto(rate_url(rated_project, "score"))
    ten = page.locator('input[name="score-overall"][value="10"]')
    expect(page.locator("label.opt", has=ten).locator("kbd")).to_have_text("0")
    page.keyboard.press("0")  # the 10th point
    expect(ten).to_be_checked()
    page.keyboard.press("1")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    judgment = Judgment.objects.get(rater=rater)
    assert {s.criterion.key: s.value for s in judgment.scores.all()} == {
        "overall": 10.0,
        "accuracy": 1.0,
    }


def test_enter_pressed_twice_sends_the_answer_once(page, login_as, rater, rated_project):
    login_as(page, rater)
    page.goto(rate_url(rated_project, "score"))
    first = shown_assignment_id(page)
    held = []  # hold the answer on its way, as on a slow connection
    page.route("**/assignments/*/submit/", lambda route: held.append(route))

    page.keyboard.press("4")
    page.keyboard.press("1")
    with page.expect_request("**/assignments/*/submit/"):
        page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # impatient second press while the first is in flight
    page.wait_for_timeout(300)  # time enough for a second request to show up
    assert len(held) == 1
    with page.expect_navigation():
        held[0].continue_()

    expect(page.locator(".flash")).to_have_text("Saved.")
    assert Judgment.objects.get(rater=rater).assignment_id == first
    assert shown_assignment_id(page) != first


@pytest.mark.parametrize("left_is_a", [True, False], ids=["A-on-left", "B-on-left"])
def test_judge_a_pair_by_keyboard(page, login_as, rater, rated_project, monkeypatch, left_is_a):
    # Fix the side the server picks, so both mappings back to A/B are exercised every run.
    monkeypatch.setattr(assignments.secrets, "randbits", lambda _bits: int(left_is_a))
    login_as(page, rater)
    page.goto(rate_url(rated_project, "pairwise"))
    assignment = Assignment.objects.select_related("item__response", "item__response_b").get(
        pk=shown_assignment_id(page)
    )
    assert assignment.left_is_a is left_is_a
    item = assignment.item
    left, right = (
        (item.response, item.response_b) if left_is_a else (item.response_b, item.response)
    )
    expect(page.locator('.response[data-slot="left"] .markdown')).to_have_text(left.content)
    expect(page.locator('.response[data-slot="right"] .markdown')).to_have_text(right.content)

    keep_working(page)
    page.keyboard.press("Shift+A")  # left much better
    page.keyboard.press("x")  # both bad all the same
    expect(page.locator('input[name="choice"][value="left_much_better"]')).to_be_checked()
    expect(page.locator('input[name="both_bad"]')).to_be_checked()
    with page.expect_navigation():
        page.keyboard.press("Enter")

    judgment = Judgment.objects.get(rater=rater)
    assert judgment.item_id == item.pk
    assert judgment.left_is_a is left_is_a
    assert judgment.preference == (-2 if left_is_a else 2)
    assert judgment.both_bad is True
    assert judgment.time_on_task_ms > 0
    expect(page.locator(".flash")).to_have_text("Saved.")
    assert shown_assignment_id(page) != assignment.pk


def test_sme_submits_a_kb_verdict(page, login_as, sme, kb_project):
    login_as(page, sme)
    page.goto(rate_url(kb_project, "kb_verify"))
    answer = page.locator('.response[data-slot="response"]')
    passage = page.locator('.kb-passages .kb-ref[data-article="KB-42"]')
    expect(answer).to_contain_text("within 90 days")
    expect(passage).to_contain_text("Return policy")
    expect(passage.locator("blockquote")).to_have_text(
        "Items can be returned within 30 days of delivery."
    )
    # The passage sits right under the answer, both on screen without scrolling.
    a, p = answer.bounding_box(), passage.bounding_box()
    assert a["y"] + a["height"] <= p["y"] < a["y"] + a["height"] + 120
    assert p["y"] + p["height"] <= page.viewport_size["height"]

    keep_working(page)
    page.keyboard.press("i")
    expect(page.locator('input[name="verdict"][value="incorrect"]')).to_be_checked()
    page.get_by_label("Corrected answer (if incorrect)").click()
    page.keyboard.type("Items can be returned within 30 days of delivery.")
    page.get_by_label("Article KB-42").select_option("outdated")
    page.keyboard.press("Escape")  # leave the field, then submit with Enter
    with page.expect_navigation():
        page.keyboard.press("Enter")

    judgment = Judgment.objects.get(rater=sme)
    assert judgment.verdict == "incorrect"
    assert judgment.corrected_answer == "Items can be returned within 30 days of delivery."
    assert judgment.kb_issues == [{"article_id": "KB-42", "problem": "outdated"}]
    assert judgment.time_on_task_ms > 0
    expect(page.get_by_test_id("queue-empty")).to_be_visible()


def test_kb_link_is_offered_only_for_web_addresses(page, login_as, sme, kb_project):
    KBReference.objects.update(url="javascript:alert(document.cookie)")
    login_as(page, sme)
    page.goto(rate_url(kb_project, "kb_verify"))
    passage = page.locator('.kb-ref[data-article="KB-42"]')
    expect(passage).to_contain_text("Return policy")
    expect(passage.locator("a")).to_have_count(0)

    KBReference.objects.update(url="https://kb.example.com/articles/42")
    page.reload()
    expect(passage.get_by_role("link", name="open")).to_have_attribute(
        "href", "https://kb.example.com/articles/42"
    )


def test_skip_with_a_reason(page, login_as, rater, rated_project):
    login_as(page, rater)
    page.goto(rate_url(rated_project, "pairwise"))
    first = shown_assignment_id(page)

    page.keyboard.press("s")
    reason = page.locator("#skip-reason")
    expect(reason).to_be_focused()
    expect(reason).to_have_value("")  # the S key itself is not typed into the box
    page.keyboard.type("Not in my language")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    skipped = Assignment.objects.get(pk=first)
    assert skipped.state == AssignmentState.SKIPPED
    assert skipped.skip_reason == "Not in my language"
    assert not Judgment.objects.filter(rater=rater).exists()
    expect(page.locator(".flash")).to_contain_text("Skipped")
    nxt = shown_assignment_id(page)
    assert nxt != first
    assert Assignment.objects.get(pk=nxt).item_id != skipped.item_id


def test_skip_the_last_item_shows_the_empty_queue(page, login_as, sme, kb_project):
    login_as(page, sme)
    page.goto(rate_url(kb_project, "kb_verify"))
    page.keyboard.press("s")
    page.keyboard.type("Outside my expertise")
    with page.expect_navigation():
        page.get_by_role("button", name="Skip", exact=True).click()
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    assert Assignment.objects.get(rater=sme).skip_reason == "Outside my expertise"


def test_progress_rises_after_a_submission(new_page, login_as, rater, lead, rated_project):
    home = login_as(new_page(), rater)
    overview = login_as(new_page(), lead)
    overview.goto(f"/projects/{rated_project.slug}/")
    expect(overview.get_by_test_id("complete-score")).to_have_text("0")

    home.goto("/")
    card = home.locator(f'[data-project="{rated_project.slug}"]')
    expect(card.get_by_test_id("done-today")).to_have_text("0")
    expect(card.get_by_test_id("remaining-score")).to_have_text("6")
    card.get_by_role("link", name=re.compile("Score responses")).click()
    expect(home.locator("fieldset.criterion.active")).to_be_visible()
    overview.reload()
    expect(overview.get_by_test_id("in-progress-score")).to_have_text("1")

    home.keyboard.press("5")
    home.keyboard.press("1")
    with home.expect_navigation():
        home.keyboard.press("Enter")
    assert Judgment.objects.filter(rater=rater).count() == 1

    home.goto("/")
    expect(card.get_by_test_id("done-today")).to_have_text("1")
    remaining = int(card.get_by_test_id("remaining-score").inner_text())
    assert remaining < 6  # the scored item (and the next one now leased to me) are off the list

    overview.reload()
    expect(overview.get_by_test_id("complete-score")).to_have_text("1")
    expect(overview.get_by_test_id(f"judgments-{rater.username}")).to_have_text("1")


def test_help_and_guidelines_dialogs(page, login_as, rater, rated_project):
    login_as(page, rater)
    page.goto(rate_url(rated_project, "score"))
    help_dialog, guide = page.locator("#help-dialog"), page.locator("#guidelines-dialog")
    expect(help_dialog).to_be_hidden()

    page.keyboard.press("?")
    expect(help_dialog).to_be_visible()
    expect(help_dialog).to_contain_text("Keyboard shortcuts")
    page.keyboard.press("4")  # keys do not rate behind an open dialog
    expect(page.locator('input[name="score-helpfulness"]:checked')).to_have_count(0)
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()

    page.keyboard.press("g")
    expect(guide).to_be_visible()
    expect(guide.get_by_role("heading", name="Rating guide")).to_be_visible()
    expect(guide.locator("strong")).to_have_text("cites its source")
    page.keyboard.press("Escape")
    expect(guide).to_be_hidden()

    page.get_by_role("button", name="Shortcuts (?)").click()
    expect(help_dialog).to_be_visible()
    help_dialog.get_by_role("button", name="Close").click()
    expect(help_dialog).to_be_hidden()
    # Rating keys work again once the dialogs are closed.
    page.keyboard.press("4")
    expect(page.locator('input[name="score-helpfulness"][value="4"]')).to_be_checked()


def test_transcript_markup_is_shown_as_text(page, login_as, rater, rated_project):
    payload = "<script>alert('script')</script> **bold** <img src=x onerror=\"alert('img')\">"
    Message.objects.filter(conversation__project=rated_project).update(content=payload)
    dialogs = []

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    login_as(page, rater)
    page.goto(rate_url(rated_project, "pairwise"))
    user_turn = page.locator(".transcript .turn.role-user .markdown")
    expect(user_turn).to_contain_text("<script>alert('script')</script>")
    expect(user_turn).to_contain_text("<img src=x onerror=\"alert('img')\">")
    expect(user_turn.locator("strong")).to_have_text("bold")  # Markdown still renders
    transcript = page.locator(".transcript")
    expect(transcript.locator("script")).to_have_count(0)
    expect(transcript.locator("img")).to_have_count(0)
    expect(page.locator('.response[data-slot="left"]')).to_contain_text("<script>")
    page.wait_for_timeout(200)  # an injected handler would have fired by now
    assert dialogs == []


def test_rating_page_fits_a_tablet(new_page, login_as, rater, rated_project):
    long_url = "https://docs.example.com/" + "very-long-path-segment/" * 12
    code = "```python\nresult = compute(" + ", ".join(f"arg{i}" for i in range(60)) + ")\n```"
    Message.objects.filter(conversation__project=rated_project, role="assistant").update(
        content=f"See {long_url} for details.\n\n{code}"
    )
    Message.objects.filter(conversation__project=rated_project, role="user").update(
        content="\n\n".join(f"Paragraph {i} of a long question." for i in range(25))
    )
    width, height = 820, 1180
    page = login_as(new_page({"width": width, "height": height}), rater)

    def assert_no_horizontal_scroll():
        assert page.evaluate("document.scrollingElement.scrollWidth") <= width

    def assert_within_width(locator):
        expect(locator).to_be_visible()
        box = locator.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width

    page.goto(rate_url(rated_project, "pairwise"))
    assert_no_horizontal_scroll()
    assert page.evaluate("window.scrollY") == 0  # the page opens on the conversation
    assert_within_width(page.locator('.response[data-slot="left"]'))
    assert_within_width(page.locator('.response[data-slot="right"]'))
    assert_within_width(page.locator("#rate-form"))
    page.get_by_test_id("submit").scroll_into_view_if_needed()
    assert_within_width(page.get_by_test_id("submit"))
    page.keyboard.press("b")
    with page.expect_navigation():
        page.get_by_test_id("submit").click()
    assert Judgment.objects.get(rater=rater).preference is not None

    page.goto(rate_url(rated_project, "score"))
    assert_no_horizontal_scroll()
    assert page.evaluate("window.scrollY") == 0
    assert_within_width(page.locator('.response[data-slot="response"]'))
    assert_within_width(page.locator('fieldset[data-criterion="helpfulness"]'))
    page.keyboard.press("3")  # keyboard rating brings the next criterion into view
    expect(page.locator('fieldset[data-criterion="accuracy"]')).to_be_in_viewport()
    assert_no_horizontal_scroll()


# contrast of each visible <kbd> hint against what is behind it (WCAG's formula), the kbd's
# own background blended over the first opaque one among its ancestors
KBD_CONTRAST_JS = """
() => {
  const rgba = (s) => {
    const m = s.match(/[\\d.]+/g).map(Number);
    return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1};
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const behind = (el) => {
    for (let e = el.parentElement; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c.a === 1) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  return [...document.querySelectorAll("kbd")].filter((k) => k.offsetParent !== null).map((k) => {
    const style = getComputedStyle(k), own = rgba(style.backgroundColor), base = behind(k);
    const bg = {r: own.r * own.a + base.r * (1 - own.a), g: own.g * own.a + base.g * (1 - own.a),
                b: own.b * own.a + base.b * (1 - own.a)};
    const [hi, lo] = [lum(rgba(style.color)), lum(bg)].sort((x, y) => y - x);
    return [k.textContent, (hi + 0.05) / (lo + 0.05)];
  });
}
"""


@pytest.mark.parametrize("kind", ["score", "pairwise"])
def test_every_shortcut_hint_is_legible(page, login_as, rater, rated_project, kind):
    login_as(page, rater)
    page.goto(rate_url(rated_project, kind))
    expect(page.get_by_test_id("submit")).to_be_visible()
    hints = page.evaluate(KBD_CONTRAST_JS)
    assert "Enter" in [text for text, _ in hints]  # the submit button's hint is among them
    faint = [(text, round(ratio, 2)) for text, ratio in hints if ratio < 3]
    assert not faint, f"shortcut hints below a 3:1 contrast: {faint}"


def test_enter_on_a_link_button_or_dialog_never_submits(page, login_as, rater, rated_project):
    login_as(page, rater)
    page.goto(rate_url(rated_project, "score"))
    page.keyboard.press("4")
    page.keyboard.press("1")  # a complete answer: Enter in the form would send it

    guide_button = page.get_by_role("button", name="Guidelines (G)")
    guide_button.focus()
    page.keyboard.press("Enter")  # presses the button: the guidelines open
    guide = page.locator("#guidelines-dialog")
    expect(guide).to_be_visible()
    guide.get_by_role("button", name="Close").focus()
    page.keyboard.press("Enter")  # closes the dialog, sends nothing
    expect(guide).to_be_hidden()
    page.get_by_role("button", name="Shortcuts (?)").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#help-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    page.wait_for_timeout(200)  # a stray submit would have navigated by now
    assert not Judgment.objects.filter(rater=rater).exists()

    page.get_by_role("link", name="My projects", exact=True).focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")  # follows the link
    expect(page.get_by_role("heading", name="My projects")).to_be_visible()
    assert not Judgment.objects.filter(rater=rater).exists()

    # From the form's choices, or with nothing focused, Enter submits.
    page.goto(rate_url(rated_project, "score"))
    page.keyboard.press("4")
    page.keyboard.press("1")
    page.locator('input[name="score-accuracy"][value="yes"]').focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert Judgment.objects.filter(rater=rater).count() == 1


def test_keys_switch_queues_and_leave(page, login_as, rater, rated_project):
    login_as(page, rater)
    page.goto(rate_url(rated_project, "score"))
    expect(page.get_by_role("link", name="Switch to Pairwise preference (Q)")).to_be_visible()
    page.keyboard.press("?")
    help_dialog = page.locator("#help-dialog")
    expect(help_dialog).to_contain_text("Leave to my projects")
    expect(help_dialog).to_contain_text("Switch to the next queue (Pairwise preference)")
    page.keyboard.press("Escape")

    with page.expect_navigation():
        page.keyboard.press("q")
    expect(page).to_have_url(re.compile(r"/rate/pairwise/$"))
    expect(page.locator(".response[data-slot='left']")).to_be_visible()
    with page.expect_navigation():
        page.keyboard.press("q")  # and back: the queues go round
    expect(page).to_have_url(re.compile(r"/rate/score/$"))

    page.get_by_label("Rationale (optional)").click()
    page.keyboard.press("h")  # typed into the text box, not a shortcut
    expect(page.get_by_label("Rationale (optional)")).to_have_value("h")
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("h")
    expect(page.get_by_role("heading", name="My projects")).to_be_visible()


def test_kb_verdicts_that_need_words_move_focus_to_their_field(page, login_as, sme, kb_project):
    login_as(page, sme)
    page.goto(rate_url(kb_project, "kb_verify"))
    corrected = page.get_by_label("Corrected answer (if incorrect)")
    missing = page.get_by_label("Missing fact (if incomplete)")

    page.keyboard.press("i")
    expect(corrected).to_be_focused()
    page.keyboard.type("Within 30 days.")  # the I itself was not typed
    expect(corrected).to_have_value("Within 30 days.")
    page.keyboard.press("Escape")
    page.keyboard.press("n")
    expect(missing).to_be_focused()
    page.keyboard.press("Escape")
    page.keyboard.press("c")  # Correct needs no words: the focus stays on the page
    expect(corrected).not_to_be_focused()
    expect(missing).not_to_be_focused()

    page.locator("label.opt", has_text="Incomplete").click()  # by mouse as well
    expect(missing).to_be_focused()
    page.keyboard.type("Refunds go to the original card.")
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    judgment = Judgment.objects.get(rater=sme)
    assert (judgment.verdict, judgment.missing_fact) == (
        "incomplete",
        "Refunds go to the original card.",
    )


@pytest.mark.parametrize("left_is_a", [True, False])
def test_my_judgments_show_answers_as_given(
    page, login_as, rater, rated_project, monkeypatch, left_is_a
):
    monkeypatch.setattr(assignments.secrets, "randbits", lambda _bits: int(left_is_a))
    login_as(page, rater)
    page.goto(rate_url(rated_project, "pairwise"))
    page.keyboard.press("Shift+B")  # right much better
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.goto(rate_url(rated_project, "score"))
    page.keyboard.press("4")
    page.keyboard.press("2")
    page.keyboard.press("3")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    page.goto(f"/projects/{rated_project.slug}/mine/")
    answers = page.get_by_test_id("answer")
    right = "B" if left_is_a else "A"
    expect(answers.nth(1)).to_have_text(f"Right much better (response {right})")
    expect(answers.nth(0)).to_have_text("Helpfulness: 4 of 5 (Good); Accuracy: No; Tone: warm")
    expect(page.locator("table")).not_to_contain_text("1.0")
