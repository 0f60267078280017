"""`discomkd-edge`: the device demo as a command, with nothing but LiteRT, NumPy
and Pillow (`pip install ./edge_demo`; edge_demo/pyproject.toml).

    discomkd-edge classify MODEL_DIR INPUT [INPUT ...] [--top-k K] [--threads N] [--json] [--benchmark N]
    discomkd-edge camera MODEL_DIR [--camera-index I] [--top-k K] [--threads N] [--json]
    discomkd-edge serve EXPORT_DIR [--host 127.0.0.1] [--port 8000] [--https CERT KEY]
    discomkd-edge --version | -h

The first two subcommands are `python classify.py MODEL_DIR INPUT...` and
`python classify.py MODEL_DIR --camera`; classify.py does the work, and both
forms share its exit statuses: 0 done; 2 bad input, each problem one
"Error: ..." line on stderr; 1 a bug, with its traceback and a request to
report it. `serve` (serve.py) serves the web page of edge_demo/web, which runs an
export in a browser with LiteRT.js, with the same statuses (0 once stopped with Ctrl-C).
"""

import sys

if __package__:  # discomkd_edge (installed), or discomkd_keras.edge_demo
    from . import classify, serve
else:  # run as a script: edge_demo/ is on sys.path
    import classify
    import serve

PROG = "discomkd-edge"
VERSION_COMMAND = f"{PROG} --version"


def build_parser():
    """(the command's parser, {subcommand: its parser})."""
    parser = classify.ArgumentParser(
        prog=PROG,
        description="Run a model exported by `discomkd-keras export` on a device (Raspberry Pi "
                    "or any computer) with LiteRT, NumPy and Pillow only: inputs are "
                    "preprocessed exactly as the training data, following the model card.",
        epilog=classify.EXIT_STATUS)
    parser.add_argument("--version", action="version", version=f"{PROG} {classify.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    files = commands.add_parser(
        "classify", help="classify image, WAV or .npy files",
        description="Classify images, WAV clips or .npy samples (a batch of them classifies "
                    "every row) with an exported model.",
        epilog=f"{classify.INPUT_FORMATS} {classify.EXIT_STATUS}")
    classify.add_model_arguments(files)
    classify.add_input_arguments(files)

    live = commands.add_parser(
        "camera", help="classify live camera frames until Ctrl-C (8-bit image models)",
        description="Classify live camera frames (picamera2, else OpenCV) until Ctrl-C; frames "
                    "are centre-cropped and resized to the model's input. 8-bit image models "
                    "only.",
        epilog=classify.EXIT_STATUS)
    classify.add_model_arguments(live)
    classify.add_camera_index(live)

    web = commands.add_parser(
        "serve", help="serve the web page that runs an export in a browser (LiteRT.js)",
        description="Serve edge_demo/web and EXPORT_DIR over HTTP(S): the page runs the "
                    "exported classifier in the browser with LiteRT.js (WebAssembly), on files "
                    "or camera frames, preprocessed as the model card says. Needs `npm ci` in "
                    "edge_demo/web once.",
        epilog="Exit status: 0 stopped with Ctrl-C; 2 an export folder, address or certificate "
               "that cannot be used (one 'Error: ...' line on stderr); 1 a bug.")
    serve.add_arguments(web)
    return parser, {"classify": files, "camera": live, "serve": web}


def run_serve(args):
    """`discomkd-edge serve`: a folder, address or certificate it cannot use is one error line."""
    try:
        return serve.serve(args)
    except serve.ServeError as err:
        classify.error(err)
        return classify.INPUT_EXIT


def main(argv=None):
    """The `discomkd-edge` command; returns its exit status."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser, commands = build_parser()
    name = argv[0] if argv else None
    if name not in commands:  # --version, -h or a usage error: the command's parser answers
        status = classify.parse(parser, argv, intermixed=False)[1]
        return classify.INPUT_EXIT if status is None else status
    if name == "serve":
        args, status = classify.parse(commands[name], argv[1:])
        if args is None:
            return status
        return classify.guarded(lambda: run_serve(args), VERSION_COMMAND)
    # The subcommand's parser itself, so that options may follow the INPUT files
    # (argparse's intermixed parsing does not work through subparsers).
    args, status = classify.parse(
        commands[name], argv[1:],
        lambda sub, args: classify.check_arguments(sub, args, name == "camera"))
    if args is None:
        return status
    work = classify.classify_camera if name == "camera" else classify.classify_files
    return classify.guarded(lambda: work(args), VERSION_COMMAND)


if __name__ == "__main__":
    sys.exit(main())
