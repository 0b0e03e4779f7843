"""Token authentication for the API: DRF's ``TokenAuthentication`` with the same checks (the
key names a token, its user is active), reading the token and its user in one hand-written
query, prepared once per connection. Building that query with the ORM cost more CPU than the
rest of a small API request, and every token-authenticated request pays for it."""

import functools

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from config.accel.prepared import prepared_cursor


@functools.cache
def _token_query() -> tuple[str, list, list]:
    """The SQL, the fields it reads (the token's ``created``, then the user's), and the
    converters the ORM would apply to each column (e.g. aware datetimes on SQLite)."""
    user_model = get_user_model()
    fields = [Token._meta.get_field("created"), *user_model._meta.concrete_fields]
    columns = [f"t.{connection.ops.quote_name(fields[0].column)}"] + [
        f"u.{connection.ops.quote_name(f.column)}" for f in fields[1:]
    ]
    sql = (
        f"SELECT {', '.join(columns)} FROM {connection.ops.quote_name(Token._meta.db_table)} t"
        f" JOIN {connection.ops.quote_name(user_model._meta.db_table)} u"
        f" ON u.{connection.ops.quote_name(user_model._meta.pk.column)} = t.user_id"
        " WHERE t.key = %s"
    )
    converters = []
    for i, field in enumerate(fields):
        col = field.get_col(field.model._meta.db_table)
        found = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
        if found:
            converters.append((i, col, found))
    return sql, fields, converters


class TokenAuthentication(authentication.TokenAuthentication):
    model = Token

    def authenticate_credentials(self, key: str):
        sql, fields, converters = _token_query()
        with prepared_cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        row = list(row)
        for i, col, found in converters:
            for converter in found:
                row[i] = converter(row[i], col, connection)
        user = get_user_model().from_db(connection.alias, [f.attname for f in fields[1:]], row[1:])
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = Token.from_db(
            connection.alias, ["key", "user_id", "created"], [key, user.pk, row[0]]
        )
        token.user = user
        return user, token
