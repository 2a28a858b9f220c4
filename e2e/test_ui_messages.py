"""Wording and numbers: the page's own pre-checks say exactly what the server says,
sizes read as people read them, SVG gets a way out, percentages share one format,
and an EXIF-rotated photo shows its upright size."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import requests
from e2e_ui import card_named, open_app, wait_done
from PIL import Image
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="red"/></svg>'
EXIF_ORIENTATION = 0x0112


def _server_message(base_url: str, path: Path, mime: str) -> str:
    """What the API itself answers for this file (the page is bypassed)."""
    files = {"image": (path.name, path.read_bytes(), mime)}
    response = requests.post(f"{base_url}/api/v1/predictions", files=files, timeout=60)
    assert response.status_code in (413, 415), response.text
    return response.json()["error"]["message"]


def _page_message(page: Page, path: Path) -> str:
    """What the page says for the same file, decided before any upload."""
    requests_made: list[str] = []
    page.on("request", lambda r: requests_made.append(r.url) if "/predictions" in r.url else None)
    page.get_by_test_id("file-input").set_input_files(path)
    card = card_named(page, path.name)
    expect(card).to_have_attribute("data-state", "error")
    assert requests_made == []  # caught by the pre-check, not by the server
    return card.get_by_test_id("card-error").inner_text()


def test_svg_message_matches_the_server_and_says_how_to_convert(page: Page, base_url: str, tmp_path: Path) -> None:
    drawing = tmp_path / "logo.svg"
    drawing.write_bytes(SVG)
    open_app(page)

    shown = _page_message(page, drawing)
    assert shown == _server_message(base_url, drawing, "image/svg+xml")
    assert shown.startswith("SVG drawings are not supported. Export the drawing as PNG")
    expect(card_named(page, "logo.svg").locator("img")).to_have_count(0)  # no preview beside "not supported"


def test_size_message_matches_the_server_in_human_units(page: Page, base_url: str, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(10 * 2**20 + 512 * 1024))  # 10.5 MB, within nginx's slack
    open_app(page)

    shown = _page_message(page, big)
    assert shown == _server_message(base_url, big, "image/png")
    assert shown == "The file is larger than the upload limit of 10 MB."
    expect(card_named(page, "big.png").locator(".card__meta")).to_have_text("10.5 MB")


def test_exif_rotated_photo_shows_its_upright_size(page: Page, golden_dir: Path, tmp_path: Path) -> None:
    stored = Image.open(golden_dir / "rocket.jpg").convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # "rotate 90° clockwise to view": upright again
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=90, exif=exif.tobytes())
    photo = tmp_path / "phone-photo.jpg"
    photo.write_bytes(out.getvalue())
    assert stored.size == (427, 640)
    open_app(page)

    page.get_by_test_id("file-input").set_input_files(photo)
    card = wait_done(card_named(page, photo.name))
    expect(card.locator(".card__meta")).to_contain_text("640×427")


def test_percentages_share_one_format(page: Page, golden_dir: Path) -> None:
    open_app(page)
    page.get_by_test_id("file-input").set_input_files([golden_dir / "coffee.png", golden_dir / "chelsea.png"])
    for name in ("coffee.png", "chelsea.png"):
        card = wait_done(card_named(page, name))
        for text in card.get_by_test_id("bar-score").all_inner_texts():
            assert re.fullmatch(r"<0\.1%|\d{1,3}\.\d%", text), text
