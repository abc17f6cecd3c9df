"""A fake Azure ML workspace for SDK v2 (``azure-ai-ml``), answering the SDK's REST calls.

``FakeMLClient`` gives you a real ``MLClient`` (and makes every ``MLClient``
built in the ``with`` block, ``MLClient.from_config`` included, talk to it).
azure-ai-ml's own operation classes run -- ``JobOperations``, ``DataOperations``,
``EnvironmentOperations``, ``ComputeOperations``, ``ModelOperations``,
``WorkspaceOperations`` and the generated REST clients below them -- so the
SDK's validation, serialisation, error conversion and entity parsing all run
as against Azure. What is fake, from the top down:

- :class:`FakeTransport`, an azure-core ``HttpTransport`` handed to every
  ``MLClient``: a small in-memory Azure Resource Manager that stores what a
  ``PUT`` sent and gives it back on ``GET`` (404 when absent), as the
  ``Microsoft.MachineLearningServices`` REST API does. azure-core's own retries
  are turned off (``retry_total=0``) so an error you inject reaches the caller
  at once, as it would once those retries are spent.
- ``JobOperations._runs_operations`` (which discovers the run-history endpoint
  over the network): the SDK's real ``RunOperations`` over
  :class:`FakeRunHistory`, whose ``get_details`` gives real ``RunDetails`` and
  ``get_child`` real run-history ``Run`` records -- so the real
  ``stream_logs_until_completion`` loop and ``_BaseJob`` parsing run. The log
  files ``RunDetails.log_files`` names are served by the transport.
- Blob storage can't be reached offline: ``get_storage_client`` (code and
  local-folder uploads) records the files instead of uploading, and
  ``JobOperations._get_named_output_uri`` / ``download_artifact_from_aml_uri``
  (``jobs.download``) write ``run_files``.
- Metrics: the workspace's tracking URI is ``azureml://...`` as Azure returns
  it and is read through the real azureml-mlflow plugin; only the plugin's
  ``AzureMLRestStore`` is a local MLflow (SQLite) store.
- Managed online endpoints (:class:`_OnlineEndpoints`): the ARM routes of
  ``online_endpoints`` and ``online_deployments`` with their long-running
  operations, polled as azure-core's ``ARMPolling`` does, and each endpoint's
  scoring URI. A deployment answers with ``scorer`` (default: a stand-in that
  reads no model, see :func:`count_bright_pixels`).

Example:
    >>> from kerasjob import submit_training
    >>> from kerasjob.testing import FakeMLClient
    >>> with FakeMLClient(final_status="Completed") as azure:                                   # doctest: +SKIP
    ...     result = submit_training(backend="azureml-v2", ml_client=azure.ml_client, show_output=False)
    >>> azure.submissions[0].command                                                           # doctest: +SKIP
    'python keras_mnist.py --data-folder ${{inputs.data_folder}} --batch-size ${{inputs.batch_size}} ...'
"""

from __future__ import annotations

import copy
import datetime
import io
import json
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any
from unittest import mock

from ._service import FakeService, azure_resolves, spread

__all__ = ["ARM", "FINAL", "GROUPS", "LOGS_HOST", "MLMODEL", "SCORING_HOST", "SUBSCRIPTION", "VERSIONED",
           "FakeCredential", "FakeMLClient", "FakeRunHistory", "FakeTransport", "SignatureScorer", "count_bright_pixels",
           "mlflow_input", "mlflow_rows", "reset_invoke_headers"]

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
ARM = "https://management.azure.com"
LOGS_HOST = "https://fakelogs.blob.core.windows.net"
#: Where a managed online endpoint answers: ``https://NAME.<region>.inference.ml.azure.com/score``.
SCORING_HOST = ".westeurope.inference.ml.azure.com"
#: The long-running operations of endpoints and deployments: ``Azure-AsyncOperation`` (status) and ``Location``.
_OPERATION_PATH = re.compile(r"^/subscriptions/[^/]+/providers/Microsoft\.MachineLearningServices/locations/[^/]+/"
                             r"(mfeOperationsStatus|mfeOperationResults)/([^/]+)$")
_WORKSPACE_PATH = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/"
                             r"Microsoft\.MachineLearningServices/workspaces/([^/]+)(?:/(.*))?$", re.IGNORECASE)
#: REST collection -> the operation group name used in ``service_calls``.
GROUPS = {"jobs": "Jobs", "data": "Data", "environments": "Environments", "computes": "Compute",
          "models": "Models", "codes": "Code", "datastores": "Datastores", "onlineEndpoints": "OnlineEndpoints"}
FINAL = {"Completed", "Failed", "Canceled"}
VERSIONED = ("data", "models", "environments", "codes")


class FakeCredential:
    """An ``azure-identity``-like credential whose tokens only the fake accepts."""

    def get_token(self, *scopes: Any, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("fake-token", 4102444800)


class _FakeLogin:
    """Stands in for the credential an ``MLClient`` was given (kept as ``.credential``), so that no token
    request leaves the machine (``DefaultAzureCredential`` would probe the managed-identity endpoint).

    With ``access="not-logged-in"`` it fails as ``AzureCliCredential.get_token`` does when nobody ran
    ``az login``: ``CredentialUnavailableError``, a ``ClientAuthenticationError``.
    """

    def __init__(self, fake: "FakeMLClient", credential: Any) -> None:
        self.fake, self.credential = fake, credential

    def get_token(self, *scopes: Any, **kwargs: Any) -> Any:
        if self.fake.access == "not-logged-in":
            from azure.identity import CredentialUnavailableError

            self.fake._record("Login.get_token", type(self.credential).__name__)
            raise CredentialUnavailableError(message="Please run 'az login' to set up an account")
        return FakeCredential().get_token(*scopes, **kwargs)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class FakeTransport:
    """An azure-core ``HttpTransport`` that is the workspace: ARM resources kept as the JSON that was sent.

    Call names: ``<Group>.get`` (GET), ``<Group>.create_or_update`` (PUT),
    ``<Group>.list`` (GET of a collection), ``Jobs.cancel``, ``Datastores.list_secrets``,
    ``Workspaces.get``, ``Logs.get`` (a log file); a container GET is ``<Group>.get_container``.
    """

    def __init__(self, fake: "FakeMLClient") -> None:
        self.fake = fake

    def __enter__(self) -> FakeTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def sleep(self, duration: float) -> None:
        """azure-core's pollers wait between polls through the transport: the fake's operations need no wait."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        from urllib.parse import unquote, urlparse

        url = urlparse(request.url)
        if request.url.startswith(LOGS_HOST):
            self.fake._record("Logs.get", url.path)
            return self._response(request, 200, self.fake._log_text(url.path.rsplit("/", 2)[-2]), text=True)
        if url.netloc.endswith(SCORING_HOST):
            status, payload = self.fake._online.score(url.netloc.split(".")[0], request.headers, request.body)
            return self._response(request, status, payload)
        operation = _OPERATION_PATH.match(url.path)
        if operation:
            status, payload, *headers = self.fake._online.poll(operation.group(1), operation.group(2))
            return self._response(request, status, payload, headers=headers[0] if headers else None)
        match = _WORKSPACE_PATH.match(url.path)
        if not match:
            raise AssertionError(f"FakeMLClient: unexpected request {request.method} {request.url}")
        rest = [unquote(part) for part in (match.group(4) or "").split("/") if part]  # names arrive URL-encoded
        body = json.loads(request.body) if request.body else None
        status, payload, *headers = self.fake._workspace.handle(request.method, url.path, rest, body)
        return self._response(request, status, payload, headers=headers[0] if headers else None)

    @staticmethod
    def _response(request: Any, status: int, payload: Any, text: bool = False, headers: dict | None = None) -> Any:
        import requests
        from azure.core.pipeline._tools import is_rest
        from azure.core.pipeline.transport._requests_basic import RequestsTransportResponse

        response = requests.Response()
        response.status_code = status
        response.raw = io.BytesIO((payload if text else json.dumps(payload) if payload is not None else "").encode())
        response.headers["Content-Type"] = "text/plain" if text else "application/json"
        response.headers.update(headers or {})
        response.request = requests.Request(request.method, request.url).prepare()
        if is_rest(request):  # the newer generated clients send azure.core.rest requests
            from azure.core.rest._requests_basic import RestRequestsTransportResponse

            rest_response = RestRequestsTransportResponse(request=request, internal_response=response)
            rest_response.read()
            return rest_response
        return RequestsTransportResponse(request, response)


def _error(code: str, message: str, status: int) -> tuple[int, dict]:
    return status, {"error": {"code": code, "message": message}}


class _Workspace:
    """The ARM side: resources by path, versions, jobs and their state. Mirrors the REST API's answers."""

    def __init__(self, fake: "FakeMLClient") -> None:
        self.fake = fake
        self.resources: dict[str, dict] = {}

    def handle(self, method: str, path: str, rest: list[str], body: Any) -> tuple[Any, ...]:
        fake = self.fake
        refused = self._refusal(path)
        if refused is not None:
            return refused
        if not rest:
            fake._record("Workspaces.get", path)
            return 200, fake._workspace_json(path)
        if rest[0] == "onlineEndpoints":
            return fake._online.handle(method, path, rest, body)
        group = GROUPS.get(rest[0], rest[0].title())
        key = "/".join(rest)
        if method == "POST" and rest[0] == "jobs" and rest[-1] == "cancel":
            fake._record("Jobs.cancel", rest[1])
            fake._cancel(rest[1])
            return 202, None
        if method == "POST" and rest[-1] == "listSecrets":
            fake._record("Datastores.list_secrets", rest[1])
            return 200, {"secretsType": "AccountKey", "key": "ZmFrZQ=="}
        if method == "POST" and rest[-1] == "startPendingUpload":  # a SAS to upload a code/data version to
            fake._record(f"{group}.start_pending_upload", key)
            blob = f"https://fakeaccount.blob.core.windows.net/fake-container/LocalUpload/{uuid.uuid4().hex}"
            return 200, {"pendingUploadId": uuid.uuid4().hex, "pendingUploadType": "TemporaryBlobReference",
                         "blobReferenceForConsumption": {"blobUri": blob, "credential": {
                             "credentialType": "SAS", "sasUri": blob + "?sig=fake"}}}
        if rest[0] == "operationResults":  # the long-running cluster creation, polled as ARM's LRO
            fake._record("Compute.poll", rest[1])
            state = fake.new_compute_state
            compute = self.resources[f"computes/{rest[1]}"]["properties"]
            compute["provisioningState"] = state
            error = {} if state == "Succeeded" else {"error": {"code": "QuotaExceeded", "message": f"Cluster {state}"}}
            return 200, {"status": state, **error}
        if method == "PUT":
            refused = self._refused_put(rest, body)
            if refused is not None:
                fake._record(f"{group}.create_or_update", key)
                return refused
            existed = key in self.resources
            fake._record(f"{group}.create_or_update", key, lambda: self._put(path, rest, body))
            if rest[0] == "computes":
                workspace = path.split("/computes/")[0]
                return 201, self._get(rest), {"Azure-AsyncOperation": f"{ARM}{workspace}/operationResults/{rest[1]}",
                                              "Retry-After": "0"}
            return 200 if existed else 201, self._get(rest)
        if len(rest) == 2 and rest[0] in VERSIONED:
            fake._record(f"{group}.get_container", rest[1])
            return self._container(path, rest)
        if len(rest) in (1, 3):
            fake._record(f"{group}.list", key)
            prefix = key + "/"
            return 200, {"value": [self._get(name.split("/")) for name in self.resources
                                   if name.startswith(prefix) and "/" not in name[len(prefix):]]}
        fake._record(f"{group}.get", key)
        if rest[0] == "jobs":
            fake._advance(rest[1])
        found = self._get(rest)
        if found is None:
            return _error("UserError", f"{'/'.join(rest)} was not found in the fake workspace", 404)
        return 200, found

    def _refusal(self, path: str) -> tuple[int, dict[str, Any]] | None:
        """ARM's answer to a login without a role (403) or for a workspace that does not exist (404)."""
        match = _WORKSPACE_PATH.match(path)
        assert match is not None  # handle() serves workspace paths only
        if self.fake.access == "forbidden":
            self.fake._record("Refused", path)
            return _error("AuthorizationFailed", "The client 'fake-user' with object id '0' does not have "
                          "authorization to perform action 'Microsoft.MachineLearningServices/workspaces/read' over "
                          f"scope '{path}' or the scope is invalid.", 403)
        if self.fake.access == "no-workspace":
            self.fake._record("Refused", path)
            return _error("ResourceNotFound", "The Resource 'Microsoft.MachineLearningServices/workspaces/"
                          f"{match.group(3)}' under resource group '{match.group(2)}' was not found. For more "
                          "details please go to https://aka.ms/ARMResourceNotFoundFix", 404)
        return None

    def _refused_put(self, rest: list[str], body: dict) -> tuple[int, dict] | None:
        """The service's 400s for a PUT it refuses (the exact replies are not all documented; each is the
        ``UserError`` the REST API documents for a bad request, in the words below):

        - a name outside ARM's rule for these resources (a letter or digit, then letters, digits, ``-``, ``_``
          and, for versioned assets, ``.``; at most 255);
        - a model version re-sent with another path: "Asset paths cannot be updated." (``ASSET_PATH_ERROR`` in
          ``_artifacts/_constants.py``, which ``ModelOperations.create_or_update`` looks for);
        - a job re-sent under its name with a changed definition: only description, tags, display name,
          properties and archive state may change (``JobBase`` REST model: the other properties are immutable);
        - a job on a compute the workspace lacks.
        """
        name = rest[1] if len(rest) > 1 else ""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}", name) or (
                rest[0] == "jobs" and "." in name):
            return _error("UserError", f"Invalid name {name!r}: use letters, digits, '-' and '_' (and '.' for an "
                          "asset), starting with a letter or a digit.", 400)
        stored = self.resources.get("/".join(rest))
        properties = (body or {}).get("properties") or {}
        if rest[0] == "models" and len(rest) == 4 and stored is not None:
            if properties.get("modelUri") != stored["properties"].get("modelUri"):
                return _error("UserError", "Asset paths cannot be updated.", 400)
        if rest[0] == "jobs" and len(rest) == 2:
            if stored is not None:
                mutable = {"description", "tags", "displayName", "properties", "isArchived", "status", "services"}
                before = {k: v for k, v in stored["properties"].items() if k not in mutable}
                after = {k: v for k, v in properties.items() if k not in mutable}
                if before != after:
                    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
                    return _error("UserError", f"Job {name} exists and its {', '.join(changed)} cannot be changed: "
                                  "only description, tags, display name, properties and archive state can be "
                                  "updated. Submit it under a new name.", 400)
                return None
            compute = str(properties.get("computeId") or "").rstrip("/").rsplit("/", 1)[-1]
            if compute and f"computes/{compute}" not in self.resources:
                return _error("UserError", f"Compute {compute} was not found in the workspace; create it first "
                              "(ml_client.compute.begin_create_or_update).", 400)
        return None

    def _get(self, rest: list[str]) -> Any:
        if rest[0] == "datastores" and len(rest) == 2:
            return self.fake._datastore_json(rest[1])
        found = self.resources.get("/".join(rest))
        if found is not None and rest[0] == "jobs":
            found = self.fake._job_view(found)
        return copy.deepcopy(found)

    def _put(self, path: str, rest: list[str], body: dict) -> None:
        resource = {**body, "id": path, "name": rest[-1], "systemData": {"createdAt": _now(), "createdBy": "fake"}}
        properties = resource.setdefault("properties", {})
        if rest[0] == "models":
            properties.setdefault("flavors", {})  # the service fills in an empty map
        if rest[0] == "computes":
            properties["provisioningState"] = "Creating"
        stored = self.resources.get("/".join(rest))
        if rest[0] == "jobs" and stored is not None:  # an update: only what may change, changes
            for key in ("description", "tags", "displayName", "properties", "isArchived"):
                if key in properties:
                    stored["properties"][key] = properties[key]
            return
        if rest[0] == "jobs":
            self.fake._start_job(rest[1], resource)
        self.resources["/".join(rest)] = resource

    def _container(self, path: str, rest: list[str]) -> tuple[int, dict[str, Any]]:
        prefix = "/".join(rest) + "/versions/"
        versions = [name[len(prefix):] for name in self.resources if name.startswith(prefix)]
        if not versions:
            return _error("UserError", f"{rest[1]} was not found in the fake workspace", 404)
        numeric = [int(each) for each in versions if each.isdigit()]
        latest = versions[-1]
        return 200, {"id": path, "name": rest[1], "properties": {
            "latestVersion": latest, "nextVersion": str(max(numeric, default=0) + 1)}}


def count_bright_pixels(rows: list[list[float]], classes: int = 10) -> list[list[float]]:
    """The fake deployments' stand-in answer, which reads no model: each row's class is how many of its values
    are above 0.5, modulo ``classes``, with probability 0.91 (the rest shared by the other classes)."""
    other = round(0.09 / max(classes - 1, 1), 6)
    answer = []
    for row in rows:
        digit = sum(1 for pixel in row if pixel > 0.5) % classes
        answer.append([0.91 if index == digit else other for index in range(classes)])
    return answer


#: What the fake's jobs hold under ``outputs/model`` by default: an MLflow model as kerasjob's script saves it
#: (``training/mlflow_model.py``: float32 ``(-1, 784)`` in, ``(-1, 10)`` out, an input example of one row).
MLMODEL = """flavors:
  python_function:
    loader_module: mlflow.keras
saved_input_example_info:
  artifact_path: input_example.json
  type: ndarray
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 784]}}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 10]}}]'
"""


class SignatureScorer:
    """The default scorer of a no-code MLflow deployment: answers :func:`count_bright_pixels` for the rows it is
    given, with as many classes as the model's MLflow signature (the ``signature`` of the ``MLmodel`` file in the
    deployed model's folder) has outputs. :meth:`enforce` is the server's schema enforcement, which the fake runs
    on every request to a no-code deployment whatever the scorer.

    Without a signature, any input is taken and ten classes answered. Raise ``ValueError`` to refuse the input:
    the fake answers 400 with its text, as the MLflow scoring script does for a schema mismatch.
    """

    def __init__(self, mlmodel: str | None) -> None:
        import yaml

        signature = (yaml.safe_load(mlmodel) or {}).get("signature") if mlmodel else None
        self.inputs: list[dict[str, Any]] = []
        self.width = self.classes = None
        if signature:
            self.inputs = json.loads(signature.get("inputs") or "[]")
            outputs = json.loads(signature.get("outputs") or "[]")
            shape = self.inputs[0].get("tensor-spec", {}).get("shape") if len(self.inputs) == 1 else None
            self.width = shape[-1] if shape and len(shape) == 2 else None
            out = outputs[0].get("tensor-spec", {}).get("shape") if outputs else None
            self.classes = out[-1] if out and len(out) == 2 else None

    def enforce(self, model_input: Any) -> None:
        """Refuse (``ValueError``, MLflow's words) a model input (from :func:`mlflow_input`) that the signature does
        not take, as ``mlflow.models.utils._enforce_schema`` does: an unnamed tensor takes an array (or a DataFrame
        with as many columns), checked dimension by dimension; named tensors take a dict holding every name;
        columns take a DataFrame holding every column, numeric where the signature says so. Types are not
        compared: Azure's scoring script casts the request to the model's input example first
        (``NumpyParameterType``, ``PandasParameterType``)."""
        import numpy as np
        import pandas as pd

        if not self.inputs:
            return
        if self.inputs[0].get("type") != "tensor":  # column-based
            if isinstance(model_input, (dict, np.ndarray)):
                model_input = pd.DataFrame(model_input)
            names = [spec.get("name") for spec in self.inputs]
            missing = [name for name in names if name not in model_input.columns]
            if missing:
                raise ValueError(f"Model is missing inputs {missing}.")
            for spec in self.inputs:
                if spec.get("type") in ("double", "float", "long", "integer") and not \
                        pd.api.types.is_numeric_dtype(model_input[spec["name"]]):
                    raise ValueError(f"Incompatible input types for column {spec['name']}. Can not safely convert "
                                     f"{model_input[spec['name']].dtype} to {spec['type']}.")
            return
        named = {spec["name"]: spec["tensor-spec"]["shape"] for spec in self.inputs if spec.get("name")}
        if named:
            if not isinstance(model_input, dict):
                raise ValueError("This model contains a tensor-based model signature with input names, which suggests "
                                 f"a dictionary input mapping input name to tensor, but an input of type "
                                 f"{type(model_input)} was found.")
            missing = [name for name in named if name not in model_input]
            if missing:
                raise ValueError(f"Model is missing inputs {missing}.")
            for name, shape in named.items():
                _check_shape(np.asarray(model_input[name]), shape)
            return
        shape = self.inputs[0]["tensor-spec"]["shape"]
        if isinstance(model_input, dict) and len(model_input) == 1:  # lenient: one named tensor is taken as the array
            model_input = next(iter(model_input.values()))
        if isinstance(model_input, pd.DataFrame):
            if len(model_input.columns) > 1 and list(shape) != [-1, len(model_input.columns)]:
                raise ValueError("This model contains a model signature with an unnamed input. Since the input data "
                                 "is a pandas DataFrame containing multiple columns, the input shape must be of the "
                                 "structure (-1, number_of_dataframe_columns).")
            return
        if not isinstance(model_input, np.ndarray):
            raise ValueError("This model contains a tensor-based model signature with no input names, which suggests "
                             f"a numpy array input, but an input of type {type(model_input)} was found.")
        _check_shape(model_input, shape)

    def __call__(self, rows: list[list[float]]) -> list[list[float]]:
        for row in rows:
            if not isinstance(row, list) or not all(isinstance(v, (int, float)) for v in row):
                raise ValueError("Failed to enforce schema of data: each row must be a list of numbers.")
            if self.width is not None and len(row) != self.width:
                raise ValueError(f"Shape of input ({len(row)},) does not match expected shape (-1, {self.width}).")
        return count_bright_pixels(rows, self.classes or 10)


def _check_shape(values: Any, expected: list[int]) -> None:
    """``_enforce_tensor_spec``'s shape check (mlflow/models/utils.py): the same rank, every fixed dimension equal."""
    if values.dtype.kind in "USO":
        raise ValueError(f"dtype of input {values.dtype} does not match a numeric tensor.")
    if len(values.shape) != len(expected) or any(want not in (-1, got) for want, got in zip(expected, values.shape)):
        raise ValueError(f"Shape of input {tuple(values.shape)} does not match expected shape {tuple(expected)}.")


def mlflow_input(payload: Any) -> Any:
    """The model input Azure's no-code MLflow scoring script makes of a request body's ``input_data``: a list is
    a NumPy array, a dict with ``columns``, ``index`` and ``data`` a pandas DataFrame (split), any other dict
    named tensors ``{name: array}``; ``ValueError`` for anything else (``run`` and
    ``parse_model_input_from_input_data_traditional`` in Azure/azureml-assets' mlflow_score_script.py)."""
    import numpy as np

    data = payload.get("input_data") if isinstance(payload, dict) else None
    try:
        if isinstance(data, list):
            return np.asarray(data)
        if isinstance(data, dict) and {"columns", "index", "data"} <= set(data):  # pandas split
            import pandas as pd

            return pd.DataFrame(data["data"], columns=data["columns"], index=data["index"])
        if isinstance(data, dict) and data:  # named tensors
            return {str(name): np.asarray(value) for name, value in data.items()}
    except (TypeError, ValueError) as error:  # ragged rows, a split whose lengths disagree
        raise ValueError(f"Could not read input_data: {error}") from None
    raise ValueError("Expected {'input_data': rows}, {'input_data': {'columns', 'index', 'data'}} (pandas split) or "
                     "{'input_data': {NAME: rows}} (named tensors).")


def mlflow_rows(payload: Any) -> list[Any]:
    """One row of numbers per example of a request body's model input (:func:`mlflow_input`): an array's rows
    flattened, a DataFrame's rows, or each example's named tensors flattened one after the other. ``ValueError``
    when the input is none of those, or its named tensors disagree on the number of examples."""
    import numpy as np

    model_input = mlflow_input(payload)
    if isinstance(model_input, dict):
        arrays = list(model_input.values())
        if len({len(np.atleast_1d(array)) for array in arrays}) != 1:
            raise ValueError("The named tensors hold different numbers of examples.")
        if len(arrays) == 1:
            return arrays[0].tolist() if arrays[0].ndim == 2 else arrays[0].reshape(len(arrays[0]), -1).tolist()
        return np.concatenate([np.asarray(array).reshape(len(array), -1) for array in arrays], axis=1).tolist()
    if hasattr(model_input, "to_numpy"):
        model_input = model_input.to_numpy()
    if model_input.ndim == 2:
        return list(model_input.tolist())
    return list(model_input.reshape(len(model_input), -1).tolist()) if model_input.ndim > 2 else model_input.tolist()


class _OnlineEndpoints:
    """Managed online endpoints and their deployments as ARM keeps them, with their long-running operations.

    Mirrors the routes azure-ai-ml's ``OnlineEndpointsOperations`` and ``OnlineDeploymentsOperations`` call
    (azure/ai/ml/_restclient/arm_ml_service/operations/_operations.py): a PUT answers 201 with an
    ``Azure-AsyncOperation`` URL polled for ``{"status": ...}``, a DELETE 202 with a ``Location`` URL that answers
    202 until the deletion is done (azure-core's ``AzureAsyncOperationPolling`` and ``LocationPolling``). The
    service's rules that a rollout must respect are kept: a deployment needs its endpoint; traffic goes only to
    provisioned deployments of the endpoint and adds up to 0 or 100; a deployment with traffic can't be deleted.
    Call names: ``OnlineEndpoints.<get|list|create_or_update|delete|list_keys|get_token>``,
    ``OnlineDeployments.<get|list|create_or_update|delete|get_logs>``, ``Operations.poll`` (detail
    ``"<kind>/<name>: <status>"``) and ``Scoring.invoke``.
    """

    def __init__(self, fake: "FakeMLClient") -> None:
        self.fake = fake
        self.endpoints: dict[str, dict] = {}
        self.deployments: dict[str, dict[str, dict]] = {}  # endpoint -> deployment name -> resource
        self.operations: dict[str, dict] = {}
        self.sent: list[tuple[str, dict]] = []  # ("endpoint" | "deployment", the resource as the SDK sent it)
        self.put_answers: list[tuple[str, int, str]] = []  # (kind/name, HTTP status, provisioning state)
        self.routed: dict[str, int] = {}  # endpoint -> requests routed by its traffic (for mirroring)
        self.scoring_requests: list[dict] = []

    # -- ARM -----------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, rest: list[str], body: Any) -> tuple[Any, ...]:
        fake = self.fake
        name = rest[1] if len(rest) > 1 else ""
        if len(rest) == 1:
            fake._record("OnlineEndpoints.list")
            return 200, {"value": [self._view(resource) for resource in self.endpoints.values()]}
        if len(rest) == 2:
            return self._endpoint(method, path, name, body)
        if name not in self.endpoints:
            fake._record(f"OnlineEndpoints.{rest[2]}", name)
            return _error("UserError", f"Online endpoint {name} was not found in the fake workspace", 404)
        if rest[2] == "listKeys":
            fake._record("OnlineEndpoints.list_keys", name)
            return 200, {"primaryKey": self._key(name), "secondaryKey": self._key(name)[::-1]}
        if rest[2] == "token":  # aml_token auth: listKeys' counterpart
            fake._record("OnlineEndpoints.get_token", name)
            return 200, {"accessToken": self._key(name), "tokenType": "Bearer", "expiryTimeUtc": 4102444800,
                         "refreshAfterTimeUtc": 4102444800}
        if len(rest) == 3:
            fake._record("OnlineDeployments.list", name)
            return 200, {"value": [self._view(each) for each in self.deployments[name].values()]}
        deployment = rest[3]
        if len(rest) == 5 and rest[4] == "getLogs":
            # POST .../deployments/NAME/getLogs: a 404 for a deployment the endpoint lacks (as every child route of
            # ARM); containerType picks the inference server's log or the storage initializer's.
            fake._record("OnlineDeployments.get_logs", f"{name}/{deployment}")
            if deployment not in self.deployments[name]:
                return _error("ResourceNotFound", f"Deployment {deployment} was not found on endpoint {name}", 404)
            container = str((body or {}).get("containerType") or "InferenceServer")
            return 200, {"content": self.fake._deployment_log(deployment, (body or {}).get("tail"), container)}
        return self._deployment(method, path, name, deployment, body)

    def _endpoint(self, method: str, path: str, name: str, body: Any) -> tuple[Any, ...]:
        fake = self.fake
        if method == "GET":
            fake._record("OnlineEndpoints.get", name)
            found = self.endpoints.get(name)
            if found is None:
                return _error("UserError", f"Online endpoint {name} was not found in the fake workspace", 404)
            return 200, self._view(found)
        if method == "DELETE":
            fake._record("OnlineEndpoints.delete", name)
            if name not in self.endpoints:
                return 204, None
            return self._operation(path, f"endpoints/{name}", deleting=True, done=lambda: self._forget(name))
        traffic = {key: int(value) for key, value in (body["properties"].get("traffic") or {}).items()}
        mirror = {key: int(value) for key, value in (body["properties"].get("mirrorTraffic") or {}).items()}
        refused = self._refused_traffic(name, traffic) or self._refused_mirror(name, traffic, mirror)
        if refused is not None:
            fake._record("OnlineEndpoints.create_or_update", {"name": name, "traffic": traffic})
            return refused
        existed = name in self.endpoints
        fake._record("OnlineEndpoints.create_or_update", {"name": name, "traffic": traffic},
                     lambda: self._put_endpoint(path, name, body))
        resource = self.endpoints[name]
        return self._operation(path, f"endpoints/{name}", resource=resource, created=not existed,
                               done=lambda: resource["properties"].update(provisioningState="Succeeded"))

    def _deployment(self, method: str, path: str, endpoint: str, name: str, body: Any) -> tuple[Any, ...]:
        fake = self.fake
        found = self.deployments[endpoint].get(name)
        if method == "GET":
            fake._record("OnlineDeployments.get", f"{endpoint}/{name}")
            if found is None:
                return _error("UserError", f"Deployment {name} was not found on endpoint {endpoint}", 404)
            return 200, self._view(found)
        if method == "DELETE":
            fake._record("OnlineDeployments.delete", f"{endpoint}/{name}")
            share = self._traffic(endpoint).get(name.lower(), 0)
            if share:
                return _error("BadArgument", f"Deployment {name} takes {share}% of endpoint {endpoint}'s traffic; "
                              "set its traffic to 0 before deleting it.", 400)
            if found is None:
                return 204, None
            return self._operation(path, f"deployments/{name}", deleting=True,
                                   done=lambda: self.deployments[endpoint].pop(name, None))
        refused = self._refused_model(body)
        if refused is not None:
            fake._record("OnlineDeployments.create_or_update", f"{endpoint}/{name}")
            return refused
        fake._record("OnlineDeployments.create_or_update", f"{endpoint}/{name}",
                     lambda: self._put_deployment(path, endpoint, name, body))
        failing = fake.failing_deployments > 0
        fake.failing_deployments -= int(failing)
        resource = self.deployments[endpoint][name]

        def provisioned() -> None:
            resource["properties"]["provisioningState"] = "Failed" if failing else "Succeeded"

        error = {"code": "ResourceNotReady", "message": "User container has crashed or terminated: the MLflow "
                 "scoring server exited while loading the model."} if failing else None
        return self._operation(path, f"deployments/{name}", resource=resource, done=provisioned, error=error,
                               created=found is None)

    def _put_endpoint(self, path: str, name: str, body: dict) -> None:
        self.sent.append(("endpoint", {**copy.deepcopy(body), "id": path, "name": name}))
        existing = self.endpoints.get(name)
        resource = {**copy.deepcopy(body), "id": path, "name": name,
                    "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
                    "systemData": existing["systemData"] if existing else _system_data()}
        properties = resource["properties"]
        properties.update(provisioningState="Updating" if existing else "Creating",
                          scoringUri=f"https://{name}{SCORING_HOST}/score",
                          swaggerUri=f"https://{name}{SCORING_HOST}/swagger.json")
        self.endpoints[name] = resource
        self.deployments.setdefault(name, {})

    def _put_deployment(self, path: str, endpoint: str, name: str, body: dict) -> None:
        """Keep the deployment as sent. Its provisioning state while the operation runs: ``Creating`` for a new
        one, ``Scaling`` when only the instance count changed, else ``Updating`` (the states of
        ``DeploymentProvisioningState`` in ``_restclient/.../models/_enums.py``)."""
        self.sent.append(("deployment", {**copy.deepcopy(body), "id": path, "name": name}))
        existing = self.deployments[endpoint].get(name)
        resource = {**copy.deepcopy(body), "id": path, "name": name,
                    "systemData": existing["systemData"] if existing else _system_data(),
                    "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"}
        state = "Creating"
        if existing is not None:
            same = {**DEPLOYMENT_DEFAULTS, **body["properties"]}
            old = {key: value for key, value in existing["properties"].items() if key != "provisioningState"}
            state = "Scaling" if same == old and body.get("sku") != existing.get("sku") else "Updating"
        resource["properties"] = {**DEPLOYMENT_DEFAULTS, **resource["properties"], "provisioningState": state}
        self.deployments[endpoint][name] = resource

    def _refused_model(self, body: dict) -> tuple[int, dict] | None:
        """ARM's 404 for a deployment whose model (an ARM id in the workspace) is not registered. The exact reply
        is not documented; a missing referenced resource is a ``ResourceNotFound`` 404 elsewhere in ARM."""
        model = str(body["properties"].get("model") or "")
        match = re.search(r"/workspaces/[^/]+/models/([^/]+)/versions/([^/]+)$", model)
        if match and f"models/{match.group(1)}/versions/{match.group(2)}" not in self.fake._workspace.resources:
            return _error("ResourceNotFound", f"Model {match.group(1)}:{match.group(2)} was not found in the "
                          "workspace.", 404)
        return None

    def _forget(self, name: str) -> None:
        self.endpoints.pop(name, None)
        self.deployments.pop(name, None)

    def _traffic(self, endpoint: str) -> dict[str, int]:
        found = self.endpoints.get(endpoint)
        traffic = found["properties"].get("traffic") or {} if found else {}
        return {key.lower(): int(value) for key, value in traffic.items()}

    def _refused_traffic(self, endpoint: str, traffic: dict[str, int]) -> tuple[int, dict] | None:
        """ARM's 400 for traffic that a rollout must never send."""
        deployments = {key.lower(): value for key, value in self.deployments.get(endpoint, {}).items()}
        for name, share in traffic.items():
            found = deployments.get(name.lower())
            if share and (found is None or found["properties"]["provisioningState"] != "Succeeded"):
                return _error("BadArgument", f"Traffic can only go to a provisioned deployment of endpoint "
                              f"{endpoint}; {name} is {'missing' if found is None else 'not provisioned'}.", 400)
        if sum(traffic.values()) not in (0, 100):
            return _error("BadArgument", f"The traffic of endpoint {endpoint} must add up to 0 or 100.", 400)
        return None

    def _refused_mirror(self, endpoint: str, traffic: dict[str, int], mirror: dict[str, int]
                        ) -> tuple[int, dict] | None:
        """ARM's 400 for mirror traffic the service refuses: at most 50 % in total, only to a provisioned
        deployment of the endpoint, never to one that takes live traffic (``mirror_traffic`` in the REST
        models, ``_restclient/.../models/_models.py``; "Mirror traffic cannot be sent to a deployment that
        receives live traffic", Azure ML's safe-rollout documentation)."""
        if not mirror:
            return None
        if sum(mirror.values()) > 50:
            return _error("BadArgument", f"The mirror traffic of endpoint {endpoint} must add up to at most 50.", 400)
        deployments = {key.lower(): value for key, value in self.deployments.get(endpoint, {}).items()}
        for name, share in mirror.items():
            if share and traffic.get(name.lower(), traffic.get(name, 0)):
                return _error("BadArgument", f"Deployment {name} takes live traffic of endpoint {endpoint}; mirror "
                              "traffic cannot go to it.", 400)
            found = deployments.get(name.lower())
            if share and (found is None or found["properties"]["provisioningState"] != "Succeeded"):
                return _error("BadArgument", f"Mirror traffic can only go to a provisioned deployment of endpoint "
                              f"{endpoint}; {name} is {'missing' if found is None else 'not provisioned'}.", 400)
        return None

    def _key(self, endpoint: str) -> str:
        return f"fake-key-{endpoint}"

    @staticmethod
    def _view(resource: dict) -> dict:
        return copy.deepcopy(resource)

    # -- long-running operations ---------------------------------------------------------------------

    def _operation(self, path: str, what: str, *, resource: dict | None = None, deleting: bool = False,
                   done: Callable[[], Any] | None = None, error: dict | None = None,
                   created: bool = True) -> tuple[Any, ...]:
        """Start an operation that answers InProgress ``provisioning_polls`` times, then ends; ``done`` runs then.
        A PUT answers 201 when it created the resource, 200 when it updated one (ARM's rule for PUT)."""
        operation_id = uuid.uuid4().hex
        final = "Failed" if error else "Succeeded"
        if resource is not None:
            self.put_answers.append((what, 201 if created else 200, resource["properties"].get("provisioningState")))
        self.operations[operation_id] = {"what": what, "done": done, "error": error,
                                         "pending": ["InProgress"] * self.fake.provisioning_polls + [final]}
        subscription = path.split("/")[2]
        base = f"{ARM}/subscriptions/{subscription}/providers/Microsoft.MachineLearningServices/locations/westeurope"
        if deleting:
            return 202, None, {"Location": f"{base}/mfeOperationResults/{operation_id}", "Retry-After": "0"}
        return 201 if created else 200, self._view(resource or {}), {
            "Azure-AsyncOperation": f"{base}/mfeOperationsStatus/{operation_id}", "Retry-After": "0"}

    def poll(self, kind: str, operation_id: str) -> tuple[Any, ...]:
        """One poll: the operation moves one step on (``interrupt_after`` may press Ctrl-C here)."""
        operation = self.operations[operation_id]
        self.fake._status_read()
        pending = operation["pending"]
        status = pending.pop(0) if len(pending) > 1 else pending[0]
        self.fake._record("Operations.poll", f"{operation['what']}: {status}")
        if status != "InProgress" and operation["done"] is not None:
            operation["done"]()
            operation["done"] = None
        if kind == "mfeOperationResults":  # Location polling: 202 until done
            return (202, None, {"Retry-After": "0"}) if status == "InProgress" else (200, None)
        return 200, {"status": status, **({"error": operation["error"]} if status == "Failed" else {})}

    # -- the scoring URI -----------------------------------------------------------------------------

    def score(self, endpoint: str, headers: Any, body: Any) -> tuple[int, Any]:
        """A request to the endpoint's scoring URI, routed and answered as Azure does.

        Routing: the ``azureml-model-deployment`` header names the deployment, which is served even at 0 %
        traffic (the safe-rollout notebook: "you can still invoke the endpoint and deployment"); without it, the
        deployment with the most traffic answers; with no deployment taking traffic the service answers 404 ("No
        valid deployments to route to"), which ``validate_response`` (``_utils/_endpoint_utils.py``) makes a
        ``ResourceNotFoundError``. Keys: the endpoint's key (``key``), its token (``aml_token``) or an Entra token
        of the caller (``aad_token``). A no-code MLflow deployment reads ``input_data`` (:func:`mlflow_input`),
        refuses what the model's signature does not take (:meth:`SignatureScorer.enforce`, answered 400) and
        answers ``scorer`` for its rows (:func:`mlflow_rows`; default :class:`SignatureScorer`); a deployment with a scoring script (``score.py``)
        takes any body and answers ``score_script(deployment, body)``.
        """
        fake = self.fake
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = body
        found = self.endpoints.get(endpoint)
        traffic = self._traffic(endpoint)
        named = headers.get("azureml-model-deployment") or ""
        chosen = named or max((name for name, share in traffic.items() if share), key=traffic.__getitem__, default="")
        self.scoring_requests.append({"endpoint": endpoint, "deployment": chosen, "payload": payload,
                                      "authorization": headers.get("Authorization")})
        fake._record("Scoring.invoke", f"{endpoint}/{chosen}")
        if found is None:
            return 404, {"error": {"message": f"No endpoint {endpoint}"}}
        if headers.get("Authorization") not in self._accepted_tokens(endpoint):
            return 401, {"error": {"message": "Invalid key"}}
        deployments = {key.lower(): value for key, value in self.deployments.get(endpoint, {}).items()}
        if not chosen:
            return 404, {"error": {"message": "No valid deployments to route to. Please check that the endpoint has "
                                              "at least one deployment with positive weight values or use a "
                                              "deployment specific header to route."}}
        deployment = deployments.get(chosen.lower())
        if deployment is None:
            return 404, {"error": {"message": f"Deployment {chosen} not found on endpoint {endpoint}."}}
        if deployment["properties"].get("provisioningState") != "Succeeded":
            return 424, {"error": {"message": f"Deployment {chosen} is not ready to serve."}}
        if not named:
            self._mirror(endpoint, headers, payload)
        if deployment["properties"].get("codeConfiguration"):
            return 200, fake._score_script(chosen, payload)
        try:
            signature = SignatureScorer(fake.run_files_text("outputs/model/MLmodel"))
            signature.enforce(mlflow_input(payload))  # MLflow's schema enforcement, before any scorer
            return 200, (fake.scorer or signature)(mlflow_rows(payload))
        except ValueError as error:
            return 400, {"error": {"message": str(error)}}

    def _mirror(self, endpoint: str, headers: Any, payload: Any) -> None:
        """Copy a request routed by the traffic to each mirror deployment, its share of the time (every 10th request
        for 10 %), as Azure's ``mirror_traffic`` does; the copy's answer is dropped. A request named by the header
        is never mirrored. The copies are in ``scoring_requests`` with ``"mirrored": True``."""
        mirror = {key: int(value) for key, value in
                  (self.endpoints[endpoint]["properties"].get("mirrorTraffic") or {}).items()}
        self.routed[endpoint] = count = self.routed.get(endpoint, 0) + 1
        for deployment, share in mirror.items():
            if share and count * share // 100 != (count - 1) * share // 100:
                self.scoring_requests.append({"endpoint": endpoint, "deployment": deployment, "payload": payload,
                                              "authorization": headers.get("Authorization"), "mirrored": True})
                self.fake._record("Scoring.mirror", f"{endpoint}/{deployment}")

    def _accepted_tokens(self, endpoint: str) -> set[str]:
        """What an ``Authorization`` header may carry for ``endpoint``: its key or token; for ``aad_token``
        the caller's Entra token (``_get_online_credentials`` asks the ``MLClient``'s credential for one)."""
        mode = str(self.endpoints[endpoint]["properties"].get("authMode") or "Key").lower()
        if mode == "aadtoken":
            return {"Bearer fake-token"}
        return {f"Bearer {self._key(endpoint)}", f"Bearer {self._key(endpoint)[::-1]}"}


#: What the service fills in for a managed deployment that leaves them out (the defaults Azure documents for
#: ``request_settings``, ``liveness_probe``, ``readiness_probe`` and ``scale_settings``); azure-ai-ml's
#: ``ManagedOnlineDeployment._from_rest_object`` needs ``scaleSettings``.
DEPLOYMENT_DEFAULTS: dict[str, Any] = {
    "scaleSettings": {"scaleType": "Default"},
    "requestSettings": {"requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 1},
    "livenessProbe": {"initialDelay": "PT10M", "period": "PT10S", "timeout": "PT2S", "successThreshold": 1,
                      "failureThreshold": 30},
    "readinessProbe": {"initialDelay": "PT10S", "period": "PT10S", "timeout": "PT2S", "successThreshold": 1,
                       "failureThreshold": 30},
}


def _system_data() -> dict[str, str]:
    return {"createdAt": _now(), "createdBy": "fake", "createdByType": "User", "lastModifiedAt": _now(),
            "lastModifiedBy": "fake", "lastModifiedByType": "User"}


def reset_invoke_headers() -> None:
    """Empty ``EndpointInvokeFields.DEFAULT_HEADER`` back to its content type. ``OnlineEndpointOperations.invoke``
    (``operations/_online_endpoint_operations.py``) writes the key and ``azureml-model-deployment`` into that
    class-level dict (``constants/_endpoint.py``), so one invoke by deployment name pins every later one in
    the process to that deployment."""
    from azure.ai.ml.constants._endpoint import EndpointInvokeFields

    EndpointInvokeFields.DEFAULT_HEADER.clear()
    EndpointInvokeFields.DEFAULT_HEADER["Content-Type"] = "application/json"


def _forget_mlflow_stores() -> None:
    """MLflow keeps one store per tracking URI for the process; each fake workspace needs its own."""
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    _tracking_store_registry._get_store_with_resolved_uri.cache_clear()


class FakeRunHistory:
    """The run-history REST client under ``RunOperations`` (``RunOperations._operation``): ``runs`` is itself.

    ``get_details`` mirrors ``RunsOperations.get_details`` (real ``RunDetails``, one
    status step per call, as a polled job moves on); ``get_child`` mirrors
    ``RunsOperations.get_child`` (real run-history ``Run`` records, passed through ``cls``).
    """

    def __init__(self, fake: "FakeMLClient") -> None:
        self.fake = fake
        self.runs = self

    def get_details(self, subscription_id: Any, resource_group_name: Any, workspace_name: Any, run_id: Any,
                    **kwargs: Any) -> Any:
        from azure.ai.ml._restclient.runhistory.models._models_py3 import ErrorResponse, RootError, RunDetails

        fake = self.fake
        fake._status_read()  # a Ctrl-C at the interrupt_after-th poll, inside the SDK's waiting loop
        fake._record("RunHistory.get_details", run_id)
        status = fake._advance(run_id)
        error = None
        if status == "Failed":
            error = ErrorResponse(error=RootError(code="UserError", message=fake.error_message))
        logs = {"user_logs/std_log.txt": f"{LOGS_HOST}/logs/{run_id}/std_log.txt"} if status != "NotStarted" else {}
        return RunDetails(run_id=run_id, status=status, log_files=logs, error=error)

    def get_child(self, subscription_id: Any, resource_group_name: Any, workspace_name: Any, run_id: Any,
                  top: Any = None, cls: Any = None, **kwargs: Any) -> Any:
        from azure.ai.ml._restclient.runhistory.models import Run

        fake = self.fake
        fake._record("RunHistory.get_child", run_id)
        records: list[Any] = []
        for name in fake._children.get(run_id, []):
            job = fake._workspace.resources[f"jobs/{name}"]
            records.append(Run(run_id=name, parent_run_id=run_id, status=fake._jobs[name]["status"],
                               experiment_id=job["properties"].get("experimentName"), display_name=name,
                               properties={}, tags={}))
        records += [None] * fake.broken_children
        return cls(records) if cls else records


class _RecordingStorage:
    """Stands in for ``get_storage_client(...)`` (Blob upload can't be reached offline): records what is uploaded."""

    container = file_system = "fake-container"

    def __init__(self, fake: "FakeMLClient") -> None:
        self.fake = fake

    def exists(self, blobpath: str, delimiter: str = "/") -> bool:
        """Mirrors ``BlobStorageClient.exists``: a blob or a virtual folder of the job's files."""
        return any(name == blobpath or name.startswith(blobpath.rstrip("/") + "/") for name in self.fake.run_files)

    def download(self, starts_with: str, destination: Any = None, **kwargs: Any) -> None:
        """Mirrors ``BlobStorageClient.download`` (``models.download``): each file under ``starts_with``,
        relative to it, under ``destination``."""
        self.fake._record("Storage.download", starts_with)
        for name, content in self.fake.run_files.items():
            if name.startswith(starts_with):
                target = Path(destination, name[len(starts_with):].lstrip("/") or Path(starts_with).name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)

    def upload(self, local_path: Any, asset_hash: Any = None, name: Any = None, version: Any = None,
               **kwargs: Any) -> Any:
        self.fake._record("Storage.upload", str(local_path))
        self.fake.uploads.append(Path(local_path))
        remote = f"LocalUpload/{asset_hash or uuid.uuid4().hex}/{Path(local_path).name}"
        return {"name": name, "version": version, "remote path": remote, "indicator file": f"{remote}/.indicator"}


@dataclass
class FakeMLClient(FakeService):
    """A fake Azure ML v2 workspace for the duration of a ``with`` block.

    Arguments as for :class:`kerasjob.testing._service.FakeService`, plus:

    Args:
        lost_responses: ``{"<call>": n}``: the next ``n`` such calls are carried
            out by the service, then the caller gets a transient error
            (``ServiceResponseError``), as when a response is lost on the way back.
        error_message: the service's error message for a failed job.
        broken_children: how many unparseable (``None``) items a sweep's child
            listing holds (azure-sdk-for-python#26922).
        failing_deployments: how many of the next online deployments end in
            provisioning state Failed (their log then ends with the crash).
        provisioning_polls: how many polls an endpoint or deployment operation
            answers InProgress before it ends.
        deployment_log: the inference server log a deployment gives (``get_logs``).
        scorer: what a no-code MLflow deployment answers for the rows it is sent (default
            :class:`SignatureScorer`: checks them against the ``MLmodel`` signature in ``run_files``, then
            answers :func:`count_bright_pixels`, a stand-in that reads no weights); raise ``ValueError``
            to refuse the input (400).
        score_script: what a deployment with a scoring script (``code_configuration``) answers:
            ``(deployment name, request body) -> answer``. The fake can't run your ``score.py`` in its
            environment; the default answers ``scorer`` for ``input_data`` rows, else echoes the body.
        run_files: the files every job holds (default: an MLflow model under ``outputs/model`` as kerasjob
            saves it: ``MLmodel`` with its signature, ``input_example.json``, ``model.keras``); a registered
            model's files are the job's under its path (``models.download``).

    Attributes (besides ``calls``/``service_calls``): ``ml_client``;
    ``submissions`` (job entities parsed from what the SDK sent); ``data_assets``,
    ``environments``, ``models`` (``{name: [entity, ...]}``); ``created_computes``;
    ``uploads`` (local folders the SDK uploaded); ``credentials`` (what reached the MLflow plugin);
    ``online_endpoints``, ``online_deployments`` (as the service holds them now), ``sent_endpoints``,
    ``sent_deployments`` (each as the SDK sent it, in order) and ``scoring_requests`` (what reached a scoring URI).
    """

    lost_responses: dict[str, int] = field(default_factory=dict)
    error_message: str = "Execution failed. User process 'python' exited with status code 1."
    broken_children: int = 0
    failing_deployments: int = 0
    provisioning_polls: int = 2
    deployment_log: list[str] = field(default_factory=lambda: [
        "Azure ML Inferencing HTTP server v1.4.0", "Loading MLflow model from /var/azureml-app/azureml-models",
        "Scoring timeout is set to 60000 ms", "Worker with pid 42 ready for serving traffic"])
    scorer: Callable[[list[Any]], Any] | None = None
    score_script: Callable[[str, Any], Any] | None = None
    run_files: dict[str, bytes] = field(default_factory=lambda: {
        "outputs/model/MLmodel": MLMODEL.encode(), "outputs/model/model.keras": b"fake model",
        "outputs/model/input_example.json": json.dumps([[0.0] * 784]).encode(), "outputs/training.png": b"png"})

    def run_files_text(self, path: str) -> str | None:
        """The text of ``run_files[path]``, None when absent."""
        content = self.run_files.get(path)
        return content.decode() if content is not None else None

    def _score_script(self, deployment: str, body: Any) -> Any:
        if self.score_script is not None:
            return self.score_script(deployment, body)
        try:
            rows = mlflow_rows(body)
        except ValueError:
            return {"received": body}
        return (self.scorer or SignatureScorer(self.run_files_text("outputs/model/MLmodel")))(rows)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._workspace = _Workspace(self)
        self._online = _OnlineEndpoints(self)
        self._jobs: dict[str, dict] = {}  # name -> {"status", "pending", "metrics", "params"}
        self._children: dict[str, list[str]] = {}
        self._run_ids: dict[str, str] = {}  # job name -> MLflow run id in the local store
        self._polls = 0
        self.uploads: list[Path] = []
        self.credentials: list = []
        self._store_dir: str | None = None
        self.ml_client: Any = None
        self.computes = set(self.computes)
        for name in self.computes:
            self._workspace.resources[f"computes/{name}"] = {
                "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/fake-rg/providers/Microsoft.MachineLearningServices"
                      f"/workspaces/fake-workspace/computes/{name}", "name": name, "location": "westeurope",
                "properties": {"computeType": "AmlCompute", "provisioningState": "Succeeded", "properties": {
                    "vmSize": "Standard_NC4as_T4_v3", "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 4}}}}

    # -- the record and injected failures ------------------------------------------------------------

    def _lost_response(self, name: str) -> BaseException | None:
        if not self.lost_responses.get(name):
            return None
        from azure.core.exceptions import ServiceResponseError

        self.lost_responses[name] -= 1
        return ServiceResponseError(f"Connection reset while reading the response to {name}")

    # -- views of the stored resources as SDK entities -----------------------------------------------

    def _entities(self, collection: str, load: Callable[[dict[str, Any]], Any]) -> dict[str, list[Any]]:
        found: dict[str, list] = {}
        for key, resource in self._workspace.resources.items():
            parts = key.split("/")
            if parts[0] == collection and len(parts) == 4:
                found.setdefault(parts[1], []).append(load(copy.deepcopy(resource)))
        return found

    def _rest(self, model: str, resource: dict) -> Any:
        """The REST model the SDK deserialises a response into (``arm_ml_service``)."""
        from azure.ai.ml._restclient.arm_ml_service import models
        from azure.ai.ml._restclient.arm_ml_service._utils.model_base import _deserialize

        return _deserialize(getattr(models, model), resource)

    @property
    def data_assets(self) -> dict[str, list]:
        from azure.ai.ml.entities import Data

        return self._entities("data", lambda r: Data._from_rest_object(self._rest("DataVersionBase", r)))

    @property
    def environments(self) -> dict[str, list]:
        from azure.ai.ml.entities import Environment

        return self._entities("environments", lambda r: Environment._from_rest_object(
            self._rest("EnvironmentVersion", r)))

    @property
    def models(self) -> dict[str, list]:
        from azure.ai.ml.entities import Model

        return self._entities("models", lambda r: Model._from_rest_object(self._rest("ModelVersion", r)))

    @property
    def online_endpoints(self) -> dict[str, Any]:
        """The managed online endpoints the workspace holds now, as ``OnlineEndpoint`` entities."""
        from azure.ai.ml.entities import OnlineEndpoint

        return {name: OnlineEndpoint._from_rest_object(self._rest("OnlineEndpoint", copy.deepcopy(resource)))
                for name, resource in self._online.endpoints.items()}

    @property
    def online_deployments(self) -> dict[str, list[Any]]:
        """Each endpoint's deployments now, as ``OnlineDeployment`` entities."""
        from azure.ai.ml.entities import OnlineDeployment

        return {endpoint: [OnlineDeployment._from_rest_object(self._rest("OnlineDeployment", copy.deepcopy(each)))
                           for each in deployments.values()]
                for endpoint, deployments in self._online.deployments.items()}

    @property
    def sent_endpoints(self) -> list[Any]:
        """Every endpoint PUT, as the SDK sent it (parsed back into an ``OnlineEndpoint``), in order."""
        from azure.ai.ml.entities import OnlineEndpoint

        return [OnlineEndpoint._from_rest_object(self._rest("OnlineEndpoint", copy.deepcopy(body)))
                for kind, body in self._online.sent if kind == "endpoint"]

    @property
    def sent_deployments(self) -> list[Any]:
        """Every deployment PUT, as the SDK sent it (parsed back into an ``OnlineDeployment``), in order."""
        from azure.ai.ml.entities import OnlineDeployment

        return [OnlineDeployment._from_rest_object(self._rest("OnlineDeployment", {
            **body, "properties": {**DEPLOYMENT_DEFAULTS, **body["properties"]}}))
            for kind, body in copy.deepcopy(self._online.sent) if kind == "deployment"]

    @property
    def put_answers(self) -> list[tuple[str, int, str]]:
        """Each endpoint or deployment PUT as the service answered it: ``("deployments/NAME", 201 | 200,
        provisioning state while the operation runs)``, in order."""
        return self._online.put_answers

    @property
    def scoring_requests(self) -> list[dict[str, Any]]:
        """What reached a scoring URI: endpoint, deployment, payload and Authorization header, in order."""
        return self._online.scoring_requests

    @property
    def submissions(self) -> list:
        """The jobs as the service received them (parsed back from the REST bodies), in order."""
        from azure.ai.ml.entities import Job

        return [Job._from_rest_object(self._rest("JobBase", copy.deepcopy(self._workspace.resources[f"jobs/{name}"])))
                for name, state in self._jobs.items() if state["submitted"]]

    @property
    def created_computes(self) -> list:
        from azure.ai.ml.entities import Compute

        return [Compute._from_rest_object(self._rest("ComputeResource", copy.deepcopy(resource)))
                for key, resource in self._workspace.resources.items()
                if key.startswith("computes/") and key.split("/")[1] not in self.computes]

    # -- workspace, datastore and job JSON -----------------------------------------------------------

    def _workspace_json(self, path: str) -> dict:
        match = _WORKSPACE_PATH.match(path)
        assert match is not None  # handle() serves workspace paths only
        subscription, group, name = match.group(1), match.group(2), match.group(3)
        return {"id": path, "name": name, "location": "westeurope", "kind": "Default",
                "properties": {"mlFlowTrackingUri": self.tracking_uri_for(subscription, group, name),
                               "discoveryUrl": "https://westeurope.api.azureml.ms/discovery",
                               "workspaceId": str(uuid.UUID(int=0))}}

    def _datastore_json(self, name: str) -> dict:
        return {"id": f"/subscriptions/{SUBSCRIPTION}/datastores/{name}", "name": name, "properties": {
            "datastoreType": "AzureBlob", "accountName": "fakeaccount", "containerName": "fake-container",
            "endpoint": "core.windows.net", "protocol": "https", "isDefault": True,
            "credentials": {"credentialsType": "AccountKey"}}}

    def _job_view(self, resource: dict) -> dict:
        name = resource["name"]
        state = self._jobs[name]
        view = copy.deepcopy(resource)
        properties = view["properties"]
        properties["status"] = state["status"]
        workspace = "/".join(resource["id"].split("/jobs/")[:1])
        properties["services"] = {"Studio": {"endpoint": f"https://ml.azure.com/runs/{name}?wsid={workspace}",
                                             "jobServiceType": "Studio"}}
        if properties.get("jobType") == "Sweep" and state["status"] == "Completed":
            best = self._best_child(name, properties["objective"])
            if best:
                properties.setdefault("properties", {})["best_child_run_id"] = best
        return view

    # -- jobs: statuses, trials, metrics -------------------------------------------------------------

    def _start_job(self, name: str, resource: dict) -> None:
        properties = resource["properties"]
        experiment = properties.get("experimentName") or "Default"
        self._jobs[name] = {"status": "NotStarted", "pending": list(self.statuses) + [self.final_status],
                            "submitted": True}
        sweep = properties.get("jobType") == "Sweep"  # a sweep parent trains nothing: its trials log the metrics
        self._run_ids[name] = self._create_tracking_run(experiment, {} if sweep else self.metrics, {})
        if sweep:
            self._start_trials(name, resource)

    def _start_trials(self, parent: str, sweep: dict) -> None:
        """One child job per trial: the swept inputs spread over the space, outcomes as the fake was told.

        Mirrors the sweep service creating ``<parent>_<i>`` command jobs that log the script's params.
        """
        from azure.ai.ml.sweep import SweepJob

        properties = sweep["properties"]
        entity: Any = SweepJob._from_rest_object(self._rest("JobBase", copy.deepcopy(sweep)))  # has limits, a space
        total = entity.limits.max_total_trials
        names = []
        for index in range(total):
            params = {}
            for name, expression in entity.search_space.items():
                kind = type(expression).__name__
                values = expression.values if kind == "Choice" else [
                    getattr(expression, attribute) for attribute in ("min_value", "max_value", "mu")
                    if getattr(expression, attribute, None) is not None]
                params[name] = spread(kind, values, index, total)
            metrics, status = self.trial_outcome(index)
            child = f"{parent}_{index}"
            trial = properties["trial"]
            literal = {name: value for name, value in (properties.get("inputs") or {}).items()}
            for name, value in params.items():
                literal[name] = {"jobInputType": "literal", "value": str(value)}
            self._workspace.resources[f"jobs/{child}"] = {
                "id": sweep["id"].rsplit("/", 1)[0] + "/" + child, "name": child, "properties": {
                    "jobType": "Command", "command": trial["command"], "codeId": trial.get("codeId"),
                    "environmentId": trial["environmentId"], "computeId": properties.get("computeId"),
                    "experimentName": properties.get("experimentName"), "inputs": literal,
                    "properties": {"azureml.parentrunid": parent}}}
            every_param = {**{k: v["value"] for k, v in literal.items() if v.get("jobInputType") == "literal"},
                           **{k: str(v) for k, v in params.items()}}
            self._jobs[child] = {"status": status, "pending": [status], "submitted": False,
                                 "metrics": metrics}
            self._run_ids[child] = self._create_tracking_run(properties.get("experimentName") or "Default",
                                                             metrics, every_param)
            names.append(child)
        self._children[parent] = names

    def _best_child(self, parent: str, objective: dict) -> str | None:
        scored = []
        for child in self._children.get(parent, []):
            history = self._jobs[child]["metrics"].get(objective["primaryMetric"])
            if self._jobs[child]["status"] == "Completed" and history is not None:
                value = history[-1] if isinstance(history, list) else history
                scored.append((value if objective["goal"].lower() == "maximize" else -value, child))
        return max(scored)[1] if scored else None

    def _advance(self, name: str) -> str:
        """One step along the job's statuses (a job moves on between two polls); returns where it is."""
        state = self._jobs.get(name)
        if state is None:
            return "NotStarted"
        pending = state["pending"]
        state["status"] = pending.pop(0) if len(pending) > 1 else pending[0]
        return state["status"]

    def _cancel(self, name: str) -> None:
        self._jobs[name].update(status="Canceled", pending=["Canceled"])
        for child in self._children.get(name, []):
            if self._jobs[child]["status"] not in FINAL:
                self._jobs[child].update(status="Canceled", pending=["Canceled"])

    def _deployment_log(self, deployment: str, tail: int | None, container: str = "InferenceServer") -> str:
        """A deployment's inference server log (the last ``tail`` lines); a failed one ends with its crash.
        ``container="StorageInitializer"``: the log of the container that downloads the model."""
        if container.lower() == "storageinitializer":
            lines = [f"Downloading model files for deployment {deployment}", "Model files downloaded"]
            return "\n".join(lines[-tail:] if tail else lines)
        lines = list(self.deployment_log)
        failed = any(found.get("properties", {}).get("provisioningState") == "Failed"
                     for endpoint in self._online.deployments.values() for name, found in endpoint.items()
                     if name == deployment)
        if failed:
            lines += ["Traceback (most recent call last):", "ModuleNotFoundError: No module named 'keras'",
                      "Worker exiting (pid: 42)"]
        return "\n".join(lines[-tail:] if tail else lines)

    def _log_text(self, name: str) -> str:
        """The job's driver log so far: all of it once the job runs (lines end with newlines, as a log file).
        A sweep parent's log is the sweep service's, one line per trial, no training output."""
        if name in self._children:
            return "".join(f"[{_now()}] Trial {child} submitted\n" for child in self._children[name])
        return "".join(line + "\n" for line in self.log_lines)

    # -- MLflow: the store behind the workspace's azureml:// tracking URI ----------------------------

    def tracking_uri_for(self, subscription: str, group: str, workspace: str) -> str:
        return (f"azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/{subscription}/resourceGroups/"
                f"{group}/providers/Microsoft.MachineLearningServices/workspaces/{workspace}")

    @property
    def store_dir(self) -> str:
        """The folder of the local MLflow store (created on first use)."""
        if self._store_dir is None:
            self._store_dir = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="fake-azureml-mlflow-"))
        return self._store_dir

    @property
    def store_uri(self) -> str:
        """The local SQLite MLflow store standing in for the workspace's (created on first use)."""
        return f"sqlite:///{self.store_dir}/mlflow.db"

    def _create_tracking_run(self, experiment: str, metrics: dict, params: dict) -> str:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.store_uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(
            experiment, artifact_location=Path(self.store_dir, "artifacts").as_uri())
        run_id = client.create_run(experiment_id).info.run_id
        logged = []
        for name, value in metrics.items():
            history = value if isinstance(value, list) else [value]
            logged += [Metric(name, float(each), 0, step) for step, each in enumerate(history)]
        client.log_batch(run_id, metrics=logged, params=[Param(k, str(v)) for k, v in params.items()])
        return run_id

    def _plugin_store(self, service_context: Any) -> Any:
        """Replaces azureml-mlflow's ``AzureMLRestStore(service_context)``: the local store, job names as run ids."""
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        fake = self
        self.credentials.append(service_context.auth)
        self._record("MLflow.store", service_context.workspace_name)

        class JobNamedStore(SqlAlchemyStore):
            def get_run(self, run_id: Any) -> Any:
                return super().get_run(fake._run_ids.get(run_id, run_id))

        return JobNamedStore(self.store_uri, Path(self.store_dir, "artifacts").as_uri())

    # -- patches ------------------------------------------------------------------------------------

    def _runs_operations(self, job_operations: Any) -> Any:
        from azure.ai.ml.operations._run_operations import RunOperations

        return RunOperations(job_operations._operation_scope, job_operations._operation_config,
                             self._run_history)  # type: ignore[arg-type]  # a duck-typed run-history client

    def _download(self, uri: str, destination: str, datastore_operation: Any) -> str:
        """Mirrors ``download_artifact_from_aml_uri``: the job's files under ``destination``."""
        self._record("Storage.download", uri)
        job = re.search(r"dcid\.([^/]+)", uri)
        if job and job.group(1) in self._children:  # a sweep parent holds no files: its trials do
            return destination
        for relative, content in self.run_files.items():
            target = Path(destination) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return destination

    def __enter__(self) -> "FakeMLClient":
        import azure.ai.ml.operations._job_operations as job_module
        import azure.ai.ml.operations._job_ops_helper as helper
        import azure.ai.ml.operations._model_operations as model_module
        import azureml.mlflow._store.tracking.store as plugin_store
        from azure.ai.ml import MLClient
        from azure.ai.ml._artifacts import _artifact_utilities as artifacts
        from azure.ai.ml.operations import JobOperations
        from azureml.mlflow._internal.service_context_loader import _AzureMLServiceContextLoader

        self.transport = FakeTransport(self)
        self._run_history = FakeRunHistory(self)
        self.store_uri  # noqa: B018 - create the store before any job
        real_init = MLClient.__init__
        fake = self

        def init(client: Any, credential: Any = None, *args: Any, **kwargs: Any) -> None:
            real_init(client, _FakeLogin(fake, credential), *args,
                      **{**kwargs, "transport": fake.transport, "retry_total": 0})

        patches: list[Any] = [
            mock.patch.object(MLClient, "__init__", init),
            mock.patch.object(JobOperations, "_runs_operations", property(self._runs_operations)),
            mock.patch.object(helper, "_wait_before_polling", lambda seconds: 0),
            mock.patch.object(artifacts, "get_storage_client", lambda **kwargs: _RecordingStorage(fake)),
            mock.patch.object(model_module, "get_storage_client", lambda **kwargs: _RecordingStorage(fake)),
            mock.patch.object(JobOperations, "_get_named_output_uri", lambda ops, name, output_names=None: {
                "default": f"azureml://datastores/workspaceartifactstore/paths/ExperimentRun/dcid.{name}/"}),
            mock.patch.object(job_module, "download_artifact_from_aml_uri", self._download),
            mock.patch.object(plugin_store, "AzureMLRestStore", self._plugin_store),
            mock.patch.dict(_AzureMLServiceContextLoader._tracking_uri_to_service_context),
            azure_resolves(),
        ]
        for patch in patches:
            self._stack.enter_context(patch)
        self._stack.callback(_forget_mlflow_stores)
        _forget_mlflow_stores()
        reset_invoke_headers()  # on entry and on exit: no test depends on what an earlier invoke left there
        self._stack.callback(reset_invoke_headers)
        self.ml_client = MLClient(FakeCredential(), SUBSCRIPTION, "fake-rg", "fake-workspace")
        self.calls.clear()
        return self
