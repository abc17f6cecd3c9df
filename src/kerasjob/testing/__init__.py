"""Fakes of Azure ML *below* the SDKs, for your own unit tests (and ours).

- :class:`FakeAzureML`: SDK v1 (``azureml-core``). A real ``Workspace``,
  ``Experiment``, ``ScriptRun``, ``HyperDriveRun``, ``ComputeTarget`` and
  ``Dataset`` run their own code over faked service clients (run history,
  models, HyperDrive, the compute provider, the dataset service).
- :class:`FakeMLClient`: SDK v2 (``azure-ai-ml``). Every ``MLClient`` talks to a
  fake transport that answers the REST calls as Azure Resource Manager does, and
  to a fake run history under the real streaming loop; metrics go through the
  real azureml-mlflow plugin to a local store.

So the SDKs' validation, serialisation, error conversion, polling and parsing
run in every test, and a test fails where the SDK would. Each fake records the
calls made of it and lets you choose the outcome (statuses, metrics, logs,
failures, lost responses, a Ctrl-C, a refused login). Each imitated behaviour
names the SDK function it mirrors; the module docstrings list what is patched.
"""

from ._service import LostResponse
from .azureml_v1 import FakeAzureML, FakeModel
from .azureml_v2 import FakeMLClient

__all__ = ["FakeAzureML", "FakeMLClient", "FakeModel", "LostResponse"]
