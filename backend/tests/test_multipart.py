"""api.multipart splits canonical bodies itself and leaves everything else to werkzeug: for any
body, canonical, damaged or hostile, it must give exactly what werkzeug's own parser gives."""

from __future__ import annotations

import io

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from api.multipart import InMemoryFormParser

LIMITS = {"max_form_memory_size": 4096, "max_form_parts": 4}


def encode(fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """The body ``requests`` sends (as the CLI, the benchmarks and most clients do), and its boundary."""
    prepared = requests.Request(
        "POST", "http://localhost/", data=fields, files=[(n, (f, d, "image/png")) for n, f, d in files]
    ).prepare()
    return prepared.body, prepared.headers["Content-Type"].split("boundary=", 1)[1]


def outcome(parser_class: type[FormDataParser], body: bytes, boundary: str) -> object:
    """What a parser makes of the body: form and files (name, filename, bytes, headers), or the error."""
    parser = parser_class(stream_factory=lambda **_: io.BytesIO(), **LIMITS)
    try:
        _, form, files = parser.parse(io.BytesIO(body), "multipart/form-data", len(body), {"boundary": boundary})
    except RequestEntityTooLarge:
        return "413"
    return (
        list(form.items(multi=True)),
        [(k, f.filename, f.stream.read(), list(f.headers.items())) for k, f in files.items(multi=True)],
    )


def assert_same(body: bytes, boundary: str) -> None:
    assert outcome(InMemoryFormParser, body, boundary) == outcome(FormDataParser, body, boundary)


def test_a_canonical_upload_is_split_without_werkzeug(monkeypatch):
    body, boundary = encode([("top_k", "3")], [("image", "photo.png", b"\x89PNG\r\n--not-the-boundary\r\n")])

    def refuse(*_args, **_kwargs):
        raise AssertionError("werkzeug's parser was used for a canonical body")

    monkeypatch.setattr(FormDataParser, "_parse_multipart", refuse)
    form, files = outcome(InMemoryFormParser, body, boundary)
    assert form == [("top_k", "3")]
    assert [(k, name, data) for k, name, data, _ in files] == [
        ("image", "photo.png", b"\x89PNG\r\n--not-the-boundary\r\n")
    ]


class _KeepsParts(InMemoryFormParser):
    def _canonical_parts(self, body, boundary):
        self.parts = super()._canonical_parts(body, boundary)
        return self.parts


def test_a_file_part_is_handed_over_without_a_copy():
    body, boundary = encode([], [("image", "a.png", bytes(range(256)) * 100)])
    parser = _KeepsParts(**LIMITS | {"max_form_memory_size": None})
    _, _, files = parser.parse(io.BytesIO(body), "multipart/form-data", len(body), {"boundary": boundary})
    (part,) = parser.parts
    assert files["image"].stream.getvalue() is part.data  # the one slice of the body, not a copy of it


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
names = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters='"\\;='), min_size=1, max_size=8)
contents = st.binary(max_size=300) | st.sampled_from([b"", b"\r\n", b"--", b"\r\n--", b"\r\n\r\n", b"\n--x"])


@settings(max_examples=300, deadline=None)
@given(
    fields=st.lists(st.tuples(names, texts), max_size=3),
    files=st.lists(st.tuples(names, names, contents), min_size=1, max_size=3),
)
def test_canonical_bodies_parse_as_werkzeug_parses_them(fields, files):
    body, boundary = encode(fields, files)
    assert_same(body, boundary)


@settings(max_examples=500, deadline=None)
@given(
    files=st.lists(st.tuples(names, names, contents), min_size=1, max_size=3),
    position=st.floats(0, 1),
    removed=st.integers(0, 6),
    inserted=st.sampled_from([b"", b"\r\n", b"\n", b"\r", b" ", b"--", b"\r\n\r\n", b"x", b"\t", b"--b0"]),
)
def test_damaged_bodies_get_werkzeugs_answer(files, position, removed, inserted):
    body, boundary = encode([], files)
    at = int(position * len(body))
    assert_same(body[:at] + inserted + body[at + removed :], boundary)


@pytest.mark.parametrize(
    "body",
    [
        b"preamble\r\n--B\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--B--\r\n",
        b"--B\nContent-Disposition: form-data; name=a\n\n1\n--B--\n",  # LF only
        b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--B  \r\n"
        b"Content-Disposition: form-data; name=b\r\n\r\n2\r\n--B--",  # white space after a boundary
        b"--B\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\n1\r\n--B--\r\n",  # a folded header
        b"--B\r\nContent-Type: text/plain\r\n\r\n1\r\n--B--\r\n",  # no Content-Disposition
        b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--B--\r\nepilogue",
        b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--B",  # never closed
        b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\n"
        + b"x" * 5000
        + b"\r\n--B--\r\n",  # over the field limit
        b"".join(b"--B\r\nContent-Disposition: form-data; name=p\r\n\r\n1\r\n" for _ in range(5)) + b"--B--\r\n",
        b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\n\xff\xfe\r\n--B--\r\n",  # not UTF-8: replaced
        b'--B\r\nContent-Disposition: form-data; name="\xc3\xa9"\r\n\r\n1\r\n--B--\r\n',
        b"",
    ],
)
def test_odd_bodies_get_werkzeugs_answer(body):
    assert_same(body, "B")
