"""Code that runs inside the serving image. ``inference.py`` is standalone: it is copied into every artifact."""
