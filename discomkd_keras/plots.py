"""The figures a run writes: training curves (every epoch), confusion matrices and
the z_inv / z_inf / z_irr embedding map (`discomkd-keras evaluate`); and a
comparison's bars (comparison/report.py). Every file is saved atomically."""

from pathlib import Path

import numpy as np

from discomkd_keras.choices import LOSS_TERMS
from discomkd_keras.run_directory import savefig_atomic


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_history(rows, modalities, plot_dir):
    """plot_dir/loss_terms.png and plot_dir/valid_f1.png from history rows."""
    plt = _pyplot()
    plot_dir = Path(plot_dir)
    plot_dir.mkdir(exist_ok=True)
    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for term in ("loss",) + LOSS_TERMS + ("distill",):
        if all(r.get(term) is not None for r in rows):
            ax.plot(epochs, [r[term] for r in rows], marker=".", label=term,
                    linewidth=2.5 if term == "loss" else 1.2)
    ax.set(xlabel="epoch", ylabel="training loss (epoch mean)", title="Training loss terms")
    ax.legend(ncol=3, fontsize=8)
    ax.grid(alpha=0.3)
    savefig_atomic(fig, plot_dir / "loss_terms.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for m in modalities:
        ax.plot(epochs, [r[f"val_{m}_f1"] for r in rows], marker=".", label=f"{m} (valid F1)")
        if rows and all(r.get(f"{m}_acc") is not None for r in rows):
            ax.plot(epochs, [r[f"{m}_acc"] for r in rows], linestyle=":", label=f"{m} (train acc)")
    ax.set(xlabel="epoch", ylabel="score", ylim=(0, 1.02),
           title="Validation weighted F1 of the kept classifiers")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    savefig_atomic(fig, plot_dir / "valid_f1.png")
    plt.close(fig)


def plot_confusion(counts, class_names, title, path):
    plt = _pyplot()
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * k))
    ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=8,
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    savefig_atomic(fig, path)
    plt.close(fig)


def pca_2d(z):
    z = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    return z @ vt[:2].T


def plot_embeddings(embeddings, class_names, path, title):
    """PCA maps of z_inv / z_inf / z_irr, coloured by modality (top) and class (bottom).

    Returns, per embedding, the accuracy of a nearest-centroid modality
    classifier in the full space: ~1/M where the modalities are mixed
    (z_inv's goal), ~1 where they separate (z_inf, z_irr)."""
    plt = _pyplot()
    modalities = list(embeddings)
    fig, axes = plt.subplots(2, 3, figsize=(13, 8))
    separation = {}
    for col, key in enumerate(("z_inv", "z_inf", "z_irr")):
        z = np.concatenate([embeddings[m][0][key] for m in modalities])
        mod = np.concatenate([np.full(len(embeddings[m][1]), i) for i, m in enumerate(modalities)])
        cls = np.concatenate([embeddings[m][1] for m in modalities])
        centroids = np.stack([z[mod == i].mean(0) for i in range(len(modalities))])
        nearest = ((z[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
        separation[key] = float((nearest == mod).mean())
        xy = pca_2d(z)
        for i, m in enumerate(modalities):
            axes[0, col].scatter(*xy[mod == i].T, s=6, alpha=0.6, label=m)
        scatter = axes[1, col].scatter(*xy.T, c=cls, s=6, alpha=0.6, cmap="tab10")
        axes[0, col].set_title(f"{key}: by modality (centroid acc {separation[key]:.2f})")
        axes[1, col].set_title(f"{key}: by class")
        axes[0, col].legend(fontsize=8, markerscale=2)
    handles, _ = scatter.legend_elements()
    axes[1, 2].legend(handles, class_names, fontsize=7, loc="best")
    fig.suptitle(f"Embeddings (PCA, test split) - {title}")
    savefig_atomic(fig, path)
    plt.close(fig)
    return separation


def plot_comparison(raw, summary, path):
    """Bars of each deployable method's test F1 per modality (comparison/report.py)."""
    plt = _pyplot()
    modalities = summary["modalities"]
    from discomkd_keras.comparison.statistics import JOINT

    labels = [m for m in summary["methods"] if m not in JOINT]  # a joint classifier deploys nothing
    fig, axes = plt.subplots(1, len(modalities), figsize=(4.2 * len(modalities) + 1, 4.2),
                             squeeze=False, sharey=True)
    for ax, m in zip(axes[0], modalities):
        means = [summary["methods"][k]["f1"][m][0] for k in labels]
        stds = [summary["methods"][k]["f1"][m][1] for k in labels]
        colours = ["tab:grey" if k == "unimodal" else "tab:red" if k == "discomkd" else
                   "tab:orange" if k.startswith("discomkd") else "tab:blue" for k in labels]
        ax.bar(range(len(labels)), means, yerr=stds, color=colours, alpha=0.8, capsize=3)
        for i, k in enumerate(labels):
            seeds = summary["methods"][k]["f1_per_seed"][m]
            ax.scatter([i] * len(seeds), seeds, s=9, color="black", zorder=3)
        if "unimodal" in summary["methods"]:
            ax.axhline(summary["methods"]["unimodal"]["f1"][m][0], color="tab:grey", ls="--", lw=1)
        ax.set_xticks(range(len(labels)), labels, rotation=50, ha="right", fontsize=8)
        ax.set_title(f"{m}")
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("test weighted F1 (%)")
    fig.suptitle(f"{raw['dataset']}: mean ± std over {len(raw['seeds'])} seeds (dots: seeds); "
                 "dashed: unimodal twin", fontsize=10)
    savefig_atomic(fig, path, dpi=110)
    plt.close(fig)
