"""Beyond the embedded corpus: real arXiv records harvested through arXiv's
OAI-PMH interface without an account (:mod:`.harvest`), the whole arXiv
snapshot downloaded from Kaggle (:mod:`.download`), either one (or a large
text) encoded once to a memory-mapped directory (:mod:`.prepared`), and
training on several processes under ``torchrun`` (:mod:`.distributed`). The
core never imports this package."""
