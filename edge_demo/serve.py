"""`discomkd-edge serve EXPORT_DIR`: the web page of edge_demo/web and an export folder,
served by Python's http.server so that a browser (a phone's included) runs the model
with LiteRT.js.

    discomkd-edge serve EXPORT_DIR [--host 127.0.0.1] [--port 8000] [--https CERT KEY] [--web DIR]

URL layout: `/` is the page (edge_demo/web/index.html), every other path a file under
edge_demo/web (its node_modules/ holds LiteRT.js and its WebAssembly files, put there by
`npm ci`), and `/export/...` a file under EXPORT_DIR. The page loads the export named
by its `?export=` parameter, e.g. `/?export=/export/` for a single export folder or
`/?export=/export/depth/` for one modality of a run's export folder.

Every response carries Cross-Origin-Opener-Policy and Cross-Origin-Embedder-Policy so
that the page is cross-origin isolated: without it a browser gives no
SharedArrayBuffer, and LiteRT.js no threads. A camera (getUserMedia) needs a secure
context: http://127.0.0.1 or http://localhost is one, a LAN address is not, hence
--https CERT KEY. Standard library only (and model_card.py): no TensorFlow, no
LiteRT on the serving machine.
"""

import functools
import http.server
import socket
import ssl
import sys
import urllib.parse
from pathlib import Path

if __package__:  # discomkd_edge (installed), or discomkd_keras.edge_demo
    from . import model_card
else:  # run as a script: edge_demo/ is on sys.path
    import model_card

WEB_DIR = Path(__file__).resolve().parent / "web"
EXPORT_PREFIX = "/export/"
# The types the page needs; a browser refuses WebAssembly.instantiateStreaming for a
# .wasm file without application/wasm, and a module script without a JavaScript type.
MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".tflite": "application/octet-stream",
    ".npy": "application/octet-stream",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".wav": "audio/wav",
    ".svg": "image/svg+xml",
}
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    # Same-origin resources need no CORP under require-corp; saying it costs nothing and
    # keeps the files loadable if the page is ever embedded from another origin.
    "Cross-Origin-Resource-Policy": "same-origin",
}
SELF_SIGNED_HINT = (
    "openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=discomkd-edge "
    "-keyout key.pem -out cert.pem")


class ServeError(ValueError):
    """A folder, address or certificate that the server cannot use; the message is one line."""


def find_exports(export_dir):
    """[(URL path of the folder, its name)] of the export folders in EXPORT_DIR: the folder
    itself if it holds model_card.json (its card checked here: a bad one is refused in one
    line), else its sub-folders that hold one (a run's export/; the page checks each card
    when it opens it, so one bad folder does not keep the others from being served)."""
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise ServeError(f"export folder {export_dir} does not exist (expected one written by "
                         "`discomkd-keras export`).")
    if (export_dir / model_card.CARD_FILE).is_file():
        card, _ = model_card.read_export(export_dir)
        return [(EXPORT_PREFIX, card["modality"])]
    found = [(f"{EXPORT_PREFIX}{urllib.parse.quote(sub.name)}/", sub.name)
             for sub in sorted(export_dir.iterdir()) if (sub / model_card.CARD_FILE).is_file()]
    if not found:
        raise ServeError(f"{export_dir} holds no {model_card.CARD_FILE}, nor does any folder in "
                         "it: give an export folder written by `discomkd-keras export`.")
    return found


def check_web_dir(web_dir):
    """The page's folder, after checking that `npm ci` has put LiteRT.js there."""
    web_dir = Path(web_dir)
    if not (web_dir / "index.html").is_file():
        raise ServeError(f"{web_dir} holds no index.html: the web page ships with a source "
                         "checkout (edge_demo/web); pass its folder with --web DIR.")
    if not (web_dir / "node_modules" / "@litertjs" / "core" / "wasm").is_dir():
        raise ServeError(f"{web_dir / 'node_modules'} lacks @litertjs/core: run `npm ci` in "
                         f"{web_dir} first (the page loads LiteRT.js from there, never from a "
                         "CDN).")
    return web_dir


class Handler(http.server.SimpleHTTPRequestHandler):
    """GET/HEAD of the page's files and the export's files, with the isolation headers."""

    extensions_map = dict(http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES)

    def __init__(self, *args, web_dir, export_dir, quiet=False, **kwargs):
        self.web_dir = Path(web_dir)
        self.export_dir = Path(export_dir)
        self.quiet = quiet
        super().__init__(*args, directory=str(web_dir), **kwargs)

    def translate_path(self, path):
        """A URL path -> a file path inside the web folder or, under /export/, inside
        EXPORT_DIR; '..' and absolute components are dropped, so nothing outside the two
        folders is reachable."""
        path = urllib.parse.unquote(urllib.parse.urlsplit(path).path, errors="surrogatepass")
        root = self.web_dir
        if path.startswith(EXPORT_PREFIX) or path == EXPORT_PREFIX.rstrip("/"):
            root, path = self.export_dir, path[len(EXPORT_PREFIX):]
        parts = [p for p in path.split("/") if p not in ("", ".", "..") and "\\" not in p]
        return str(root.joinpath(*parts))

    def list_directory(self, path):
        """No directory listings: the page needs none, and an export folder is no file browser."""
        self.send_error(404, "No directory listing")
        return None

    def end_headers(self):
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        # The page and a re-exported model must not come from a stale cache.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format, *args):
        if not self.quiet:
            super().log_message(format, *args)


def make_server(export_dir, host="127.0.0.1", port=8000, https=None, web_dir=WEB_DIR,
                quiet=False):
    """(the bound server, [(URL path, modality)] of the exports). port 0: a free port.
    https: (certificate file, key file) or None."""
    exports = find_exports(export_dir)
    web_dir = check_web_dir(web_dir)
    handler = functools.partial(Handler, web_dir=web_dir, export_dir=Path(export_dir),
                                quiet=quiet)
    server_class = http.server.ThreadingHTTPServer
    if ":" in host:  # an IPv6 address
        server_class = type("ThreadingHTTPServerV6", (server_class,),
                            {"address_family": socket.AF_INET6})
    try:
        server = server_class((host, port), handler)
    except OSError as err:
        raise ServeError(f"cannot listen on {host}:{port} ({err.strerror or err}).") from None
    if https:
        cert, key = https
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as err:
            server.server_close()
            raise ServeError(f"cannot use the certificate {cert} with the key {key} "
                             f"({getattr(err, 'strerror', None) or err}).") from None
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server, exports


def lan_address():
    """This machine's address on its local network, or None: the source address of a route
    to a private address (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def page_urls(scheme, host, port, exports):
    """[(modality, URL of the page loading that export)]."""
    if ":" in host:
        host = f"[{host}]"
    return [(modality, f"{scheme}://{host}:{port}/?export={url}") for url, modality in exports]


def describe(server, exports, https):
    """What to print once the server listens: the URLs, and how to reach them from a phone."""
    host, port = server.server_address[:2]
    scheme = "https" if https else "http"
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    lines = ["Serving the discomkd-edge web page (Ctrl-C stops):"]
    lines += [f"  {modality}: {url}" for modality, url in page_urls(scheme, local, port, exports)]
    lan = lan_address()
    if host in ("0.0.0.0", "::", ""):
        if lan:
            lines.append("From a phone on the same network:")
            lines += [f"  {modality}: {url}"
                      for modality, url in page_urls(scheme, lan, port, exports)]
        if not https:
            lines.append("A phone's browser runs files there, but its camera needs HTTPS off "
                         f"localhost: restart with --https cert.pem key.pem (self-signed: "
                         f"{SELF_SIGNED_HINT}; accept the warning on the phone).")
    else:
        lines.append(f"Only this machine can open it. For a phone on the same network, restart "
                     f"with --host 0.0.0.0 and open http{'s' if https else ''}://"
                     f"{lan or 'THIS-MACHINE-IP'}:{port}/ there (the camera also needs "
                     f"--https CERT KEY off localhost; self-signed: {SELF_SIGNED_HINT}).")
    return "\n".join(lines)


def add_arguments(parser):
    """The `serve` subcommand's arguments."""
    parser.add_argument("export_dir", metavar="EXPORT_DIR",
                        help="an export folder (<modality>.tflite, labels.txt, model_card.json) "
                             "or a folder of them (a run's export/)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; "
                             "0.0.0.0 for phones on the same network)")
    parser.add_argument("--port", type=int, default=8000,
                        help="port (default 8000; 0: any free one)")
    parser.add_argument("--https", nargs=2, metavar=("CERT", "KEY"), default=None,
                        help="serve HTTPS with this PEM certificate and key (a phone's camera "
                             "needs HTTPS off localhost)")
    parser.add_argument("--web", type=Path, default=WEB_DIR, metavar="DIR",
                        help="the web page's folder (default: edge_demo/web next to this file)")


def serve(args):
    """Serve until Ctrl-C (exit 0); ServeError / ModelCardError for what cannot be used."""
    if not 0 <= args.port <= 65535:
        raise ServeError(f"--port {args.port} is not a port number (0-65535).")
    server, exports = make_server(args.export_dir, args.host, args.port, args.https, args.web)
    with server:
        print(describe(server, exports, args.https), flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:  # the way to stop it
            print(file=sys.stderr)
    return 0
