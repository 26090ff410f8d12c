"""Build Model: the tutorial's NeuralNetwork and the CNN, layer by layer on a real FashionMNIST image."""

import streamlit as st

from core.base.errors import StudioError
from core.learn import build_model as bm
from core.learn.programs import build_model as programs
from core.model.source import layer_lines, line_for
from ui.cache import split_or_stop
from ui.layout import side_by_side
from ui.learn import build_model as view
from ui.learn import layers as walk_view
from ui.learn import program as program_view
from ui.model_picker import load_run
from ui.nav import title

heading = title("build_model")
st.markdown(
    "A neural network is made of layers, or modules, that perform operations on data; in PyTorch every one "
    "of them subclasses `nn.Module`, and the network is itself a module made of other modules. The "
    "tutorial's `NeuralNetwork` creates its layers in `__init__` and says in `forward` what they do to the "
    "input. Here is that model as PyTorch prints it, its layers and their parameters, and one real test "
    "image followed through `forward`, layer by layer, to the 10 logits and the probabilities "
    "`nn.Softmax` makes of them. Pick a finished run's weights to compare with the untrained ones."
)

images, labels = split_or_stop("test")

controls = st.container(horizontal=True, vertical_alignment="bottom", gap="medium")
name, run = view.model_controls(controls)
index, problems = view.sample_control(controls, len(labels))
for problem in problems:
    st.warning(problem)
loaded = None
if run is not None:
    try:
        loaded = load_run(run)
    except StudioError as exc:
        st.error(f"Run {run.id}'s weights cannot be used: {exc}")
        st.stop()
model = loaded.model if loaded is not None else view.untrained_model(name)
checkpoint = run.checkpoint if run is not None else None
view.keep_in_link(name, run, index, len(labels), heading)

x = bm.to_input(images[index])  # (1, 1, 28, 28), as ToTensor gives it
label = int(labels[index])
traced = bm.trace(model, x)
rows = bm.layer_table(model)
untrained = bm.trace(view.untrained_model(name), x) if loaded is not None else None

options = loaded.model_options if loaded else None
st.subheader("One image through the model", anchor=programs.PREDICTION_ANCHOR)
view.render_prediction(traced, index, label, untrained)
st.code(bm.sample_code(index) + "\n\n" + bm.PREDICT_CODE, language="python", wrap_lines=True)
view.forward_note(model, x)

st.subheader("The model", anchor=programs.MODEL_ANCHOR)
structure_tab, layers_tab, walk_tab, params_tab = st.tabs(
    [
        ":material/account_tree: Structure",
        ":material/route: Layer by layer",
        ":material/stacks: Model layers, one at a time",
        ":material/tune: Parameters",
    ]
)

with structure_tab:
    st.markdown(
        "The class: `__init__` makes the layers (after `super().__init__()`, which sets up `nn.Module`), "
        "`forward` says what they do to the input. Then an instance, moved to the device."
    )
    st.code(bm.model_code(name, options, checkpoint), language="python")
    st.caption(view.checkpoint_note(checkpoint))
    st.code(str(model), language=None)  # no wrap: the nesting is the point; a narrow screen scrolls it
    diagram_col, table_col = side_by_side("build_model_structure", 240, 420)
    with diagram_col:
        st.graphviz_chart(bm.diagram_dot(rows), width="content")
    with table_col:
        st.markdown("**Layers** · output shapes for one 1×28×28 image, parameters per layer")
        view.layer_table(rows)

with layers_tab:
    st.caption(
        "Each layer's output is caught by a forward hook (`module.register_forward_hook`) during one "
        "`model(X)` call in eval mode under `torch.no_grad()`; the hooks are removed afterwards. The code "
        "beside each layer calls it by hand, which gives the same tensor."
    )
    modules = dict(model.named_modules())
    made_by = layer_lines(name, options)
    view.render_input(x, index)
    for position, out in enumerate(traced.layers):
        view.render_layer(position, out, modules[out.name], line_for(made_by, out.name))
    with st.expander(":material/code: Show code: the whole forward pass, one layer at a time"):
        st.code(bm.layers_code(rows), language="python")

with walk_tab:
    st.subheader("Model layers", anchor=programs.LAYERS_ANCHOR)
    st.markdown(
        "The tutorial takes the model's layers apart: each one is a module you can make and call on its own. "
        "Here on a minibatch of real test images, starting at the one chosen above."
    )
    walk = walk_view.controls(index, len(labels))
    walk_view.render(images, labels, walk)

with params_tab:
    st.code(bm.PARAMETERS_CODE, language="python")
    st.code(bm.parameters_printout(model), language=None, height=320, wrap_lines=True)
    st.subheader("What the first layer looks for")
    if name == "mlp":
        view.render_unit(model, x)
    else:
        view.render_filters(model)

program_view.render(programs.program(name, options, checkpoint, index, walk))
