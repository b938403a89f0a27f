"""Reader for the IDX format of LeCun's MNIST files (raw or gzip), checked against truncation and bad headers."""
from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch

# IDX type codes (third byte of the magic number) -> numpy big-endian dtypes, and their names in messages.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32",
              0x0E: "float64"}
UNSIGNED_BYTE = 0x08


class IDXError(ValueError):
    """A file that is not a well-formed IDX file."""


def read_bytes(path: str | Path) -> bytes:
    """The whole file, decompressed when its name ends in ``.gz``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    # gzip raises OSError or EOFError for a truncated or non-gzip file, zlib.error for a corrupt deflate stream
    except (OSError, EOFError, zlib.error) as err:
        raise IDXError(f"{path}: cannot read ({err})") from err


def decode_idx(data: bytes, path: str | Path, type_byte: int | None = None, what: str = "data") -> torch.Tensor:
    """Decode an IDX file's bytes into a tensor of its stored shape and type; ``path`` names it in errors.

    ``type_byte``, when given, is the only element type accepted (``what`` names the contents in that error). It is
    checked before the length: a wrong type byte changes the size the header asks for, and "N bytes, but the header
    needs M" would send the user looking for a truncated file."""
    if not data:
        raise IDXError(f"{path}: empty file (0 bytes)")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise IDXError(f"{path}: not an IDX file (magic number {data[:4].hex()})")
    if type_byte is not None and data[2] != type_byte:
        raise IDXError(f"{path}: IDX type byte 0x{data[2]:02x} ({TYPE_NAMES[data[2]]}) but {what} are "
                       f"{TYPE_NAMES[type_byte]}s (0x{type_byte:02x})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: header truncated ({len(data)} bytes for {ndim} dimensions)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: a huge header cannot overflow
    if len(data) != expected:
        described = f"shape {shape}" if ndim <= 4 else f"{ndim} dimensions"
        raise IDXError(f"{path}: {len(data):,} bytes, but the header's {described} needs {expected:,} bytes")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def read_idx(path: str | Path, type_byte: int | None = None, what: str = "data") -> torch.Tensor:
    """Decode a whole IDX file (``.gz`` is decompressed) into a tensor of its stored shape and type
    (``type_byte``, ``what``: as in ``decode_idx``)."""
    return decode_idx(read_bytes(path), path, type_byte, what)


def write_idx(path: str | Path, tensor: torch.Tensor) -> None:
    """Write a uint8 tensor as an IDX file (gzip when the name ends in ``.gz``); used to build test fixtures."""
    path = Path(path)
    array = tensor.cpu().numpy().astype(np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload += array.tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)
