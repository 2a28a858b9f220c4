"""Feedback from the page reaches the API's store: a searched class (by mouse and
by keyboard only, which also covers the file chooser), a synonym, one of the
card's other guesses in one click, "Not in the list" with a comment, and Undo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from e2e_ui import card_named, focused_test_id, open_app, stored_feedback, tab_to, wait_done
from playwright.sync_api import Locator, Page, Response, expect

pytestmark = pytest.mark.e2e


def _is_feedback_post(response: Response) -> bool:
    return response.url.endswith("/api/v1/feedback") and response.request.method == "POST"


def _stored(card: Locator, base_url: str, answer: Response) -> dict:
    """The confirmation shows; the API's record for this card's prediction."""
    expect(card.get_by_test_id("feedback-done")).to_have_text("Thanks — feedback saved")
    assert answer.status == 201
    record = stored_feedback(base_url, answer.json()["id"])
    assert record["prediction_id"] == card.get_attribute("data-prediction-id")
    return record


def _expect_saved(card: Locator, base_url: str, answer: Response, class_index: str) -> None:
    """The API stored exactly the picked class for this prediction."""
    record = _stored(card, base_url, answer)
    assert record["correct"] is False
    assert record["expected_class_index"] == int(class_index)


def _classified(page: Page, path: Path) -> Locator:
    open_app(page)
    page.get_by_test_id("file-input").set_input_files(path)
    return wait_done(card_named(page, path.name))


def test_wrong_then_picked_class_is_stored(page: Page, golden_dir: Path, base_url: str) -> None:
    card = _classified(page, golden_dir / "coffee.png")

    card.get_by_test_id("feedback-wrong").click()
    card.get_by_test_id("picker-input").fill("cup")
    option = card.get_by_test_id("picker-option").filter(has_text="cup").first
    expect(option).to_have_text("cup")  # the exact name ranks above "measuring cup" and "porcupine"
    class_index = option.get_attribute("data-class-index")
    with page.expect_response(_is_feedback_post) as answer:
        option.click()

    _expect_saved(card, base_url, answer.value, class_index)
    assert stored_feedback(base_url, answer.value.json()["id"])["expected_label"] == "cup"


def test_search_finds_a_class_by_its_synonym(page: Page, golden_dir: Path, base_url: str) -> None:
    card = _classified(page, golden_dir / "coffee.png")
    card.get_by_test_id("feedback-wrong").click()
    card.get_by_test_id("picker-input").fill("mop")  # ImageNet names a mop "swab"

    option = card.get_by_test_id("picker-option").first
    expect(option).to_have_text("swab (also: mop)")
    class_index = option.get_attribute("data-class-index")
    with page.expect_response(_is_feedback_post) as answer:
        option.click()
    _expect_saved(card, base_url, answer.value, class_index)


def test_other_guess_in_one_click(page: Page, golden_dir: Path, base_url: str) -> None:
    card = _classified(page, golden_dir / "chelsea.png")
    second = card.get_by_test_id("bar").nth(1)
    second_label, second_index = (
        second.get_by_test_id("bar-label").inner_text(),
        second.get_attribute("data-class-index"),
    )

    card.get_by_test_id("feedback-wrong").click()
    guesses = card.get_by_test_id("feedback-guess")
    expect(guesses).to_have_count(4)  # the top-5 minus the answer called wrong
    with page.expect_response(_is_feedback_post) as answer:
        guesses.filter(has_text=re.compile(f"^{re.escape(second_label)}$")).click()

    _expect_saved(card, base_url, answer.value, second_index)
    expect(card.get_by_text(f"Wrong — it is {second_label}.")).to_be_visible()


def test_not_in_the_list_sends_the_comment(page: Page, golden_dir: Path, base_url: str) -> None:
    card = _classified(page, golden_dir / "rocket.jpg")
    card.get_by_test_id("feedback-wrong").click()
    card.get_by_test_id("picker-input").fill("person")
    expect(card.get_by_test_id("picker-status")).to_contain_text("No matching class")
    expect(card.get_by_test_id("picker-status")).to_contain_text("Not in the list")  # no dead end

    card.get_by_test_id("feedback-none").click()
    card.get_by_test_id("feedback-comment").fill("a person holding a model rocket")
    with page.expect_response(_is_feedback_post) as answer:
        card.get_by_test_id("feedback-send").click()

    record = _stored(card, base_url, answer.value)
    assert record["correct"] is False
    assert record["expected_class_index"] is None
    assert record["comment"] == "a person holding a model rocket"


def test_undo_withdraws_an_answer_before_it_is_sent(page: Page, golden_dir: Path, base_url: str) -> None:
    card = _classified(page, golden_dir / "coffee.png")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.url.endswith("/api/v1/feedback") else None)

    card.get_by_test_id("feedback-correct").click()
    expect(card.get_by_test_id("feedback-pending")).to_contain_text("Correct. Saving in 5 s")
    card.get_by_test_id("feedback-undo").click()
    expect(card.get_by_test_id("feedback-correct")).to_be_focused()  # the question is back
    page.wait_for_timeout(6_000)  # past the 5 s undo window: still nothing sent
    assert posts == []

    with page.expect_response(_is_feedback_post) as answer:
        card.get_by_test_id("feedback-correct").click()
    assert _stored(card, base_url, answer.value)["correct"] is True


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
    assert focused_test_id(page) == "feedback-guess"  # the one-click answers come first
    expect(card.get_by_test_id("picker-input")).to_be_enabled()  # once the labels have loaded
    tab_to(page, "picker-input")
    page.keyboard.type("cup")
    expect(card.get_by_test_id("picker-option").first).to_have_text("cup")
    page.keyboard.press("ArrowDown")
    chosen = card.locator('[data-testid="picker-option"][aria-selected="true"]')
    expect(chosen).to_have_text("measuring cup")
    class_index = chosen.get_attribute("data-class-index")
    with page.expect_response(_is_feedback_post) as answer:
        page.keyboard.press("Enter")
        expect(card.get_by_test_id("feedback-undo")).to_be_focused()  # during the undo window

    _expect_saved(card, base_url, answer.value, class_index)
    assert focused_test_id(page) == "feedback-done"  # focus was not dropped to <body>
