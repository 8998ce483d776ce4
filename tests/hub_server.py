"""A minimal Hugging Face Hub stand-in on 127.0.0.1 for download tests.

It serves the file-resolve endpoint `/{repo_id}/resolve/{revision}/{filename}` for
HEAD and GET with the headers `huggingface_hub` reads (X-Repo-Commit, ETag /
X-Linked-Etag, Content-Length), so the real `hf_hub_download` runs against it.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubServer:
    def __init__(self, files: dict[tuple[str, str], bytes]):
        self.files = dict(files)  # (repo_id, filename) -> content
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _lookup(self):
                path = self.path.split("?", 1)[0].lstrip("/")
                if "/resolve/" not in path:
                    return None
                repo_id, rest = path.split("/resolve/", 1)
                _revision, filename = rest.split("/", 1)
                return server.files.get((repo_id, filename))

            def _headers(self, body: bytes | None):
                if body is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
                etag = hashlib.sha256(body).hexdigest()
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(len(body)))
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                return True

            def do_HEAD(self):
                server.requests.append(("HEAD", self.path))
                self._headers(self._lookup())

            def do_GET(self):
                server.requests.append(("GET", self.path))
                body = self._lookup()
                if self._headers(body):
                    self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def gets(self) -> int:
        return sum(1 for m, _ in self.requests if m == "GET")
