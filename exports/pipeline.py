"""The export pipeline: canonical records -> aggregation -> rules -> split -> files + manifest.

Guarantees of ``run_export``:
- files are written streaming into ``out_dir`` under temporary names and renamed only when
  every file and the manifest are complete: a failed export leaves no file that looks done;
- the manifest records the filters, the aggregation, the count dropped by each rule, the
  rubric and guideline versions seen, the source project, who and when, and each file's
  sha256; a dataset card (README) is written beside it;
- the train/test split is deterministic for a seed and keyed on the prompt text, so the same
  prompt (hence the same conversation context) is never in both splits;
- rater identities appear only as stable pseudonyms unless ``reveal_raters`` is set (leads).
"""

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.utils import timezone

from config.accel.malloc import fix_malloc_mmap_threshold
from conversations.models import Project
from exports.accel import fast
from exports.aggregation import METHODS, Aggregator
from exports.canonical import (
    ExportFilters,
    all_pairwise_votes,
    count_items,
    iter_records,
)
from exports.exporters import REGISTRY, Kto, prompt_text
from exports.pseudonyms import rater_labels
from exports.writers import FileInfo, RowWriter
from ratings.models import Criterion, QualityRun, RunState, Scale, TaskKind


@dataclass(frozen=True)
class ExportOptions:
    format: str
    file_type: str = "jsonl"
    compress: bool = False
    filters: ExportFilters = field(default_factory=ExportFilters)
    aggregation: str = "majority"
    tie_margin: float = 0.0
    both_bad: str = "drop"  # "drop", or "keep" (KTO: two negatives; pairs: kept as decided)
    min_raters: int = 1
    min_agreement: float = 0.0
    test_fraction: float = 0.0
    seed: int = 0
    margin: bool = True
    kto_source: str = "scores"
    kto_criterion: str | None = None
    kto_good: float = 4.0
    kto_bad: float = 2.0
    reveal_raters: bool = False

    def validate(self) -> None:
        if self.format not in REGISTRY:
            raise ValueError(
                f"unknown format {self.format!r}; expected one of {', '.join(REGISTRY)}"
            )
        if self.file_type not in ("jsonl", "parquet", "csv"):
            raise ValueError("file type must be jsonl, parquet or csv")
        if self.aggregation not in METHODS:
            raise ValueError(f"aggregation must be one of {', '.join(METHODS)}")
        if self.both_bad not in ("drop", "keep"):
            raise ValueError("both_bad must be drop or keep")
        if not 0 <= self.test_fraction < 1:
            raise ValueError("test_fraction must be at least 0 and below 1")
        if self.min_raters < 1 or not 0 <= self.min_agreement <= 1:
            raise ValueError("min_raters must be at least 1 and min_agreement within 0..1")
        if self.kto_source not in ("scores", "kb", "pairwise"):
            raise ValueError("kto_source must be scores, kb or pairwise")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["filters"] = self.filters.as_dict()
        return d


@dataclass
class ExportResult:
    files: list[FileInfo]
    counts: dict
    manifest: dict
    manifest_path: Path
    card_path: Path


def split_of(prompt: list[dict], seed: int, test_fraction: float) -> str:
    if test_fraction <= 0:
        return "all"
    digest = hashlib.sha256(f"{seed}\x1f{prompt_text(prompt)}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


def _rater_weights(project: Project) -> dict[int, float]:
    run = QualityRun.objects.filter(project=project, state=RunState.SUCCEEDED).first()
    if run is None:
        return {}
    return {
        r: max(a, 0.05)
        for r, a in run.rater_rows.exclude(agreement=None).values_list("rater_id", "agreement")
    }


def run_export(
    *,
    project: Project,
    options: ExportOptions,
    out_dir: Path,
    base_name: str,
    created_by: str = "",
    progress: Callable[[int, int], None] | None = None,
    engine: str = "auto",
) -> ExportResult:
    """Write the export's files, manifest and card into ``out_dir`` (see module docstring).

    ``engine``: "auto" takes the fast path (``exports/accel/fast.py``) when it covers the request
    exactly and the general one otherwise; "general" and "fast" force one (forcing "fast" on
    a request it does not cover raises ValueError). Both write the same bytes and manifest.
    """
    options.validate()
    if engine not in ("auto", "general", "fast"):
        raise ValueError("engine must be auto, general or fast")
    fix_malloc_mmap_threshold()  # memory flat as the project grows (config/accel/malloc.py)
    if engine != "general":
        reason = fast.refusal(options)
        if reason is None:
            try:
                return fast.run_fast_export(
                    project=project,
                    options=options,
                    out_dir=out_dir,
                    base_name=base_name,
                    created_by=created_by,
                    progress=progress,
                )
            except fast.CacheMiss:
                if engine == "fast":
                    raise
                # the cached text did not match the pairs: the general path reads them all
        if engine == "fast":
            raise ValueError(f"the fast export does not cover this request: {reason}")
    exporter = REGISTRY[options.format]
    kind = Kto.source_kind(options.__dict__) if isinstance(exporter, Kto) else exporter.kinds[0]
    f = options.filters
    extra: dict = {"_criterion_ranges": {}, **options.__dict__}
    criteria = {
        c.key: c
        for c in Criterion.objects.filter(rubric__project=project).order_by("rubric__version")
    }
    for key, c in criteria.items():
        extra["_criterion_ranges"][key] = (
            float((c.points or 2) - 1) if c.scale == Scale.LIKERT else 1.0
        )
    if isinstance(exporter, Kto) and kind == TaskKind.SCORE and not options.kto_criterion:
        likert = [k for k, c in criteria.items() if c.scale == Scale.LIKERT]
        if not likert:
            raise ValueError("KTO from scores needs a Likert criterion (kto_criterion)")
        extra["kto_criterion"] = likert[0]
    aggregator = Aggregator(options.aggregation, options.tie_margin)
    aggregation_info = {}
    if kind == TaskKind.PAIRWISE and options.aggregation in ("dawid-skene", "weighted"):
        items, raters, labels = all_pairwise_votes(project, f)
        aggregation_info = aggregator.prepare(
            items=items, raters=raters, labels=labels, weights=_rater_weights(project)
        )
    total = count_items(project, kind, f)
    splits, names, partial = output_names(options, out_dir, base_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {
        s: RowWriter(
            partial[s],
            options.file_type,
            options.compress,
            exporter.schema,
            python_json=exporter.python_json,
        )
        for s in splits
    }
    dropped: Counter = Counter()
    rubric_versions, guideline_versions, rater_ids = set(), set(), set()
    read = 0
    try:
        for record in iter_records(project, kind, f):
            read += 1
            if progress is not None and read % 2000 == 0:
                progress(read, total)
            decision = None
            votes = record.votes
            if kind == TaskKind.PAIRWISE:
                decision = aggregator.decide(record.item_id, votes)
                if decision.n_votes < options.min_raters:
                    dropped["fewer_raters_than_min_raters"] += 1
                    continue
                if decision.agreement < options.min_agreement:
                    dropped["agreement_below_min_agreement"] += 1
                    continue
                if decision.both_bad and options.both_bad == "drop":
                    dropped["both_bad"] += 1
                    continue
                if decision.winner == "tie" and not (
                    decision.both_bad and isinstance(exporter, Kto)
                ):
                    dropped["tie"] += 1
                    continue
            elif len(votes) < options.min_raters:
                dropped["fewer_raters_than_min_raters"] += 1
                continue
            for v in votes:
                rubric_versions.add(v.rubric_version)
                guideline_versions.add(v.guidelines_version)
                rater_ids.add(v.rater_id)
            split = split_of(record.prompt, options.seed, options.test_fraction)
            produced = False
            if exporter.name == "rubric-scores":
                extra["_rater_labels"] = rater_labels(
                    project=project,
                    user_ids=[v.rater_id for v in votes],
                    reveal=options.reveal_raters,
                )
            for row in exporter.rows(record, decision, extra):
                writers[split].write(row)
                produced = True
            if not produced:
                dropped["no_row_for_this_format"] += 1
        files = {s: w.close() for s, w in writers.items()}
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    if progress is not None:
        progress(read, total)
    counts = {
        "records_read": read,
        "rows_written": {s: files[s].rows for s in splits},
        "dropped": dict(sorted(dropped.items())),
        "raters": len(rater_ids),
    }
    return publish(
        project=project,
        options=options,
        kind=kind,
        aggregation_info=aggregation_info,
        out_dir=out_dir,
        base_name=base_name,
        files=[(partial[s], names[s], files[s]) for s in splits],
        counts=counts,
        rubric_versions=rubric_versions,
        guideline_versions=guideline_versions,
        created_by=created_by,
    )


def output_names(options: ExportOptions, out_dir: Path, base_name: str):
    """(splits, final file name of each split, temporary path of each split)."""
    ext = options.file_type + (".gz" if options.compress else "")
    splits = ("train", "test") if options.test_fraction > 0 else ("all",)
    names = {s: f"{base_name}.{ext}" if s == "all" else f"{base_name}.{s}.{ext}" for s in splits}
    partial = {s: out_dir / f".{names[s]}.partial" for s in splits}
    return splits, names, partial


def publish(
    *,
    project: Project,
    options: ExportOptions,
    kind: str,
    aggregation_info: dict,
    out_dir: Path,
    base_name: str,
    files: list[tuple[Path, str, FileInfo]],
    counts: dict,
    rubric_versions: set,
    guideline_versions: set,
    created_by: str,
) -> ExportResult:
    """Rename the finished files (temporary path, final name, description) into place, then
    write the manifest and the dataset card: the last step of every export path."""
    final: list[FileInfo] = []
    for path, name, info in files:
        path.rename(out_dir / name)
        final.append(FileInfo(name, info.rows, info.bytes, info.sha256))
    f = options.filters
    manifest = {
        "format": options.format,
        "file_type": options.file_type,
        "compressed": options.compress,
        "source_project": {"slug": project.slug, "name": project.name, "id": project.pk},
        "task_kind": kind,
        "filters": f.as_dict(),
        "aggregation": {
            "method": options.aggregation,
            "tie_margin": options.tie_margin,
            **aggregation_info,
        },
        "rules": {
            "min_raters": options.min_raters,
            "min_agreement": options.min_agreement,
            "both_bad": options.both_bad,
            "ties": "dropped (a preference pair needs a winner)",
        },
        "split": {
            "test_fraction": options.test_fraction,
            "seed": options.seed,
            "key": "sha256 of the prompt text",
        },
        "counts": counts,
        "rubric_versions": sorted(v for v in rubric_versions if v is not None),
        "guidelines_versions": sorted(guideline_versions),
        "rater_identities": "revealed" if options.reveal_raters else "pseudonymised",
        "created_by": created_by,
        "created_at": timezone.now().isoformat(),
        "files": [fi.as_dict() for fi in final],
        "options": {k: v for k, v in options.as_dict().items() if k != "filters"},
    }
    manifest_path = out_dir / f"{base_name}.manifest.json"
    card_path = out_dir / f"{base_name}.README.md"
    tmp = out_dir / f".{manifest_path.name}.partial"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.rename(manifest_path)
    card_path.write_text(dataset_card(manifest), encoding="utf-8")
    return ExportResult(final, counts, manifest, manifest_path, card_path)


def dataset_card(manifest: dict) -> str:
    files = manifest["files"]
    configs = "\n".join(
        f"    - split: {f['name'].split('.')[-2] if '.train.' in f['name'] or '.test.' in f['name'] else 'train'}\n      path: {f['name']}"
        for f in files
    )
    dropped = (
        "\n".join(f"| {k} | {v} |" for k, v in manifest["counts"]["dropped"].items())
        or "| (none) | 0 |"
    )
    rows = "\n".join(f"| {f['name']} | {f['rows']} | `{f['sha256']}` |" for f in files)
    return f"""---
configs:
  - config_name: default
    data_files:
{configs}
---
# {manifest["source_project"]["name"]}: {manifest["format"]} export

Exported {manifest["created_at"]} by {manifest["created_by"] or "an export job"} from project
`{manifest["source_project"]["slug"]}` ({manifest["task_kind"]} judgments).

- Format: `{manifest["format"]}` as `{manifest["file_type"]}`{" (gzip)" if manifest["compressed"] else ""}; field names in the project's docs/exports.md.
- Aggregation: `{manifest["aggregation"]["method"]}`; minimum raters {manifest["rules"]["min_raters"]}, minimum agreement {manifest["rules"]["min_agreement"]}, both-bad pairs {manifest["rules"]["both_bad"]}, ties {manifest["rules"]["ties"]}.
- Filters: `{json.dumps(manifest["filters"])}`.
- Split: test fraction {manifest["split"]["test_fraction"]}, seed {manifest["split"]["seed"]}, keyed on the prompt so no prompt is in both splits.
- Rubric versions {manifest["rubric_versions"]}, guidelines versions {manifest["guidelines_versions"]}.
- Rater identities: {manifest["rater_identities"]}.

| file | rows | sha256 |
|---|---|---|
{rows}

Records read: {manifest["counts"]["records_read"]}. Dropped, by rule:

| rule | records |
|---|---|
{dropped}
"""
