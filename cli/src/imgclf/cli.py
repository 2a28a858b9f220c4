"""imgclf: the command line (argparse) for classify, predict and evaluate."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from imgclf.client import DEFAULT_URL, ApiError, Client, RetryPolicy, ServerGone, Unreachable
from imgclf.evaluate import Evaluation, labelled_files
from imgclf.files import PathsProblem, collect, labelled_images
from imgclf.organize import Organizer
from imgclf.results import ResultWriter, Row, latest_rows, resume
from imgclf.runner import classify_all, stop_on_sigint
from imgclf.summary import Summary
from imgclf.train import follow, print_status, render_report, upload

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_STATUS = (
    "exit status: 0 done, 1 some files failed for now or the server went away (rerun to continue), "
    "2 usage error, server not reachable or key refused, 130 interrupted"
)
UNREACHABLE_HINT = (
    "hint: is the service running? `make up` starts it; --url (or IMGCLF_URL) points imgclf at another address"
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _client_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get("IMGCLF_URL", DEFAULT_URL),
        help="API base URL (env IMGCLF_URL; default %(default)s)",
    )
    common.add_argument(
        "--api-key", default=os.environ.get("IMGCLF_API_KEY"), help="sent as X-API-Key (env IMGCLF_API_KEY)"
    )
    common.add_argument(
        "--concurrency",
        type=_positive_int,
        default=4,
        help="requests in flight (default %(default)s, which suits a 2-core server)",
    )
    common.add_argument(
        "--max-tries",
        type=_positive_int,
        default=6,
        help="attempts per file while the server is overloaded (429, timeouts) (default %(default)s)",
    )
    common.add_argument(
        "--max-wait",
        type=float,
        default=60.0,
        help="seconds without a reachable server or worker before the whole run gives up (default %(default)s)",
    )
    common.add_argument(
        "--model",
        default=os.environ.get("IMGCLF_MODEL") or None,
        metavar="NAME",
        help="model to ask, NAME or NAME:VERSION (env IMGCLF_MODEL; default: the server's default model)",
    )
    common.add_argument("--progress", action="store_true", help="show the progress bar even when not on a terminal")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imgclf", description="Classify collections of images with the API.")
    commands = parser.add_subparsers(dest="command", required=True)
    common = _client_options()

    classify = commands.add_parser(
        "classify", parents=[common], help="classify folders/files into a CSV or JSONL", description=EXIT_STATUS
    )
    classify.add_argument("paths", nargs="+", metavar="PATH", help="folders (walked recursively) or files")
    classify.add_argument(
        "--out", required=True, type=Path, help="results file: .csv, or .jsonl; rerunning with the same file resumes"
    )
    classify.add_argument("--organize", type=Path, metavar="DEST", help="copy each image into DEST/<label>/")
    classify.add_argument("--link", action="store_true", help="with --organize: symlink instead of copying")
    classify.add_argument(
        "--min-score", type=float, default=0.0, help="with --organize: below this top-1 score, use DEST/_uncertain/"
    )

    predict = commands.add_parser("predict", parents=[common], help="print the top-5 of a few files")
    predict.add_argument("paths", nargs="+", metavar="FILE")
    predict.add_argument("--json", action="store_true", help="one JSON document instead of text")

    evaluate = commands.add_parser("evaluate", parents=[common], help="accuracy on a labelled folder")
    evaluate.add_argument(
        "root",
        type=Path,
        metavar="DIR",
        help="one subfolder per class, named by label or WordNet id; or files named <wnid>_*.JPEG directly in DIR",
    )
    evaluate.add_argument("--json", action="store_true", help="one JSON document instead of a table")

    train = commands.add_parser("train", parents=[common], help="teach the service your own labels from a folder")
    train.add_argument("root", type=Path, metavar="DIR", help="one subfolder per label (any nesting below it)")
    train.add_argument("--name", required=True, help="dataset and model name (lower-case letters, digits, '_')")
    train.add_argument("--base", default=None, help="base model (default: the server's default model)")
    train.add_argument("--holdout", type=float, default=0.2, help="share of each label kept out (default %(default)s)")

    feedback = commands.add_parser(
        "add-feedback", parents=[common], help="add the feedback on model NAME's predictions to its dataset"
    )
    feedback.add_argument("name", metavar="NAME")
    return parser


def _client(args: argparse.Namespace) -> Client:
    retry = RetryPolicy(max_tries=args.max_tries, max_wait_s=args.max_wait)
    return Client(args.url, args.api_key, pool_size=args.concurrency, retry=retry, model=args.model)


def _bar(args: argparse.Namespace, total: int) -> tqdm:
    return tqdm(
        total=total, unit="img", dynamic_ncols=True, file=sys.stderr, disable=not (args.progress or sys.stderr.isatty())
    )


def _rows(args: argparse.Namespace, client: Client, paths: list[Path]):
    """Rows as they complete, with the progress bar (rate, ETA, errors) kept up to date."""
    errors = 0
    with _bar(args, len(paths)) as bar:
        for row in classify_all(client, paths, args.concurrency):
            errors += not row.ok
            bar.set_postfix(errors=errors, refresh=False)
            bar.update()
            yield row


def _check_server(args: argparse.Namespace, client: Client) -> None:
    """Within seconds: Unreachable when nothing answers; a note when the server is up but not ready."""
    not_ready = client.check_ready()
    if not_ready:
        print(f"imgclf: {args.url} is not ready ({not_ready}); waiting up to {args.max_wait:g} s", file=sys.stderr)


def _organize(organizer: Organizer, rows: list[Row], summary: Summary, earlier: bool = False) -> None:
    """Places classified files; a file that is gone since it was classified is reported and skipped."""
    for row in rows:
        try:
            added = organizer.place(row)
        except OSError as exc:
            print(f"imgclf: cannot organize {row.path}: {exc.strerror or exc}", file=sys.stderr)
            continue
        summary.organized += added
        summary.already_organized += not added
        summary.organized_earlier_rows += earlier


def _run(
    args: argparse.Namespace,
    client: Client,
    todo: list[Path],
    writer: ResultWriter,
    summary: Summary,
    organizer: Organizer | None,
) -> None:
    """Classifies todo into writer until done, Ctrl-C, or the server has been gone for --max-wait."""
    try:
        with stop_on_sigint(client.stop):
            for row in _rows(args, client, todo):
                writer.write(row)
                summary.add(row)
                if organizer and row.ok:
                    _organize(organizer, [row], summary)
    except KeyboardInterrupt:
        client.stop.set()
    except ServerGone as exc:
        summary.gave_up = str(exc)
    summary.interrupted = client.stop.is_set() and not summary.gave_up


def classify(args: argparse.Namespace) -> int:
    paths = collect(args.paths)
    client = _client(args)
    try:
        _check_server(args, client)
        writer, kept = resume(args.out)
        done = {row.path for row in kept}
        todo = [path for path in paths if str(path) not in done]
        summary = Summary(out=args.out, todo=len(todo), earlier=len(paths) - len(todo))
        organizer = Organizer(args.organize, args.link, args.min_score) if args.organize else None
        try:
            earlier_ok = [row for row in kept if row.ok]
            if organizer and earlier_ok:
                print(f"organizing the {len(earlier_ok)} files already classified in {args.out}", file=sys.stderr)
                _organize(organizer, earlier_ok, summary, earlier=True)
            _run(args, client, todo, writer, summary, organizer)
        finally:
            writer.close()
    finally:
        client.close()
    rows = list(latest_rows(args.out).values())
    print(summary.render(rows, args.organize))
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.gave_up or any(row.retry_on_rerun for row in rows) else EXIT_OK


def _render_top5(row: Row) -> str:
    if not row.ok:
        return f"{row.path}\n  error: {row.error}"
    lines = [row.path]
    lines += [f"  {i}. {p['label']:<30} {p['score']:7.2%}  {p['wnid'] or ''}" for i, p in enumerate(row.top5 or [], 1)]
    return "\n".join(lines)


def predict(args: argparse.Namespace) -> int:
    paths = collect(args.paths)
    client = _client(args)
    try:
        _check_server(args, client)
        with stop_on_sigint(client.stop):
            by_path = {row.path: row for row in _rows(args, client, paths)}
    finally:
        client.close()
    rows = [by_path[str(path)] for path in paths if str(path) in by_path]
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2, ensure_ascii=False))
    else:
        print("\n\n".join(_render_top5(row) for row in rows))
    if client.stop.is_set():
        return EXIT_INTERRUPTED
    return EXIT_OK if all(row.ok for row in rows) else EXIT_FAILED


def evaluate(args: argparse.Namespace) -> int:
    if not args.root.is_dir():
        print(f"imgclf: {args.root} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    client = _client(args)
    try:
        _check_server(args, client)
        files, unknown = labelled_files(args.root, client.labels())
        report = Evaluation(unknown_folders=unknown)
        with stop_on_sigint(client.stop):
            for row in _rows(args, client, list(files)):
                folder, wnids = files[Path(row.path)]
                report.add(folder, wnids, row)
    finally:
        client.close()
    print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) if args.json else report.render())
    return EXIT_INTERRUPTED if client.stop.is_set() else EXIT_OK


def train(args: argparse.Namespace) -> int:
    if not args.root.is_dir():
        print(f"imgclf: {args.root} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    files = labelled_images(args.root)
    if not files:
        print(f"imgclf: no images in the subfolders of {args.root}", file=sys.stderr)
        return EXIT_USAGE
    client = _client(args)
    try:
        client.create_dataset(args.name, args.base)
        with _bar(args, len(files)) as bar:
            sent = upload(client, args.name, files, args.concurrency, bar.update)
        print(
            f"uploaded {sent.sent}, already there {sent.skipped}, refused {sum(map(len, sent.errors.values()))}",
            file=sys.stderr,
        )
        for code, paths in sent.errors.items():
            print(f"  {code}: {', '.join(paths[:5])}{' ...' if len(paths) > 5 else ''}", file=sys.stderr)
        state = follow(client, client.start_training(args.name, args.holdout)["id"], print_status)
    finally:
        client.close()
    if state["status"] != "succeeded":
        print(f"imgclf: training failed: {state.get('error')}", file=sys.stderr)
        return EXIT_FAILED
    print(render_report(state))
    return EXIT_OK


def add_feedback(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        result = client.import_feedback(args.name)
    finally:
        client.close()
    skipped = ", ".join(f"{n} {why}" for why, n in result["skipped"].items() if n)
    print(f"added {result['added']} images to dataset {args.name}" + (f" (skipped: {skipped})" if skipped else ""))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "classify" and (args.link or args.min_score) and not args.organize:
        build_parser().error("--link and --min-score need --organize DEST")
    try:
        commands = {
            "classify": classify,
            "predict": predict,
            "evaluate": evaluate,
            "train": train,
            "add-feedback": add_feedback,
        }
        return commands[args.command](args)
    except PathsProblem as exc:  # before anything was sent
        print(f"imgclf: {exc}; nothing was classified", file=sys.stderr)
        return EXIT_USAGE
    except Unreachable as exc:  # the check before the run, within seconds
        print(f"imgclf: {exc}\n{UNREACHABLE_HINT}", file=sys.stderr)
        return EXIT_USAGE
    except ServerGone as exc:  # predict and evaluate (classify reports it in its summary)
        print(f"imgclf: gave up: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ApiError as exc:  # a refused key, or the labels could not be fetched
        print(f"imgclf: {args.url}: {exc.message} ({exc.code})", file=sys.stderr)
        return EXIT_USAGE if exc.status == 401 else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
