"""The file store and the checks every upload passes: keys, atomic writes, size, type, filenames."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.storage import (
    KEY,
    DiskStorage,
    Policy,
    Sniffer,
    TooLarge,
    TypeRefused,
    clean_filename,
    new_key,
    receive,
    size_words,
)
from engine.model.workspace import DEFAULT_FILE_TYPES

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
POLICY = Policy(max_size=1024 * 1024, allowed_types=frozenset(DEFAULT_FILE_TYPES))


def _zip(names: list[str], first: tuple[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        if first:
            archive.writestr(zipfile.ZipInfo(first[0]), first[1])  # stored, as ODF's mimetype must be
        for name in names:
            archive.writestr(name, "<x/>" * 50)
    return out.getvalue()


def _type(data: bytes, chunk: int = 7) -> str:
    sniffer = Sniffer()
    for start in range(0, len(data), chunk):
        sniffer.feed(data[start:start + chunk])
    return sniffer.content_type()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# -- keys and the disk store -------------------------------------------------------------------


def test_keys_are_random_hex_and_never_paths(tmp_path: Path) -> None:
    keys = {new_key() for _ in range(200)}
    assert len(keys) == 200 and all(KEY.match(k) for k in keys)
    store = DiskStorage(tmp_path)
    for bad in ("../x", "..\\x", "/etc/passwd", "a" * 32 + "/", "A" * 32, ""):
        with pytest.raises(ValueError):
            store.path(bad)


def test_put_open_delete_round_trip(tmp_path: Path) -> None:
    store = DiskStorage(tmp_path / "files")
    key = new_key()
    store.put(key, [b"abc", b"def"])
    with store.open(key) as handle:
        assert handle.read() == b"abcdef"
    assert store.path(key).relative_to(tmp_path / "files").parts == (key[:2], key[2:4], key)
    store.delete(key)
    store.delete(key)  # a missing file is no error
    with pytest.raises(FileNotFoundError):
        store.open(key)
    assert _files(tmp_path) == []


def test_a_failing_write_leaves_nothing_and_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    store = DiskStorage(tmp_path)
    key = new_key()

    def broken() -> Iterator[bytes]:
        yield b"first part"
        raise OSError("the client went away")

    with pytest.raises(OSError, match="went away"):
        store.put(key, broken())
    assert _files(tmp_path) == []  # no temporary file, no half file
    store.put(key, [b"original"])
    with pytest.raises(FileExistsError):
        store.put(key, [b"replacement"])
    assert store.path(key).read_bytes() == b"original"
    assert _files(tmp_path) == [store.path(key)]


# -- receiving: size and type --------------------------------------------------------------------


def test_the_size_limit_stops_the_stream_midway(tmp_path: Path) -> None:
    store = DiskStorage(tmp_path)
    read = 0

    class Endless(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            nonlocal read
            read += size
            return b"a" * size

    with pytest.raises(TooLarge) as caught:
        receive(store, Endless(), "big.txt", Policy(max_size=200_000, allowed_types=frozenset({"text/plain"})),
                field="fields.photo")
    assert caught.value.errors == [{"field": "fields.photo",
                                    "message": "the file is larger than the limit of 195.3 KB"}]
    assert read < 400_000  # stopped soon after the limit, not at the end of the stream
    assert _files(tmp_path) == []
    exact = receive(store, b"a" * 200_000, "ok.txt", Policy(max_size=200_000, allowed_types=frozenset({"text/plain"})))
    assert exact.size == 200_000


@pytest.mark.parametrize(("data", "expected"), [
    (PNG, "image/png"), (PDF, "application/pdf"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp"),
    (b"hello\nworld\n", "text/plain"), ("Grüße, Straße\n".encode(), "text/plain"),
    (b"a,b,c\n1,2,3\n4,5,6\n", "text/csv"), (b"a;b\n1;2\n", "text/csv"),
    (b"\x00\x01\x02binary", "application/octet-stream"), (b"ok\x00then NUL", "application/octet-stream"),
    (b"\xff\xfe broken utf-8", "application/octet-stream"), (b"", "application/octet-stream"),
    (b"<!DOCTYPE html><script>alert(1)</script>", "text/html"), (b"  <html><body>x", "text/html"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/svg+xml"),
    (b"<svg onload=alert(1)>", "image/svg+xml"),
])
def test_the_type_comes_from_the_content(data: bytes, expected: str) -> None:
    assert _type(data) == expected
    assert _type(data, chunk=64 * 1024) == expected


def test_zip_office_and_opendocument_are_told_apart() -> None:
    assert _type(_zip(["a.txt"])) == "application/zip"
    assert _type(_zip(["[Content_Types].xml", "_rels/.rels", "word/document.xml"])) == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    assert _type(_zip(["[Content_Types].xml", "xl/workbook.xml"])).endswith("spreadsheetml.sheet")
    assert _type(_zip(["content.xml"], ("mimetype", "application/vnd.oasis.opendocument.text"))) == (
        "application/vnd.oasis.opendocument.text")


def test_an_html_page_named_png_is_refused_and_a_polyglot_is_not_text(tmp_path: Path) -> None:
    store = DiskStorage(tmp_path)
    with pytest.raises(TypeRefused) as caught:
        receive(store, b"<html><script>alert(document.cookie)</script></html>", "cat.png", POLICY,
                field="fields.photo")
    assert caught.value.errors == [{"field": "fields.photo",
                                    "message": "files of this type (text/html) are not accepted"}]
    with pytest.raises(TypeRefused):
        receive(store, b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "a.jpg", POLICY)
    assert _files(tmp_path) == []
    # a GIF that is also valid JavaScript is a GIF (served as one, never run: nosniff, attachment, sandbox)
    polyglot = receive(store, b"GIF89a/*\x00\x00*/=1;alert(1)//", "x.js", POLICY)
    assert polyglot.content_type == "image/gif"
    # a PNG is a PNG whatever it is called
    named_pdf = receive(store, PNG, "report.pdf", POLICY)
    assert named_pdf.content_type == "image/png" and named_pdf.filename == "report.pdf"
    # the allow-list decides
    with pytest.raises(TypeRefused):
        receive(store, PNG, "x.png", Policy(max_size=100, allowed_types=frozenset({"application/pdf"})))


# -- filenames ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("../x", "x"), ("..\\x", "x"), ("../../etc/passwd", "passwd"), ("/etc/passwd", "passwd"),
    ("C:\\Windows\\system32\\cmd.exe", "cmd.exe"), ("C:evil.txt", "C_evil.txt"), ("a\x00b.pdf", "ab.pdf"),
    ("invoice\u202efdp.exe", "invoicefdp.exe"), ("report\u200f.pdf", "report.pdf"), ("line\r\nbreak.txt", "linebreak.txt"),
    ("..", "file"), ("", "file"), ("   ", "file"), ("/", "file"), ("<b>x</b>.png", "b_.png"), ("<i>x.png", "_i_x.png"),
    ("Grüße.pdf", "Grüße.pdf"), ("dir/", "file"), (".hidden", "hidden"),
])
def test_filenames_are_cleaned(name: str, expected: str) -> None:
    assert clean_filename(name) == expected


def test_long_filenames_keep_their_extension() -> None:
    cleaned = clean_filename("a" * 300 + ".pdf")
    assert len(cleaned) == 200 and cleaned.endswith(".pdf")
    assert len(clean_filename("b" * 300)) == 200


def test_the_stored_name_is_cleaned_and_the_key_is_the_servers(tmp_path: Path) -> None:
    stored = receive(DiskStorage(tmp_path), PDF, "../../\u202eevil.pdf", POLICY)
    assert stored.filename == "evil.pdf" and KEY.match(stored.key) and stored.size == len(PDF)
    assert [p.name for p in _files(tmp_path)] == [stored.key]


def test_sizes_in_words() -> None:
    assert size_words(1) == "1 byte" and size_words(512) == "512 bytes"
    assert size_words(1536) == "1.5 KB" and size_words(25 * 1024 * 1024) == "25 MB"
    assert size_words(3 * 1024**3) == "3 GB"
