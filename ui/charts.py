"""Plotly figures for the Train page: training curves, confusion heatmap, per-class accuracy, run overlays."""

import plotly.graph_objects as go

from core.data.fashion import CLASSES
from core.training.analysis import Series, batch_rows, epoch_rows, lr_rows, series, thin

TRAIN_COLOR = "#D9480F"  # the theme's primary colour
TEST_COLOR = "#1F6FEB"
HEIGHT = 300
TALL = 460
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}
# The title on the figure's top line and the legend on a line of its own under it: side by side they
# overlapped in a chart half a pane wide (at 1280 and 800 px).
_TITLE = {"font": {"size": 15}, "yref": "container", "y": 1.0, "yanchor": "top", "pad": {"t": 10}}
_LEGEND = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0.0}
_LEGEND_MARGIN = {**_MARGIN, "t": 70}


def _figure(traces: list[dict], title: str, xaxis: dict, yaxis: dict, revision: str, **layout) -> go.Figure:
    """One constructor call from plain dicts: several times cheaper than plotly's update_* calls,
    which matters for charts redrawn every second while a run trains."""
    return go.Figure(_spec(traces, title, xaxis, yaxis, revision, **layout))


def _spec(traces: list[dict], title: str, xaxis: dict, yaxis: dict, revision: str, **layout) -> dict:
    """A figure as plain JSON, for the live views (ui.live_run, ui.live_chart) and st.plotly_chart."""
    return {
        "data": traces,
        "layout": {
            "title": {"text": title, **_TITLE},
            # Room for tick labels: plotly.py's default template asks for it, the live views have no template.
            "xaxis": {"automargin": True, **xaxis},
            "yaxis": {"automargin": True, **yaxis},
            "height": HEIGHT,
            "margin": _MARGIN,
            "legend": _LEGEND,
            "hovermode": "x unified",
            # Plotly keeps the user's zoom and legend clicks while uirevision stays the same.
            "uirevision": revision,
            **layout,
        },
    }


def _line(xs: list, ys: list, name: str, color: str | None = None, **extra) -> dict:
    trace = {"type": "scatter", "x": xs, "y": ys, "mode": "lines+markers", "name": name} | extra
    if color:
        trace["line"] = {"color": color}
    return trace


def _loss_axis(log: bool) -> dict:
    return {"title": {"text": "cross-entropy loss"}, "type": "log" if log else "linear"}


# The training curves are plain JSON figures: st.plotly_chart takes them as they are, and so does
# the running run's view (ui.live_run), which adds their new points in place while a run trains.


def step_loss(rows: list[dict], revision: str, *, log: bool = False) -> dict:
    """Training loss at each logged step (the tutorial prints it every 100 batches; we plot it)."""
    xs, ys = thin(*series(batch_rows(rows), "step", "loss"))
    # Markers help while there are few points; past a few hundred they only thicken the line.
    mode = "lines+markers" if len(xs) <= 200 else "lines"
    trace = _line(xs, ys, "batch loss", TRAIN_COLOR, mode=mode, marker={"size": 4})
    # The axis type is part of the revision so switching log/linear starts from a fitting view.
    return _spec(
        [trace],
        "Training loss per logged step",
        {"title": {"text": "step (batches)"}},
        _loss_axis(log),
        f"{revision}:{log}",
        **_lr_marks(rows),
    )


def _lr_marks(rows: list[dict]) -> dict:
    """A dashed line and a label where the learning rate was changed while the run trained."""
    changes = lr_rows(rows)
    if not changes:
        return {}
    line = {"color": TEST_COLOR, "width": 1, "dash": "dash"}
    font = {"color": TEST_COLOR, "size": 11}
    shapes = [{"type": "line", "xref": "x", "yref": "paper", "x0": r["step"], "x1": r["step"], "y0": 0,
               "y1": 1, "line": line} for r in changes]  # fmt: skip
    notes = [{"x": r["step"], "xref": "x", "y": 1, "yref": "paper", "text": f"lr {r['lr']:g}",
              "showarrow": False, "xanchor": "left", "yanchor": "top", "font": font}
             for r in changes]  # fmt: skip
    return {"shapes": shapes, "annotations": notes}


def _train_and_test(rows: list[dict], train_key: str, test_key: str) -> list[dict]:
    epochs = epoch_rows(rows)
    return [
        _line(*series(epochs, "epoch", train_key), "train", TRAIN_COLOR),
        _line(*series(epochs, "epoch", test_key), "test", TEST_COLOR),
    ]


def epoch_loss(rows: list[dict], revision: str, *, log: bool = False) -> dict:
    traces = _train_and_test(rows, "train_loss", "test_loss")
    xaxis = {"title": {"text": "epoch"}, "dtick": 1}
    return _spec(traces, "Loss per epoch", xaxis, _loss_axis(log), f"{revision}:{log}", margin=_LEGEND_MARGIN)


def epoch_accuracy(rows: list[dict], revision: str) -> dict:
    traces = _train_and_test(rows, "train_acc", "test_acc")
    xaxis = {"title": {"text": "epoch"}, "dtick": 1}
    yaxis = {"title": {"text": "accuracy"}, "tickformat": ".0%"}
    return _spec(traces, "Accuracy per epoch", xaxis, yaxis, revision, margin=_LEGEND_MARGIN)


def confusion_heatmap(matrix: list[list[int]], revision: str) -> go.Figure:
    """Counts of test images by true class (rows, top to bottom) and predicted class (columns).

    A click on a cell selects it: Plotly selects scatter points, never heatmap cells, so every cell
    also holds an invisible marker, the point a click selects (st.plotly_chart's on_select)."""
    n = len(CLASSES)
    heatmap = {
        "type": "heatmap",
        "z": matrix,
        "x": list(CLASSES),
        "y": list(CLASSES),
        "text": [[str(v) for v in row] for row in matrix],
        "texttemplate": "%{text}",
        "textfont": {"size": 13},  # a fixed size: Plotly shrank the numbers to fit narrow cells
        "colorscale": "Oranges",
        "showscale": False,
        "hoverinfo": "skip",  # the markers say it
    }
    cells = {
        "type": "scatter",
        "mode": "markers",
        "x": [CLASSES[p] for t in range(n) for p in range(n)],
        "y": [CLASSES[t] for t in range(n) for p in range(n)],
        "customdata": [matrix[t][p] for t in range(n) for p in range(n)],
        "marker": {"size": 30, "symbol": "square", "opacity": 0},
        "selected": {"marker": {"opacity": 0}},
        "unselected": {"marker": {"opacity": 0}},
        "showlegend": False,
        "hovertemplate": "true %{y}<br>predicted %{x}<br>%{customdata} images (click)<extra></extra>",
    }
    return _figure(
        [heatmap, cells],
        "Confusion matrix (test set)",
        {"title": {"text": "predicted class"}},
        {"title": {"text": "true class"}, "autorange": "reversed"},
        revision,
        height=TALL,
        hovermode="closest",
    )


def per_class_accuracy(accs: list[float], revision: str) -> go.Figure:
    trace = {
        "type": "bar",
        "x": accs,
        "y": list(CLASSES),
        "orientation": "h",
        "marker": {"color": TEST_COLOR},
        "text": [f"{a:.1%}" for a in accs],
        "textposition": "auto",
        "hovertemplate": "%{y}: %{x:.1%}<extra></extra>",
    }
    return _figure(
        [trace],
        "Accuracy per class (test set)",
        {"title": {"text": "accuracy"}, "range": [0, 1], "tickformat": ".0%"},
        {"autorange": "reversed"},
        revision,
        height=TALL,
        hovermode="closest",
    )


def overlay(
    curves: list[Series],
    title: str,
    x_title: str,
    y_title: str,
    revision: str,
    *,
    log: bool = False,
    percent: bool = False,
    markers: bool = True,
) -> go.Figure:
    """One line per run, for comparing runs."""
    yaxis = {"title": {"text": y_title}, "type": "log" if log else "linear"}
    if percent:
        yaxis["tickformat"] = ".0%"
    mode = "lines+markers" if markers else "lines"
    traces = [_line(c.x, c.y, c.name, mode=mode) for c in curves]
    # Run ids are long: the legend goes under the plot, one run per line, instead of over the title.
    legend = {"orientation": "v", "yanchor": "top", "y": -0.25, "xanchor": "left", "x": 0}
    return _figure(
        traces,
        title,
        {"title": {"text": x_title}},
        yaxis,
        f"{revision}:{log}",
        legend=legend,
        height=HEIGHT + 20 * len(curves) + 40,
        margin={**_MARGIN, "b": 20 * len(curves) + 50},
    )
