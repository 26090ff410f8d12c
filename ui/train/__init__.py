"""The Train page's pieces: the form, the live view, a finished run's outcome, the runs table."""
