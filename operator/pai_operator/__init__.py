"""pai-model-operator: Alibaba Cloud PAI model versions as Kubernetes ModelVersion objects."""

__version__ = "0.1.0"
