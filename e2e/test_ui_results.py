"""Working with many results: the toolbar's summary, downloads and Clear, drops on
the results, one announcement per batch, weak answers and an even grid."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from e2e_ui import bar_labels, card_named, cards, drop_files, open_app, wait_done
from PIL import Image
from playwright.sync_api import Page, expect

from imgclf_contract.settings import SharedSettings

pytestmark = pytest.mark.e2e

TOP5_COLUMNS = [f"label_{i}" for i in range(1, 6)] + [f"score_{i}" for i in range(1, 6)]


def _upload_mixed_batch(page: Page, golden_dir: Path, tmp_path: Path) -> None:
    """Two photos and a text file the server refuses: 2 done, 1 failed."""
    fake = tmp_path / "notes.jpg"
    fake.write_text("shopping list: milk, eggs\n")
    open_app(page)
    page.get_by_test_id("file-input").set_input_files([golden_dir / "coffee.png", golden_dir / "chelsea.png", fake])
    for name in ("coffee.png", "chelsea.png"):
        wait_done(card_named(page, name))
    expect(card_named(page, "notes.jpg")).to_have_attribute("data-state", "error")


def _download(page: Page, test_id: str) -> tuple[str, str]:
    with page.expect_download() as download:
        page.get_by_test_id(test_id).click()
    return download.value.suggested_filename, Path(download.value.path()).read_text(encoding="utf-8")


def test_toolbar_summary_and_downloads_hold_every_result(page: Page, golden_dir: Path, tmp_path: Path) -> None:
    _upload_mixed_batch(page, golden_dir, tmp_path)
    expect(page.get_by_test_id("summary")).to_have_text("2 done · 1 failed")
    expect(page.get_by_test_id("retry-failed")).to_be_hidden()  # an unreadable file cannot be retried

    name, text = _download(page, "download-csv")
    assert name.startswith("classifications-") and name.endswith(".csv")
    rows = {row["file"]: row for row in csv.DictReader(io.StringIO(text))}
    assert list(rows) == ["coffee.png", "chelsea.png", "notes.jpg"]  # in the order shown
    coffee = rows["coffee.png"]
    assert coffee["status"] == "done" and coffee["model"].startswith(f"{SharedSettings.default_model} v")
    assert [coffee[f"label_{i}"] for i in range(1, 6)] == bar_labels(card_named(page, "coffee.png"))
    assert float(coffee["score_1"]) >= 0.9 and float(coffee["latency_ms"]) > 0 and coffee["error"] == ""
    failed = rows["notes.jpg"]
    assert failed["status"] == "failed" and failed["error"].startswith("The file is not an image we can read")
    assert all(failed[column] == "" for column in TOP5_COLUMNS)

    _, text = _download(page, "download-json")
    entries = {entry["file"]: entry for entry in json.loads(text)}
    assert entries["coffee.png"]["predictions"][0]["label"] == "espresso"
    assert entries["notes.jpg"]["error"] == failed["error"]


def test_clear_removes_results_from_page_and_memory(page: Page, golden_dir: Path, tmp_path: Path) -> None:
    _upload_mixed_batch(page, golden_dir, tmp_path)
    preview = card_named(page, "coffee.png").locator("img").get_attribute("src")
    assert preview.startswith("blob:")
    expect(page.get_by_test_id("dropzone")).to_be_hidden()  # the sticky toolbar's "Add images" took over

    page.get_by_test_id("clear").click()
    expect(cards(page)).to_have_count(0)
    expect(page.get_by_test_id("toolbar")).to_be_hidden()
    expect(page.get_by_test_id("dropzone")).to_be_visible()
    expect(page.get_by_test_id("live-region")).to_contain_text("Cleared 3 results.")
    # The preview's object URL was revoked: the image bytes are no longer held by the page.
    assert page.evaluate("url => fetch(url).then(() => 'held', () => 'released')", preview) == "released"


def test_drop_on_the_results_adds_images_with_an_overlay_while_dragging(page: Page, golden_dir: Path) -> None:
    open_app(page)
    page.get_by_test_id("file-input").set_input_files(golden_dir / "coffee.png")
    first = wait_done(card_named(page, "coffee.png"))

    overlay = page.get_by_test_id("drop-overlay")
    transfer = page.evaluate_handle(
        "() => { const t = new DataTransfer(); t.items.add(new File(['x'], 'x.png', {type: 'image/png'})); return t; }"
    )
    first.dispatch_event("dragenter", {"dataTransfer": transfer})
    expect(overlay).to_be_visible()
    first.dispatch_event("dragleave", {"dataTransfer": transfer})
    expect(overlay).to_be_hidden()

    drop_files(page, [golden_dir / "rocket.jpg"], target=first)  # on a card, far from any drop zone
    wait_done(card_named(page, "rocket.jpg"))
    expect(overlay).to_be_hidden()
    expect(cards(page)).to_have_count(2)


def test_add_images_stays_at_hand_while_scrolling(page: Page, golden_dir: Path) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    open_app(page)
    photos = [golden_dir / name for name in ("coffee.png", "chelsea.png", "rocket.jpg")]
    page.get_by_test_id("file-input").set_input_files(photos)
    for photo in photos:
        wait_done(card_named(page, photo.name))
    page.mouse.wheel(0, 5000)
    page.wait_for_function("() => window.scrollY > 500")
    add = page.get_by_test_id("add-images")
    expect(add).to_be_in_viewport()
    with page.expect_file_chooser() as chooser:
        add.click()
    assert chooser.value.is_multiple()


def test_one_announcement_per_batch(page: Page, golden_dir: Path) -> None:
    open_app(page)
    live = page.get_by_test_id("live-region").locator("p")
    page.get_by_test_id("file-input").set_input_files(
        [golden_dir / n for n in ("coffee.png", "chelsea.png", "rocket.jpg")]
    )
    expect(live).to_have_count(1)
    expect(live).to_have_text("3 images finished: 3 classified.")
    assert all(card.get_attribute("data-state") == "done" for card in cards(page).all())

    page.get_by_test_id("file-input").set_input_files(golden_dir / "coffee.png")
    expect(live).to_have_count(2)
    expect(live.last).to_have_text("coffee.png: espresso")


def test_weak_answers_look_unsure_and_the_scope_is_stated(page: Page, golden_dir: Path) -> None:
    open_app(page)
    page.get_by_test_id("file-input").set_input_files([golden_dir / "coffee.png", golden_dir / "rocket.jpg"])
    confident, weak = wait_done(card_named(page, "coffee.png")), wait_done(card_named(page, "rocket.jpg"))

    assert float(weak.get_by_test_id("bar").first.get_attribute("data-score")) < 0.5  # "missile", about 30 %
    expect(weak).to_have_class("card card--weak")
    expect(weak.get_by_test_id("weak-note")).to_have_text("Unsure — below 50%")
    expect(confident).to_have_class("card")
    expect(confident.get_by_test_id("weak-note")).to_have_count(0)
    top_colour = "el => getComputedStyle(el.querySelector('.bar--top .bar__fill')).backgroundColor"
    assert weak.evaluate(top_colour) != confident.evaluate(top_colour)

    scope = page.get_by_test_id("model-scope")
    expect(scope).to_contain_text("1000 everyday categories")
    expect(scope).to_contain_text("no category for people")


def test_thumbnails_have_one_height_and_rows_are_dense(page: Page, golden_dir: Path, tmp_path: Path) -> None:
    portrait = tmp_path / "portrait.png"
    Image.open(golden_dir / "coffee.png").rotate(90, expand=True).save(portrait)  # 400 x 600
    page.set_viewport_size({"width": 1280, "height": 800})
    open_app(page)
    page.get_by_test_id("file-input").set_input_files([portrait, golden_dir / "chelsea.png"])
    heights = {
        wait_done(card_named(page, n)).locator(".card__media").bounding_box()["height"]
        for n in ("portrait.png", "chelsea.png")
    }
    assert heights == {120}
    columns = page.evaluate(
        "() => getComputedStyle(document.getElementById('cards')).gridTemplateColumns.split(' ').length"
    )
    assert columns >= 5
