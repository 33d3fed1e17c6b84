"""Reading an archive for import: every member's name, size and checksum checked before anything is written."""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from .. import __version__
from ..compile import ddl
from ..compile.spec import CORE_PREFIX, TEMPLATE_PREFIX, SchemaSpec
from ..storage import CHUNK, KEY
from .format import (
    FILE_LIST,
    FORMAT,
    MANIFEST,
    ArchiveError,
    Manifest,
    Member,
    StoredFile,
    member_problem,
    reference_order,
)

MAX_MANIFEST = 16 * 1024 * 1024
MAX_MEMBER = 64 * 1024 ** 3
"""The largest member an import reads (bytes, uncompressed); anything larger is refused unread."""


class _Members:
    """The members of an open zip file, read with their sizes checked, errors naming the member."""

    def __init__(self, path: Path, zf: zipfile.ZipFile) -> None:
        self.path = path
        self.zip = zf

    def error(self, member: str, problem: str) -> ArchiveError:
        return ArchiveError(f"{self.path}: {member}: {problem}; nothing was imported")

    def chunks(self, name: str, size: int) -> Iterator[bytes]:
        """A member's bytes, refused once they run past ``size`` or the member turns out damaged."""
        read = 0
        try:
            with self.zip.open(name) as source:
                while chunk := source.read(CHUNK):
                    read += len(chunk)
                    if read > size:
                        raise self.error(name, f"longer than the {size} bytes the manifest gives")
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise self.error(name, f"the member is damaged ({exc})") from None
        if read != size:
            raise self.error(name, f"{read} bytes, but the manifest gives {size} (truncated?)")

    def lines(self, name: str, size: int) -> Iterator[bytes]:
        """A JSON-lines member line by line (checked like ``chunks``)."""
        rest = b""
        for chunk in self.chunks(name, size):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest

    def check(self, member: Member) -> None:
        """Read the whole member: its size and SHA-256 must be the manifest's."""
        digest = hashlib.sha256()
        for chunk in self.chunks(member.name, member.bytes):
            digest.update(chunk)
        if digest.hexdigest() != member.sha256:
            raise self.error(member.name, "its checksum does not match the manifest (the archive was changed "
                                          "or damaged)")


class Archive(_Members):
    """An archive opened for import, every member's name, size and checksum checked (``open_archive``)."""

    def __init__(self, path: Path, zf: zipfile.ZipFile, manifest: Manifest, files: list[StoredFile]) -> None:
        super().__init__(path, zf)
        self.manifest = manifest
        self.files = files

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_definitions(self, root: Path) -> list[Path]:
        """Write the archived definition files into ``root``, a new or empty folder."""
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise ArchiveError(f"{root}: not an empty folder; the definitions are restored only into a new one")
        written = []
        for member in self.manifest.definitions:
            target = root.joinpath(*member.name.split("/")[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("xb") as out:
                for chunk in self.chunks(member.name, member.bytes):
                    out.write(chunk)
            written.append(target)
        return written


def _check_schema(schema: SchemaSpec) -> None:
    for table in schema.tables:
        if not table.name.startswith((CORE_PREFIX, TEMPLATE_PREFIX)):
            raise ValueError(f"{table.name} is not a Routecard table")
        ddl.create_table(table, "sqlite")
        ddl.create_table(table, "postgresql")  # refuses unknown types, unchecked names, odd defaults
    reference_order(schema)


def open_archive(path: Path, *, max_member: int = MAX_MEMBER) -> Archive:
    """Open the archive at ``path`` and check all of it; ``ArchiveError`` names the first member at fault."""
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ArchiveError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{path}: not a Routecard archive, or a damaged one ({exc})") from None
    try:
        return _checked(path, zf, max_member)
    except BaseException:
        zf.close()
        raise


def _checked(path: Path, zf: zipfile.ZipFile, max_member: int) -> Archive:
    infos = _member_infos(path, zf, max_member)
    members = _Members(path, zf)
    manifest = _read_manifest(members, infos)
    expected: dict[str, Member] = {m.name: m for m in (*manifest.definitions, *manifest.tables, manifest.files)}
    for name, member in expected.items():
        if name not in infos:
            raise members.error(name, "the manifest lists it, the archive lacks it (truncated?)")
        if infos[name].file_size != member.bytes:
            raise members.error(name, f"{infos[name].file_size} bytes, but the manifest gives {member.bytes}")
    for member in expected.values():
        members.check(member)
    files: list[StoredFile] = []
    decoder = msgspec.json.Decoder(StoredFile)
    for number, line in enumerate(members.lines(FILE_LIST, manifest.files.bytes), start=1):
        try:
            item = decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise members.error(f"{FILE_LIST}:{number}", str(exc)) from None
        name = f"files/{item.key}"
        if not KEY.match(item.key) or name in expected:
            raise members.error(f"{FILE_LIST}:{number}", f"a bad or repeated key {item.key!r}")
        if name not in infos or infos[name].file_size != item.bytes:
            raise members.error(name, f"missing, or not of the size {FILE_LIST} gives (truncated?)")
        member = Member(name=name, bytes=item.bytes, sha256=item.sha256)
        expected[name] = member
        members.check(member)
        files.append(item)
    if len(files) != manifest.file_count:
        raise members.error(FILE_LIST, f"{len(files)} files listed, the manifest counts {manifest.file_count}")
    for name in infos:
        if name != MANIFEST and name not in expected:
            raise ArchiveError(f"{path}: refusing the member {name!r}: the manifest does not list it; "
                               "nothing was imported")
    return Archive(path, zf, manifest, files)


def _member_infos(path: Path, zf: zipfile.ZipFile, max_member: int) -> dict[str, zipfile.ZipInfo]:
    """The members by name, each refused unread if its name, kind or size has no place in an archive."""
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = info.filename
        problem = member_problem(name)
        if problem is None and name in infos:
            problem = "it appears twice"
        elif problem is None and (info.is_dir() or ((info.external_attr >> 16) & 0o170000) not in (0, 0o100000)):
            problem = "it is not a plain file"
        elif problem is None and info.flag_bits & 0x1:
            problem = "it is encrypted"
        elif problem is None and info.file_size > (MAX_MANIFEST if name == MANIFEST else max_member):
            problem = f"it is too large ({info.file_size} bytes)"
        if problem:
            raise ArchiveError(f"{path}: refusing the member {name!r}: {problem}; nothing was imported")
        infos[name] = info
    if MANIFEST not in infos:
        raise ArchiveError(f"{path}: no {MANIFEST}; not a Routecard archive")
    return infos


def _read_manifest(members: _Members, infos: dict[str, zipfile.ZipInfo]) -> Manifest:
    """The manifest, its format, schema and member names checked."""
    raw = b"".join(members.chunks(MANIFEST, infos[MANIFEST].file_size))
    try:
        found = msgspec.json.decode(raw, type=dict[str, Any]).get("format")
        if isinstance(found, int) and found > FORMAT:
            raise members.error(MANIFEST, f"the archive has format {found}, from a newer Routecard; this one "
                                          f"({__version__}) reads format {FORMAT}")
        manifest = msgspec.json.decode(raw, type=Manifest)
        if manifest.format != FORMAT:
            raise ValueError(f"unknown archive format {manifest.format}")
        _check_schema(manifest.schema)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise members.error(MANIFEST, str(exc)) from None
    if ({t.table for t in manifest.tables} != {t.name for t in manifest.schema.tables}
            or any(t.name != f"tables/{t.table}.jsonl" for t in manifest.tables)):
        raise members.error(MANIFEST, "its tables do not match its schema")
    if manifest.files.name != FILE_LIST or any(
            not m.name.startswith("definitions/") or member_problem(m.name) for m in manifest.definitions):
        raise members.error(MANIFEST, "it lists members a Routecard archive does not have")
    return manifest
