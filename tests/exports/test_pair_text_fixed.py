"""A pair's text never changes after queueing: the export cache (exports/accel/) keys a
pair's encoded text by the item's id and creation time, so the admin, the one place where
staff edit rows by hand, refuses to change what a queued item shows."""

import json

import pytest

from conversations.models import Message
from ratings.models import Item, TaskKind
from ratings.services.items import items_queue
from tests.factories import pairwise_conversation


def change_form_data(page) -> dict:
    """What the admin change page would post back unchanged: its form's values and those of
    its inline formsets."""
    data = {}

    def put(form, prefix=""):
        for name in form.fields:
            value = form[name].value()
            key = f"{prefix}{name}"
            if isinstance(value, bool):
                if value:
                    data[key] = "on"
            elif isinstance(value, dict | list):
                data[key] = json.dumps(value)
            elif value is not None:
                data[key] = value

    put(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        put(formset.management_form, f"{formset.prefix}-")
        for i, form in enumerate(formset.forms):
            put(form, f"{formset.prefix}-{i}-")
    return data


@pytest.fixture
def queued(project, lead):
    """Two queued pairs of two conversations (prompt, then two candidate answers)."""
    for i in range(2):
        pairwise_conversation(project, external_id=f"c{i}")
    items_queue(project=project, user=lead)
    return list(Item.objects.filter(project=project, kind=TaskKind.PAIRWISE).order_by("id"))


@pytest.mark.django_db
def test_the_admin_refuses_to_change_the_responses_of_a_queued_pair(admin_client, queued):
    item, other = queued
    url = f"/admin/ratings/item/{item.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    for name in ("conversation", "response", "response_b"):
        assert name not in form.fields  # shown, not editable
    assert 'name="response"' not in page.content.decode()
    before = (item.conversation_id, item.response_id, item.response_b_id)

    # a third answer, in no pair yet: pointing the item at it would change the pair's text
    third = Message.objects.create(
        conversation=item.conversation, position=1, candidate=2, role="assistant", content="Lyon."
    )
    data = change_form_data(page)
    data.update(
        response_b=third.pk,
        priority=item.priority + 7,  # an editable field, to show the save itself went through
    )
    saved = admin_client.post(url, data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    refreshed = Item.objects.get(pk=item.pk)
    assert (refreshed.conversation_id, refreshed.response_id, refreshed.response_b_id) == before
    assert refreshed.priority == item.priority + 7

    data.update(conversation=other.conversation_id, response=other.response_id)
    admin_client.post(url, data)
    refreshed = Item.objects.get(pk=item.pk)
    assert (refreshed.conversation_id, refreshed.response_id, refreshed.response_b_id) == before


@pytest.mark.django_db
def test_the_admin_refuses_to_change_or_add_messages_of_a_queued_pair(admin_client, queued):
    """Messages are shown read-only and no message can be added (they come from imports)."""
    item = queued[0]
    url = f"/admin/conversations/conversation/{item.conversation_id}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    (messages,) = page.context["inline_admin_formsets"]
    assert not messages.has_add_permission and not messages.formset.can_delete
    for form in messages.formset.forms:
        assert "content" not in form.fields and "role" not in form.fields
    texts = dict(
        Message.objects.filter(conversation=item.conversation).values_list("pk", "content")
    )

    data = change_form_data(page)
    prefix = messages.formset.prefix
    for i in range(len(messages.formset.forms)):
        data[f"{prefix}-{i}-content"] = "Edited after queueing."
    data[f"{prefix}-TOTAL_FORMS"] = len(messages.formset.forms) + 1  # and one more message
    data.update(
        {
            f"{prefix}-{len(messages.formset.forms)}-position": 0,
            f"{prefix}-{len(messages.formset.forms)}-role": "user",
            f"{prefix}-{len(messages.formset.forms)}-content": "Slipped into the prompt.",
        }
    )
    admin_client.post(url, data)
    after = dict(
        Message.objects.filter(conversation=item.conversation).values_list("pk", "content")
    )
    assert after == texts


@pytest.mark.django_db
def test_a_new_item_may_still_be_given_its_responses(admin_client, queued):
    """Read-only applies to items that exist: the add form offers the responses."""
    page = admin_client.get("/admin/ratings/item/add/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert {"conversation", "response", "response_b"} <= set(form.fields)
