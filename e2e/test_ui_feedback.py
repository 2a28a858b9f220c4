"""Feedback from the page reaches the API's store, by mouse and by keyboard only;
the keyboard test also covers uploading through the file chooser."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_ui import card_named, focused_test_id, open_app, stored_feedback, tab_to, wait_done
from playwright.sync_api import Locator, Page, Response, expect

pytestmark = pytest.mark.e2e


def _is_feedback_post(response: Response) -> bool:
    return response.url.endswith("/api/v1/feedback") and response.request.method == "POST"


def _expect_saved(card: Locator, base_url: str, answer: Response, class_index: str) -> None:
    """The confirmation shows and the API stored exactly the picked class for this prediction."""
    expect(card.get_by_test_id("feedback-done")).to_have_text("Thanks — feedback saved")
    assert answer.status == 201
    record = stored_feedback(base_url, answer.json()["id"])
    assert record["prediction_id"] == card.get_attribute("data-prediction-id")
    assert record["correct"] is False
    assert record["expected_class_index"] == int(class_index)


def test_wrong_then_picked_class_is_stored(page: Page, golden_dir: Path, base_url: str) -> None:
    open_app(page)
    page.get_by_test_id("file-input").set_input_files(golden_dir / "coffee.png")
    card = wait_done(card_named(page, "coffee.png"))

    card.get_by_test_id("feedback-wrong").click()
    card.get_by_test_id("picker-input").fill("cup")
    option = card.get_by_test_id("picker-option").filter(has_text="cup").first
    expect(option).to_have_text("cup")  # the exact name ranks above "measuring cup" and "porcupine"
    class_index = option.get_attribute("data-class-index")
    with page.expect_response(_is_feedback_post) as answer:
        option.click()

    _expect_saved(card, base_url, answer.value, class_index)
    assert stored_feedback(base_url, answer.value.json()["id"])["expected_label"] == "cup"


def test_keyboard_only_upload_and_feedback(page: Page, golden_dir: Path, base_url: str) -> None:
    # Any listener turns on Chromium's file-chooser interception; switched on only by
    # expect_file_chooser it can race the key press (a real dialog then opens unseen).
    page.on("filechooser", lambda _: None)
    open_app(page)
    tab_to(page, "dropzone")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    assert chooser.value.is_multiple()
    chooser.value.set_files(golden_dir / "chelsea.png")
    card = wait_done(card_named(page, "chelsea.png"))
    expect(card.get_by_test_id("bar")).to_have_count(5)

    tab_to(page, "feedback-wrong")
    page.keyboard.press("Enter")
    picker = card.get_by_test_id("picker-input")
    expect(picker).to_be_enabled()
    expect(picker).to_be_focused()
    page.keyboard.type("cup")
    expect(card.get_by_test_id("picker-option").first).to_have_text("cup")
    page.keyboard.press("ArrowDown")
    chosen = card.locator('[data-testid="picker-option"][aria-selected="true"]')
    expect(chosen).to_have_text("measuring cup")
    class_index = chosen.get_attribute("data-class-index")
    with page.expect_response(_is_feedback_post) as answer:
        page.keyboard.press("Enter")

    _expect_saved(card, base_url, answer.value, class_index)
    assert focused_test_id(page) == "feedback-done"  # focus was not dropped to <body>
