"""Where uploaded files live: a small storage interface, the disk store, and the checks every upload passes.

``receive`` is the one way a file gets in. It gives the file a server-made key (the
person's filename is never part of a path), counts the bytes while they stream and
stops at the size limit, detects the type from the content itself (never from the
name or the browser's ``Content-Type``), and refuses types outside the allow-list;
a refused file leaves nothing behind. The original name is kept as cleaned metadata
only (``clean_filename``).

Another store plugs in by implementing ``Storage``. An S3-compatible one, say, would
``put`` with a multipart upload to ``bucket/prefix/<key>`` (the object appears only when
the upload completes, which is the atomicity ``put`` promises), ``open`` with a
streaming GET, and ``delete`` with a DELETE that ignores a missing object; keys stay
the ones ``new_key`` makes. Only the disk store ships.
"""

from __future__ import annotations

import codecs
import os
import re
import secrets
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from .errors import Invalid

CHUNK = 64 * 1024
"""Bytes read at a time."""
MAX_NAME = 200
"""Longest filename kept (characters)."""
KEY = re.compile(r"^[0-9a-f]{32}$")
OCTET_STREAM = "application/octet-stream"
TEXT_CONTROLS = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D}
MARKUP = re.compile(rb"^\s*(<!doctype\s+html|<html|<head|<body|<script|<iframe|<svg|<\?xml|<!--)", re.I)
OOXML = re.compile(rb"PK\x03\x04[\s\S]{26}(word|xl|ppt)/")
ODF = re.compile(rb"^PK\x03\x04[\s\S]{26}mimetypeapplication/vnd\.oasis\.opendocument\.(text|spreadsheet|presentation)")
OFFICE = {
    b"word": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    b"xl": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    b"ppt": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


class Storage(Protocol):
    """A place files are kept by key. Keys come from ``new_key``; a store never sees a person's filename."""

    def put(self, key: str, chunks: Iterable[bytes]) -> None:
        """Store ``chunks`` under ``key``, all or nothing: an exception while reading them leaves nothing.

        An existing file is never overwritten (``FileExistsError``).
        """

    def open(self, key: str) -> BinaryIO:
        """The stored bytes for reading; ``FileNotFoundError`` when there are none."""

    def delete(self, key: str) -> None:
        """Remove the file; a missing one is no error."""


class DiskStorage:
    """Files under one folder, as ``<folder>/<k[:2]>/<k[2:4]>/<key>``, written to a temporary file and moved in."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, key: str) -> Path:
        if not KEY.match(key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.folder / key[:2] / key[2:4] / key

    def put(self, key: str, chunks: Iterable[bytes]) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            _move_in(Path(temporary), target)
        finally:
            Path(temporary).unlink(missing_ok=True)

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            pass


def _move_in(temporary: Path, target: Path) -> None:
    """Give the finished temporary file its name, atomically, never replacing a file."""
    try:
        os.link(temporary, target)  # fails on an existing file
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(temporary, target)


def new_key() -> str:
    """A fresh storage key: 128 random bits as hex, nothing taken from the request."""
    return secrets.token_hex(16)


# -- filenames -----------------------------------------------------------------------------------


def clean_filename(name: str) -> str:
    """A person's filename made safe to keep and show: last path part, no control or direction characters.

    ``../../etc/passwd`` -> ``passwd``; ``C:\\x\\report.pdf`` -> ``report.pdf``; NUL, line breaks,
    right-to-left overrides and other invisible format characters are dropped; at most
    ``MAX_NAME`` characters, the extension kept; nothing left -> ``file``.
    """
    text = unicodedata.normalize("NFC", name)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
    text = re.split(r"[/\\]", text)[-1]
    text = re.sub(r'[<>:"|?*]', "_", text).strip().strip(".").strip()
    if len(text) > MAX_NAME:
        stem, dot, extension = text.rpartition(".")
        if dot and 0 < len(extension) <= 16 and stem:
            text = stem[: MAX_NAME - len(extension) - 1].rstrip() + "." + extension
        else:
            text = text[:MAX_NAME]
    return text or "file"


# -- the type, from the content ----------------------------------------------------------------


class Sniffer:
    """Detects a file's type from its bytes as they stream past.

    The head (first bytes) names binary formats by their magic numbers; the whole
    file must be valid UTF-8 without control characters to count as text; text that
    starts like HTML, SVG or XML is reported as such (so that the allow-list refuses it).
    """

    HEAD = 4096

    def __init__(self) -> None:
        self.head = b""
        self.tail = b""
        self.office: str | None = None
        self.text = True
        self.lines: list[bytes] = []
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, chunk: bytes) -> None:
        if len(self.head) < self.HEAD:
            self.head += chunk[: self.HEAD - len(self.head)]
        window = self.tail + chunk
        if self.office is None:
            found = OOXML.search(window)
            if found:
                self.office = OFFICE[found.group(1)]
        self.tail = window[-40:]
        if self.text:
            try:
                decoded = self._decoder.decode(chunk)
            except UnicodeDecodeError:
                self.text = False
                return
            if any(ord(c) in TEXT_CONTROLS or c == "\x7f" for c in decoded):
                self.text = False

    def content_type(self) -> str:
        """The detected type (``application/octet-stream`` when nothing matches)."""
        head = self.head
        if head.startswith(b"%PDF-"):
            return "application/pdf"
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return "image/png"
        if head.startswith(b"\xff\xd8\xff"):
            return "image/jpeg"
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return "image/gif"
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return "image/webp"
        if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
            odf = ODF.match(head)
            if odf:
                return f"application/vnd.oasis.opendocument.{odf.group(1).decode()}"
            return self.office or "application/zip"
        if self.text and head:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                return OCTET_STREAM
            body = head.removeprefix(b"\xef\xbb\xbf")
            if MARKUP.match(body):
                lowered = body.lower()
                return "image/svg+xml" if b"<svg" in lowered else "text/html"
            return "text/csv" if _looks_like_csv(body) else "text/plain"
        return OCTET_STREAM


def _looks_like_csv(head: bytes) -> bool:
    """Two or more lines, each with the same number (> 0) of commas, or of semicolons."""
    lines = [line for line in head.splitlines()[:20] if line.strip()]
    if len(head) >= Sniffer.HEAD and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut off
    if len(lines) < 2:
        return False
    return any(len({line.count(sep) for line in lines}) == 1 and lines[0].count(sep) > 0 for sep in (b",", b";"))


# -- receiving an upload -------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """What an upload may be: the workspace's ``attachments`` settings."""

    max_size: int
    allowed_types: frozenset[str]


@dataclass(frozen=True)
class Stored:
    """A file ``receive`` has stored."""

    key: str
    filename: str
    content_type: str
    size: int


class TooLarge(Invalid):
    """The file is larger than the limit; nothing was kept."""


class TypeRefused(Invalid):
    """The file's content is of a type the workspace does not accept; nothing was kept."""


def size_words(size: int) -> str:
    """A byte count for people: ``512 bytes``, ``12.5 KB``, ``25 MB``."""
    if size < 1024:
        return f"{size} byte{'s' if size != 1 else ''}"
    amount, unit = size / 1024, "KB"
    for bigger in ("MB", "GB"):
        if amount < 1024:
            break
        amount, unit = amount / 1024, bigger
    return f"{amount:.1f}".removesuffix(".0") + f" {unit}"


def _chunks(source: BinaryIO | bytes) -> Iterator[bytes]:
    if isinstance(source, bytes):
        for start in range(0, len(source), CHUNK):
            yield source[start:start + CHUNK]
        return
    while chunk := source.read(CHUNK):
        yield chunk


def receive(storage: Storage, source: BinaryIO | bytes, filename: str, policy: Policy, *, field: str = "file") -> Stored:
    """Store one upload under a new key, checked; ``TooLarge``/``TypeRefused`` (located at ``field``) leave nothing.

    The size is counted while the bytes stream into the store, which stops at the limit.
    """
    key = new_key()
    sniffer = Sniffer()
    size = 0

    def checked() -> Iterator[bytes]:
        nonlocal size
        for chunk in _chunks(source):
            size += len(chunk)
            if size > policy.max_size:
                raise TooLarge(f"the file is larger than {size_words(policy.max_size)}", [
                    {"field": field, "message": f"the file is larger than the limit of {size_words(policy.max_size)}"}])
            sniffer.feed(chunk)
            yield chunk

    storage.put(key, checked())
    content_type = sniffer.content_type()
    if content_type not in policy.allowed_types:
        storage.delete(key)
        raise TypeRefused(f"files of type {content_type} are not accepted", [
            {"field": field, "message": f"files of this type ({content_type}) are not accepted"}])
    return Stored(key=key, filename=clean_filename(filename), content_type=content_type, size=size)
