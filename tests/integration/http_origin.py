#!/usr/bin/env python3
"""A small origin server for web-download tests, on 127.0.0.1 only.

Usage: http_origin.py DIR PORTFILE
Serves the files of DIR at /<name> (with Content-Length), and:
  /redirect?to=URL     302 to URL
  /drip/<name>         the file, one 256 KiB piece every 0.1 s (so a test can kill the importer
                       mid-download)
Writes the port it bound (port 0: a free one) to PORTFILE once listening.
"""
import http.server
import os
import sys
import time
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    root = "."

    def log_message(self, fmt, *args):  # quiet: the test prints what matters
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/redirect":
            to = urllib.parse.parse_qs(url.query).get("to", [""])[0]
            self.send_response(302)
            self.send_header("Location", to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        drip = url.path.startswith("/drip/")
        name = url.path[len("/drip/"):] if drip else url.path.lstrip("/")
        path = os.path.join(self.root, os.path.basename(name))
        if not name or not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with open(path, "rb") as f:
            while True:
                piece = f.read(262144 if drip else 65536)
                if not piece:
                    break
                try:
                    self.wfile.write(piece)
                except (BrokenPipeError, ConnectionResetError):
                    return
                if drip:
                    time.sleep(0.1)


def main():
    Handler.root = sys.argv[1]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    server.serve_forever()


if __name__ == "__main__":
    main()
