"""Tools for teaching with the notebooks: the checks students run on their
exercise answers (:mod:`.checks`) and the student versions of the notebooks
with the solutions taken out (:mod:`.student`). The core never imports
this package."""
