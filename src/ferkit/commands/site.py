"""``ferkit site OUT_DIR``: the live page as a static site whose camera frames never leave the browser
(``ferkit.serve.site``; no server, no FastAPI, nothing fetched at run time)."""

from __future__ import annotations

from .options import STDOUT, add_json, add_quiet, write_json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "site", help="write the live page as a static site that analyses the camera in the browser (nothing uploaded)",
        description="Write the page, its scripts, onnxruntime-web (WebAssembly, pinned, MIT) and the two model files "
                    "(CenterFace, int8 fast) into OUT_DIR. Any static file server shows it, e.g. `cd OUT_DIR && "
                    "python -m http.server` then http://localhost:8000 ; GitHub Pages works too. The page detects, "
                    "aligns, crops and classifies every face in the browser: camera frames and photos are never "
                    "sent anywhere. A server that sends the headers in OUT_DIR/_headers (COOP/COEP; Netlify and "
                    "Cloudflare Pages read that file) gets WebAssembly threads; any other gets one thread.")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder to write (new, empty, or a previous ferkit site)")
    add_json(p, "the summary (files written, bytes)")
    add_quiet(p, "summary")
    p.set_defaults(func=cmd_site)


def cmd_site(args) -> int:
    from ..serve.site import write_site

    summary = write_site(args.out_dir)
    if args.json:
        write_json(summary, args.json)
    if not args.quiet and args.json != STDOUT:  # stdout holds the JSON alone when it is asked for there
        print(f"ferkit site: {len(summary['files'])} files, {summary['bytes'] / 1e6:.1f} MB in {summary['out']} "
              f"(onnxruntime-web {summary['onnxruntime_web']})\nshow it: cd {summary['out']} && python -m http.server"
              "  then open http://localhost:8000")
    return 0
