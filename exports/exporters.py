"""One class per output format, one ``rows`` contract, a registry.

Every exporter turns a canonical ``Record`` (and, for preference formats, the ``Decision``
the chosen aggregation made) into output rows; the pipeline (``exports/pipeline.py``) owns
filtering, splitting, file types and the manifest. Field names and an example of each format
are in docs/exports.md.
"""

from collections.abc import Iterable
from statistics import mean

import pyarrow as pa

from conversations.importers.formats import hh_join
from exports.aggregation import Decision
from exports.canonical import Record
from ratings.consensus import kb_consensus
from ratings.models import TaskKind

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
HH_SPEAKER = {"user": "Human", "assistant": "Assistant", "system": "Human", "tool": "Human"}


def prompt_text(prompt: list[dict]) -> str:
    """A prompt as one string: the user message alone, or role-labelled turns."""
    if len(prompt) == 1 and prompt[0]["role"] == "user":
        return prompt[0]["content"]
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in prompt)


def chosen_rejected(record: Record, decision: Decision):
    return (record.a, record.b) if decision.winner == "a" else (record.b, record.a)


class Exporter:
    name: str = ""
    kinds: tuple[str, ...] = (TaskKind.PAIRWISE,)
    needs_decision: bool = True
    python_json: bool = False  # JSON lines exactly as json.dumps writes them (see writers.py)
    schema: pa.Schema

    def rows(self, record: Record, decision: Decision | None, options: dict) -> Iterable[dict]:
        return ()


class TrlStandard(Exporter):
    name = "trl"
    schema = pa.schema(
        [("prompt", pa.string()), ("chosen", pa.string()), ("rejected", pa.string())]
    )

    def rows(self, record, decision, options):
        chosen, rejected = chosen_rejected(record, decision)
        yield {
            "prompt": prompt_text(record.prompt),
            "chosen": chosen.content,
            "rejected": rejected.content,
        }


class TrlConversational(Exporter):
    name = "trl-conversational"
    schema = pa.schema([("prompt", MESSAGES), ("chosen", MESSAGES), ("rejected", MESSAGES)])

    def rows(self, record, decision, options):
        chosen, rejected = chosen_rejected(record, decision)
        yield {
            "prompt": record.prompt,
            "chosen": [{"role": "assistant", "content": chosen.content}],
            "rejected": [{"role": "assistant", "content": rejected.content}],
        }


class TrlImplicit(Exporter):
    """Implicit prompt (reward modelling): the prompt is inside both conversations."""

    name = "trl-implicit"
    schema = pa.schema([("chosen", MESSAGES), ("rejected", MESSAGES), ("margin", pa.float64())])

    def rows(self, record, decision, options):
        chosen, rejected = chosen_rejected(record, decision)
        row = {
            "chosen": [*record.prompt, {"role": "assistant", "content": chosen.content}],
            "rejected": [*record.prompt, {"role": "assistant", "content": rejected.content}],
        }
        if options.get("margin", True):
            row["margin"] = decision.margin
        yield row


class HHRlhf(Exporter):
    """Whole transcripts with HH turn prefixes; an HH file imported here and judged by its
    own source preference exports back byte for byte, line for line."""

    name = "hh-rlhf"
    python_json = True  # the published files' separators, for byte-identical round trips
    schema = pa.schema([("chosen", pa.string()), ("rejected", pa.string())])

    def rows(self, record, decision, options):
        chosen, rejected = chosen_rejected(record, decision)
        context = [(HH_SPEAKER[m["role"]], m["content"]) for m in record.prompt]
        yield {
            "chosen": hh_join([*context, ("Assistant", chosen.content)]),
            "rejected": hh_join([*context, ("Assistant", rejected.content)]),
        }


class OpenAIPreference(Exporter):
    name = "openai-dpo"
    schema = pa.schema(
        [
            ("input", pa.struct([("messages", MESSAGES)])),
            ("preferred_output", MESSAGES),
            ("non_preferred_output", MESSAGES),
        ]
    )

    def rows(self, record, decision, options):
        chosen, rejected = chosen_rejected(record, decision)
        yield {
            "input": {"messages": record.prompt},
            "preferred_output": [{"role": "assistant", "content": chosen.content}],
            "non_preferred_output": [{"role": "assistant", "content": rejected.content}],
        }


class Kto(Exporter):
    """Unpaired: (prompt, completion, label). Sources: rubric scores (mean of a criterion at or
    above ``kto_good`` is desirable, at or below ``kto_bad`` undesirable, in between left out),
    KB verdicts (correct: desirable; incorrect or incomplete: undesirable), or pairwise
    decisions (chosen: desirable, rejected: undesirable; both-bad pairs give two negatives)."""

    name = "kto"
    kinds = (TaskKind.SCORE,)
    schema = pa.schema([("prompt", MESSAGES), ("completion", MESSAGES), ("label", pa.bool_())])

    @staticmethod
    def source_kind(options: dict) -> str:
        return {"scores": TaskKind.SCORE, "kb": TaskKind.KB_VERIFY, "pairwise": TaskKind.PAIRWISE}[
            options.get("kto_source", "scores")
        ]

    def rows(self, record, decision, options):
        def row(content, label):
            return {
                "prompt": record.prompt,
                "completion": [{"role": "assistant", "content": content}],
                "label": label,
            }

        if record.kind == TaskKind.PAIRWISE:
            if decision.both_bad:
                yield row(record.a.content, False)
                yield row(record.b.content, False)
                return
            chosen, rejected = chosen_rejected(record, decision)
            yield row(chosen.content, True)
            yield row(rejected.content, False)
        elif record.kind == TaskKind.KB_VERIFY:
            consensus = kb_consensus(v.verdict for v in record.votes)  # cannot_judge abstains
            # a label only where more than half of the votes give the verdict
            if consensus.is_decisive and consensus.agreement > 0.5:
                yield row(record.a.content, consensus.verdict == "correct")
        else:
            key = options.get("kto_criterion")
            values = [v.scores[key] for v in record.votes if key in v.scores]
            if values:
                m = mean(values)
                if m >= options.get("kto_good", 4):
                    yield row(record.a.content, True)
                elif m <= options.get("kto_bad", 2):
                    yield row(record.a.content, False)


class RubricScores(Exporter):
    """Per response and criterion: the mean score, rater count, agreement and every score."""

    name = "rubric-scores"
    kinds = (TaskKind.SCORE,)
    needs_decision = False
    schema = pa.schema(
        [
            ("prompt", MESSAGES),
            ("response", pa.string()),
            ("response_id", pa.int64()),
            ("model", pa.string()),
            ("criterion", pa.string()),
            ("score", pa.float64()),
            ("n_raters", pa.int64()),
            ("agreement", pa.float64()),
            ("scores", pa.list_(pa.float64())),
            ("raters", pa.list_(pa.string())),
            ("rubric_versions", pa.list_(pa.int64())),
        ]
    )

    def rows(self, record, decision, options):
        ranges = options.get("_criterion_ranges", {})
        labels = options.get("_rater_labels", {})
        keys = sorted({k for v in record.votes for k in v.scores})
        for key in keys:
            votes = [v for v in record.votes if key in v.scores]
            values = [v.scores[key] for v in votes]
            m = mean(values)
            span = ranges.get(key) or 1.0
            agreement = 1 - mean(abs(x - m) for x in values) / span if len(values) > 1 else None
            yield {
                "prompt": record.prompt,
                "response": record.a.content,
                "response_id": record.a.message_id,
                "model": record.a.model,
                "criterion": key,
                "score": round(m, 6),
                "n_raters": len(values),
                "agreement": None if agreement is None else round(agreement, 6),
                "scores": values,
                "raters": [labels.get(v.rater_id, str(v.rater_id)) for v in votes],
                "rubric_versions": sorted({v.rubric_version for v in votes if v.rubric_version}),
            }


REGISTRY: dict[str, Exporter] = {
    e.name: e
    for e in (
        TrlStandard(),
        TrlConversational(),
        TrlImplicit(),
        HHRlhf(),
        OpenAIPreference(),
        Kto(),
        RubricScores(),
    )
}
