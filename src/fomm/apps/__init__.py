"""The interactive front ends over the animation pipeline: ``fomm app`` (Gradio), ``fomm live``
(camera) and ``fomm demo`` (the bundled example)."""
