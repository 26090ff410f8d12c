"""Build Model: the tutorial's NeuralNetwork and the CNN, layer by layer on a real FashionMNIST image."""

from ui.nav import title

title("build_model")
