"""FashionMNIST Studio's engine: data, models, training, checkpoints, prediction (no Streamlit)."""
