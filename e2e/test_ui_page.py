"""Page-level qualities: a clean load under the CSP, a layout that fits a phone,
and the README's screenshot of finished results."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_ui import card_named, open_app, wait_done
from playwright.sync_api import ConsoleMessage, Page, expect

pytestmark = pytest.mark.e2e

SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "screenshot.png"

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
    expect(page.get_by_test_id("model-info")).to_contain_text("Model:")
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


def test_phone_width_has_no_horizontal_scroll(page: Page, golden_dir: Path, tmp_path: Path) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    long_name = tmp_path / f"{'a-very-long-holiday-photo-name-' * 4}coffee.png"
    long_name.write_bytes((golden_dir / "coffee.png").read_bytes())
    open_app(page)

    page.get_by_test_id("file-input").set_input_files(long_name)
    wait_done(card_named(page, long_name.name))
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360


def test_screenshot_of_finished_results(page: Page, golden_dir: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    open_app(page)
    page.get_by_test_id("file-input").set_input_files([golden_dir / "coffee.png", golden_dir / "chelsea.png"])

    for name in ("coffee.png", "chelsea.png"):
        card = wait_done(card_named(page, name))
        thumb = card.locator("img")
        expect(thumb).to_be_visible()
        assert thumb.evaluate("img => img.complete && img.naturalWidth > 0")
    page.mouse.move(0, 0)  # no hover highlight in the picture
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOT)
