"""Backup and restore: a workspace's definitions, data and files as one portable archive.

An archive is a zip file with these members::

    manifest.json           format, engine and definition version, the schema, and for every member
                            below its size and SHA-256 (tables also their row count)
    definitions/<path>      the workspace's definition files, as applied to the database
    tables/<table>.jsonl    one JSON object per row, ordered by id, values in a form both databases read
    files.jsonl             the stored files: key, size, SHA-256
    files/<key>             each stored file (attachments, raw inbound mail)

A zip, not a tarball, because its members can be read in any order: the manifest is
written last (its checksums are computed while the rows stream in) and read first, and
every member streams in and out without temporary copies. Values are written so that
they mean the same on SQLite and PostgreSQL: timestamps as ISO 8601 in UTC, decimals as
strings at the column's scale, JSON as its text, booleans and integers as JSON's own.

``export_archive`` reads every table in one snapshot (REPEATABLE READ on PostgreSQL, a
read transaction on SQLite), page by page. ``open_archive`` checks the member names
(no absolute paths, no ``..``), sizes, the manifest and every member's checksum before
anything is written; ``import_archive`` then restores the files and, in one transaction,
creates the schema the archive was taken from and inserts its rows (references first),
into a database that must have no Routecard tables. Checksums find damage and edits
made by hand; they are no signature against a forger, who could rewrite the manifest.
"""

from __future__ import annotations

from .export import export_archive
from .format import ArchiveError, Manifest, Member, StoredFile, Summary, TableMember
from .reader import Archive, open_archive
from .restore import import_archive
from .values import decode_value, encode_value

__all__ = [
    "Archive",
    "ArchiveError",
    "Manifest",
    "Member",
    "StoredFile",
    "Summary",
    "TableMember",
    "decode_value",
    "encode_value",
    "export_archive",
    "import_archive",
    "open_archive",
]
