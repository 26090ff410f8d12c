"""The Learn pages' Streamlit pieces, one module per page of the course."""
