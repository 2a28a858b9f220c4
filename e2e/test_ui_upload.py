"""Getting images in: drag and drop, multi-select, unreadable files and the
Retry path when no worker is running."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from e2e_ui import bar_labels, card_named, cards, drop_files, open_app, wait_done
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

GOLDEN_PHOTOS = ("coffee.png", "chelsea.png", "rocket.jpg")
PREDICTIONS = "**/api/v1/predictions"


def test_dropped_file_shows_five_bars_with_espresso_first(page: Page, golden_dir: Path) -> None:
    open_app(page)
    drop_files(page, [golden_dir / "coffee.png"])

    card = wait_done(card_named(page, "coffee.png"))
    expect(card.get_by_test_id("bar")).to_have_count(5)
    assert bar_labels(card)[0] == "espresso"
    assert float(card.get_by_test_id("bar").first.get_attribute("data-score")) >= 0.9
    expect(card.get_by_test_id("latency")).to_contain_text("ms")


def test_several_files_at_once_get_one_finished_card_each(page: Page, golden_dir: Path) -> None:
    open_app(page)
    page.get_by_test_id("file-input").set_input_files([golden_dir / name for name in GOLDEN_PHOTOS])

    expect(cards(page)).to_have_count(len(GOLDEN_PHOTOS))
    for name in GOLDEN_PHOTOS:
        wait_done(card_named(page, name))
    assert bar_labels(card_named(page, "chelsea.png"))[0] in {"tiger cat", "tabby", "Egyptian cat"}


def test_text_file_named_jpg_shows_the_apis_message(page: Page, tmp_path: Path) -> None:
    fake = tmp_path / "notes.jpg"
    fake.write_text("shopping list: milk, eggs\n")
    open_app(page)

    with page.expect_response(PREDICTIONS) as answer:
        page.get_by_test_id("file-input").set_input_files(fake)
    assert answer.value.status == 415
    message = answer.value.json()["error"]["message"]

    card = card_named(page, "notes.jpg")
    expect(card).to_have_attribute("data-state", "error")
    expect(card.get_by_test_id("card-error")).to_have_text(message)
    assert message.startswith("The file is not an image we can read")
    expect(card.get_by_test_id("retry")).to_have_count(0)  # retrying cannot help here


def test_retry_waits_for_retry_after_then_succeeds_once_a_worker_is_back(
    page: Page, stack_factory, golden_dir: Path
) -> None:
    stack = stack_factory("e2e-retry")
    stack.stop("worker-1")
    open_app(page, stack.config.url, model="unavailable")

    with page.expect_response(PREDICTIONS) as answer:
        page.get_by_test_id("file-input").set_input_files([golden_dir / "rocket.jpg", golden_dir / "coffee.png"])
    assert answer.value.status == 503
    retry_after = int(answer.value.headers["retry-after"])
    card, other = card_named(page, "rocket.jpg"), card_named(page, "coffee.png")
    expect(card).to_have_attribute("data-state", "error")
    expect(card.get_by_test_id("card-error")).to_have_text(answer.value.json()["error"]["message"])
    retry = card.get_by_test_id("retry")
    expect(retry).to_have_text(re.compile(rf"^Retry in [1-{retry_after}] s$"))  # the server's Retry-After
    expect(retry).to_be_disabled()
    expect(retry).to_have_text("Retry", timeout=(retry_after + 2) * 1000)
    expect(other).to_have_attribute("data-state", "error")
    expect(page.get_by_test_id("summary")).to_have_text("2 failed")

    stack.start("worker-1")
    retry.click()
    wait_done(card)
    expect(card.get_by_test_id("bar")).to_have_count(5)
    page.get_by_test_id("retry-failed").click()  # the toolbar retries the rest
    wait_done(other)
    expect(page.get_by_test_id("summary")).to_have_text("2 done")
    expect(page.get_by_test_id("retry-failed")).to_be_hidden()
