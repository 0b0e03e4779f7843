"""The importer: batches of records checked against the project and written."""

import json
from collections import defaultdict
from datetime import UTC
from functools import cached_property
from typing import Any, BinaryIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from conversations.importers.readers import RecordReadError
from conversations.importers.records import RecordError, SourceRecord
from conversations.importers.safe_json import check
from conversations.models import Conversation, Message, MessageRole, Project
from conversations.services.imports import ImportIssue
from ratings.models import Item, Judgment, RaterProfile, Score, TaskKind
from ratings.services.judgment_import.digests import (
    _record_digest,
    _stored_digests,
    _validation_field,
)
from ratings.services.judgment_import.records import (
    KIND_FIELD,
    JudgmentImportFailed,
    JudgmentImportSummary,
    _Current,
    _Record,
    parse_record,
)
from ratings.services.judgments import (
    clean_answer,
    current_rubric,
)
from ratings.signals import pairs_created

User = get_user_model()


def _is_external(user: AbstractBaseUser) -> bool:
    try:
        return bool(user.rater_profile.is_external)
    except RaterProfile.DoesNotExist:
        return False


class _Importer:
    def __init__(
        self,
        *,
        project: Project,
        summary: JudgmentImportSummary,
        skip_invalid: bool,
        rejects: BinaryIO | None,
        batch_size: int,
        count_for_quality: bool = False,
    ):
        self.project = project
        self.summary = summary
        self.skip_invalid = skip_invalid
        self.rejects = rejects
        self.batch_size = batch_size
        self.count_for_quality = count_for_quality
        self.rubric = current_rubric(project)
        self.enabled = {
            TaskKind.SCORE: project.has_scoring,
            TaskKind.PAIRWISE: project.has_pairwise,
            TaskKind.KB_VERIFY: project.has_kb_verification,
        }
        self.batch: list[_Record] = []
        self.refused: list[tuple[int, ImportIssue, bytes | str]] = []

    def reject(self, line: int, label: str, fld: str, message: str, raw: bytes | str) -> None:
        self.summary.error_count += 1
        self.summary.rejected += 1
        self.refused.append(
            (line, ImportIssue(self.summary.source, line, label, fld, message), raw)
        )

    def report(self) -> None:
        """Report the batch's refusals in line order (they are found stage by stage)."""
        refused, self.refused = self.refused, []
        errors = self.summary.errors
        for _, issue, raw in sorted(refused, key=lambda x: x[0]):
            if len(errors) < settings.IMPORT_MAX_REPORTED_ERRORS:
                errors.append(issue)
            if self.rejects is not None and self.skip_invalid:
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                entry = {
                    issue.label: issue.line,
                    "field": issue.field,
                    "error": issue.message,
                    "record": text,
                }
                self.rejects.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")

    def refuse(self, r: _Record, fld: str, message: str) -> None:
        self.reject(r.line, r.label, fld, message, r.raw)

    def feed(self, item: SourceRecord | RecordReadError) -> None:
        self.summary.records_read += 1
        if isinstance(item, RecordReadError):
            self.reject(item.line, item.label, item.field, item.message, item.raw)
            self.summary.file_refused = self.summary.file_refused or item.fatal
            return
        try:
            if not item.checked:
                check(item.value)
            record = parse_record(item)
        except RecordError as exc:
            raw = item.raw or json.dumps(item.value, ensure_ascii=False, default=str)
            self.reject(item.line, item.label, exc.field, exc.message, raw)
            return
        self.add(record)

    def add(self, record: _Record) -> None:
        self.batch.append(record)
        if len(self.batch) >= self.batch_size:
            self.flush()

    # Each stage keeps the records it could resolve and refuses the others, in line order.

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if batch:
            batch = self.resolve_responses(batch)
            batch = self.resolve_raters(batch)
            batch = self.clean(batch)
            items = self.existing_items(batch)
            accepted, superseded = self.decide(batch, items)
            self.write(accepted, superseded, items)
        self.report()

    def resolve_responses(self, batch: list[_Record]) -> list[_Record]:
        conversations = {
            c.external_id: c
            for c in Conversation.objects.filter(
                project=self.project, external_id__in={r.conversation_id for r in batch}
            ).only("id", "external_id", "author_id")
        }
        by_pk: dict[int, Message] = {}
        by_external: dict[tuple[int, str], list[Message]] = defaultdict(list)
        by_slot: dict[tuple[int, int, int], Message] = {}
        last: dict[int, int] = {}
        messages = Message.objects.filter(
            conversation_id__in=[c.pk for c in conversations.values()]
        ).only("id", "conversation_id", "position", "candidate", "role", "external_id")
        for m in messages.iterator(chunk_size=5000):
            by_pk[m.pk] = m
            if m.external_id:
                by_external[(m.conversation_id, m.external_id)].append(m)
            by_slot[(m.conversation_id, m.position, m.candidate)] = m
            last[m.conversation_id] = max(last.get(m.conversation_id, 0), m.position)
        kept = []
        for r in batch:
            conv = conversations.get(r.conversation_id)
            if conv is None or conv.pk not in last:
                self.refuse(
                    r,
                    "conversation_id",
                    f"unknown conversation {r.conversation_id!r} in project {self.project.slug!r}",
                )
                continue
            try:
                responses = []
                for ref in r.refs:
                    if ref.pk is not None:
                        found = [by_pk[ref.pk]] if ref.pk in by_pk else []
                    elif ref.external_id is not None:
                        found = by_external.get((conv.pk, ref.external_id), [])
                        if not found:
                            raise RecordError(
                                ref.field,
                                f"no message {ref.external_id!r} in conversation "
                                f"{r.conversation_id!r}",
                            )
                        if len(found) > 1:
                            raise RecordError(
                                ref.field,
                                f"{len(found)} messages of conversation {r.conversation_id!r} "
                                f"have the id {ref.external_id!r}; name the candidate instead",
                            )
                    else:
                        m = by_slot.get((conv.pk, last[conv.pk], ref.candidate))
                        if m is None:
                            raise RecordError(
                                ref.field,
                                f"no candidate {ref.candidate} at the last position "
                                f"({last[conv.pk]}) of conversation {r.conversation_id!r}",
                            )
                        found = [m]
                    message = found[0]
                    if message.role != MessageRole.ASSISTANT:
                        raise RecordError(
                            ref.field, f"is a {message.role} message, not an assistant response"
                        )
                    responses.append(message)
                if len(responses) == 2:
                    a, b = responses
                    if a.pk == b.pk:
                        raise RecordError(r.refs[1].field, "names the same response as A")
                    if a.position != b.position:
                        raise RecordError(
                            r.refs[1].field,
                            f"is at position {b.position}, A at {a.position}; a pair compares "
                            "candidates at the same position (the same context)",
                        )
                if not self.enabled[r.kind]:
                    raise RecordError(
                        KIND_FIELD[r.kind], f"this project does not run {r.kind} items"
                    )
            except RecordError as exc:
                self.refuse(r, exc.field, exc.message)
                continue
            r.conversation, r.responses = conv, tuple(responses)
            kept.append(r)
        return kept

    def resolve_raters(self, batch: list[_Record]) -> list[_Record]:
        users = {
            u.get_username(): u
            for u in User.objects.filter(
                **{f"{User.USERNAME_FIELD}__in": {r.rater for r in batch}}
            ).select_related("rater_profile")
        }
        kept = []
        for r in batch:
            user = users.get(r.rater)
            if (
                user is not None
                and not _is_external(user)
                and not (self.count_for_quality and user.pk in self.members)
            ):
                self.refuse(
                    r,
                    "rater",
                    f"{r.rater!r} is an internal user of this service; imported judgments "
                    "need an external rater name (e.g. prefixed with the source)",
                )
                continue
            r.user = user
            kept.append(r)
        return kept

    @cached_property
    def members(self) -> set[int]:
        """The project's members: with ``count_for_quality`` their own history may be
        imported under their user name (the team's raters, counted like here)."""
        return set(self.project.memberships.values_list("user_id", flat=True))

    def clean(self, batch: list[_Record]) -> list[_Record]:
        kept = []
        for r in batch:
            a = min(r.responses, key=lambda m: m.pk)
            # the record's A is response A unless its id is the higher one
            swapped = len(r.responses) == 2 and r.responses[0].pk > r.responses[1].pk
            left_is_a = r.left_is_source_a != swapped
            probe = Item(project=self.project, kind=r.kind, response=a)
            try:
                r.clean = clean_answer(
                    item=probe, rubric=self.rubric, answer=r.answer, left_is_a=left_is_a
                )
            except ValidationError as exc:
                self.refuse(r, *_validation_field(exc, r.kind))
                continue
            r.left_is_a = left_is_a if r.kind == TaskKind.PAIRWISE and r.side_known else None
            r.digest = _record_digest(r)
            r.key = r.external_id or f"sha256:{r.digest}"
            kept.append(r)
        return kept

    def decide(
        self, batch: list[_Record], items: dict[tuple, Item]
    ) -> tuple[list[_Record], list[int]]:
        """Duplicates, conflicts and versions, in line order, against the database and the
        records before in the batch. Returns the accepted records and the judgments that they
        supersede."""
        s = self.summary
        known = _stored_digests(
            Judgment.objects.filter(
                item__project=self.project,
                is_external=True,
                source__in={r.source for r in batch},
                external_id__in={r.key for r in batch},
            ).order_by("-id")  # should a key ever be stored twice, the first one counts
        )
        currents: dict[tuple, _Current] = {}
        user_ids = {r.user.pk for r in batch if r.user is not None}
        item_keys = {item.pk: key for key, item in items.items()}
        if user_ids and items:
            pairs = Judgment.objects.filter(item_id__in=list(item_keys), rater_id__in=user_ids)
            top = {
                (row["item_id"], row["rater_id"]): row["v"]
                for row in pairs.values("item_id", "rater_id").annotate(v=Max("version"))
            }
            names = {r.user.pk: r.rater for r in batch if r.user is not None}
            for j in pairs.filter(is_current=True).only(
                "id", "item_id", "rater_id", "created_at", "is_external"
            ):
                currents[(item_keys[j.item_id], names[j.rater_id])] = _Current(
                    created_at=j.created_at,
                    version=top[(j.item_id, j.rater_id)],
                    is_external=j.is_external,
                    pk=j.pk,
                )
        accepted: list[_Record] = []
        superseded: list[int] = []
        for r in batch:
            seen = known.get((r.source, r.key))
            if seen is not None:
                if seen == r.digest:
                    s.duplicates += 1
                else:
                    s.conflicts += 1
                    self.refuse(
                        r,
                        "id",
                        f"judgment {r.key!r}"
                        + (f" from {r.source!r}" if r.source else "")
                        + " already exists with different content; it is not overwritten "
                        "(give the new version its own id)",
                    )
                continue
            pair = (r.item_key, r.rater)
            current = currents.get(pair)
            if current is not None:
                if not current.is_external:
                    s.conflicts += 1
                    self.refuse(r, "rater", f"{r.rater!r} has an internal judgment on this item")
                    continue
                if r.created_at <= current.created_at:
                    s.conflicts += 1
                    self.refuse(
                        r,
                        "created_at",
                        f"{r.rater!r} already has a judgment on this item made at "
                        f"{current.created_at.astimezone(UTC).isoformat()}; an imported "
                        "judgment replaces it only when it was made later",
                    )
                    continue
                if current.pending is not None:
                    current.pending.is_current = False
                else:
                    assert current.pk is not None
                    superseded.append(current.pk)
                r.version = current.version + 1
            known[(r.source, r.key)] = r.digest
            currents[pair] = _Current(
                created_at=r.created_at, version=r.version, is_external=True, pending=r
            )
            accepted.append(r)
        return accepted, superseded

    def existing_items(self, batch: list[_Record]) -> dict[tuple, Item]:
        keys = {r.item_key for r in batch}
        found = Item.objects.filter(
            project=self.project,
            kind__in={k[0] for k in keys},
            response_id__in={k[1] for k in keys},
        ).only("id", "kind", "response_id", "response_b_id")
        by_key = {(i.kind, i.response_id, i.response_b_id): i for i in found}
        return {k: by_key[k] for k in keys if k in by_key}

    def write(
        self, accepted: list[_Record], superseded: list[int], items: dict[tuple, Item]
    ) -> None:
        s = self.summary
        if not accepted:
            return
        created: dict[str, Any] = {}
        for r in accepted:
            if r.user is None:
                if r.rater not in created:
                    created[r.rater] = self.rater(r.rater, r.source)
                r.user = created[r.rater]
        new = {}
        for r in accepted:
            if r.item_key not in items and r.item_key not in new:
                kind, a, b = r.item_key
                assert r.conversation is not None
                new[r.item_key] = Item(
                    project=self.project,
                    kind=kind,
                    conversation_id=r.conversation.pk,
                    response_id=a,
                    response_b_id=b,
                    author_id_cache=r.conversation.author_id,
                    overlap=self.project.overlap,
                    origin="import",
                )
        if new:
            Item.objects.bulk_create(new.values(), ignore_conflicts=True)
            items.update(self.existing_items(accepted))
            s.items_created += len(new)
            if any(kind == TaskKind.PAIRWISE for kind, _, _ in new):
                pairs_created.send(sender=Item, project_id=self.project.pk)
        if superseded:
            Judgment.objects.filter(pk__in=superseded).update(is_current=False)
            s.superseded += len(superseded)
        s.superseded += sum(1 for r in accepted if not r.is_current)
        judgments = Judgment.objects.bulk_create(
            [self.judgment(r, items[r.item_key]) for r in accepted], batch_size=1000
        )
        Score.objects.bulk_create(
            [
                Score(judgment=j, criterion=c, value=value, choices=choices, text=text)
                for j, r in zip(judgments, accepted, strict=True)
                for c, value, choices, text in r.clean.scores  # type: ignore[union-attr]
            ],
            batch_size=2000,
        )
        s.imported += len(accepted)

    def judgment(self, r: _Record, item: Item) -> Judgment:
        clean = r.clean
        assert clean is not None
        return Judgment(
            item=item,
            assignment=None,
            rater=r.user,
            version=r.version,
            is_current=r.is_current,
            rubric=self.rubric,
            guidelines_version=self.project.guidelines_version,
            preference=clean.preference,
            both_bad=clean.both_bad,
            left_is_a=r.left_is_a,
            verdict=clean.verdict,
            corrected_answer=clean.corrected_answer,
            missing_fact=clean.missing_fact,
            kb_issues=list(clean.kb_issues),
            rationale=clean.rationale,
            time_on_task_ms=r.time_ms,
            is_external=True,
            counts_for_quality=self.count_for_quality,
            source=r.source,
            external_id=r.key,
            created_at=r.created_at,
        )

    def rater(self, name: str, source: str) -> AbstractBaseUser:
        user, created = User.objects.get_or_create(
            **{User.USERNAME_FIELD: name}, defaults={"password": make_password(None)}
        )
        if created:
            RaterProfile.objects.create(user=user, is_external=True, external_source=source)
            self.summary.raters_created += 1
        return user

    def finish(self, *, empty_is_error: bool = True) -> None:
        """Write what is left; roll everything back and raise if the input is refused."""
        self.flush()
        s = self.summary
        if s.records_read == 0 and empty_is_error:
            s.error_count = 1
            s.errors.append(ImportIssue(s.source, 0, "line", "", "the file holds no record"))
        if s.error_count and (not self.skip_invalid or s.file_refused):
            transaction.set_rollback(True)
            raise JudgmentImportFailed(s)
