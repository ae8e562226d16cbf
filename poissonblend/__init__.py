"""poissonblend: PoissonBlend data augmentation for brain stroke-lesion segmentation.

The library has no Streamlit dependency; the CLI (:mod:`poissonblend.cli`) and the
app (``app.py``) are thin skins over it.
"""

__version__ = "0.1.0"
