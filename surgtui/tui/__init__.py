"""`surgtui launch`: the Textual experiment manager (never imports torch or surgtui.engine)."""
