"""App-wide exception handlers: a database outage is 503 (retry later), not a 500 with a traceback.

Routes that can say something more specific (the status callback, the voice webhook) catch store errors
themselves; these handlers cover every read of the REST API and the live websockets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from switchboard.close_codes import CloseCode
from switchboard.store.errors import StoreUnavailable

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5


async def store_unavailable(conn: HTTPConnection, exc: Exception) -> Response | None:
    log.warning("%s %s: database unavailable: %s", conn.scope["type"], conn.url.path, exc)
    if isinstance(conn, WebSocket):
        await conn.close(CloseCode.TRY_AGAIN_LATER, "database unavailable")
        return None
    return JSONResponse({"error": "database unavailable, retry later"}, status_code=503,
                        headers={"Retry-After": str(RETRY_AFTER_S)})


EXCEPTION_HANDLERS: Mapping[Any, Any] = {  # Starlette's handler type is a union per scope type
    StoreUnavailable: store_unavailable,
}
