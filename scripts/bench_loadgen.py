#!/usr/bin/env python3
"""Load generator for ``scripts/bench_server.py``: N dual-track Twilio media streams at real time, from one process.

Every call sends the same traffic (the same fixture, the same frames), so our server and the floor server meet
identical load. It is lean on purpose, so that it cannot be the bottleneck: the websocket frames are built once
(client frames must be masked, RFC 6455 §5.3; an all-zero masking key leaves the bytes as they are) and each 20 ms
tick one loop writes every call's two frames straight to its transport. Its own lateness is measured and reported
(how late each tick started and finished against the schedule, and its CPU use), so a slow generator shows instead
of flattering the server.

Protocol: ``connected`` → ``start`` (callSid, stream token as a custom parameter) → media in both tracks every
20 ms → ``stop``; the server's close is answered. The server is real-time if it has read and answered ``stop`` on
every stream shortly after the last frame was sent (``drain_s``): a server that falls behind accumulates the
backlog in socket buffers and shows it there.

Run by bench_server.py (pinned with taskset); prints one JSON object with the measurements as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import resource
import statistics
import struct
import time
from pathlib import Path
from typing import Any

import orjson

CLK_TCK = os.sysconf("SC_CLK_TCK")
STREAM_SID = "MZ" + "0" * 32
ACCOUNT_SID = "AC" + "0" * 32


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_kb(pid: int) -> int:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) if match else 0


def ws_frame(text: bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame with an all-zero key (the payload is unchanged by masking)."""
    n = len(text)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + b"\0\0\0\0" + text


def media_frames(wav: Path) -> list[tuple[bytes, bytes]]:
    """Per 20 ms tick: the inbound and outbound media frames (sequence numbers from 2; ``start`` is 1)."""
    from audio.wav import read_tracks

    inbound, outbound = read_tracks(wav)[:2]
    ticks = min(len(inbound), len(outbound)) // 160
    out = []
    seq = 2
    for k in range(ticks):
        pair = []
        for track, audio in (("inbound", inbound), ("outbound", outbound)):
            media = {"track": track, "chunk": str(k + 1), "timestamp": str(k * 20),
                     "payload": base64.b64encode(audio[k * 160:(k + 1) * 160]).decode()}
            pair.append(ws_frame(orjson.dumps({"event": "media", "sequenceNumber": str(seq),
                                               "streamSid": STREAM_SID, "media": media})))
            seq += 1
        out.append((pair[0], pair[1]))
    return out


class Call:
    def __init__(self, index: int) -> None:
        self.call_sid = f"CA{index:032x}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.closed_at: float | None = None
        self.close_code: int | None = None

    async def connect(self, host: str, port: int, path: str, signature: str | None) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        headers = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
                   f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if signature is not None:
            headers.append(f"X-Twilio-Signature: {signature}")
        self.writer.write(("\r\n".join(headers) + "\r\n\r\n").encode())
        response = await self.reader.readuntil(b"\r\n\r\n")
        if not response.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"upgrade refused: {response[:80]!r}")

    async def until_closed(self) -> None:
        """Read the server's frames until it closes; answer its close frame, as a client must."""
        assert self.reader is not None and self.writer is not None
        try:
            while True:
                head = await self.reader.readexactly(2)
                n = head[1] & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await self.reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
                body = await self.reader.readexactly(n)
                if head[0] & 0x0F == 0x9:  # ping: a client must answer (RFC 6455 §5.5.2), or the server gives up
                    self.writer.write(ws_frame(body, opcode=0xA))
                elif head[0] & 0x0F == 0x8:
                    self.closed_at = time.monotonic()
                    self.close_code = struct.unpack("!H", body[:2])[0] if len(body) >= 2 else 1005
                    self.writer.write(ws_frame(body[:2], opcode=0x8))
                    await self.writer.drain()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed_at = time.monotonic()
        finally:
            self.writer.close()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from switchboard.tokens import stream_token

    frames = media_frames(Path(args.wav))
    calls = [Call(args.first_index + i) for i in range(args.calls)]
    await asyncio.gather(*(c.connect(args.host, args.port, args.path, args.signature) for c in calls))
    connected = ws_frame(orjson.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    for c in calls:
        params = {"token": stream_token(args.token, c.call_sid, now=time.time(), ttl_s=600)} if args.token else {}
        start = {"accountSid": ACCOUNT_SID, "streamSid": STREAM_SID, "callSid": c.call_sid,
                 "tracks": ["inbound", "outbound"], "customParameters": params,
                 "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}
        assert c.writer is not None
        c.writer.write(connected + ws_frame(orjson.dumps({"event": "start", "sequenceNumber": "1",
                                                          "streamSid": STREAM_SID, "start": start})))
    readers = [asyncio.create_task(c.until_closed()) for c in calls]
    await asyncio.sleep(args.settle)  # every session open before media starts
    writers = [c.writer for c in calls if c.writer is not None]
    pid = args.server_pid
    rss0 = rss_kb(pid)
    peak = rss0
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    start_late: list[float] = []
    end_late: list[float] = []
    cpu0 = cpu_seconds(pid)
    t0 = time.monotonic()
    next_rss = t0
    for k, (inbound, outbound) in enumerate(frames):
        due = t0 + k * 0.020
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
            now = time.monotonic()
        start_late.append(now - due)
        for w in writers:
            w.write(inbound)
            w.write(outbound)
        end_late.append(time.monotonic() - due)
        if now >= next_rss:
            peak, next_rss = max(peak, rss_kb(pid)), now + 0.5
    media_end = time.monotonic()
    cpu1 = cpu_seconds(pid)
    peak = max(peak, rss_kb(pid))
    backlog = sum(w.transport.get_write_buffer_size() for w in writers)
    for c in calls:
        assert c.writer is not None
        c.writer.write(ws_frame(orjson.dumps({"event": "stop", "sequenceNumber": str(2 + 2 * len(frames)),
                                              "streamSid": STREAM_SID,
                                              "stop": {"accountSid": ACCOUNT_SID, "callSid": c.call_sid}})))
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        async with asyncio.timeout(args.close_timeout):
            await asyncio.gather(*readers)
    except TimeoutError:
        pass
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    cpu2 = cpu_seconds(pid)
    closed = [c.closed_at for c in calls if c.closed_at is not None]
    wall = media_end - t0
    gen_cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    codes = [c.close_code for c in calls]
    return {
        # CPU until every stream has closed: a server that fell behind does the rest of the work after the last
        # frame was sent, and counting only the media window would flatter it.
        "calls": args.calls, "media_s": round(wall, 3), "server_cpu_s": round(cpu2 - cpu0, 3),
        "cpu_ms_per_call_s": round((cpu2 - cpu0) * 1000 / (args.calls * wall), 3),
        "server_core_util": round((cpu1 - cpu0) / wall, 3),
        "rss_kb_start": rss0, "rss_kb_peak": peak, "rss_kb_per_call": round((peak - rss0) / args.calls, 1),
        "drain_s": round(max(closed) - media_end, 3) if len(closed) == len(calls) else None,
        "closed_cleanly": sum(1 for c in codes if c == 1000), "close_codes": sorted(set(map(str, codes))),
        "backlog_bytes": backlog,
        "gen_late_start_ms": {"p50": round(statistics.median(start_late) * 1000, 2),
                              "p99": round(quantile(start_late, 0.99) * 1000, 2),
                              "max": round(max(start_late) * 1000, 2)},
        "gen_late_end_ms": {"p50": round(statistics.median(end_late) * 1000, 2),
                            "p99": round(quantile(end_late, 0.99) * 1000, 2),
                            "max": round(max(end_late) * 1000, 2)},
        "gen_core_util": round(gen_cpu / wall, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/api/twilio/media-stream")
    parser.add_argument("--signature", default=None, help="X-Twilio-Signature for the handshake")
    parser.add_argument("--token", default="", help="Twilio auth token: stream tokens are derived from it")
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--wav", required=True, help="stereo μ-law WAV: caller left, agent right")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--first-index", type=int, default=0,
                        help="CallSids are CA{index:032x} from this index (a new run on the same server: new calls)")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds between the starts and the first media")
    parser.add_argument("--close-timeout", type=float, default=60.0)
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(run(args))).decode(), flush=True)


if __name__ == "__main__":
    main()
