"""`discomkd-edge serve` (edge_demo/serve.py): the web page's files and an export folder
over HTTP(S) with the MIME types a browser insists on, the cross-origin isolation headers
threaded WebAssembly needs, nothing outside the two folders, and one error line for what
it cannot use. A stand-in web folder (no `npm ci` needed); no TensorFlow, no browser.
"""

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from discomkd_keras.edge_demo import console, model_card, serve
from helpers import card_fields

WASM = b"\0asm\x01\0\0\0"


@pytest.fixture
def web(tmp_path):
    """A stand-in for edge_demo/web after `npm ci`."""
    folder = tmp_path / "web"
    wasm = folder / "node_modules" / "@litertjs" / "core" / "wasm"
    wasm.mkdir(parents=True)
    (wasm / "litert_wasm_internal.wasm").write_bytes(WASM)
    (wasm / "litert_wasm_internal.js").write_text("export default 1;\n")
    (folder / "index.html").write_text("<!doctype html><title>page</title>\n")
    (folder / "app.js").write_text("import './src/x.mjs';\n")
    (folder / "src").mkdir()
    (folder / "src" / "x.mjs").write_text("export const x = 1;\n")
    (tmp_path / "secret.txt").write_text("not served\n")
    return folder


def write_export(folder, **changes):
    folder.mkdir(parents=True)
    card = model_card.build_card(**card_fields(**changes))
    (folder / model_card.CARD_FILE).write_text(model_card.card_json(card))
    (folder / "labels.txt").write_text("a\nb\nc\n")
    (folder / card["model_file"]).write_bytes(b"TFL3 stand-in")
    return folder


@pytest.fixture
def running(web, tmp_path):
    """(base URL, server) of make_server on a free port, serving one export folder."""
    export = write_export(tmp_path / "export" / "rgb")
    server, exports = serve.make_server(export, port=0, web_dir=web, quiet=True)
    assert exports == [("/export/", "rgb")]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


def fetch(url, context=None):
    """(status, headers, body); an HTTP error's status too."""
    try:
        with urllib.request.urlopen(url, timeout=30, context=context) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_mime_types_and_isolation_headers(running):
    base, _ = running
    for path, mime, body in (
            ("/", "text/html; charset=utf-8", b"<!doctype html>"),
            ("/?export=/export/", "text/html; charset=utf-8", b"<!doctype html>"),
            ("/node_modules/@litertjs/core/wasm/litert_wasm_internal.wasm", "application/wasm", WASM),
            ("/node_modules/@litertjs/core/wasm/litert_wasm_internal.js",
             "text/javascript; charset=utf-8", b"export default"),
            ("/app.js", "text/javascript; charset=utf-8", b"import"),
            ("/src/x.mjs", "text/javascript; charset=utf-8", b"export const"),
            ("/export/rgb.tflite", "application/octet-stream", b"TFL3"),
            ("/export/model_card.json", "application/json", b"{"),
            ("/export/labels.txt", "text/plain; charset=utf-8", b"a\nb\nc\n")):
        status, headers, got = fetch(base + path)
        assert status == 200, path
        assert headers["Content-Type"] == mime, path
        assert got.startswith(body), path
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert headers["Cross-Origin-Resource-Policy"] == "same-origin"
    card = json.loads(fetch(base + "/export/model_card.json")[2])
    assert card["format"] == model_card.FORMAT


def test_nothing_outside_the_two_folders_and_no_listings(running):
    base, _ = running
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/export/../../secret.txt",
                 "/export/%2e%2e/%2e%2e/secret.txt", "/node_modules/", "/export/", "/src/"):
        status, headers, body = fetch(base + path)
        assert status == 404, path
        assert b"not served" not in body
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"  # on errors too


def test_a_run_export_folder_serves_each_modality(web, tmp_path, capsys):
    root = tmp_path / "run-export"
    write_export(root / "rgb")
    write_export(root / "depth", modality="depth", model_file="depth.tflite",
                 preprocessing={"encoding": "depth_mm_uint16", "scale": 0.001},
                 input_tensor={"name": "x", "shape": [1, 16, 16, 1], "dtype": "float32",
                               "quantization": None})
    (root / "notes").mkdir()  # no card: not an export
    server, exports = serve.make_server(root, port=0, web_dir=web, quiet=True)
    with server:
        assert exports == [("/export/depth/", "depth"), ("/export/rgb/", "rgb")]
        text = serve.describe(server, exports, None)
    port = server.server_address[1]
    assert f"  depth: http://127.0.0.1:{port}/?export=/export/depth/" in text
    assert f"  rgb: http://127.0.0.1:{port}/?export=/export/rgb/" in text
    assert "--host 0.0.0.0" in text and "--https CERT KEY" in text  # how to reach it from a phone


def test_phone_instructions_when_listening_on_every_interface(web, tmp_path, monkeypatch):
    export = write_export(tmp_path / "export")
    monkeypatch.setattr(serve, "lan_address", lambda: "192.168.1.23")
    server, exports = serve.make_server(export, host="0.0.0.0", port=0, web_dir=web, quiet=True)
    with server:
        text = serve.describe(server, exports, None)
        https = serve.describe(server, exports, ("cert.pem", "key.pem"))
    port = server.server_address[1]
    assert f"  rgb: http://127.0.0.1:{port}/?export=/export/" in text
    assert "From a phone on the same network:" in text
    assert f"  rgb: http://192.168.1.23:{port}/?export=/export/" in text
    assert "camera needs HTTPS" in text and "openssl req -x509" in text
    assert f"  rgb: https://192.168.1.23:{port}/?export=/export/" in https
    assert "camera needs HTTPS" not in https


@pytest.mark.parametrize("problem", ["no folder", "no card", "bad card", "no npm ci", "no page",
                                     "bad port", "port in use", "bad certificate"])
def test_what_serve_cannot_use_is_one_error_line(problem, web, tmp_path, capsys):
    export = write_export(tmp_path / "export")
    argv = ["serve", str(export), "--port", "0", "--web", str(web)]
    says = {"no folder": "does not exist", "no card": "holds no model_card.json",
            "bad card": "invalid model card: kind 'video'", "no npm ci": "run `npm ci` in",
            "no page": "holds no index.html", "bad port": "--port 70000 is not a port number",
            "port in use": "cannot listen on 127.0.0.1:",
            "bad certificate": "cannot use the certificate"}
    if problem == "no folder":
        argv[1] = str(tmp_path / "nowhere")
    elif problem == "no card":
        argv[1] = str(tmp_path / "empty")
        (tmp_path / "empty" / "notes").mkdir(parents=True)
    elif problem == "bad card":
        card = json.loads((export / model_card.CARD_FILE).read_text())
        (export / model_card.CARD_FILE).write_text(json.dumps(dict(card, kind="video")))
    elif problem == "no npm ci":
        shutil.rmtree(web / "node_modules")
    elif problem == "no page":
        (web / "index.html").unlink()
    elif problem == "bad port":
        argv[3] = "70000"
    elif problem == "bad certificate":
        (tmp_path / "cert.pem").write_text("not a certificate\n")
        argv += ["--https", str(tmp_path / "cert.pem"), str(tmp_path / "cert.pem")]
    taken = None
    if problem == "port in use":
        taken, _ = serve.make_server(export, port=0, web_dir=web, quiet=True)
        argv[3] = str(taken.server_address[1])
    try:
        assert console.main(argv) == 2
    finally:
        if taken:
            taken.server_close()
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), captured.err
    assert says[problem] in lines[0]
    assert captured.out == ""


def test_help_lists_serve(capsys):
    assert console.main(["-h"]) == 0
    assert "serve" in capsys.readouterr().out
    assert console.main(["serve", "-h"]) == 0
    out = capsys.readouterr().out
    for option in ("EXPORT_DIR", "--host", "--port", "--https", "--web"):
        assert option in out


def test_the_command_prints_the_url_serves_and_stops_on_ctrl_c(web, tmp_path):
    """`python -m discomkd_keras.edge_demo serve ...` as a process: it prints the URL first,
    the page answers there, and SIGINT (Ctrl-C) ends it with status 0."""
    export = write_export(tmp_path / "export")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    process = subprocess.Popen([sys.executable, "-m", "discomkd_keras.edge_demo", "serve", str(export),
                                "--port", "0", "--web", str(web)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = process.stdout.readline()
        assert first.startswith("Serving the discomkd-edge web page"), first + process.stderr.read()
        url = process.stdout.readline().split("rgb: ", 1)[1].strip()
        status, headers, body = fetch(url)
        assert status == 200 and body.startswith(b"<!doctype html>")
        wasm = url.split("/?")[0] + "/node_modules/@litertjs/core/wasm/litert_wasm_internal.wasm"
        assert fetch(wasm)[1]["Content-Type"] == "application/wasm"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_https_with_a_certificate(web, tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate to test --https with")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                           "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    export = write_export(tmp_path / "export")
    server, exports = serve.make_server(export, port=0, web_dir=web, quiet=True,
                                        https=(str(cert), str(key)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        status, headers, body = fetch(f"https://127.0.0.1:{server.server_address[1]}/export/rgb.tflite",
                                      context)
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200 and body == b"TFL3 stand-in"
    assert headers["Content-Type"] == "application/octet-stream"
    assert "https://127.0.0.1:" in serve.describe(server, exports, (str(cert), str(key)))


def test_the_real_page_is_there_to_serve():
    """edge_demo/web ships index.html and the lock file `npm ci` installs from."""
    web = serve.WEB_DIR
    assert (web / "index.html").is_file() and (web / "package-lock.json").is_file()
    lock = json.loads((web / "package-lock.json").read_text())
    package = json.loads((web / "package.json").read_text())
    pinned = package["dependencies"]["@litertjs/core"]
    assert pinned[0].isdigit()  # an exact version, not a range
    assert lock["packages"]["node_modules/@litertjs/core"]["version"] == pinned
    # Every URL of the page is its own: the import map points into node_modules, and no
    # file of the page names another host.
    html = (web / "index.html").read_text()
    imports = json.loads(html.split('<script type="importmap">')[1].split("</script>")[0])["imports"]
    assert all(url.startswith("./node_modules/") for url in imports.values())
    for path in [web / "index.html", web / "app.js", *sorted((web / "src").glob("*.js"))]:
        assert "http://" not in path.read_text() and "https://" not in path.read_text(), path
