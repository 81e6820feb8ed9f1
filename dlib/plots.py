"""Figures the chapters share: image grids, reconstructions, latent traversals, per-dimension KL,
training curves, and an interactive traversal explorer.

Each figure function returns the matplotlib ``Figure`` (end the notebook cell with
``plt.show()``); the computations behind them (:func:`traversal_images`, :func:`kl_order`) are
separate functions so that they can be tested and reused. Importing this module applies the
book's figure style (:func:`set_style`).

Holds :func:`set_style`, :func:`to_numpy_images`, :func:`image_grid`, :func:`reconstructions`,
:func:`kl_order`, :func:`posterior_kl`, :func:`traversal_images`, :func:`latent_traversals`,
:func:`kl_bars`, :func:`training_curves`, :func:`kl_dims_curves`, :func:`traversal_explorer` and
:func:`score_heatmap`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from dlib.distributions import gaussian_kl

PALETTE = ["#3b6ea8", "#d0743c", "#5a9e6f", "#b5495b", "#7d63a8", "#8c7b55", "#4c9fb3", "#c9a227"]


def set_style() -> None:
    """The book's figure style: small, clean axes, one palette, grey-scale images."""
    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "figure.figsize": (6.0, 3.6),
            "font.size": 10,
            "axes.titlesize": 10,
            "axes.labelsize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.25,
            "axes.prop_cycle": mpl.cycler(color=PALETTE),
            "image.cmap": "gray",
            "image.interpolation": "nearest",
            "legend.frameon": False,
        }
    )


set_style()


def to_numpy_images(images: Any) -> np.ndarray:
    """Images as a float array (N, H, W, C) in [0, 1] from torch (N, C, H, W) or NumPy
    (N, H, W, C) / (N, H, W)."""
    if isinstance(images, Tensor):
        arr = images.detach().float().cpu().numpy()
        if arr.ndim == 3:
            arr = arr[:, None]
        if arr.ndim != 4:
            raise ValueError(f"expected (N, C, H, W) images, got {tuple(images.shape)}")
        arr = arr.transpose(0, 2, 3, 1)
    else:
        arr = np.asarray(images, dtype=np.float32)
        if arr.ndim == 3:
            arr = arr[..., None]
        if arr.ndim != 4:
            raise ValueError(f"expected (N, H, W, C) images, got {arr.shape}")
    if arr.shape[-1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got shape {arr.shape}")
    return np.clip(arr, 0.0, 1.0)


def _draw(ax: plt.Axes, img: np.ndarray) -> None:
    if img.shape[-1] == 1:
        ax.imshow(img[..., 0], vmin=0, vmax=1, cmap="gray")
    else:
        ax.imshow(img)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def image_grid(
    images: Any,
    ncols: int | None = None,
    titles: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    size: float = 1.0,
    suptitle: str | None = None,
) -> plt.Figure:
    """Show images in a grid of ``ncols`` columns (N images, or an (R, K, ...) array as R rows)."""
    if isinstance(images, (np.ndarray, Tensor)) and images.ndim == 5:
        rows, ncols = images.shape[0], images.shape[1]
        flat = images.reshape(rows * ncols, *images.shape[2:])
    else:
        flat = images
    arr = to_numpy_images(flat)
    n = len(arr)
    ncols = min(ncols or 8, n)
    nrows = -(-n // ncols)
    label_width = 1.1 if row_labels is not None else 0.0
    fig, axes = plt.subplots(
        nrows, ncols, squeeze=False, layout="compressed",
        figsize=(size * ncols + label_width, size * nrows * (1.25 if titles else 1.0) + 0.3),
    )
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.02, hspace=0.02)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _draw(ax, arr[i])
            if titles is not None and i < len(titles):
                ax.set_title(titles[i], fontsize=8)
        else:
            ax.axis("off")
    if row_labels is not None:
        for r, label in enumerate(row_labels[:nrows]):
            axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def _device_of(method: torch.nn.Module) -> torch.device:
    return next(method.parameters()).device


@torch.no_grad()
def reconstructions(method: Any, x: Tensor, n: int = 8) -> plt.Figure:
    """Originals (top row) and their reconstructions from the posterior mean (bottom row)."""
    x = x[:n].to(_device_of(method))
    was_training = method.training
    method.eval()
    rec = method.reconstruct(x)
    method.train(was_training)
    both = torch.stack([x, rec])  # (2, n, C, H, W)
    return image_grid(both, row_labels=["input", "recon."])


def kl_order(kl_dims: Any) -> np.ndarray:
    """Latent dimensions sorted by decreasing KL (the most informative first)."""
    kl = np.asarray(kl_dims, dtype=np.float64).reshape(-1)
    return np.argsort(-kl, kind="stable")


@torch.no_grad()
def posterior_kl(method: Any, x: Tensor, batch_size: int = 256) -> np.ndarray:
    """Average KL(q(z|x) ‖ p(z)) per latent dimension over the images ``x`` (D,)."""
    dev = _device_of(method)
    total = None
    for i in range(0, len(x), batch_size):
        mean, logvar = method.encode(x[i : i + batch_size].to(dev))
        s = gaussian_kl(mean, logvar).sum(0)
        total = s if total is None else total + s
    return (total / len(x)).cpu().numpy()


@torch.no_grad()
def traversal_images(
    method: Any, x: Tensor, dims: Sequence[int], values: Sequence[float] | Tensor
) -> Tensor:
    """Decoded images when one latent of ``x``'s posterior mean is set to each value in turn.

    Returns (len(dims), len(values), C, H, W) pixel probabilities; row r changes dimension
    ``dims[r]`` only, keeping every other dimension at the mean of q(z | x).
    """
    dev = _device_of(method)
    if x.dim() == 3:
        x = x[None]
    if x.shape[0] != 1:
        raise ValueError("traversal_images takes one image")
    mean, _ = method.encode(x.to(dev))
    values = torch.as_tensor(values, dtype=mean.dtype, device=dev)
    codes = mean.repeat(len(dims) * len(values), 1).view(len(dims), len(values), -1)
    for r, d in enumerate(dims):
        codes[r, :, d] = values
    images = torch.sigmoid(method.decode(codes.view(-1, codes.shape[-1])))
    return images.view(len(dims), len(values), *images.shape[1:])


def latent_traversals(
    method: Any,
    x: Tensor,
    kl_dims: Any | None = None,
    n_values: int = 9,
    limit: float = 2.0,
    max_dims: int | None = None,
) -> plt.Figure:
    """One row per latent dimension, sorted by KL, varying that dimension over [−limit, limit].

    ``kl_dims`` (per-dimension KL) orders the rows and labels them; without it the KL of ``x``
    itself is used. Collapsed dimensions (KL ≈ 0) come last and decode to the same image.
    """
    method.eval()
    if kl_dims is None:
        kl_dims = posterior_kl(method, x if x.dim() == 4 else x[None])
    order = kl_order(kl_dims)[: max_dims or len(kl_dims)]
    values = np.linspace(-limit, limit, n_values)
    imgs = traversal_images(method, x[:1] if x.dim() == 4 else x, list(order), values)
    labels = [f"z{d}  KL {float(np.asarray(kl_dims)[d]):.2f}" for d in order]
    fig = image_grid(imgs, row_labels=labels, size=0.8)
    fig.suptitle(f"traversals of z from {-limit:g} to {limit:g}")
    return fig


def kl_bars(kl_dims: Any, ax: plt.Axes | None = None, title: str | None = None) -> plt.Axes:
    """Bar chart of the KL per latent dimension, in decreasing order."""
    kl = np.asarray(kl_dims, dtype=np.float64)
    order = kl_order(kl)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 2.6))
    ax.bar(range(len(kl)), kl[order], color=PALETTE[0])
    ax.set_xticks(range(len(kl)), [f"z{d}" for d in order])
    ax.set_ylabel("KL (nats)")
    ax.set_title(title or "KL per latent dimension")
    return ax


def training_curves(
    history: Any, terms: Sequence[str] = ("recon", "kl"), axes: Sequence[plt.Axes] | None = None
) -> plt.Figure:
    """One panel per logged term against the training step."""
    if axes is None:
        fig, axes = plt.subplots(1, len(terms), figsize=(3.2 * len(terms), 2.6), squeeze=False)
        axes = axes[0]
    else:
        fig = axes[0].figure
    steps = np.asarray(history.steps)
    for ax, name in zip(axes, terms, strict=True):
        ax.plot(steps, history[name])
        ax.set_xlabel("step")
        ax.set_title(name)
    fig.tight_layout()
    return fig


def kl_dims_curves(history: Any, ax: plt.Axes | None = None) -> plt.Axes:
    """The KL of each latent dimension over training: informative ones rise, unused ones die."""
    kl = history["kl_dims"]  # (T, D)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 2.8))
    order = kl_order(kl[-1])
    for rank, d in enumerate(order):
        ax.plot(history.steps, kl[:, d], label=f"z{d}", color=PALETTE[rank % len(PALETTE)],
                alpha=1.0 if rank < len(PALETTE) else 0.4)
    ax.set_xlabel("step")
    ax.set_ylabel("KL (nats)")
    ax.set_title("KL per dimension during training")
    ax.legend(ncol=2, fontsize=7, loc="upper left")
    return ax


def oat_trace(history: Any, switch_steps: Sequence[int],
              axes: Sequence[plt.Axes] | None = None, title: str = "") -> plt.Figure:
    """OAT's main figure from a run's log: the KL of each z1 dimension over training (grey
    lines where a dimension was switched on) and the KL of z2 beside its rising price β.
    ``history`` is a :class:`~dlib.train.History` or a stored run's ``history`` dict (its
    steps under ``"step"``)."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.0))
    else:
        fig = axes[0].figure
    steps = np.asarray(history.steps if hasattr(history, "steps") else history["step"])
    kl_z1 = np.asarray(history["kl_z1_dims"], dtype=float)
    if kl_z1.ndim != 2 or len(kl_z1) != len(steps):
        raise ValueError(f"kl_z1_dims must be (steps, K) = ({len(steps)}, K), got {kl_z1.shape}")
    for i in range(kl_z1.shape[1]):
        if kl_z1[:, i].max() > 0:
            axes[0].plot(steps, kl_z1[:, i], label=f"z1[{i}]")
    for s in switch_steps:
        if s >= 0:
            axes[0].axvline(s, color="0.8", lw=0.8, zorder=0)
    axes[0].set(xlabel="step", ylabel="KL (nats)", title=f"{title}z1, per dimension")
    if axes[0].lines:
        axes[0].legend(fontsize=6, ncol=2)
    axes[1].plot(steps, np.asarray(history["kl_z2"], dtype=float), "k", label="KL of z2")
    twin = axes[1].twinx()
    twin.plot(steps, np.asarray(history["beta"], dtype=float), "C1--", label="β")
    twin.set_ylabel("β (dashed)")
    axes[1].set(xlabel="step", ylabel="KL (nats)", title=f"{title}z2 and its price β")
    return fig


def traversal_explorer(
    method: Any, x: Tensor, kl_dims: Any | None = None, max_dims: int = 6, limit: float = 3.0
) -> Any:
    """Sliders for the most informative latents of ``x``'s code and the image they decode to.

    Needs ipywidgets and a live kernel; without ipywidgets it returns the static
    :func:`latent_traversals` figure instead (the rendered book shows that figure beside the
    widget, whose sliders cannot move without a kernel).
    """
    try:
        import ipywidgets as widgets
    except ImportError:
        return latent_traversals(method, x, kl_dims, max_dims=max_dims, limit=limit)
    import io

    method.eval()
    x1 = x[:1] if x.dim() == 4 else x[None]
    if kl_dims is None:
        kl_dims = posterior_kl(method, x1)
    dims = [int(d) for d in kl_order(kl_dims)[:max_dims]]
    with torch.no_grad():
        base = method.encode(x1.to(_device_of(method)))[0][0]

    def render(**sliders: float) -> bytes:
        z = base.clone()
        for d in dims:
            z[d] = sliders[f"z{d}"]
        with torch.no_grad():
            img = torch.sigmoid(method.decode(z[None]))[0]
        arr = to_numpy_images(img[None])[0]
        buf = io.BytesIO()
        plt.imsave(buf, np.repeat(arr, 3, -1) if arr.shape[-1] == 1 else arr, format="png")
        return buf.getvalue()

    sliders = {
        f"z{d}": widgets.FloatSlider(
            value=float(base[d]), min=-limit, max=limit, step=0.1, description=f"z{d}",
            continuous_update=True,
        )
        for d in dims
    }
    image = widgets.Image(value=render(**{k: s.value for k, s in sliders.items()}), width=192)

    def update(_: Any) -> None:
        image.value = render(**{k: s.value for k, s in sliders.items()})

    for s in sliders.values():
        s.observe(update, names="value")
    return widgets.HBox([widgets.VBox(list(sliders.values())), image])


def score_heatmap(
    table: Any,
    ax: plt.Axes | None = None,
    *,
    rows: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
    fmt: str = "{:.2f}",
    title: str | None = None,
    colorbar: bool = True,
) -> plt.Axes:
    """A heat-map of a score table with each number printed in its cell.

    ``table`` is either a mapping ``{row: {column: value}}`` (e.g. representations × metrics,
    as :func:`dlib.metrics.gallery.score_gallery` returns it; columns in first-seen order,
    missing entries blank) or a 2-D array with optional ``rows`` / ``columns`` labels (e.g. a
    code × factor mutual-information matrix). ``rows`` / ``columns`` also pick and order the
    entries of a mapping. NaN cells are left blank and marked "–", infinite ones "∞". The
    colour range defaults to
    [0, 1] when every finite value lies in it, else to their range. Returns the axes.
    """
    if isinstance(table, dict) or hasattr(table, "keys"):
        row_names = list(rows) if rows is not None else list(table)
        if columns is not None:
            col_names = list(columns)
        else:
            col_names = []
            for r in row_names:
                col_names += [c for c in table[r] if c not in col_names]
        values = np.array(
            [[float(table[r].get(c, np.nan)) for c in col_names] for r in row_names],
            dtype=np.float64,
        ).reshape(len(row_names), len(col_names))
    else:
        values = np.asarray(table, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(
                f"table must be a mapping of mappings or a 2-D array, got shape {values.shape}"
            )
        n_rows, n_cols = values.shape
        row_names = list(rows) if rows is not None else [str(i) for i in range(n_rows)]
        col_names = list(columns) if columns is not None else [str(j) for j in range(n_cols)]
        if (len(row_names), len(col_names)) != values.shape:
            raise ValueError(
                f"{len(row_names)} row and {len(col_names)} column labels for a table of shape "
                f"{values.shape}"
            )
    if values.size == 0:
        raise ValueError("the table is empty")
    finite = values[np.isfinite(values)]
    if vmin is None or vmax is None:
        in_unit = finite.size > 0 and finite.min() >= 0 and finite.max() <= 1
        lo, hi = (0.0, 1.0) if in_unit or finite.size == 0 else (finite.min(), finite.max())
        vmin = lo if vmin is None else vmin
        vmax = hi if vmax is None else vmax
    if ax is None:
        height, width = values.shape
        _, ax = plt.subplots(figsize=(1.0 + 0.75 * width + 1.4, 0.8 + 0.32 * height))
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax,
                      aspect="auto", interpolation="nearest")
    colours = plt.get_cmap(cmap)
    span = vmax - vmin if vmax > vmin else 1.0
    for (i, j), v in np.ndenumerate(values):
        if not np.isfinite(v):
            mark = "–" if np.isnan(v) else ("∞" if v > 0 else "−∞")
            ax.text(j, i, mark, ha="center", va="center", fontsize=8, color="0.4")
            continue
        r, g, b, _ = colours(float(np.clip((v - vmin) / span, 0.0, 1.0)))
        dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.55
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=8,
                color="white" if dark else "black")
    ax.set_xticks(range(len(col_names)), col_names, rotation=35, ha="right",
                  rotation_mode="anchor")
    ax.set_yticks(range(len(row_names)), row_names)
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    if title:
        ax.set_title(title)
    return ax
