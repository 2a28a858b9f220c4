"""Write every stored feedback record as JSON lines: ``make export-feedback``.

Each line is one record as the API returns it (prediction sha256, model version,
predicted top-5, the user's answer), oldest first — ready to become a training
or evaluation set.
"""

from __future__ import annotations

import argparse
import json
import sys

from api.settings import ApiSettings
from api.store.feedback import FeedbackLog
from imgclf_contract import redis_client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="-", help="output file (default: standard output)")
    args = parser.parse_args(argv)
    log = FeedbackLog(redis_client.connect(ApiSettings.from_env()))
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    count = 0
    with out:
        for record in log.all():
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    print(f"exported {count} feedback records", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
