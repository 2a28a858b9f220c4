"""The output file (CSV or JSONL by extension): one complete, flushed row per file, and resuming from it.

JSONL holds each Row as it is. CSV adds the top-5 as plain columns (label_1..5, score_1..5) beside
the JSON of `top5`, so a spreadsheet needs no JSON parsing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO

from imgclf.client import TRANSIENT_CODES, ApiError

UNREADABLE = "unreadable"


@dataclass
class Row:
    path: str
    size: int | None = None
    sha256: str = ""
    label: str = ""
    score: float | None = None
    top5: list[dict] | None = None
    model: str = ""  # the model that answered (--model, or the server's default)
    model_version: str = ""
    status: str = "ok"  # ok | error
    error_code: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def retry_on_rerun(self) -> bool:
        """Transient failures (overload, no worker, no connection) are tried again by the next run."""
        return not self.ok and self.error_code in TRANSIENT_CODES

    @classmethod
    def success(cls, path: str, data: bytes, body: dict) -> Row:
        top = [{"label": p["label"], "wnid": p["wnid"], "score": p["score"]} for p in body["predictions"][:5]]
        model = body["model"]
        best = top[0]
        sha256 = body["image"]["sha256"]
        return cls(path, len(data), sha256, best["label"], best["score"], top, model["name"], model["version"])

    @classmethod
    def failure(cls, path: str, data: bytes | None, error: ApiError | OSError) -> Row:
        size, digest = (len(data), hashlib.sha256(data).hexdigest()) if data is not None else (None, "")
        if isinstance(error, ApiError):
            code, message = error.code, error.message  # the code has its own column
        else:
            code, message = UNREADABLE, f"{type(error).__name__}: {error.strerror or error}"
        return cls(path, size, digest, status="error", error_code=code, error=message)


FIELDS = [f.name for f in fields(Row)]
TOP_K = 5
TOP_COLUMNS = [f"label_{i}" for i in range(1, TOP_K + 1)] + [f"score_{i}" for i in range(1, TOP_K + 1)]
CSV_FIELDS = [*FIELDS[: FIELDS.index("top5")], *TOP_COLUMNS, *FIELDS[FIELDS.index("top5") :]]


def _top_columns(top5: list[dict] | None) -> dict[str, object]:
    """label_1..5 and score_1..5, empty where there are fewer (or none, for an error)."""
    top = (top5 or [])[:TOP_K]
    columns: dict[str, object] = {name: "" for name in TOP_COLUMNS}
    for i, prediction in enumerate(top, 1):
        columns[f"label_{i}"], columns[f"score_{i}"] = prediction["label"], prediction["score"]
    return columns


def _is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".ndjson", ".json")


def _to_text(row: Row, jsonl: bool) -> str:
    record = asdict(row)
    if jsonl:
        return json.dumps(record, ensure_ascii=False) + "\n"
    record["top5"] = json.dumps(row.top5, ensure_ascii=False) if row.top5 is not None else ""
    record.update(_top_columns(row.top5))
    buffer = io.StringIO()
    csv.DictWriter(buffer, CSV_FIELDS, lineterminator="\n").writerow(record)
    return buffer.getvalue()


def _from_record(record: dict) -> Row:
    """A Row from a parsed JSONL object or CSV dict (where every value is a string)."""
    top5 = record.get("top5")
    if isinstance(top5, str):
        top5 = json.loads(top5) if top5 else None
    size, score = record.get("size"), record.get("score")
    return Row(
        path=record["path"],
        size=int(size) if size not in (None, "") else None,
        sha256=record.get("sha256") or "",
        label=record.get("label") or "",
        score=float(score) if score not in (None, "") else None,
        top5=top5,
        model=record.get("model") or "",
        model_version=record.get("model_version") or "",
        status=record.get("status") or "ok",
        error_code=record.get("error_code") or "",
        error=record.get("error") or "",
    )


def read_rows(path: Path) -> list[Row]:
    """Every complete row of an output file; a last line cut short by a crash is ignored."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if _is_jsonl(path):
        return [_from_record(json.loads(line)) for line in text.splitlines() if line.strip()]
    return [_from_record(record) for record in csv.DictReader(io.StringIO(text, newline=""))]


class ResultWriter:
    """Appends rows to the output; each row is written whole and flushed so an interrupted run leaves a valid file."""

    def __init__(self, path: Path, keep: list[Row]) -> None:
        self.path = path
        self.jsonl = _is_jsonl(path)
        self._file: IO[str] | None = None
        self._rewrite(keep)

    def _rewrite(self, keep: list[Row]) -> None:
        """Start the file over with the rows kept from earlier runs (atomically: temp file, then rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            if not self.jsonl:
                out.write(",".join(CSV_FIELDS) + "\n")
            out.writelines(_to_text(row, self.jsonl) for row in keep)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        self._file = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()

    def write(self, row: Row) -> None:
        assert self._file is not None
        self._file.write(_to_text(row, self.jsonl))
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def latest_rows(path: Path) -> dict[str, Row]:
    """The output's rows by path; should a path appear twice, its last row wins."""
    return {row.path: row for row in read_rows(path)}


def resume(path: Path) -> tuple[ResultWriter, list[Row]]:
    """Open the output for this run: rows of earlier runs stay except transient errors, which are retried.

    Returns the writer and the rows kept (their paths are skipped).
    """
    kept = [row for row in latest_rows(path).values() if not row.retry_on_rerun]
    return ResultWriter(path, kept), kept
