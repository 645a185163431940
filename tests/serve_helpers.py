"""A real `ferkit serve` on 127.0.0.1 for the serve tests and benchmarks/bench_serve.py, and real test images.

Imported by tests/test_serve*.py and benchmarks/bench_serve.py (not a pytest conftest: nothing here runs on
its own).
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).parent / "assets"
REPO = Path(__file__).resolve().parents[1]
FER = Path(os.environ.get("FERKIT_FER2013", REPO.parent / "shared" / "fer2013"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m ferkit.cli serve ARGS`` on a free port of 127.0.0.1; stderr (the request log) to a file."""

    def __init__(self, args: list[str], log_path: Path, startup_timeout: float = 90.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "ferkit.cli", "serve", "--port", str(self.port), *args],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        self._wait_ready(startup_timeout)

    def _wait_ready(self, timeout: float) -> None:
        import httpx

        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ferkit serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ferkit serve did not answer /healthz within {timeout:.0f} s:\n{self.log()}")

    def rss_mb(self) -> float:
        """Resident memory of the server process (one worker: the server is this process), in MiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in /proc (Linux only)")

    def health(self) -> dict:
        import httpx

        return httpx.get(self.url + "/healthz", timeout=10).json()

    def wait_health(self, ok, timeout: float = 20.0) -> dict:
        """Poll /healthz until ``ok(health)``; the last health on timeout (the caller asserts on it)."""
        t_end = time.monotonic() + timeout
        while True:
            h = self.health()
            if ok(h) or time.monotonic() > t_end:
                return h
            time.sleep(0.02)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


@contextlib.contextmanager
def running(args: list[str], log_path: Path):
    srv = Server(args, log_path)
    try:
        yield srv
    finally:
        srv.stop()


# --------------------------------------------------------------------------- real images


def fer_faces(n: int, emotion: str = "happy", prefix: str = "PrivateTest_") -> list[Path]:
    files = sorted((FER / "test" / emotion).glob(f"{prefix}*.jpg"))[:n]
    if len(files) < n:
        raise FileNotFoundError(f"need {n} FER2013 images under {FER}/test/{emotion} (set FERKIT_FER2013)")
    return files


def photo_640x480(name: str = "astronaut.jpg") -> np.ndarray:
    """A real one-face photo from tests/assets placed on a 640x480 canvas (BGR): letterboxed, not stretched."""
    import cv2

    img = cv2.imread(str(ASSETS / name), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    s = min(640 / w, 480 / h)
    img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
    out = np.full((480, 640, 3), 40, np.uint8)
    y0, x0 = (480 - img.shape[0]) // 2, (640 - img.shape[1]) // 2
    out[y0:y0 + img.shape[0], x0:x0 + img.shape[1]] = img
    return out


def jpeg_bytes(bgr: np.ndarray, quality: int = 90) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG of width x height black pixels (a decompression bomb: ~50 KB on the wire)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" * (1 + (width + 7) // 8)
    z = zlib.compressobj(9)
    parts = [z.compress(row * 1000) for _ in range(height // 1000)] + [z.compress(row * (height % 1000)), z.flush()]
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def noise_png(side: int, seed: int = 0) -> bytes:
    """A real (random-pixel) RGB PNG: incompressible, about 3 x side^2 bytes."""
    from PIL import Image

    a = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Frames (BGR, all the same even size) -> a YUV4MPEG2 4:2:0 file (Chromium's fake camera input)."""
    import cv2

    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for fr in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(fr, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


# --------------------------------------------------------------------------- raw HTTP (what httpx will not do)


class RawRequest:
    """One HTTP/1.1 request on its own socket, sent in parts as a test wants: headers now, the body later, in
    part, or never; closed whenever the test says (a client that goes away)."""

    def __init__(self, port: int, target: str, content_type: str, length: int, extra: str = ""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                          f"Content-Length: {length}\r\n{extra}\r\n".encode())

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self, timeout: float) -> tuple[int, bytes] | None:
        """(status, body so far) of the server's answer, or None when none came within ``timeout`` s."""
        self.sock.settimeout(timeout)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            n = next((int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")),
                     0)
            while len(body) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                body += chunk
        except (TimeoutError, ConnectionError):
            pass
        if not buf.startswith(b"HTTP/1.1 "):
            return None
        return int(buf.split()[1]), body

    def close(self) -> None:
        self.sock.close()


def multipart(field: str, files: list[tuple[str, bytes]], boundary: str = "ferkit-test-boundary") -> bytes:
    """A multipart/form-data body with one part per (filename, bytes) in ``field``."""
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
             f"Content-Type: image/jpeg\r\n\r\n".encode() + data + b"\r\n" for name, data in files]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()
