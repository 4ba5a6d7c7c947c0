#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Mock Azure IMDS and Azure Resource Manager for tests/e2e/test_azure_*.sh (loopback only).

  azure_mock.py --port P --dir D [--ready FILE]

Serves, like the real services:
  GET /metadata/instance?api-version=2021-02-01          (header Metadata: true required)
  GET /metadata/identity/oauth2/token?...&resource=...   (header Metadata: true required)
  GET /subscriptions/{sub}/providers/Microsoft.Network/locations/{loc}/serviceTags?api-version=...
      (Authorization: Bearer <a token this mock issued>), the service tags of D/tags.json (the
      downloadable file's format, as gen_service_tags.py writes it) converted to the API's
      format (changeNumber strings, no regionId/platform/networkFeatures, "state") and split
      in two pages joined by nextLink.

Behaviour is read from D/mode at each request: ok | 401 | 403 | 429 (Retry-After: D/retry_after,
default 3600) | garbage | hang (never answers) | imds-down (IMDS answers 503). Every request
is appended to D/requests.log as one JSON line: method, path, query, metadata, authorization.
"""
import argparse
import json
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SUBSCRIPTION = "0a1b2c3d-0000-4000-8000-00000000abcd"


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    tokens = 0

    def log_message(self, *args):  # quiet
        pass

    def reply(self, status, body, headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        d = self.server.dir
        url = urllib.parse.urlsplit(self.path)
        entry = {"method": "GET", "path": url.path, "query": url.query,
                 "metadata": self.headers.get("Metadata"), "authorization": self.headers.get("Authorization")}
        with Handler.lock:
            with open(os.path.join(d, "requests.log"), "a") as f:
                f.write(json.dumps(entry) + "\n")
        mode = read(os.path.join(d, "mode"), "ok")
        if url.path.startswith("/metadata/"):
            if self.headers.get("Metadata") != "true":
                return self.reply(400, '{"error":"Bad request. Required metadata header not specified"}')
            if mode == "imds-down":
                return self.reply(503, '{"error":"unavailable"}')
            if url.path == "/metadata/instance":
                return self.reply(200, json.dumps({"compute": {
                    "azEnvironment": "AzurePublicCloud", "location": "westeurope",
                    "subscriptionId": SUBSCRIPTION, "vmId": "e2e"}, "network": {}}))
            if url.path == "/metadata/identity/oauth2/token":
                with Handler.lock:
                    Handler.tokens += 1
                    n = Handler.tokens
                return self.reply(200, json.dumps({
                    "access_token": "e2e-token-%d" % n, "expires_on": str(int(time.time()) + 3600),
                    "resource": "https://management.azure.com/", "token_type": "Bearer"}))
            return self.reply(404, '{"error":"not found"}')
        if "/providers/Microsoft.Network/locations/" in url.path and url.path.endswith("/serviceTags"):
            if mode == "hang":
                time.sleep(600)
                return
            auth = self.headers.get("Authorization") or ""
            if mode == "401" or not auth.startswith("Bearer e2e-token-"):
                return self.reply(401, '{"error":{"code":"InvalidAuthenticationToken","message":"The access token is invalid."}}')
            if mode == "403":
                return self.reply(403, '{"error":{"code":"AuthorizationFailed","message":"no read access to the subscription"}}')
            if mode == "429":
                return self.reply(429, '{"error":{"code":"TooManyRequests","message":"throttled"}}',
                                  {"Retry-After": read(os.path.join(d, "retry_after"), "3600")})
            if mode == "garbage":
                return self.reply(200, "<html><body>502 Bad Gateway</body></html>")
            return self.tags_page(url)
        return self.reply(404, '{"error":{"code":"NotFound","message":"no such route"}}')

    def tags_page(self, url):
        with open(os.path.join(self.server.dir, "tags.json")) as f:
            data = json.load(f)
        values = []
        for v in data["values"]:
            p = v["properties"]
            values.append({"name": v["name"], "id": v["id"], "serviceTagChangeNumber": str(p["changeNumber"]),
                           "properties": {"changeNumber": str(p["changeNumber"]), "region": p["region"],
                                          "state": "GA", "systemService": p["systemService"],
                                          "addressPrefixes": p["addressPrefixes"]}})
        half = len(values) // 2
        q = urllib.parse.parse_qs(url.query)
        second = q.get("$skipToken") == ["2"]
        body = {"name": "public", "id": "/subscriptions/%s/providers/Microsoft.Network/serviceTags/public" % SUBSCRIPTION,
                "type": "Microsoft.Network/serviceTags", "changeNumber": str(data["changeNumber"]),
                "cloud": data["cloud"], "values": values[half:] if second else values[:half]}
        if not second:
            host = self.headers.get("Host")
            body["nextLink"] = "http://%s%s?api-version=2023-09-01&$skipToken=2" % (host, url.path)
        return self.reply(200, json.dumps(body))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--ready")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.dir = a.dir
    if a.ready:
        open(a.ready, "w").close()
    srv.serve_forever()


if __name__ == "__main__":
    main()
