"""Pictures of what the core computes: loss curves, the live loss plot of
notebooks, text coloured by surprisal or by a hidden unit, and ipywidgets
front ends. Needs matplotlib (and ipywidgets for :mod:`.widgets`): the
``notebooks`` extra. The core never imports this package."""
