"""Page-level qualities: a clean load under the CSP, a favicon, a layout that fits a
phone, and the README's screenshot of finished results (written by `make screenshot`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests
from e2e_ui import card_named, open_app, wait_done
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from imgclf_contract.settings import SharedSettings

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]

# Runs before the app's scripts, so even a violation during load is recorded.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""

INJECT_INLINE_SCRIPT = """() => {
  const script = document.createElement('script');
  script.textContent = 'window.__injected = 1';
  document.body.append(script);
}"""


def _errors_of(page: Page) -> list[str]:
    """Collects console errors and uncaught exceptions from now on."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    return errors


def _violations(page: Page) -> list[str]:
    return page.evaluate("() => window.__cspViolations")


def test_clean_load_under_a_csp_that_blocks_inline_scripts(page: Page) -> None:
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    errors = _errors_of(page)

    response = page.goto("/")
    expect(page.get_by_test_id("model-info")).to_have_attribute("data-state", "ready")
    expect(page.get_by_test_id("service-banner")).to_be_hidden()
    assert errors == []
    assert _violations(page) == []

    directives = [d.strip() for d in response.headers["content-security-policy"].split(";")]
    assert "default-src 'self'" in directives
    assert "frame-ancestors 'none'" in directives

    page.evaluate(INJECT_INLINE_SCRIPT)
    page.wait_for_function("() => window.__cspViolations.length > 0")
    assert page.evaluate("() => window.__injected") is None
    assert _violations(page)[0].startswith("script-src")


def test_favicon_is_linked_and_served(page: Page, base_url: str) -> None:
    open_app(page)
    href = page.locator('link[rel="icon"]').get_attribute("href")
    response = requests.get(f"{base_url}/{href}", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in response.content


def test_header_speaks_plainly_with_model_details_in_the_tooltip(page: Page) -> None:
    open_app(page)
    info = page.get_by_test_id("model-info")
    expect(info).to_have_text("Names what is in your photos")
    expect(info).to_have_attribute("title", re.compile(rf"^Model: {SharedSettings.default_model} v\S+ \(\w+\)\. "))


def test_phone_width_has_no_horizontal_scroll(page: Page, golden_dir: Path, tmp_path: Path) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    long_name = tmp_path / f"{'a-very-long-holiday-photo-name-' * 4}coffee.png"
    long_name.write_bytes((golden_dir / "coffee.png").read_bytes())
    open_app(page)

    page.get_by_test_id("file-input").set_input_files(long_name)
    card = wait_done(card_named(page, long_name.name))
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    correct = card.get_by_test_id("feedback-correct").bounding_box()
    wrong = card.get_by_test_id("feedback-wrong").bounding_box()
    assert wrong["y"] == correct["y"] and wrong["x"] > correct["x"]  # side by side, not wrapped


def test_paste_hint_only_where_there_is_a_keyboard(browser: Browser, base_url: str) -> None:
    for touch, shown in ((True, False), (False, True)):
        viewport = {"width": 360, "height": 740}
        context = browser.new_context(base_url=base_url, has_touch=touch, is_mobile=touch, viewport=viewport)
        page = context.new_page()
        open_app(page)
        hint = page.get_by_text("You can also paste an image")
        if shown:
            expect(hint).to_be_visible()
        else:
            expect(hint).to_be_hidden()
        context.close()


def test_screenshot_of_finished_results(page: Page, golden_dir: Path, tmp_path: Path) -> None:
    """The README's picture; written to docs/ only by `make screenshot` (SCREENSHOT=path)."""
    page.set_viewport_size({"width": 1280, "height": 800})
    open_app(page)
    page.get_by_test_id("file-input").set_input_files([golden_dir / "coffee.png", golden_dir / "chelsea.png"])

    for name in ("coffee.png", "chelsea.png"):
        card = wait_done(card_named(page, name))
        thumb = card.locator("img")
        expect(thumb).to_be_visible()
        assert thumb.evaluate("img => img.complete && img.naturalWidth > 0")
    page.mouse.move(0, 0)  # no hover highlight in the picture
    target = ROOT / os.environ["SCREENSHOT"] if os.environ.get("SCREENSHOT") else tmp_path / "screenshot.png"
    target.parent.mkdir(exist_ok=True)
    page.screenshot(path=target)
    assert target.stat().st_size > 10_000
