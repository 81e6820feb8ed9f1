import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dlib import plots  # noqa: E402


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_score_heatmap_from_nested_mapping():
    table = {"identity": {"MIG": 0.9, "SAP": 0.1}, "noise": {"MIG": 0.0, "IRS": float("nan")}}
    ax = plots.score_heatmap(table, fmt="{:.1f}", title="t")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["identity", "noise"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["MIG", "SAP", "IRS"]
    # numbers printed row by row; missing and NaN cells marked "–"
    assert _texts(ax) == ["0.9", "0.1", "–", "0.0", "–", "–"]
    assert ax.images[0].get_clim() == (0.0, 1.0)
    assert ax.get_title() == "t"
    plt.close(ax.figure)


def test_score_heatmap_from_array_and_subsets():
    m = np.array([[2.0, -1.0], [0.5, 0.25]])
    fig, ax = plt.subplots()
    out = plots.score_heatmap(m, ax=ax, rows=["z0", "z1"], columns=["a", "b"], colorbar=False)
    assert out is ax and ax.images[0].get_clim() == (-1.0, 2.0)  # range of the values
    assert _texts(ax) == ["2.00", "-1.00", "0.50", "0.25"]
    # dark cells get white numbers, light cells black ones (viridis: low = dark)
    colours = [t.get_color() for t in ax.texts]
    assert colours[1] == "white" and colours[0] == "black"
    plt.close(fig)
    table = {"a": {"x": 1.0, "y": 0.0}, "b": {"x": 0.5, "y": 0.5}}
    ax = plots.score_heatmap(table, rows=["b"], columns=["y"], colorbar=False)
    assert _texts(ax) == ["0.50"]
    plt.close(ax.figure)
    with pytest.raises(ValueError):
        plots.score_heatmap(np.zeros(3))
    with pytest.raises(ValueError):
        plots.score_heatmap(np.zeros((2, 2)), rows=["only one"])


def test_score_heatmap_marks_infinite_cells():
    ax = plots.score_heatmap({"dup": {"TC": float("inf"), "MIG": 0.5}}, colorbar=False)
    assert _texts(ax) == ["∞", "0.50"]
    plt.close(ax.figure)
