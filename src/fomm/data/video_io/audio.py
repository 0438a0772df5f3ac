"""The audio track of an output video: copied from a media file, or re-encoded to AAC."""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import av

from fomm.data.video_io.containers import av_reason, open_container
from fomm.errors import FommError

logger = logging.getLogger(__name__)

# Audio codecs that may be stream-copied into each output container.
_AUDIO_COPY_OK = {
    "mp4": frozenset({"aac", "mp3", "alac", "ac3", "eac3"}),
    "mov": frozenset({"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le"}),
    "matroska": frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "vorbis", "flac", "pcm_s16le"}),
}


class AudioTrack:
    """Copies (or re-encodes to AAC) the first audio stream of a file into an output container."""

    def __init__(self, source: Path, output, container_format: str):
        self.active = False
        self._done = False
        self._pending = None
        self._input = open_container(source)
        if not self._input.streams.audio:
            logger.info("%s has no audio stream; the output has no audio", source)
            self._input.close()
            return
        self._in_stream = self._input.streams.audio[0]
        codec = self._in_stream.codec_context.name
        self._copy = codec in _AUDIO_COPY_OK[container_format]
        try:
            if self._copy:
                if hasattr(output, "add_stream_from_template"):
                    self._out_stream = output.add_stream_from_template(self._in_stream)
                else:  # pragma: no cover - PyAV < 13
                    self._out_stream = output.add_stream(template=self._in_stream)
            else:
                rate = self._in_stream.codec_context.sample_rate or 48000
                self._out_stream = output.add_stream("aac", rate=rate)
                layout = self._in_stream.codec_context.layout
                if layout is not None and layout.nb_channels in (1, 2):
                    self._out_stream.codec_context.layout = layout.name
        except (av.FFmpegError, ValueError) as exc:
            self._input.close()
            raise FommError(
                f"cannot use the audio of {source} ({av_reason(exc)}); convert it to AAC or omit audio_from"
            ) from None
        self._packets = self._input.demux(self._in_stream)
        self._output = output
        self._limit = float("inf")
        self.active = True

    def _next_packet(self):
        try:
            return next(self._packets)
        except StopIteration:
            return None
        except av.FFmpegError as exc:
            warnings.warn(f"audio ends early, the rest did not decode ({av_reason(exc)})", UserWarning, stacklevel=4)
            return None

    def _emit(self, packet) -> None:
        if self._copy:
            if packet.dts is None or packet.size == 0:
                return
            packet.stream = self._out_stream
            self._output.mux(packet)
            return
        for frame in self._in_stream.codec_context.decode(packet):
            if frame.time is not None and frame.time >= self._limit:
                continue
            frame.pts = None
            for out_packet in self._out_stream.encode(frame):
                self._output.mux(out_packet)

    def pump(self, until: float) -> None:
        """Mux the audio packets that start before ``until`` seconds."""
        self._limit = until
        while self.active and not self._done:
            packet = self._pending if self._pending is not None else self._next_packet()
            self._pending = None
            if packet is None:
                self._done = True
                break
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is not None and packet.time_base is not None:
                if float(stamp * packet.time_base) >= until:
                    self._pending = packet
                    return
            self._emit(packet)

    def finish(self, duration: float) -> None:
        if not self.active:
            return
        self.pump(duration)
        self._done = True
        if not self._copy:
            for out_packet in self._out_stream.encode(None):
                self._output.mux(out_packet)
        self.close()

    def close(self) -> None:
        if self.active:
            self.active = False
            with contextlib.suppress(Exception):
                self._input.close()
