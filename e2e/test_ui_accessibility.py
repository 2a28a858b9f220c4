"""axe-core (from npm, pinned by package-lock.json; `make test` installs it) over the
page's main states, light and dark, desktop and phone: no critical or serious
violations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_ui import card_named, open_app, wait_done
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"critical", "serious"}
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 360, "height": 740}}


def _violations(page: Page) -> list[str]:
    """axe's blocking findings, one line each (rule, impact, first offending elements)."""
    page.add_script_tag(path=AXE)
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes'][:3]]}"
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


@pytest.fixture(params=[(scheme, size) for scheme in ("light", "dark") for size in VIEWPORTS])
def audited_page(request, browser: Browser, base_url: str) -> Iterator[Page]:
    """A page in one colour scheme and size; the CSP is bypassed only so axe's script can be injected."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make test does it)")
    scheme, size = request.param
    context = browser.new_context(base_url=base_url, color_scheme=scheme, viewport=VIEWPORTS[size], bypass_csp=True)
    yield context.new_page()
    context.close()


def _empty(page: Page, golden_dir: Path, tmp_path: Path) -> None:
    pass


def _results_and_errors(page: Page, golden_dir: Path, tmp_path: Path) -> None:
    fake = tmp_path / "notes.jpg"
    fake.write_text("not an image")
    page.get_by_test_id("file-input").set_input_files([golden_dir / "coffee.png", golden_dir / "rocket.jpg", fake])
    wait_done(card_named(page, "coffee.png"))
    wait_done(card_named(page, "rocket.jpg"))  # a weak answer
    expect(card_named(page, "notes.jpg")).to_have_attribute("data-state", "error")


def _picker_open(page: Page, golden_dir: Path, tmp_path: Path) -> None:
    page.get_by_test_id("file-input").set_input_files(golden_dir / "coffee.png")
    card = wait_done(card_named(page, "coffee.png"))
    card.get_by_test_id("feedback-wrong").click()
    card.get_by_test_id("picker-input").fill("mop")
    expect(card.get_by_test_id("picker-option").first).to_be_visible()


def _after_feedback(page: Page, golden_dir: Path, tmp_path: Path) -> None:
    page.get_by_test_id("file-input").set_input_files(golden_dir / "coffee.png")
    card = wait_done(card_named(page, "coffee.png"))
    card.get_by_test_id("feedback-correct").click()
    expect(card.get_by_test_id("feedback-undo")).to_be_visible()
    expect(card.get_by_test_id("feedback-done")).to_be_visible(timeout=15_000)


STATES: dict[str, Callable[[Page, Path, Path], None]] = {
    "empty": _empty,
    "results and errors": _results_and_errors,
    "picker open": _picker_open,
    "after feedback": _after_feedback,
}


@pytest.mark.parametrize("state", STATES)
def test_no_serious_violations(audited_page: Page, state: str, golden_dir: Path, tmp_path: Path) -> None:
    open_app(audited_page)
    STATES[state](audited_page, golden_dir, tmp_path)
    assert _violations(audited_page) == []
