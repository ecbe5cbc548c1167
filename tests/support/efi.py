"""Reading what the boot media hold: GPT tables, FAT ESPs, UKIs and their signatures.

Shared by the stand-in tests and the end-to-end ones; only Debian tools
(mtools, sbsigntool) and pycdlib, no loop mounts.
"""

from __future__ import annotations

import struct
import subprocess
import uuid
from pathlib import Path

import pycdlib

ESP_TYPE = uuid.UUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")


def pe_sections(data: bytes) -> dict[str, bytes]:
    """The sections of a PE/COFF file (an EFI binary), name -> raw data."""
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    assert data[pe : pe + 4] == b"PE\0\0"
    count, _, _, _, optional_size = struct.unpack_from("<HIIIH", data, pe + 6)
    table = pe + 24 + optional_size
    sections = {}
    for i in range(count):
        entry = table + 40 * i
        name = data[entry : entry + 8].rstrip(b"\0").decode()
        virtual_size, _, raw_size, raw_at = struct.unpack_from("<IIII", data, entry + 8)
        sections[name] = data[raw_at : raw_at + min(virtual_size, raw_size)]
    return sections


def mcopy(image: str, path: str, dest: Path) -> Path:
    subprocess.run(["mcopy", "-n", "-i", image, f"::{path}", str(dest)], check=True)
    return dest


def sbverify(cert: Path, efi: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sbverify", "--cert", str(cert), str(efi)], capture_output=True, text=True, check=False
    )


def gpt_partitions(raw: Path) -> list[dict]:
    with raw.open("rb") as f:
        f.seek(512)
        header = f.read(92)
        assert header[:8] == b"EFI PART"
        entries_lba, count, size = struct.unpack_from("<QII", header, 72)
        f.seek(entries_lba * 512)
        table = f.read(count * size)
    parts = []
    for i in range(count):
        entry = table[i * size : (i + 1) * size]
        if entry[:16] == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        parts.append(
            {
                "type": uuid.UUID(bytes_le=entry[:16]),
                "start": first * 512,
                "size": (last - first + 1) * 512,
                "name": entry[56:128].decode("utf-16-le").rstrip("\0"),
            }
        )
    return parts


def esp_of(iso_path: Path, dest: Path) -> Path:
    iso = pycdlib.PyCdlib()
    iso.open(str(iso_path))
    try:
        with dest.open("wb") as f:
            iso.get_file_from_iso_fp(f, rr_path="/efiboot.img")
    finally:
        iso.close()
    return dest
