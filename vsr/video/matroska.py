"""A minimal streaming Matroska muxer for raw RGB frames, written to the encoder's stdin.

Why not ``-f rawvideo``: a raw pipe has no timestamps, so ffmpeg would assume a constant frame rate.
Matroska carries one timestamp and duration per frame, so variable-frame-rate sources, gaps and odd
start times reach the encoder exactly as the decoder reported them. ffmpeg's own Matroska muxer refuses
raw RGB, but its demuxer reads it (``V_UNCOMPRESSED`` with colour space fourcc ``RGB\\x18``), which is
all we need. Timestamps are in nanoseconds (``TimestampScale`` = 1), one frame per cluster so each
cluster timestamp is the frame's own.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

_UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def _size(n: int) -> bytes:
    """EBML variable-length size (all-ones is reserved for 'unknown', hence the strict <)."""
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return (n | (1 << (7 * length))).to_bytes(length, "big")
    raise ValueError(f"EBML size too large: {n}")


def _id(element_id: int) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")


def _element(element_id: int, payload: bytes | int | str) -> bytes:
    if isinstance(payload, int):
        payload = payload.to_bytes(max(1, (payload.bit_length() + 7) // 8), "big")
    elif isinstance(payload, str):
        payload = payload.encode("utf-8")
    return _id(element_id) + _size(len(payload)) + payload


def header(width: int, height: int, default_duration_ns: int | None) -> bytes:
    """EBML header, an open-ended Segment, Info and a single raw RGB24 video track."""
    ebml = _element(
        0x1A45DFA3,
        _element(0x4286, 1)  # EBMLVersion
        + _element(0x42F7, 1)  # EBMLReadVersion
        + _element(0x42F2, 4)  # EBMLMaxIDLength
        + _element(0x42F3, 8)  # EBMLMaxSizeLength
        + _element(0x4282, "matroska")  # DocType
        + _element(0x4287, 4)  # DocTypeVersion
        + _element(0x4285, 2),  # DocTypeReadVersion
    )
    info = _element(0x1549A966, _element(0x2AD7B1, 1) + _element(0x4D80, "vsr") + _element(0x5741, "vsr"))
    video = _element(0xE0, _element(0xB0, width) + _element(0xBA, height) + _element(0x2EB524, b"RGB\x18"))
    track = (
        _element(0xD7, 1)  # TrackNumber
        + _element(0x73C5, 1)  # TrackUID
        + _element(0x83, 1)  # TrackType: video
        + _element(0x9C, 0)  # FlagLacing
        + _element(0x22B59C, "und")  # Language (Matroska's default would be "eng")
        + _element(0x86, "V_UNCOMPRESSED")
        + (_element(0x23E383, default_duration_ns) if default_duration_ns else b"")
        + video
    )
    tracks = _element(0x1654AE6B, _element(0xAE, track))
    return ebml + _id(0x18538067) + _UNKNOWN_SIZE + info + tracks


def cluster_prefix(pts_ns: int, duration_ns: int, frame_bytes: int) -> bytes:
    """Everything of one frame's Cluster that precedes the pixel bytes.

    Cluster{Timestamp, BlockGroup{BlockDuration, Block}}: the Block comes last so the caller can write
    the (large) pixel buffer straight after this prefix without copying it.
    """
    if pts_ns < 0:
        raise ValueError("Matroska cluster timestamps are unsigned; shift pts to start at 0")
    block_head = b"\x81" + struct.pack(">hB", 0, 0)  # track 1, relative timestamp 0, no flags
    block_size = len(block_head) + frame_bytes
    duration = _element(0x9B, max(0, duration_ns))
    block_group_size = len(duration) + len(_id(0xA1)) + len(_size(block_size)) + block_size
    timestamp = _element(0xE7, pts_ns)
    cluster_size = len(timestamp) + len(_id(0xA0)) + len(_size(block_group_size)) + block_group_size
    return (
        _id(0x1F43B675)
        + _size(cluster_size)
        + timestamp
        + _id(0xA0)
        + _size(block_group_size)
        + duration
        + _id(0xA1)
        + _size(block_size)
        + block_head
    )


class RawVideoMuxer:
    """Writes (H, W, 3) uint8 RGB frames with nanosecond timestamps as Matroska to a binary stream."""

    def __init__(self, stream: BinaryIO, width: int, height: int, default_duration_ns: int | None = None):
        self.stream = stream
        self.width = width
        self.height = height
        self.frame_bytes = width * height * 3
        stream.write(header(width, height, default_duration_ns))

    def write(self, frame: np.ndarray, pts_ns: int, duration_ns: int) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 ({self.height}, {self.width}, 3), got {frame.dtype} {frame.shape}")
        self.stream.write(cluster_prefix(pts_ns, duration_ns, self.frame_bytes))
        self.stream.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
