"""Save & Load: a model's state_dict saved and loaded into a new model, eval() against train(), and the whole
pickled model that weights_only=True refuses."""

import streamlit as st

from core.learn import save_load as sl
from core.learn.programs import save_load as programs
from ui.cache import split_or_stop
from ui.learn import program
from ui.learn import save_load as view
from ui.nav import title

heading = title("save_load")
st.caption(
    "A trained model is only worth its weights. PyTorch keeps a model's learned parameters in its "
    "`state_dict`, a dictionary of tensors: `torch.save` writes it to a file and `load_state_dict` puts it "
    "into a new model of the same class. Here that round trip runs on real test images, then what "
    "`model.eval()` is for, and why the whole pickled model is loaded only from files you trust."
)
images, labels = split_or_stop("test")

shown = view.controls(len(labels))
if shown is None:
    st.stop()
view.keep_in_link(shown, len(labels), heading)
x = sl.batch(images, shown.start)  # (8, 1, 28, 28)
shown_labels = labels[shown.start : shown.start + sl.SHOWN_IMAGES].tolist()
trip = sl.round_trip(shown.model, shown.model2, shown.fresh, x)

st.subheader("1. Save the weights: `model.state_dict()`", anchor=programs.SAVE_ANCHOR)
view.saved(trip, shown)

st.subheader("2. Load them into a new model: `weights_only=True`", anchor=programs.LOAD_ANCHOR)
view.loaded(trip, shown, x, shown_labels)

st.subheader("3. `model.eval()` before inference: train mode left on", anchor=programs.MODES_ANCHOR)
if view.modes_asked(shown, x):
    view.modes(shown, x, shown.start)

st.subheader("4. Saving the whole model: `torch.save(model)`", anchor=programs.WHOLE_ANCHOR)
view.whole(sl.whole_model(shown.model, trip.data), shown.name)

program.render(programs.program(shown.name, shown.start, shown.options, shown.checkpoint))
