"""Latency of exported classifiers in the web page (edge_demo/web, LiteRT.js in headless
Chromium) beside the device demo's (classify.py's runtime: ai-edge-litert) on the same
machine and the same models.

    python benchmarks/web_latency.py EXPORT_DIR [--runs 100] [--modalities depth,rgb]
        [--write benchmarks/results/web-latency.md] [--screenshot edge_demo/web/screenshot.png
        --screenshot-input FILE ...]

EXPORT_DIR is a run's export folder (EXPORT_DIR/<modality>/, as `discomkd-keras export
RUN --modality all` writes it). Each figure is the median of RUNS calls after a warm-up
of 10, on an all-zero input (as `discomkd-edge classify --benchmark N` without INPUT): in
the page, `window.discomkd.benchmark` (quantize + LiteRT.js run + dequantize, one call at
a time); on the device side, runtime.Classifier.timed. The page runs three ways: LiteRT.js's
single-threaded WebAssembly build (?threads=0), and its threaded build (the page is
cross-origin isolated by `discomkd-edge serve`'s headers) with 1 and 2 threads.

Needs node, chromium and `npm ci` in edge_demo/web (tests/test_web_browser.py says how).
"""

import argparse
import datetime
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from discomkd_keras.edge_demo import model_card, runtime, serve  # noqa: E402

WEB = ROOT / "edge_demo" / "web"
DRIVER = WEB / "test" / "browser_test.mjs"
PAGE_CONFIGS = (("WebAssembly, 1 thread (single-threaded build: the page's default)", 0),
                ("WebAssembly, 1 thread (threaded build)", 1),
                ("WebAssembly, 2 threads (threaded build)", 2))


def python_medians(folder, runs, threads=(1, 2)):
    """{threads: median ms} of runtime.Classifier.timed on zeros, after 10 warm-up calls."""
    card, _ = model_card.read_export(folder)
    out = {}
    for n in threads:
        model = runtime.Classifier(folder / card["model_file"], num_threads=n)
        x = np.zeros(model.input_shape, np.float32)
        for _ in range(10):
            model(x)
        out[n] = statistics.median(model.timed(x)[1] for _ in range(runs))
    return out


def page_results(export_dir, modalities, runs, screenshot, screenshot_inputs, chromium, node):
    """The browser driver's JSON for one benchmark job per modality and page configuration."""
    server, _ = serve.make_server(export_dir, port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    jobs = [{"id": f"{m} {threads}", "export": f"/export/{m}/", "threads": threads, "benchmark": runs}
            for m in modalities for _, threads in PAGE_CONFIGS]
    if screenshot:
        modality = model_card.read_export(export_dir / modalities[-1])[0]["modality"]
        jobs.append({"id": "screenshot", "export": f"/export/{modality}/",
                     "files": [str(Path(f).resolve()) for f in screenshot_inputs],
                     "benchmark": runs, "screenshot": str(Path(screenshot).resolve())})
    with tempfile.TemporaryDirectory() as work:
        spec = Path(work) / "jobs.json"
        spec.write_text(json.dumps({"chromium": chromium, "jobs": jobs,
                                    "base": f"http://127.0.0.1:{server.server_address[1]}"}))
        try:
            done = subprocess.run([node, str(DRIVER), str(spec), str(Path(work) / "out.json")],
                                  cwd=WEB, capture_output=True, text=True, timeout=1800)
        finally:
            server.shutdown()
            server.server_close()
        out = Path(work) / "out.json"
        result = json.loads(out.read_text()) if out.is_file() else {}
    if done.returncode != 0:
        sys.exit(f"Error: the browser run failed: {result.get('failure') or done.stderr.strip()}")
    return result


def table(export_dir, modalities, page, python, runs):
    jobs = {job["id"]: job for job in page["jobs"]}
    lines = ["| model | " + " | ".join(name for name, _ in PAGE_CONFIGS)
             + " | classify.py's runtime, 1 thread | 2 threads | page / classify.py, 1 thread |",
             "|---|" + "---:|" * (len(PAGE_CONFIGS) + 3)]
    for m in modalities:
        card, _ = model_card.read_export(export_dir / m)
        cells = []
        for _, threads in PAGE_CONFIGS:
            job = jobs[f"{m} {threads}"]
            if job.get("modelError"):
                sys.exit(f"Error: the page refused {m}: {job['modelError']}")
            bench = job["benchmark"]
            assert bench["runs"] == runs and bench["threadedBuild"] == (threads != 0), bench
            cells.append(f"{bench['median_ms']:.3f}")
        single = jobs[f"{m} 0"]["benchmark"]["median_ms"]
        lines.append(f"| {m} ({card['quantization']}, {card['input']['dtype']} I/O, "
                     f"{card['file_size_bytes'] / 1024:.1f} KiB) | " + " | ".join(cells)
                     + f" | {python[m][1]:.3f} | {python[m][2]:.3f} | {single / python[m][1]:.1f}x |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export_dir", type=Path, help="a run's export folder (EXPORT_DIR/<modality>/)")
    parser.add_argument("--runs", type=int, default=100, help="timed calls per figure (default 100)")
    parser.add_argument("--modalities", default="depth,rgb", help="comma-separated (default depth,rgb)")
    parser.add_argument("--write", type=Path, default=None, help="write the Markdown report here")
    parser.add_argument("--screenshot", type=Path, default=None,
                        help="also save a screenshot of the page classifying --screenshot-input files "
                             "with the last modality")
    parser.add_argument("--screenshot-input", nargs="*", default=[], metavar="FILE")
    parser.add_argument("--command", default=None, help="the command line to record in the report")
    parser.add_argument("--about", default="", help="a paragraph on the models, for the report")
    args = parser.parse_args(argv)
    node = shutil.which("node")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if node is None or chromium is None or not (WEB / "node_modules" / "puppeteer-core").is_dir():
        sys.exit("Error: needs node, chromium and `npm ci` in edge_demo/web.")
    modalities = args.modalities.split(",")
    page = page_results(args.export_dir, modalities, args.runs, args.screenshot,
                        args.screenshot_input, chromium, node)
    python = {m: python_medians(args.export_dir / m, args.runs) for m in modalities}
    text = table(args.export_dir, modalities, page, python, args.runs)
    print(f"Chromium {page['chromium']}; median of {args.runs} calls (ms), all-zero input:\n{text}")
    if args.write:
        command = args.command or " ".join(["python benchmarks/web_latency.py",
                                            *(argv or sys.argv[1:])])
        args.write.write_text(report(command, page["chromium"], text, args.runs, args.about))
        print(f"Wrote {args.write}")
    return 0


def report(command, chromium, text, runs, about=""):
    today = datetime.date.today().isoformat()
    lock = json.loads((WEB / "package-lock.json").read_text())
    litert = lock["packages"]["node_modules/@litertjs/core"]["version"]
    about_paragraph = f"\n\n{about}" if about else ""
    return f"""# Web page latency: the default run's int8 classifiers in the browser

```bash
{command}
```

{today}; {platform.machine()}, 2 shared CPU cores (other jobs ran beside it: treat the
figures as rough); {chromium.replace('/', ' ')} headless (Debian's chromium), LiteRT.js
(@litertjs/core) {litert}; ai-edge-litert for the classify.py columns.{about_paragraph}

Median of {runs} calls after 10 warm-up calls, all-zero input, one call at a time (ms):

{text}

Columns: the page (edge_demo/web, served by `discomkd-edge serve`, so cross-origin
isolated) with LiteRT.js's single-threaded WebAssembly build (`?threads=0`), and its
threaded build with one and two threads (`?threads=1`, `?threads=2`); a call is
`window.discomkd.benchmark`'s: quantize (for integer I/O), LiteRT.js `run`, read and
dequantize the output. "classify.py's runtime" is edge_demo/runtime.py's Classifier (the
LiteRT interpreter with XNNPACK, what `discomkd-edge classify --benchmark` times) on the
same files, measured in the same run. The page adds the browser's cost of a call (a
JavaScript Promise per run, copying the input into the WebAssembly heap and the output
out, WebAssembly SIMD kernels instead of x86 AVX ones).

The device demo's own figures for the quick start's run, every quantization's size, F1,
agreement and 1- and 2-thread latency: `benchmarks/results/export-synthetic-rgbd/bench-export.md`
(`discomkd-keras bench-export`, x86, not a Pi: the project has no Raspberry Pi measurement;
`edge_demo/arm64_check.sh` only emulates one).
"""


if __name__ == "__main__":
    sys.exit(main())
