"""``ferkit serve``: the REST API and the browser page (``ferkit.serve``; needs ``pip install 'ferkit[serve]'``)."""

from __future__ import annotations

import errno
import os
import socket
import sys

from .options import describe_default


def add_parser(sub):
    p = sub.add_parser(
        "serve", help="web service: REST API (OpenAPI at /docs) and a live camera page at / (ferkit[serve])",
        description="Serve POST /v1/emotions, POST /v1/emotions/batch, GET /healthz, GET /v1/model, the API docs "
                    "at /docs and a page at / that shows the emotions of the faces in the browser's camera. "
                    "Binds 127.0.0.1 unless --host says otherwise. Needs pip install 'ferkit[serve]'.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port")
    p.add_argument("--workers", type=int, default=1, help="server processes, each with its own model")
    describe_default(p.add_argument(
        "--model", default=None, help="'default', 'fast', 'ferplus', 'fer2013', a path to a ferkit .onnx, or a Keras "
                                      "model (emotiondetector.h5, .keras, .json)"), "'default'")
    p.add_argument("--detector", default="auto", help="default face detector (see `ferkit predict --help`); "
                                                      "a request may name another with ?detector=")
    p.add_argument("--min-face", type=int, default=24, help="default smallest face side in pixels")
    p.add_argument("--max-faces", type=int, default=None, help="default cap on faces per image")
    describe_default(p.add_argument("--threads", type=int, default=None, help="onnxruntime threads per inference"),
                     "cores / (workers x concurrency)")
    describe_default(p.add_argument("--concurrency", type=int, default=None,
                                    help="images analysed at once per worker"), "one per core")
    p.add_argument("--max-queue", type=int, default=64,
                   help="requests waiting per worker, bodies still arriving included; one more gets 503 before its "
                        "body is read")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest image upload in MiB")
    p.add_argument("--max-pixels", type=int, default=50_000_000, help="largest image in pixels, width x height")
    p.add_argument("--max-batch", type=int, default=16, help="images per batch request")
    p.add_argument("--body-timeout", type=float, default=60.0,
                   help="seconds a client has to send a request body, with no pause over 15 s; a slower body gets "
                        "408")
    p.add_argument("--no-access-log", dest="access_log", action="store_false", help="no line per request")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    try:
        import fastapi  # noqa: F401
        import fastapi_offline  # noqa: F401
        import uvicorn
    except ImportError as e:
        print(f"ferkit serve needs the serve extra: pip install 'ferkit[serve]' ({e})", file=sys.stderr)
        return 2
    from ..faces import create_detector, resolve_name
    from ..recognizer import _resolve_model
    from ..serve.app import app_from_env, setup_logging
    from ..serve.config import ENV_VAR, MiB, ServeConfig
    from .options import say_model

    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, not {args.workers}")
    upload = int(args.max_upload_mb * MiB)
    cfg = ServeConfig(model=args.model, detector=args.detector, min_face=args.min_face, max_faces=args.max_faces,
                      threads=args.threads, max_concurrent=args.concurrency, max_queue=args.max_queue,
                      workers=args.workers, max_upload_bytes=upload,
                      max_request_bytes=max(upload, upload * min(args.max_batch, 4)),
                      max_pixels=args.max_pixels, max_batch=args.max_batch, body_timeout=args.body_timeout,
                      body_idle_timeout=min(15.0, args.body_timeout), access_log=args.access_log)
    # fail here, with a clear message, rather than in every worker
    model = _resolve_model(cfg.model)
    say_model("serve", model)
    detector = resolve_name(cfg.detector)
    create_detector(detector, min_face=cfg.min_face)
    sock = listen(args.host, args.port)  # before the banner: the URL it prints is one that answers
    os.environ[ENV_VAR] = cfg.to_env()
    setup_logging(cfg)
    common = {"host": args.host, "port": args.port, "access_log": False, "log_level": "info"}
    if args.workers == 1:
        config = uvicorn.Config(app_from_env(), **common)
    else:
        config = uvicorn.Config("ferkit.serve.app:app_from_env", factory=True, workers=args.workers, **common)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"ferkit serve: http://{shown}:{args.port}/  (page)  /docs  (API)  model {model.name}, detector "
          f"{detector}, {args.workers} worker(s) x {cfg.concurrency} inference thread(s)", file=sys.stderr)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"ferkit serve: listening on {args.host}: other machines can reach this server", file=sys.stderr)
    server = uvicorn.Server(config)
    try:
        if args.workers == 1:
            server.run(sockets=[sock])
        else:
            from uvicorn.supervisors import Multiprocess

            Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 3 if args.workers == 1 and not server.started else 0  # 3: uvicorn's code for a failed startup


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, bound the way uvicorn binds (SO_REUSEADDR, inheritable for worker
    processes); ValueError with what to do when the port is taken or the address is not this machine's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as e:
        sock.close()
        shown = f"[{host}]" if ":" in host else host
        hint = {errno.EADDRINUSE: "the port is already in use (another server?): stop it or choose another --port",
                errno.EACCES: "no permission for this port (ports below 1024 need root): choose another --port",
                errno.EADDRNOTAVAIL: "this machine has no such address: check --host"}
        raise ValueError(f"cannot listen on {shown}:{port}: {hint.get(e.errno, e.strerror or e)}") from None
    except OverflowError as e:
        sock.close()
        raise ValueError(f"--port {port} is not a port number (1..65535): {e}") from None
    sock.set_inheritable(True)
    return sock
