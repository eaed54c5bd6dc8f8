"""smgitops: a GitOps release pipeline for scikit-learn models on SageMaker endpoints."""

__version__ = "0.1.0"
