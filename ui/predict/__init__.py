"""The Predict page's pieces: the model, the inputs (upload, draw, camera), the answers."""
