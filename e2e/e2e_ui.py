"""Small page helpers shared by the browser tests: open the app, upload files the
ways a user can, and read the result cards through their data-testid hooks."""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path

import requests
from playwright.sync_api import Locator, Page, expect

DROP_EVENTS = ("dragenter", "dragover", "drop")

# Builds a real DataTransfer holding File objects, as a drag from the desktop carries.
_DATA_TRANSFER_JS = """files => {
  const transfer = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.b64), c => c.charCodeAt(0));
    transfer.items.add(new File([bytes], f.name, { type: f.type }));
  }
  return transfer;
}"""


def open_app(page: Page, url: str = "/", model: str = "ready") -> None:
    """Loads the page and waits for GET /models' answer ("ready": the client-side limits are
    in place; "unavailable": no worker serves a model)."""
    page.goto(url)
    expect(page.get_by_test_id("model-info")).to_have_attribute("data-state", model)


def _file_payload(path: Path) -> dict[str, str]:
    """A file as JSON for page.evaluate: name, MIME type from the extension (as a browser does), base64 bytes."""
    mime = mimetypes.guess_type(path.name)[0] or ""
    return {"name": path.name, "type": mime, "b64": base64.b64encode(path.read_bytes()).decode()}


def drop_files(page: Page, paths: list[Path], target: Locator | None = None) -> None:
    """Dispatches dragenter/dragover/drop (they bubble, as a real drag's do) on the target,
    by default the drop zone, with the files' real bytes."""
    transfer = page.evaluate_handle(_DATA_TRANSFER_JS, [_file_payload(p) for p in paths])
    for event in DROP_EVENTS:
        (target or page.get_by_test_id("dropzone")).dispatch_event(event, {"dataTransfer": transfer})


def cards(page: Page) -> Locator:
    return page.get_by_test_id("card")


def card_named(page: Page, name: str) -> Locator:
    """A file's card (cards carry the file name as their accessible name)."""
    return page.locator(f'[data-testid="card"][aria-label="{name}"]')


def wait_done(card: Locator) -> Locator:
    expect(card).to_have_attribute("data-state", "done")
    return card


def bar_labels(card: Locator) -> list[str]:
    return card.get_by_test_id("bar-label").all_inner_texts()


def stored_feedback(base_url: str, feedback_id: str) -> dict:
    """The feedback record as the API keeps it (not as the page shows it)."""
    response = requests.get(f"{base_url}/api/v1/feedback/{feedback_id}", timeout=10)
    response.raise_for_status()
    return response.json()


def focused_test_id(page: Page) -> str | None:
    return page.evaluate("() => document.activeElement?.dataset?.testid ?? null")


def tab_to(page: Page, test_id: str, max_presses: int = 15) -> None:
    """Presses Tab (only) until the element with this test id has focus."""
    for _ in range(max_presses):
        page.keyboard.press("Tab")
        if focused_test_id(page) == test_id:
            return
    raise AssertionError(f"{test_id} not reachable with {max_presses} Tab presses")
