"""The model selector: pick Lite2, the card says Lite2 answered, its labels feed the picker,
and the choice survives a reload of the tab."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_ui import bar_labels, card_named, open_app, wait_done
from playwright.sync_api import Page, expect

from imgclf_contract.settings import SharedSettings
from ml_worker.build import DEFAULT_MODELS

pytestmark = pytest.mark.e2e
LITE2 = "efficientnet_lite2"


def test_picked_model_answers_and_feeds_the_picker(page: Page, golden_dir: Path) -> None:
    open_app(page)
    selector = page.get_by_test_id("model-select")
    expect(selector).to_be_visible()
    expect(selector.locator("option")).to_have_count(len(DEFAULT_MODELS))  # what the test stack serves
    expect(selector).to_have_value(SharedSettings.default_model)  # the server's default
    expect(selector.locator("option").nth(1)).to_contain_text("% top-1")  # the measured accuracy
    selector.select_option(LITE2)

    with page.expect_response("**/api/v1/predictions") as answer:
        page.get_by_test_id("file-input").set_input_files(golden_dir / "rocket.jpg")
    assert answer.value.json()["model"]["name"] == LITE2
    card = wait_done(card_named(page, "rocket.jpg"))
    expect(card.get_by_test_id("answered-by")).to_have_text(f"{LITE2} v1")
    assert bar_labels(card)[0] == "drilling platform"  # Lite0's first answer is "missile"

    with page.expect_response(f"**/api/v1/models/{LITE2}/labels") as labels:
        card.get_by_test_id("feedback-wrong").click()
    assert labels.value.status == 200
    card.get_by_test_id("picker-input").fill("missile")
    expect(card.get_by_test_id("picker-option").first).to_have_text("missile")

    page.reload()
    expect(page.get_by_test_id("model-select")).to_have_value(LITE2)  # remembered for the tab
