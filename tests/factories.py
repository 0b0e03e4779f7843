import factory
from django.contrib.auth import get_user_model

from conversations.models import Conversation, Membership, Message, Project, Role


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.Sequence(lambda n: f"Project {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.EVALUATOR


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"conv-{n}")
    content_hash = factory.Sequence(lambda n: f"{n:064x}")
    source_format = "native"


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    position = 0
    role = "user"
    content = "Hello"


def pairwise_conversation(
    project, n_candidates: int = 2, external_id: str | None = None, author=None
):
    """A conversation whose last position holds ``n_candidates`` assistant candidates."""
    conv = ConversationFactory(
        project=project, author=author, **({"external_id": external_id} if external_id else {})
    )
    MessageFactory(
        conversation=conv, position=0, role="user", content="What is the capital of France?"
    )
    for c in range(n_candidates):
        MessageFactory(
            conversation=conv,
            position=1,
            candidate=c,
            role="assistant",
            content=f"Answer {c}: Paris.",
            model=f"model-{c}",
        )
    return conv
