"""Helpers for the MPT (Motion Prompt Tuning) micro-expression tutorial.

One module per idea, each importable on its own:

- :mod:`mpt_utils.runtime`  paths, seeds and devices, where the code runs, messages, environment report
- :mod:`mpt_utils.profiles` the ``ci`` / ``quick`` / ``paper`` settings shared by notebooks and CLIs
- :mod:`mpt_utils.data`     dataset loaders, the synthetic generator, the clip reader, LOSO splits
- :mod:`mpt_utils.motion`   rank pooling and Eulerian motion magnification
- :mod:`mpt_utils.model`    the MPT model on a frozen timm ViT, its variants and accounting
- :mod:`mpt_utils.train`    LOSO training, metrics and the paper-table command line
- :mod:`mpt_utils.analysis` t-SNE and Grad-CAM
- :mod:`mpt_utils.notebooks` the papermill runner (``python -m mpt_utils.notebooks``)
"""

__version__ = "0.1.0"
