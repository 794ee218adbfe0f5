"""The image smoke test's client: runs inside the container under test (``docker exec``,
the image's own interpreter, ``python -I``, Python 3.7+, stdlib only), because the sandbox
has no network to publish a port on.

argv: the health path, health timeout (s), content type ('' = only wait for health),
payload file ('-' for none: the whole payload is in argv), then the payload's base64 in
chunks (appended to the file's bytes). Waits for the health path on
127.0.0.1:$ENVBUILD_PORT, POSTs the payload to
/invocations, and prints one JSON line: healthy_after (s, or null), status, body (base64),
error.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def main(argv: list[str]) -> dict[str, Any]:
    health_path, health_timeout = argv[0], float(argv[1])
    content_type, payload_file = argv[2], argv[3]
    base = "http://127.0.0.1:" + os.environ.get("ENVBUILD_PORT", "8080")
    # an image's http_proxy must not capture loopback requests
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    out: dict[str, Any] = {"healthy_after": None, "status": None, "body": "", "error": ""}
    start = time.monotonic()
    while time.monotonic() - start < health_timeout:
        try:
            with opener.open(base + health_path, timeout=2) as resp:
                if resp.status == 200:
                    out["healthy_after"] = time.monotonic() - start
                    break
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    if out["healthy_after"] is None or not content_type:
        return out
    data = b""
    if payload_file != "-":
        with open(payload_file, "rb") as f:
            data = f.read()
    data += base64.b64decode("".join(argv[4:]))
    req = urllib.request.Request(
        base + "/invocations", data=data, headers={"Content-Type": content_type}
    )
    try:
        with opener.open(req, timeout=120) as resp:
            out["status"], body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        out["status"], body = exc.code, exc.read()
    except OSError as exc:
        out["error"], body = f"/invocations failed: {exc}", b""
    out["body"] = base64.b64encode(body).decode("ascii")
    return out


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(sys.argv[1:])) + "\n")
