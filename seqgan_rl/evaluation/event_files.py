"""TensorBoard event files: written synchronously, read back frame by frame, cut back on resume.

tensorboardX's ``SummaryWriter`` hands each event to a background thread,
and its ``flush`` does not wait for that thread: a run killed with SIGKILL
loses the events of its last steps, although ``metrics.jsonl`` (and the
checkpoint that follows it) holds them, and a resumed run never logs those
steps again. ``EventWriter`` writes each event itself (tensorboardX's
``EventsWriter``: the TFRecord framing with its CRCs), so an event is in
the file once ``add_scalar`` or ``add_text`` returns.
"""

from __future__ import annotations

import os
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seqgan_rl.storage.files import atomic_path

EVENT_FILE_GLOB = "events.out.tfevents.*"


class EventWriter:
    """A new event file in ``directory`` (TensorBoard reads every file there): scalars and text at a step."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        from tensorboardX.event_file_writer import EventsWriter

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        # a name of its own even for two writers of one process in one second (a resumed run in a test)
        self._writer = EventsWriter(str(directory / "events"), filename_suffix=f".{os.getpid()}.{uuid.uuid4().hex[:8]}")

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboardX.summary import scalar

        self._write(scalar(tag, float(value)), step)

    def add_text(self, tag: str, text: str, step: int) -> None:
        from tensorboardX.summary import text as text_summary

        self._write(text_summary(tag, text), step)

    def _write(self, summary: Any, step: int) -> None:
        from tensorboardX.proto.event_pb2 import Event

        self._writer.write_event(Event(summary=summary, step=step, wall_time=time.time()))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def event_frames(path: str | os.PathLike[str]) -> Iterator[tuple[bytes, Any]]:
    """The records of a TensorBoard event file: (its TFRecord frame as written, the ``Event`` it holds).

    A frame is the payload's length (8 bytes), its CRC (4), the payload (an
    ``Event`` protocol buffer) and the payload's CRC (4); a frame cut short
    by a crash ends the file.
    """
    from tensorboardX.proto.event_pb2 import Event

    data = Path(path).read_bytes()
    offset = 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        end = offset + 12 + length + 4
        if end > len(data):
            return
        yield data[offset:end], Event.FromString(data[offset + 12: offset + 12 + length])
        offset = end


def logged_steps(directory: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """(tag, step) of every value in the event files of ``directory`` (not its subdirectories), in file order."""
    return [(value.tag, event.step) for path in sorted(Path(directory).glob(EVENT_FILE_GLOB))
            for _, event in event_frames(path) for value in event.summary.value]


def trim_event_files(directory: str | os.PathLike[str], step: int) -> None:
    """Drop every event after ``step`` from the event files under ``directory`` (rewritten atomically, the
    kept frames byte for byte: wall times and CRCs as they were)."""
    for path in sorted(Path(directory).rglob(EVENT_FILE_GLOB)):
        kept = [frame for frame, event in event_frames(path) if event.step <= step]
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"".join(kept))
