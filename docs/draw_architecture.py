"""Draw docs/architecture.png, the DisCoM-KD training graph, from the project's own config.

    python docs/draw_architecture.py [--preset synthetic-rgbd] [--out docs/architecture.png]

The picture is not drawn by hand: `project_spec` reads the modalities (names, input
shapes, modality order), the encoder family, D, K, the branch form, the loss terms and
their defaults, and which shared head each term trains, from the package (config.py's
presets, the synthetic RGB-D loader's preprocessing, the loss and head tables), and
`layout` places one box per block. Change the model or the preset and the figure follows.

For every modality (one row each) it shows: input -> E_inv and E_spec -> z_inv, z_inf,
z_irr -> the modality's classifier C[m]; the heads shared by all modalities (C_aux, the
gradient-reversal layer and D_adv, D_inf, D_irr) in one band across the rows; the loss
terms where they attach; and, outlined, the part each device runs (the ModalityClassifier).
See docs/method.md for the symbols.

The PNG is written to a temporary file in the target folder and moved into place with
os.replace, so an interrupted run never leaves a half-written image.
"""

import argparse
import importlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "architecture.png"
DPI = 100
FIG_WIDTH = 14.0  # inches: 1400 px at DPI 100, the README's width
FONT = 10.5  # points; nothing on the figure is smaller than 10
UNIT = 0.40  # inches per layout line inside a modality row

# Colours of the box kinds (the legend names them).
STYLE = {
    "deployed": {"face": "#dcefdc", "edge": "#2e7d32"},
    "training": {"face": "#eeeeee", "edge": "#616161"},
    "shared": {"face": "#ffe0b2", "edge": "#e65100"},
    "grl": {"face": "#fff8e1", "edge": "#e65100"},
    "loss": {"face": "#ffcdd2", "edge": "#c62828"},
}
SYMBOL = {  # mathtext of each loss term; a term the code adds later falls back to L_<name>
    "cl": r"$L_{\rm cl}$", "adv": r"$L_{\rm adv}$", "mod": r"$L_{\rm mod}$",
    "aux": r"$L_{\rm aux}$", "perp": r"$L_{\rm perp}$",
}


def _first_module(*names):
    """The first of `names` that imports (the package moved modules into models/ in 0.1)."""
    error = None
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError as err:
            error = err
    raise error


def _package():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    config = importlib.import_module("discomkd_keras.config")
    losses = _first_module("discomkd_keras.models.losses", "discomkd_keras.losses")
    heads = _first_module("discomkd_keras.models.heads", "discomkd_keras.model")
    return config, losses, heads


def _synthetic_rgbd_modalities(size):
    """[(name, input shape)] of the built-in synthetic RGB-D set, in modality-index order,
    from its own raw-to-input recipe (no data is rendered)."""
    import numpy as np

    from discomkd_keras.data import synthetic_rgbd

    recipe = synthetic_rgbd.preprocessing(size)
    rgb = np.zeros((1, size, size, 3), np.uint8)
    depth = np.zeros((1, size, size), np.uint16)
    inputs = synthetic_rgbd.to_inputs(rgb, depth, size)
    return [(name, tuple(inputs[name].shape[1:])) for name in recipe]


def _encoder_family(config, preset, shape):
    family = config.PRESETS[preset]["encoder"]
    if family == "edge":
        return config.edge_encoder("vector" if len(shape) == 1 else "image", shape)
    if family:
        return family
    return "mlp" if len(shape) == 1 else "resnet18"  # the model's default (encoders.py)


def project_spec(preset="synthetic-rgbd"):
    """What the figure draws, read from the package: a dict with the modalities
    [{name, shape, encoder}], feature_dim (D), num_classes (K), branch, loss_terms,
    loss_weights, perp_mode, grl_schedule, grl_lambda and heads_of_term."""
    config, losses, heads = _package()
    from discomkd_keras.data.rgbd_renderer import CLASS_NAMES

    size = config.BENCHMARKS["synthetic-rgbd"]["data"]["size"]
    defaults = config.TRAIN_DEFAULTS
    return {
        "preset": preset,
        "modalities": [{"name": name, "shape": shape,
                        "encoder": _encoder_family(config, preset, shape)}
                       for name, shape in _synthetic_rgbd_modalities(size)],
        "feature_dim": int(config.PRESETS[preset]["feature_dim"]),
        "num_classes": len(CLASS_NAMES),
        "branch": defaults["branch"],
        "loss_terms": tuple(losses.LOSS_TERMS),
        "loss_weights": dict(defaults["loss_weights"]),
        "perp_mode": defaults["perp_mode"],
        "grl_schedule": defaults["grl_schedule"],
        "grl_lambda": float(defaults["grl_lambda"]),
        "heads_of_term": {t: tuple(h) for t, h in heads.HEADS_OF_TERM.items()},
    }


@dataclass
class Box:
    """One block of the figure, in inches from the bottom-left corner (x, y its centre)."""
    key: str
    x: float
    y: float
    w: float
    h: float
    label: str
    kind: str  # a STYLE key
    modality: str = None
    term: str = None  # the loss term of a loss box
    layer: str = None  # the Keras layer (or model) the box stands for

    @property
    def bounds(self):
        return (self.x - self.w / 2, self.y - self.h / 2, self.x + self.w / 2, self.y + self.h / 2)


# Horizontal positions (inches): (left, right) of each column.
COLUMNS = {
    "input": (0.15, 1.20), "encoder": (1.50, 2.95), "proj": (3.30, 4.30), "z": (4.65, 5.65),
    "head": (6.05, 7.20), "grl": (7.75, 8.75), "shared": (9.05, 10.35),
    "loss": (10.75, 11.60),
}
DEPLOYED_RIGHT = 7.40
SHARED_BAND = (7.55, 10.55)
LEGEND_LEFT = 11.85
# Vertical positions inside a row, in layout lines from the row's top.
LINES = {"aux_inv": 0.0, "z_inv": 0.55, "adv": 1.1, "head": 2.2, "perp_inv": 2.2,
         "aux_inf": 3.3, "z_inf": 3.85, "inf": 4.4, "perp_irr": 5.05, "irr": 5.95,
         "mod": 5.175}
ROW_LINES = 6.45  # lines a row takes (last box's bottom included)
ROW_HEADER = 0.40  # inches above a row's first line: its title
TITLE_H = 0.85
FOOTER_H = 1.55  # the formulas under the rows
ROW_GAP = 0.25


def _shape_text(shape):
    return "×".join(str(d) for d in shape)


def figure_height(spec):
    rows = len(spec["modalities"])
    return TITLE_H + rows * (ROW_HEADER + ROW_LINES * UNIT) + (rows - 1) * ROW_GAP + FOOTER_H


def _row_top(spec, index):
    height = figure_height(spec)
    return (height - TITLE_H - ROW_HEADER
            - index * (ROW_HEADER + ROW_LINES * UNIT + ROW_GAP))


def layout(spec):
    """{key: Box} of every block, for `spec` (see `project_spec`). Keys are
    "<block>:<modality>" for a modality's blocks and "loss:<term>:<modality>[:<n>]"
    for the loss boxes; every box names its modality, a loss box its term."""
    d, k, m_count = spec["feature_dim"], spec["num_classes"], len(spec["modalities"])
    half = d // 2
    terms = spec["loss_terms"]
    boxes = {}

    def add(key, column, line, label, kind, modality, h=0.70, term=None, layer=None, top=0.0):
        left, right = COLUMNS[column]
        boxes[key] = Box(key, (left + right) / 2, top - line * UNIT, right - left, h * UNIT,
                         label, kind, modality, term, layer)

    for index, mod in enumerate(spec["modalities"]):
        m = mod["name"]
        top = _row_top(spec, index)
        row = {"top": top}
        middle = (LINES["z_inv"] + LINES["z_inf"]) / 2
        add(f"input:{m}", "input", middle, f"{m}\n{_shape_text(mod['shape'])}", "deployed",
            m, h=1.35, layer=m, **row)
        add(f"E_inv:{m}", "encoder", LINES["z_inv"],
            r"$E_{\rm inv}$" + f" {mod['encoder']}\n→ D = {d}", "deployed", m, h=1.05,
            layer=f"{m}_inv_encoder", **row)
        add(f"E_spec:{m}", "encoder", LINES["z_inf"],
            r"$E_{\rm spec}$" + f" {mod['encoder']}\n→ D = {d}", "deployed", m, h=1.05,
            layer=f"{m}_spec_encoder", **row)
        add(f"proj:{m}", "proj", LINES["z_inv"], f"Dense {half}\nBN, ReLU", "deployed", m,
            h=1.05, layer=f"{m}_proj_dense", **row)
        add(f"z_inv:{m}", "z", LINES["z_inv"], r"$z_{\rm inv}$" + f"  {half}", "deployed", m,
            layer=f"{m}_z_inv", **row)
        add(f"z_inf:{m}", "z", LINES["z_inf"], r"$z_{\rm inf}$" + f"  {half}", "deployed", m,
            layer=f"{m}_split", **row)
        add(f"z_irr:{m}", "z", LINES["irr"], r"$z_{\rm irr}$" + f"  {half}", "training", m,
            layer=f"{m}_split", **row)
        add(f"C:{m}", "head", LINES["head"], r"$C_{\rm " + m + r"}$" + f": Dense {k}",
            "deployed", m, layer=f"{m}_classifier", **row)
        # DisCoM-KD's shared heads, drawn once per modality inside the shared band.
        add(f"C_aux_inv:{m}", "shared", LINES["aux_inv"], r"$C_{\rm aux}$" + f": Dense {k}",
            "shared", m, layer="aux_classifier", **row)
        add(f"GRL:{m}", "grl", LINES["adv"], r"GRL $\times(-\lambda)$", "grl", m,
            layer="gradient_reversal", **row)
        add(f"D_adv:{m}", "shared", LINES["adv"], r"$D_{\rm adv}$" + f": Dense {m_count}",
            "shared", m, layer="adv_discriminator", **row)
        add(f"C_aux_inf:{m}", "shared", LINES["aux_inf"], r"$C_{\rm aux}$" + f": Dense {k}",
            "shared", m, layer="aux_classifier", **row)
        add(f"D_inf:{m}", "shared", LINES["inf"], r"$D_{\rm inf}$" + f": Dense {m_count}",
            "shared", m, layer="inf_discriminator", **row)
        add(f"D_irr:{m}", "shared", LINES["irr"], r"$D_{\rm irr}$" + f": Dense {m_count}",
            "shared", m, layer="irr_discriminator", **row)
        # The loss terms, where they attach.
        placements = {
            "cl": [("loss", LINES["head"], 0.70)],
            "adv": [("loss", LINES["adv"], 0.70)],
            "aux": [("loss", LINES["aux_inv"], 0.70), ("loss", LINES["aux_inf"], 0.70)],
            "mod": [("loss", LINES["mod"], 1.20)],
            "perp": [("z", LINES["perp_inv"], 0.70), ("z", LINES["perp_irr"], 0.70)],
        }
        for term in terms:
            label = SYMBOL.get(term, r"$L_{\rm " + term + "}$")
            for n, (column, line, h) in enumerate(placements.get(term, [("loss", 6.6, 0.7)])):
                key = f"loss:{term}:{m}" + (f":{n}" if n else "")
                add(key, column, line, label, "loss", m, h=h, term=term, **row)
    return boxes


def connections(spec):
    """[(from key, to key, style, label)] of the arrows; style "flow" (a tensor passed
    on), "loss" (into a loss term) or "perp" (the pair L_perp compares)."""
    arrows = []
    for mod in spec["modalities"]:
        m = mod["name"]

        def a(src, dst, style="flow", label=None):
            arrows.append((f"{src}:{m}", f"{dst}:{m}", style, label))

        a("input", "E_inv")
        a("input", "E_spec")
        a("E_inv", "proj")
        a("proj", "z_inv")
        a("E_spec", "z_inf", label="first D/2")
        a("E_spec", "z_irr", label="last D/2")
        a("z_inv", "C", label="concat")
        a("z_inf", "C")
        a("z_inv", "C_aux_inv")
        a("z_inv", "GRL")
        a("GRL", "D_adv")
        a("z_inf", "C_aux_inf")
        a("z_inf", "D_inf")
        a("z_irr", "D_irr")
        terms = spec["loss_terms"]
        if "cl" in terms:
            a("C", "loss:cl", "loss")
        if "adv" in terms:
            a("D_adv", "loss:adv", "loss")
        if "aux" in terms:
            a("C_aux_inv", "loss:aux", "loss")
            arrows.append((f"C_aux_inf:{m}", f"loss:aux:{m}:1", "loss", None))
        if "mod" in terms:
            a("D_inf", "loss:mod", "loss")
            a("D_irr", "loss:mod", "loss")
        if "perp" in terms:
            a("z_inv", "loss:perp", "perp")
            a("z_inf", "loss:perp", "perp")
            arrows.append((f"z_inf:{m}", f"loss:perp:{m}:1", "perp", None))
            arrows.append((f"z_irr:{m}", f"loss:perp:{m}:1", "perp", None))
    return arrows


def overlaps(boxes, margin=0.02):
    """Pairs of box keys whose rectangles overlap (a layout check; none expected)."""
    items = list(boxes.values())
    found = []
    for i, a in enumerate(items):
        ax0, ay0, ax1, ay1 = a.bounds
        for b in items[i + 1:]:
            bx0, by0, bx1, by1 = b.bounds
            if ax0 < bx1 - margin and bx0 < ax1 - margin and ay0 < by1 - margin \
                    and by0 < ay1 - margin:
                found.append((a.key, b.key))
    return found


def _edge_point(box, toward):
    """Where the segment from the box's centre towards `toward` leaves the box."""
    dx, dy = toward[0] - box.x, toward[1] - box.y
    if dx == 0 and dy == 0:
        return box.x, box.y
    scale = min(box.w / 2 / abs(dx) if dx else float("inf"),
                box.h / 2 / abs(dy) if dy else float("inf"))
    return box.x + dx * scale, box.y + dy * scale


def _formulas(spec):
    cos = {"abs": r"|\cos(%s)|", "cos": r"\cos(%s)", "square": r"\cos^2(%s)"}[spec["perp_mode"]]
    weights = spec["loss_weights"]
    same = len(set(weights.values())) == 1
    weight_text = (f"every weight {next(iter(weights.values())):g} by default" if same else
                   "weights " + ", ".join(f"{t} {w:g}" for t, w in weights.items()))
    if spec["grl_schedule"] == "dann":
        grl = (r"$\lambda$ ramps as $2/(1+e^{-10p})-1$ up to " + f"{spec['grl_lambda']:g}")
    else:
        grl = r"$\lambda$ = " + f"{spec['grl_lambda']:g} throughout"
    term_list = ", ".join(spec["loss_terms"])
    return [
        r"$L = \sum_t\, w_t L_t$" + f",  t in ({term_list}), {weight_text}. Each term is one "
        "mean over all samples of all modalities in the step; m: a sample's modality label, "
        "y: its class.",
        r"$L_{\rm cl} = {\rm CE}(C_m([z_{\rm inv}, z_{\rm inf}]),\, y)$" + "        "
        r"$L_{\rm aux} = {\rm CE}(C_{\rm aux}(z_{\rm inv}),\, y) + "
        r"{\rm CE}(C_{\rm aux}(z_{\rm inf}),\, y)$",
        r"$L_{\rm adv} = {\rm CE}(D_{\rm adv}({\rm GRL}(z_{\rm inv})),\, m)$" + "        "
        r"$L_{\rm mod} = \frac{1}{2}\,[{\rm CE}(D_{\rm inf}(z_{\rm inf}),\, m) + "
        r"{\rm CE}(D_{\rm irr}(z_{\rm irr}),\, m)]$",
        r"$L_{\rm perp} = " + cos % r"z_{\rm inf}, z_{\rm irr}" + " + "
        + cos % r"z_{\rm inf}, z_{\rm inv}" + "$" + "        GRL: identity forward, gradient "
        r"$\times(-\lambda)$ backward; " + grl + ".",
    ]


def draw(spec, path=OUT, deployed_params=None):
    """Render the figure for `spec` into `path` (PNG), atomically; return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

    boxes = layout(spec)
    height = figure_height(spec)
    fig = plt.figure(figsize=(FIG_WIDTH, height), dpi=DPI)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, FIG_WIDTH)
    ax.set_ylim(0, height)
    ax.axis("off")
    plt.rcParams["mathtext.fontset"] = "dejavusans"

    names = ", ".join(f"{m['name']} {_shape_text(m['shape'])}" for m in spec["modalities"])
    encoders = sorted({m["encoder"] for m in spec["modalities"]})
    ax.text(0.15, height - 0.25,
            f"DisCoM-KD training graph (preset {spec['preset']}, branch form {spec['branch']})",
            fontsize=FONT + 2.5, weight="bold", va="center")
    ax.text(0.15, height - 0.58,
            f"M = {len(spec['modalities'])} modalities ({names}); K = {spec['num_classes']} "
            f"classes; encoder {'/'.join(encoders)}; D = {spec['feature_dim']}, so z_inv, z_inf "
            f"and z_irr have {spec['feature_dim'] // 2} features each",
            fontsize=FONT + 0.5, va="center")

    # The shared band behind the heads of every row.
    first_top = _row_top(spec, 0) + ROW_HEADER
    last_bottom = _row_top(spec, len(spec["modalities"]) - 1) - ROW_LINES * UNIT
    ax.add_patch(Rectangle((SHARED_BAND[0], last_bottom - 0.08),
                           SHARED_BAND[1] - SHARED_BAND[0], first_top - last_bottom + 0.16,
                           facecolor="#fff3e0", edgecolor="#e65100", linestyle="--",
                           linewidth=1.0, zorder=0))
    ax.text((SHARED_BAND[0] + SHARED_BAND[1]) / 2, first_top - 0.17,
            "shared by all modalities (one layer each)", ha="center", va="center",
            fontsize=FONT, color="#bf360c", style="italic")

    for index, mod in enumerate(spec["modalities"]):
        m = mod["name"]
        top = _row_top(spec, index)
        ax.text(0.15, top + ROW_HEADER / 2 + 0.02,
                f"modality {index}: {m} (modality label {index})", fontsize=FONT,
                weight="bold", va="center")
        # The deployed ModalityClassifier: input, both encoders, the projection,
        # z_inv, z_inf and C[m].
        bottom = boxes[f"z_inf:{m}"].bounds[1] - 0.10
        outline_top = boxes[f"E_inv:{m}"].bounds[3] + 0.06
        ax.add_patch(FancyBboxPatch((0.07, bottom), DEPLOYED_RIGHT - 0.07, outline_top - bottom,
                                    boxstyle="round,pad=0,rounding_size=0.08",
                                    facecolor="none", edgecolor="#2e7d32", linewidth=2.0,
                                    linestyle=(0, (6, 3)), zorder=1))
        size = f", {deployed_params[m]:,} parameters" if deployed_params else ""
        ax.text(0.15, bottom - 0.12, f"deployed: ModalityClassifier\n{m}_classifier{size}",
                ha="left", va="top", fontsize=FONT, color="#1b5e20", weight="bold",
                linespacing=1.2)

    for box in boxes.values():
        style = STYLE[box.kind]
        x0, y0, _, _ = box.bounds
        ax.add_patch(FancyBboxPatch((x0, y0), box.w, box.h,
                                    boxstyle="round,pad=0,rounding_size=0.05",
                                    facecolor=style["face"], edgecolor=style["edge"],
                                    linewidth=1.2, zorder=3))
        ax.text(box.x, box.y, box.label, ha="center", va="center", fontsize=FONT, zorder=4,
                linespacing=1.15)

    colours = {"flow": "#37474f", "loss": "#c62828", "perp": "#6a1b9a"}
    for src, dst, style, label in connections(spec):
        a, b = boxes[src], boxes[dst]
        start = _edge_point(a, (b.x, b.y))
        end = _edge_point(b, (a.x, a.y))
        arrow = FancyArrowPatch(start, end, arrowstyle="-|>" if style != "perp" else "-",
                                mutation_scale=11, linewidth=1.1, color=colours[style],
                                linestyle="--" if style == "perp" else "-", zorder=2,
                                shrinkA=1, shrinkB=1)
        ax.add_patch(arrow)
        if label:
            # (fraction of the way along the arrow, x and y offsets in inches)
            where = {"first D/2": (0.5, 0.0, 0.13), "last D/2": (0.72, -0.05, -0.17),
                     "concat": (0.5, 0.38, 0.0)}
            t, dx, dy = where.get(label, (0.5, 0.0, 0.12))
            mx, my = start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])
            ax.text(mx + dx, my + dy, label, ha="center", va="center", fontsize=FONT,
                    color="#37474f", zorder=4,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.85})

    # Legend, right of the rows.
    y = _row_top(spec, 0) - 0.05
    ax.text(LEGEND_LEFT, y, "Legend", fontsize=FONT + 1, weight="bold", va="top")
    entries = [("deployed", "runs on the device"), ("training", "training only"),
               ("shared", "shared head\n(training only)"),
               ("grl", "gradient reversal\n(no weights)"), ("loss", "loss term\n(training only)")]
    y -= 0.45
    for kind, text in entries:
        style = STYLE[kind]
        ax.add_patch(FancyBboxPatch((LEGEND_LEFT, y - 0.13), 0.45, 0.26,
                                    boxstyle="round,pad=0,rounding_size=0.04",
                                    facecolor=style["face"], edgecolor=style["edge"]))
        ax.text(LEGEND_LEFT + 0.6, y, text, fontsize=FONT, va="center", linespacing=1.1)
        y -= 0.62
    for style, text in (("flow", "tensor"), ("loss", "into a loss"), ("perp", "pair compared\nby "
                                                                       r"$L_{\rm perp}$")):
        ax.add_patch(FancyArrowPatch((LEGEND_LEFT, y), (LEGEND_LEFT + 0.45, y),
                                     arrowstyle="-|>" if style != "perp" else "-",
                                     mutation_scale=11, color=colours[style],
                                     linestyle="--" if style == "perp" else "-"))
        ax.text(LEGEND_LEFT + 0.6, y, text, fontsize=FONT, va="center", linespacing=1.1)
        y -= 0.55
    ax.add_patch(FancyBboxPatch((LEGEND_LEFT, y - 0.13), 0.45, 0.26,
                                boxstyle="round,pad=0,rounding_size=0.04", facecolor="none",
                                edgecolor="#2e7d32", linewidth=2.0, linestyle=(0, (6, 3))))
    ax.text(LEGEND_LEFT + 0.6, y, "deployed part\n(one per modality)", fontsize=FONT,
            va="center", linespacing=1.1)

    # The loss formulas under the rows.
    y = FOOTER_H - 0.25
    for line in _formulas(spec):
        ax.text(0.15, y, line, fontsize=FONT, va="center")
        y -= 0.34

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".png", dir=path.parent)
    os.close(handle)
    try:
        fig.savefig(tmp, dpi=DPI, format="png", facecolor="white")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the committed file private
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def deployed_parameters(spec):
    """{modality: parameters of its ModalityClassifier}, from a model built for `spec`."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    discomkd = _first_module("discomkd_keras.models.discomkd", "discomkd_keras.model")
    shapes = {m["name"]: m["shape"] for m in spec["modalities"]}
    model = discomkd.DisCoMKD(shapes, spec["num_classes"],
                              encoders={m["name"]: m["encoder"] for m in spec["modalities"]},
                              feature_dim=spec["feature_dim"], branch=spec["branch"])
    return {m: int(model.classifier(m).count_params()) for m in shapes}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="synthetic-rgbd",
                        help="the preset whose encoder and D are drawn (default synthetic-rgbd)")
    parser.add_argument("--out", type=Path, default=OUT, help="the PNG to write")
    parser.add_argument("--no-params", action="store_true",
                        help="do not build the model to count the deployed parameters")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    spec = project_spec(args.preset)
    clash = overlaps(layout(spec))
    if clash:
        raise SystemExit(f"Overlapping boxes: {clash}")
    params = None if args.no_params else deployed_parameters(spec)
    print(draw(spec, args.out, params))


if __name__ == "__main__":
    main()
