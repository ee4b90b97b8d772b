#!/usr/bin/env python3
"""The floor server for ``scripts/bench_server.py --floor``: uvicorn and the same websocket library as Switchboard,
receiving the same Twilio Media Streams and doing only the unavoidable work on each message.

Per message: JSON parse (orjson), and for ``media`` base64 decode (pybase64), μ-law → int16 and 8 → 16 kHz
resampling on one stream per track (``--stage resample``, the default: what any server feeding a 16 kHz recogniser
must do); ``--stage decode`` stops after μ-law, ``--stage receive`` after receiving. No jitter buffer, recording,
session, metrics or database. A bare ASGI app (no Starlette), so nothing between uvicorn and the work.

    .venv/bin/python scripts/bench_floor.py --port 8100 [--stage resample]
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
import pybase64
import uvicorn

from audio.mulaw import decode
from audio.resample import StreamResampler
from switchboard.serving import settle_gc


def make_app(stage: str) -> Any:
    receive_only, decode_only = stage == "receive", stage == "decode"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                settle_gc()  # the same collector setting as switchboard serve
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "websocket":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        resamplers = {"inbound": StreamResampler(8000, 16000), "outbound": StreamResampler(8000, 16000)}
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if receive_only:
                continue
            msg = orjson.loads(message["text"])
            event = msg.get("event")
            if event == "media":
                media = msg["media"]
                pcm = decode(pybase64.b64decode(media["payload"]))
                if not decode_only:
                    resamplers[media["track"]].push(pcm)
            elif event == "stop":
                await send({"type": "websocket.close", "code": 1000})
                return

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stage", choices=["receive", "decode", "resample"], default="resample")
    args = parser.parse_args()
    uvicorn.run(make_app(args.stage), host="127.0.0.1", port=args.port, log_level="warning",
                ws_max_size=64 * 1024, server_header=False)


if __name__ == "__main__":
    main()
