"""Generate a deterministic synthetic transcript corpus in the native JSONL format.

    .venv/bin/python bench/gen_corpus.py --conversations 50000 --out bench/out/corpus-50000.jsonl

One record per line, written as it is generated (memory stays flat whatever N is):

    {"id": "bench-000000001", "occurred_at": "...Z", "metadata": {...},
     "messages": [{"role": "user", "content": "..."}, {"role": "assistant", ...}, ...]}

Every conversation has 8 messages. Most are four user/assistant turns; some start with a
system prompt and carry a tool result (retrieval output) after the first user turn. Lengths
follow the benchmark's workload: system 100-400 characters, user 50-300, assistant 200-1500,
tool 100-600. Contents are cut from a pseudo-English text pool with punctuation, line breaks,
code lines (tabs, backslashes, quotes) and some non-ASCII text, so that JSON and COPY escaping
are exercised. The same --seed gives the same bytes.
"""

import argparse
import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path


def _words(text: str) -> list[str]:
    return text.split()


SYLLABLES = _words(
    "ka ri to me sa no lu ver pan dis ex tra con ment ing ion al er at or str com "
    "pro ject data mod el user ac count pay ment ship ping ord er re fund pass word "
    "log in set ting plan bill ing tick et"
)
COMMON = _words(
    "the a an to of and in is it you that for on with as your this be are can I we "
    "please thanks help order account refund password login error issue update email "
    "invoice payment shipping delivery plan settings app page click open try again "
    "support team minutes today yesterday number"
)
UNICODE = ["café", "naïve", "Zürich", "São Paulo", "東京", "Привет", "€", "✓", "—", "🙂"]
CODE_LINES = [
    '\tif (retries > 3) { return "failed"; }',
    "\tpath = C:\\Users\\support\\logs\\app.log",
    "\tcurl -H 'Authorization: Bearer <token>' https://api.example.com/v1/orders",
    '\t{"status": "pending", "items": 2}',
    "\tSELECT id, state FROM orders WHERE user_id = 42;",
]
CHANNELS = ["web", "ios", "android", "email", "api"]
LOCALES = ["en-US", "en-GB", "de-DE", "fr-FR", "pt-BR", "ja-JP"]
TIERS = ["free", "pro", "team", "enterprise"]
TAGS = ["billing", "login", "shipping", "refund", "bug", "feature", "account", "other"]
MODELS = ["support-bot-v3.1", "support-bot-v3.2", "support-bot-v4-rc1"]
TOOLS = ["kb_search", "order_lookup", "account_status"]

LENGTHS = {
    "system": (100, 400),
    "user": (50, 300),
    "assistant": (200, 1500),
    "tool": (100, 600),
}
PLAIN = ["user", "assistant"] * 4
WITH_TOOL = ["system", "user", "tool", "assistant", "user", "assistant", "user", "assistant"]
POOL_CHARS = 4_000_000
START = datetime(2024, 1, 1, tzinfo=UTC)


def _word(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.55:
        return rng.choice(COMMON)
    if r < 0.995:
        return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
    return rng.choice(UNICODE)


def build_pool(rng: random.Random, size: int = POOL_CHARS) -> str:
    """A long pseudo-English text from which message contents are sliced."""
    parts: list[str] = []
    total = 0
    while total < size:
        words = [_word(rng) for _ in range(rng.randint(4, 18))]
        words[0] = words[0].capitalize()
        sentence = " ".join(words) + rng.choice(".....?!:")
        r = rng.random()
        if r < 0.08:
            sentence += "\n"
        elif r < 0.11:
            sentence += "\n" + rng.choice(CODE_LINES) + "\n"
        elif r < 0.13:
            sentence += ' "' + _word(rng) + '"'
        parts.append(sentence)
        total += len(sentence) + 1
    return " ".join(parts)


class Corpus:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.pool = build_pool(self.rng)
        self.limit = len(self.pool) - 2000

    def text(self, low: int, high: int) -> str:
        rng, pool = self.rng, self.pool
        start = pool.find(" ", rng.randrange(self.limit)) + 1
        end = start + rng.randint(low, high)
        return pool[start:end].strip() or "ok"

    def record(self, n: int) -> dict:
        rng = self.rng
        roles = WITH_TOOL if rng.random() < 0.3 else PLAIN
        model = rng.choice(MODELS)
        messages = []
        for role in roles:
            message: dict = {"role": role, "content": self.text(*LENGTHS[role])}
            if role == "assistant":
                message["model"] = model
                message["metadata"] = {
                    "latency_ms": rng.randint(150, 9000),
                    "tokens": rng.randint(40, 400),
                }
            elif role == "tool":
                message["name"] = rng.choice(TOOLS)
            messages.append(message)
        occurred = START + timedelta(seconds=n * 37 + rng.randrange(30))
        metadata = {
            "channel": rng.choice(CHANNELS),
            "locale": rng.choice(LOCALES),
            "user_tier": rng.choice(TIERS),
            "tags": rng.sample(TAGS, rng.randint(0, 3)),
            "session": f"{rng.getrandbits(64):016x}",
            "csat": rng.choice([None, 1, 2, 3, 4, 5]),
        }
        return {
            "id": f"bench-{n:09d}",
            "occurred_at": occurred.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "metadata": metadata,
            "messages": messages,
        }


def generate(conversations: int, out: Path, seed: int = 1) -> tuple[int, int]:
    """Write ``conversations`` records to ``out``; return (conversations, messages)."""
    corpus = Corpus(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    messages = 0
    with out.open("w", encoding="utf-8", newline="\n", buffering=1 << 20) as f:
        for n in range(1, conversations + 1):
            record = corpus.record(n)
            messages += len(record["messages"])
            f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            f.write("\n")
    return conversations, messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.conversations < 1:
        parser.error("--conversations must be at least 1")
    conversations, messages = generate(args.conversations, args.out, args.seed)
    size = args.out.stat().st_size
    print(
        f"{args.out}: {conversations} conversations, {messages} messages, {size / 1e6:.1f} MB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
