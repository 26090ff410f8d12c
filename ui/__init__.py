"""Streamlit-aware helpers shared by the pages: cached getters, the sidebar, figures, widgets."""
