"""cardflow.batch: folding files of D1 bodies on every core.

The reading of inputs, the process pool, the exchange of the states of cards that
several workers saw, and the output written range by range. ``import cardflow``
never imports it.
"""

__all__: list[str] = []
