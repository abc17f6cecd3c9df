"""Fakes of Azure ML at its network boundary, for your own unit tests (and ours).

- :class:`FakeAzureML`: SDK v1 (``azureml-core``) -- patches ``Workspace``,
  ``Experiment``, ``ComputeTarget``, ``Dataset.get_by_name``, ``FileDataset.register``.
- :class:`FakeMLClient`: SDK v2 (``azure-ai-ml``) -- patches the ``MLClient``
  operation groups ``jobs``, ``compute``, ``environments``, ``data``, ``models``
  and ``workspaces``.

Everything the SDKs build offline stays real, so a test fails where the SDK
would reject the arguments. Each fake records the calls made of it and lets you
choose the outcome (statuses, metrics, logs, failures).
"""

from .azureml_v1 import FakeAzureML, FakeModel
from .azureml_v2 import FakeMLClient

__all__ = ["FakeAzureML", "FakeMLClient", "FakeModel"]
