"""Beyond the embedded corpus: the arXiv snapshot downloaded from Kaggle
(:mod:`.download`), encoded once to a memory-mapped directory
(:mod:`.prepared`), and training on several processes under ``torchrun``
(:mod:`.distributed`). The core never imports this package."""
