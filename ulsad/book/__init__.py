"""The book's wing: what the chapters share (setup, figures, cached experiments); the method never imports it."""
