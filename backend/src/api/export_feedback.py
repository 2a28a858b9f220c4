"""Write every stored feedback record as JSON lines: ``make export-feedback``.

Each line is one record as the API returns it (prediction sha256, model version,
predicted top-5, the user's answer), oldest first — ready to become a training
or evaluation set.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator

import redis

from ml_worker.contract import keys
from ml_worker.contract.config import Settings

CHUNK = 500


def records(client: redis.Redis) -> Iterator[dict]:
    total = client.llen(keys.FEEDBACK_INDEX)
    for start in range(0, total, CHUNK):
        ids = [i.decode() for i in client.lrange(keys.FEEDBACK_INDEX, start, start + CHUNK - 1)]
        for raw in client.mget([keys.feedback(i) for i in ids]):
            if raw is not None:
                yield json.loads(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="-", help="output file (default: standard output)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    client = redis.Redis.from_url(settings.redis_url, password=settings.redis_password or None)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    count = 0
    with out:
        for record in records(client):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    print(f"exported {count} feedback records", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
