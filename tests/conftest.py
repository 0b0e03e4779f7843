import pytest

from conversations.models import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory


@pytest.fixture
def project(db):
    return ProjectFactory()


@pytest.fixture
def member(project):
    """Make a user with a role in ``project``: ``member(Role.LEAD)``."""

    def make(role: str = Role.EVALUATOR, username: str | None = None):
        kwargs = {"username": username} if username else {}
        user = UserFactory(**kwargs)
        MembershipFactory(project=project, user=user, role=role)
        return user

    return make


@pytest.fixture
def lead(member):
    return member(Role.LEAD)
