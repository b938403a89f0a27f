"""Reader for the IDX format of LeCun's MNIST files (raw or gzip), checked against truncation and bad headers."""
from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import torch

# IDX type codes (third byte of the magic number) -> numpy big-endian dtypes.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IDXError(ValueError):
    """A file that is not a well-formed IDX file."""


def read_idx(path: str | Path) -> torch.Tensor:
    """Decode a whole IDX file (``.gz`` is decompressed) into a tensor of its stored shape and type."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:  # gzip raises these for truncated or non-gzip files
        raise IDXError(f"{path}: cannot read ({err})") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise IDXError(f"{path}: not an IDX file (magic number {data[:4].hex() or 'missing'})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: header truncated ({len(data)} bytes for {ndim} dimensions)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: a huge header cannot overflow
    if len(data) != expected:
        described = f"shape {shape}" if ndim <= 4 else f"{ndim} dimensions"
        raise IDXError(f"{path}: {len(data)} bytes, but the header's {described} needs {expected:,} bytes")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def write_idx(path: str | Path, tensor: torch.Tensor) -> None:
    """Write a uint8 tensor as an IDX file (gzip when the name ends in ``.gz``); used to build test fixtures."""
    path = Path(path)
    array = tensor.cpu().numpy().astype(np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload += array.tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)
