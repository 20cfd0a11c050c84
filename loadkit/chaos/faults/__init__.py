"""The fault backends, one module per thing a fault acts on (see :mod:`loadkit.chaos.catalog`)."""
