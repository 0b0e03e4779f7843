"""The backup and restore of docs/deploy.md: pg_dump (custom format) plus a tar of the media
folder, restored into a new database with pg_restore, keep every judgment and score."""

import subprocess
import tarfile
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from ratings.models import Judgment, Score

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _url(name: str) -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgresql://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{name}"


def _rows(conn, model) -> list[tuple]:
    with conn.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{model._meta.db_table}" ORDER BY id')
        return cursor.fetchall()


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_pg_dump_and_pg_restore_keep_every_judgment(judged, tmp_path):
    source_name = connection.settings_dict["NAME"]
    scratch = f"{source_name}_restore"  # this run's own scratch database
    media = Path(settings.MEDIA_ROOT)
    (media / "exports").mkdir(parents=True, exist_ok=True)
    (media / "exports" / "pairs.jsonl").write_text('{"chosen": "a"}\n')
    with psycopg.connect(_url(source_name)) as source:
        expected = {model: _rows(source, model) for model in (Judgment, Score)}
    assert len(expected[Judgment]) > 100 and len(expected[Score]) > 0

    dump = tmp_path / "rateloop.dump"
    _run(
        "pg_dump",
        "--format=custom",
        "--no-owner",
        f"--dbname={_url(source_name)}",
        f"--file={dump}",
    )
    with tarfile.open(tmp_path / "media.tar.gz", "w:gz") as archive:
        archive.add(media, arcname="media")

    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        _run("pg_restore", "--no-owner", f"--dbname={_url(scratch)}", str(dump))
        with psycopg.connect(_url(scratch)) as restored:
            for model, rows in expected.items():
                assert _rows(restored, model) == rows, model.__name__
    finally:
        with psycopg.connect(_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')

    target = tmp_path / "restored"
    with tarfile.open(tmp_path / "media.tar.gz") as archive:
        archive.extractall(target, filter="data")
    assert (target / "media" / "exports" / "pairs.jsonl").read_text() == '{"chosen": "a"}\n'
