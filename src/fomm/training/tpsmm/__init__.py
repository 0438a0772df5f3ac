"""Training the Thin-Plate Spline Motion Model (``fomm train --config tpsmm-*``, ``--stage avd``)."""
