"""genclf: few-shot classification with generative features.

Pipeline, one module per stage: data -> backbones -> features -> project / heads -> experiments.
Everything heavy is cached on disk (genclf.cache). Nothing here imports streamlit.
"""

__version__ = "0.1.0"
