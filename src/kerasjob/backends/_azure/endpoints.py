"""Azure ML managed online endpoints: a registered MLflow model served with no scoring script and no environment.

Azure ML builds the scoring server of an ``mlflow_model`` itself ("no-code
deployment"), so a deployment names only the model, the VM size and the count.
:class:`AzureEndpoints` is the ``azureml-v2`` backend's endpoint host (and the
``azureml`` one's: SDK v1's ACI/AKS web services are deprecated, so a v1 workspace
deploys through azure-ai-ml, see :func:`v1_workspace_endpoints`).

``deploy`` is a safe rollout: read the registered model's input example (its
``input_example.json``, else a zero row shaped by its signature); get or create the
endpoint (key auth); create a new deployment under a fresh name; wait until it is
provisioned; invoke it by name (at 0% traffic) with the input example; only when it
answers well-formed predictions (one row of numbers per input row) send it 100% of
the traffic; only then delete the old deployments. A new deployment that fails to
provision or answers badly is deleted after its log tail is read, the traffic stays
where it was (the old deployment keeps serving), and ``DeploymentFailed`` carries
the log. Ctrl-C while waiting raises ``DeploymentInterrupted`` naming what exists on
Azure and how to remove it.

Every invoke runs with azure-ai-ml's class-level invoke headers emptied before and
after (:func:`clean_invoke_headers`): ``OnlineEndpointOperations.invoke`` writes the
deployment name into ``EndpointInvokeFields.DEFAULT_HEADER`` and never takes it out.

Scoring: Azure's no-code MLflow server reads ``{"input_data": ...}`` (a list of rows is an array, a dict with
``columns``, ``index`` and ``data`` a pandas DataFrame, any other dict named tensors) and answers the model's output
as a JSON list, one row per input (``run`` and ``parse_model_input_from_input_data_traditional`` in
Azure/azureml-assets,
assets/training/model_management/environments/mlflow-model-inference/context/mlflow_score_script.py). ``invoke``
reads the served model's MLflow signature (its ``MLmodel``, downloaded once per endpoint handle) and takes what
``predict`` takes for it: images for an image model, named columns for a tabular one, a dict of arrays for a
multi-input one (``prediction.load_inputs`` and ``prediction.request_body``, as the local endpoint does).

Example:
    >>> from kerasjob import deploy_model
    >>> endpoint = deploy_model("keras-mnist:3", endpoint="mnist", backend="azureml-v2")   # doctest: +SKIP
    >>> endpoint.invoke("seven.png").digits                                               # doctest: +SKIP
    [7]
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ...azure_errors import azure_access, is_not_found, translate_access_error
from ...hosting import Endpoint, EndpointHost, prediction_from
from ...errors import BackendUnavailable, DeploymentFailed, DeploymentInterrupted, KerasJobError, ValidationError
from ...optional import AZUREML_V2
from ...prediction import ModelSchema, Prediction, load_inputs, read_schema, request_body
from ...retry import azure_call

__all__ = ["INSTANCE_TYPE", "LOG_TAIL_LINES", "MAX_LOG_LINES", "AzureEndpoint", "AzureEndpoints", "clean_invoke_headers",
           "deployment_name", "input_example", "malformed_answer", "registered_model", "scoring_payload",
           "v1_workspace_endpoints"]

logger = logging.getLogger(__name__)

#: Azure VM sizes as managed online deployments take them (``Standard_DS3_v2``, ``Standard_F4s_v2``, ...).
INSTANCE_TYPE = re.compile(r"^Standard_[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*$")
#: What DeploymentFailed carries of a failed deployment's log.
LOG_TAIL_LINES = 50
#: The most lines ``get_logs`` returns (``EndpointGetLogsFields.LINES`` in azure/ai/ml/constants/_endpoint.py).
MAX_LOG_LINES = 5000
_REGISTERED = re.compile(r"^(?:models:/|azureml:)?([A-Za-z0-9][A-Za-z0-9._-]*)[/:]([0-9]+)$")
_MODEL_ARM_ID = re.compile(r"/models/([^/]+)/versions/([^/]+)$")


def registered_model(model: object) -> tuple[str, str]:
    """``(name, version)`` of the workspace model that ``model`` names; checked offline.

    ``model`` is a ``TrainingResult`` (its registered model), ``"models:/NAME/VERSION"``,
    ``"NAME:VERSION"`` or ``"azureml:NAME:VERSION"``. A local folder is refused: it
    would have to be uploaded and registered first, which deploying does not do behind your back.

    Example:
        >>> registered_model("models:/keras-mnist/3")
        ('keras-mnist', '3')
    """
    from ...registration import TrainingResult

    if isinstance(model, TrainingResult):
        return model.model_name, model.model_version
    expected = "a TrainingResult, 'models:/NAME/VERSION' or 'NAME:VERSION' of a model registered in the workspace"
    if isinstance(model, (str, os.PathLike)):
        text = str(model)
        match = _REGISTERED.match(text)
        if match and not Path(text).is_dir():
            return match.group(1), match.group(2)
        if Path(text).is_dir():
            raise ValidationError("model", expected, text, hint=(
                "A local folder is not uploaded by deploy: register it first (ml_client.models.create_or_update("
                "Model(path=FOLDER, type='mlflow_model', name=NAME))) and deploy NAME:VERSION, or serve it here "
                "with backend='local'."))
    raise ValidationError("model", expected, model)


def deployment_name(version: str) -> str:
    """A new deployment's name: ``v<model version>-<6 hex>``, under Azure's rule for deployment names
    (the endpoint rule, ``validate_endpoint_or_deployment_name(..., is_deployment=True)``) and in lowercase,
    as azure-ai-ml lowercases the names in a traffic map (``_strip_zeroes_from_traffic``).

    Example:
        >>> bool(re.match(r"^v3-[0-9a-f]{6}$", deployment_name("3")))
        True
    """
    return f"v{re.sub(r'[^a-z0-9]', '', version.lower())[:24]}-{uuid.uuid4().hex[:6]}"


def scoring_payload(rows: list[list[float]]) -> dict[str, Any]:
    """What Azure's no-code MLflow scoring server reads for rows of numbers: ``{"input_data": rows}`` (a list
    becomes the model's NumPy input; ``prediction.request_body(..., server="azureml")`` for any input).

    Example:
        >>> scoring_payload([[0.0, 1.0]])
        {'input_data': [[0.0, 1.0]]}
    """
    return request_body(rows, server="azureml")


@contextlib.contextmanager
def clean_invoke_headers() -> Iterator[None]:
    """Run an ``online_endpoints.invoke`` with azure-ai-ml's shared invoke headers emptied before and after.

    ``OnlineEndpointOperations.invoke`` (``operations/_online_endpoint_operations.py``) does
    ``headers = EndpointInvokeFields.DEFAULT_HEADER`` and then writes ``azureml-model-deployment`` into it: a
    class-level dict (``constants/_endpoint.py``), so after one invoke by deployment name every later invoke in
    the process would go to that deployment, whatever the traffic says.

    Example:
        >>> with clean_invoke_headers():                                   # doctest: +SKIP
        ...     ml_client.online_endpoints.invoke("mnist", request_file="request.json")
    """
    from azure.ai.ml.constants._endpoint import EndpointInvokeFields

    def clean() -> None:
        for key in (EndpointInvokeFields.MODEL_DEPLOYMENT, EndpointInvokeFields.AUTHORIZATION):
            EndpointInvokeFields.DEFAULT_HEADER.pop(key, None)

    clean()
    try:
        yield
    finally:
        clean()


def _invoke(ml_client: Any, endpoint: str, payload: Any, deployment: str | None = None) -> str:
    """POST ``payload`` to ``endpoint`` (to ``deployment`` by name when given) through ``online_endpoints.invoke``,
    which reads its payload from a file; the answer's text."""
    with tempfile.TemporaryDirectory(prefix="kerasjob-invoke-") as folder:
        request = Path(folder) / "request.json"
        request.write_text(json.dumps(payload))
        with clean_invoke_headers():
            return str(azure_call(ml_client.online_endpoints.invoke, endpoint_name=endpoint,
                                  request_file=str(request), **({"deployment_name": deployment} if deployment else {})))


def _example_request(folder: Path) -> tuple[dict[str, Any], int] | None:
    """The request that tries a deployment of the MLflow model in ``folder``, and its number of examples: its
    ``input_example.json`` read through its signature (any model: arrays, named tensors, named columns), else
    :func:`input_example`'s zero row; None when the model says neither."""
    mlmodel = next(iter(sorted(folder.rglob("MLmodel"))), None)
    example = next(iter(sorted(folder.rglob("input_example.json"))), None)
    if mlmodel is not None and example is not None:
        try:
            inputs = load_inputs(str(example), read_schema(str(mlmodel.parent), None))
        except (KerasJobError, ValueError) as error:
            logger.warning("The model's input example does not fit its signature (%s)", error)
        else:
            return request_body(inputs, server="azureml"), len(next(iter(inputs.values())) if isinstance(
                inputs, dict) else inputs)
    rows = input_example(folder)
    return None if rows is None else (scoring_payload(rows), len(rows))


def input_example(folder: str | os.PathLike[str]) -> list[Any] | None:
    """The rows to test a deployment of the MLflow model in ``folder`` with: its ``input_example.json`` (rows; pandas
    ``split``; ``{"inputs": ...}``), else one zero row shaped by its signature's ``(-1, N)`` tensor; None when the
    model says neither.

    Example:
        >>> input_example("outputs/model")[0][:3]   # doctest: +SKIP
        [0.0, 0.0, 0.0]
    """
    root = Path(folder)
    example = next(iter(sorted(root.rglob("input_example.json"))), None)
    if example is not None:
        data = json.loads(example.read_text())
        if isinstance(data, dict):
            data = data.get("data", data.get("inputs", data.get("input_data")))
        if isinstance(data, list) and data:
            return data if isinstance(data[0], list) else [data]
    mlmodel = next(iter(sorted(root.rglob("MLmodel"))), None)
    if mlmodel is not None:
        import yaml

        signature = (yaml.safe_load(mlmodel.read_text()) or {}).get("signature") or {}
        inputs = json.loads(signature.get("inputs") or "[]")
        shape = inputs[0].get("tensor-spec", {}).get("shape") if len(inputs) == 1 else None
        if shape and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0:
            return [[0.0] * shape[1]]
    return None


def malformed_answer(answer: str, rows: int) -> str:
    """Why ``answer`` (a scoring server's reply text) is not well-formed predictions for ``rows`` input rows:
    JSON, one row (a list of finite numbers, or a number) per input row; "" when it is.

    Example:
        >>> malformed_answer("[[0.1, 0.9]]", 1), malformed_answer('{"error": "boom"}', 1)
        ('', "not a list of predictions: {'error': 'boom'}")
    """
    try:
        data = json.loads(answer)
    except (TypeError, ValueError):
        return f"not JSON: {str(answer)[:120]!r}"
    if isinstance(data, dict) and isinstance(data.get("predictions"), list):
        data = data["predictions"]
    if not isinstance(data, list):
        return f"not a list of predictions: {str(data)[:120]}"
    if len(data) != rows:
        return f"{len(data)} prediction(s) for {rows} input row(s)"
    for row in data:
        values = row if isinstance(row, list) else [row]
        if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                 for v in values):
            return f"a prediction that is not finite numbers: {str(row)[:120]}"
    return ""


def _download(ml_client: Any, model_name: str, version: str, folder: str, wanted: str) -> bool:
    """Download the files of model ``model_name:version`` into ``folder``; False (with a warning naming what is
    ``wanted`` of them) when this machine can't read them (a storage firewall); an access refusal is raised."""
    try:
        azure_call(ml_client.models.download, model_name, version, download_path=folder)
    except Exception as error:  # noqa: BLE001 - storage this machine can't read need not stop a deploy or invoke
        if translate_access_error(error) is not None:
            raise
        logger.warning("Could not read model %s:%s's files for %s (%s)", model_name, version, wanted,
                       str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
        return False
    return True


def _model_reference(arm_id: str | None) -> str:
    """``azureml:NAME:VERSION`` for a deployment's model (the service answers its ARM id)."""
    match = _MODEL_ARM_ID.search(arm_id or "")
    return f"azureml:{match.group(1)}:{match.group(2)}" if match else arm_id or ""


def _missing(error: BaseException) -> bool:
    """A 404 for the thing asked for; not ARM's 404 for a workspace that does not exist."""
    return is_not_found(error) and translate_access_error(error) is None


def _workspace_words(ml_client: Any) -> str:
    """How messages name the workspace (``azure_access`` puts it in its errors)."""
    return f"Azure ML workspace {ml_client.workspace_name!r}"


class _StillRunning(Exception):
    """A long-running operation outlasted the caller's timeout (it goes on on Azure)."""


def _wait(start: Callable[[], Any], timeout: float | None) -> Any:
    """Start a long-running operation (``start()`` returns its poller) and return its result, raising its error.

    azure-ai-ml's ``AzureMLPolling`` prints a "." per poll, from the poller's thread as soon as it starts: stdout
    is the CLI's, so the dots go nowhere. Raises ``_StillRunning`` when the operation has not ended within
    ``timeout`` seconds.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        poller = start()
        poller.wait(timeout)
    if not poller.done():
        raise _StillRunning
    return poller.result()


_CREATING = "creating the endpoint"
_PROVISIONING = "provisioning the new deployment"
_DROPPING = "deleting the failed deployment"
_CHECKING = "invoking the new deployment with the model's input example"
_MOVING = "moving the traffic to the new deployment"
_CLEANING = "deleting the old deployments"


@dataclass
class _Rollout:
    """What a deploy has done so far, for the message of a Ctrl-C, a timeout or a failure."""

    endpoint: str
    backend: str
    step: str = "reading the workspace"
    created_endpoint: bool = False
    new: str = ""
    old: list[str] = field(default_factory=list)

    def serving(self) -> str:
        if self.old:
            return f"deployment {', '.join(map(repr, self.old))} keeps serving the endpoint's traffic"
        return "no deployment serves the endpoint yet"

    def state(self) -> str:
        """Where things stand on Azure and how to clean up, in words."""
        name = self.endpoint
        remove_endpoint = f"`kerasjob endpoints delete {name} --backend {self.backend}`"
        remove_deployment = "`az ml online-deployment delete --endpoint-name {} --name {} --yes`".format
        if self.step == _CREATING:
            return (f"Endpoint {name!r} is being created on Azure and that goes on without you; remove it with "
                    f"{remove_endpoint}.")
        if not self.new:
            return (f"Endpoint {name!r} was created and has no deployment; remove it with {remove_endpoint}."
                    if self.created_endpoint else "Nothing was changed on Azure.")
        if self.step in (_PROVISIONING, _CHECKING):
            return (f"Endpoint {name!r} exists; deployment {self.new!r} is still provisioning on Azure (that goes on "
                    f"without you) and has no traffic: {self.serving()}. Remove the new deployment with "
                    f"{remove_deployment(name, self.new)} (or ml_client.online_deployments.begin_delete({self.new!r}, "
                    f"endpoint_name={name!r})), or the whole endpoint with {remove_endpoint}.")
        if self.step == _DROPPING:
            return (f"Deployment {self.new!r} failed and is being deleted, and no traffic goes to it: "
                    f"{self.serving()}.")
        old = ", ".join(map(repr, self.old)) or "none"
        if self.step == _MOVING:
            return (f"Deployment {self.new!r} of endpoint {name!r} is provisioned and 100% of the traffic is being "
                    f"moved to it; the old deployments ({old}) are still there: remove each with "
                    f"{remove_deployment(name, 'NAME')} once the traffic has moved, or everything with "
                    f"{remove_endpoint}.")
        return (f"Endpoint {name!r} serves deployment {self.new!r} (100% of the traffic); the old deployments ({old}) "
                f"are being deleted, or are left to remove with {remove_deployment(name, 'NAME')}.")


@dataclass(frozen=True)
class AzureEndpoint(Endpoint):
    """An Azure ML managed online endpoint: its scoring URI, the deployment and model serving it, its traffic."""

    name: str
    backend: str
    url: str
    model: str
    deployment: str
    traffic: dict[str, int]
    state: str
    ml_client: Any = field(repr=False, compare=False)
    _schemas: dict[str, ModelSchema] = field(default_factory=dict, repr=False, compare=False)

    @property
    def _where(self) -> str:
        return _workspace_words(self.ml_client)

    def _schema(self) -> ModelSchema:
        """The served model's input schema, from the ``MLmodel`` of its registered files (read once per handle: a
        model version's files never change). A model whose files can't be read here is taken as an image model,
        as before signatures were read."""
        match = re.match(r"^azureml:([^:]+):([^:]+)$", self.model)
        if match is None:
            return ModelSchema("unknown", {})
        if self.model not in self._schemas:
            with tempfile.TemporaryDirectory(prefix="kerasjob-model-") as folder:
                mlmodel = None
                if _download(self.ml_client, match.group(1), match.group(2), folder, "its signature"):
                    mlmodel = next(iter(sorted(Path(folder).rglob("MLmodel"))), None)
                self._schemas[self.model] = (read_schema(str(mlmodel.parent), None) if mlmodel is not None
                                             else ModelSchema("unknown", {}))
        return self._schemas[self.model]

    def invoke(self, inputs: Any) -> Prediction:
        """POST ``inputs`` (any form ``predict`` takes for the served model's signature: images for an image model,
        named columns, a dict of arrays) through ``online_endpoints.invoke`` as ``{"input_data": ...}``; what the
        model answers (digits and probabilities for a classifier)."""
        with azure_access(self._where):
            schema = self._schema()
        payload = request_body(load_inputs(inputs, schema), server="azureml")
        with azure_access(self._where):
            answer = _invoke(self.ml_client, self.name, payload)  # routed by the traffic, never a stale header
        try:
            rows = json.loads(answer)
        except json.JSONDecodeError:
            raise KerasJobError(f"Endpoint {self.name!r} answered {answer[:200]!r}, not JSON.") from None
        return prediction_from(rows)

    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines (at most 5000) of the serving deployment's inference server log."""
        if not self.deployment:
            return ""
        with azure_access(self._where):
            return str(azure_call(self.ml_client.online_deployments.get_logs, name=self.deployment,
                                  endpoint_name=self.name, lines=min(lines, MAX_LOG_LINES)))

    def delete(self) -> None:
        """Delete the endpoint and its deployments (``online_endpoints.begin_delete``), waiting until it is gone."""
        try:
            with azure_access(self._where):
                _wait(lambda: self.ml_client.online_endpoints.begin_delete(name=self.name), None)
        except KeyboardInterrupt as interrupt:
            raise DeploymentInterrupted(f"Endpoint {self.name!r} is being deleted on Azure; the deletion goes on "
                                        "without you.") from interrupt

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, "url": self.url, "model": self.model,
                "deployment": self.deployment, "traffic": self.traffic, "state": self.state,
                "running": self.state == "Succeeded" and bool(self.deployment)}


class AzureEndpoints(EndpointHost):
    """The managed online endpoints of one Azure ML workspace (an ``MLClient``'s)."""

    def __init__(self, ml_client: Any, *, backend: str = "azureml-v2") -> None:
        self.ml_client = ml_client
        self.backend = backend

    @property
    def _where(self) -> str:
        return _workspace_words(self.ml_client)

    def deploy(self, model: object, name: str, *, instance_type: str, instance_count: int,
               timeout: float | None) -> AzureEndpoint:
        """Safe rollout of ``model`` (a registered MLflow model) to endpoint ``name``; see the module docstring."""
        if not isinstance(instance_type, str) or not INSTANCE_TYPE.match(instance_type):
            raise ValidationError("instance_type", "an Azure VM size such as 'Standard_DS3_v2'", instance_type)
        if isinstance(instance_count, bool) or not isinstance(instance_count, int) or instance_count < 1:
            raise ValidationError("instance_count", "an integer >= 1", instance_count)
        model_name, version = registered_model(model)
        rollout = _Rollout(name, self.backend)
        try:
            with azure_access(self._where):
                return self._roll_out(rollout, f"azureml:{model_name}:{version}", instance_type, instance_count,
                                      timeout)
        except KeyboardInterrupt as interrupt:
            raise DeploymentInterrupted(f"Interrupted while {rollout.step}. {rollout.state()}") from interrupt
        except _StillRunning:
            raise KerasJobError(f"Still {rollout.step} after {timeout:.0f} s. {rollout.state()}") from None

    def _roll_out(self, rollout: _Rollout, model: str, instance_type: str, instance_count: int,
                  timeout: float | None) -> AzureEndpoint:
        from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint

        client, name = self.ml_client, rollout.endpoint
        example = self._check_model(model)
        endpoint = self._find(name)
        if endpoint is None:
            rollout.step, rollout.created_endpoint = _CREATING, True
            endpoint = _wait(lambda: client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(
                name=name, auth_mode="key", description="Deployed by kerasjob")), timeout)
        rollout.old = [each.name for each in azure_call(lambda: list(client.online_deployments.list(name)))]
        rollout.step = _PROVISIONING
        rollout.new = deployment_name(model.rsplit(":", 1)[1])
        deployment = ManagedOnlineDeployment(name=rollout.new, endpoint_name=name, model=model,
                                             instance_type=instance_type, instance_count=instance_count)
        try:
            created = _wait(lambda: client.online_deployments.begin_create_or_update(deployment), timeout)
        except Exception as error:  # noqa: BLE001 - the deployment's own state tells a failure from an outage
            self._fail_if_not_provisioned(rollout, error)
            raise
        self._fail_if_not_provisioned(rollout, None)
        if example is not None:
            rollout.step = _CHECKING
            self._check_answers(rollout, example)
        rollout.step = _MOVING
        endpoint.traffic = {rollout.new: 100}
        endpoint = _wait(lambda: client.online_endpoints.begin_create_or_update(endpoint), timeout)
        rollout.step = _CLEANING
        for old in rollout.old:
            _wait(lambda: client.online_deployments.begin_delete(name=old, endpoint_name=name), timeout)
        return self._handle(endpoint, [created])

    def _check_answers(self, rollout: _Rollout, example: tuple[dict[str, Any], int]) -> None:
        """Invoke the new deployment by name (it has no traffic yet) with the model's input example (the request
        and its number of examples); unless it answers well-formed predictions, delete it and raise
        ``DeploymentFailed`` (the old one keeps serving)."""
        request, rows = example
        try:
            answer, problem = _invoke(self.ml_client, rollout.endpoint, request, rollout.new), ""
        except Exception as error:  # noqa: BLE001 - a 4xx/5xx from the scoring server is the check failing
            from azure.core.exceptions import HttpResponseError

            if not isinstance(error, HttpResponseError) or translate_access_error(error) is not None:
                raise
            problem = f"an error: {str(error).strip().splitlines()[0][:200]}"
        else:
            problem = malformed_answer(answer, rows)
        if problem:
            self._drop(rollout, f"it answered the model's input example with {problem}")
        logger.info("Deployment %s answered the input example with well-formed predictions", rollout.new)

    def _check_model(self, model: str) -> tuple[dict[str, Any], int] | None:
        """Refuse a model the workspace lacks, or one Azure can't serve without a scoring script; return the request
        of its input example and its number of examples (None when the model has neither an example nor a tensor
        signature, or its files can't be read here)."""
        _, model_name, version = model.split(":")
        try:
            asset = azure_call(self.ml_client.models.get, model_name, version=version)
        except Exception as error:  # noqa: BLE001 - only "not found" is the caller's mistake
            if not _missing(error):
                raise
            raise ValidationError("model", f"a model registered in {self._where}", f"{model_name}:{version}",
                                  hint="A TrainingResult of a local run lives in the local MLflow registry: deploy "
                                       "it with backend='local'.") from None
        if asset.type != "mlflow_model":
            fix = (f"ml_client.models.create_or_update(Model(name={model_name!r}, path={asset.path!r}, "
                   "type='mlflow_model'))")
            raise ValidationError("model", "an mlflow_model (Azure ML serves those with no scoring script)",
                                  f"{model_name}:{version} of type {asset.type}",
                                  hint=f"If its files are an MLflow model (kerasjob's outputs/model is), register "
                                       f"them as one and deploy that version: {fix}.")
        with tempfile.TemporaryDirectory(prefix="kerasjob-model-") as folder:
            if not _download(self.ml_client, model_name, version, folder,
                             "the input example: the new deployment is not tried before the traffic moves to it"):
                return None
            example = _example_request(Path(folder))
        if example is None:
            logger.warning("Model %s:%s has no input example and no tensor signature: the new deployment is not "
                           "tried before the traffic moves to it", model_name, version)
        return example

    def _fail_if_not_provisioned(self, rollout: _Rollout, error: BaseException | None) -> None:
        """When the new deployment ended in Failed: read its log, delete it (traffic never moved to it) and raise
        ``DeploymentFailed``; a deployment that exists and did not fail is left alone."""
        client, name = self.ml_client, rollout.endpoint
        try:
            state = azure_call(client.online_deployments.get, rollout.new, endpoint_name=name).provisioning_state
        except Exception as lookup:  # noqa: BLE001 - gone or unreadable: the first error tells more
            if error is None or not _missing(lookup):
                raise
            return
        if state == "Succeeded" or (error is not None and state not in ("Failed", "Canceled")):
            return
        self._drop(rollout, str(error).strip().splitlines()[0] if error is not None else f"provisioning state {state}")

    def _drop(self, rollout: _Rollout, reason: str) -> None:
        """Read the new deployment's log tail, delete it (no traffic ever went to it) and raise ``DeploymentFailed``."""
        client, name = self.ml_client, rollout.endpoint
        try:
            log_tail = str(azure_call(client.online_deployments.get_logs, name=rollout.new, endpoint_name=name,
                                      lines=LOG_TAIL_LINES))
        except Exception:  # noqa: BLE001 - a failed container may have no log to give
            log_tail = ""
        rollout.step = _DROPPING
        _wait(lambda: client.online_deployments.begin_delete(name=rollout.new, endpoint_name=name), None)
        raise DeploymentFailed(f"Deployment {rollout.new!r} to endpoint {name!r} failed: {reason}. It was deleted, "
                               f"and no traffic was moved to it: {rollout.serving()}.", endpoint=name,
                               deployment=rollout.new, log_tail=log_tail)

    def _find(self, name: str) -> Any:
        """The ``OnlineEndpoint`` entity called ``name``, or None."""
        try:
            return azure_call(self.ml_client.online_endpoints.get, name)
        except Exception as error:  # noqa: BLE001 - only "not found" means None
            if not _missing(error):
                raise
            return None

    def _handle(self, endpoint: Any, deployments: list[Any]) -> AzureEndpoint:
        traffic = {key: int(value) for key, value in (endpoint.traffic or {}).items()}
        serving = max(traffic, key=lambda key: traffic[key]) if any(traffic.values()) else ""
        model = next((each.model for each in deployments if each.name.lower() == serving.lower()), None)
        return AzureEndpoint(name=endpoint.name, backend=self.backend, url=endpoint.scoring_uri or "",
                             model=_model_reference(model), deployment=serving, traffic=traffic,
                             state=str(getattr(endpoint.provisioning_state, "value", endpoint.provisioning_state)
                                       or ""), ml_client=self.ml_client)

    def _read(self, endpoint: Any) -> AzureEndpoint:
        deployments = azure_call(lambda: list(self.ml_client.online_deployments.list(endpoint.name)))
        return self._handle(endpoint, deployments)

    def get(self, name: str) -> AzureEndpoint | None:
        with azure_access(self._where):
            endpoint = self._find(name)
            return None if endpoint is None else self._read(endpoint)

    def list(self) -> list[Endpoint]:
        with azure_access(self._where):
            endpoints = azure_call(lambda: list(self.ml_client.online_endpoints.list()))
            return [self._read(endpoint) for endpoint in sorted(endpoints, key=lambda each: each.name)]


def v1_workspace_endpoints(workspace: Any = None, *, config: str | os.PathLike[str] | None = None,
                           subscription_id: str | None = None, resource_group: str | None = None,
                           workspace_name: str | None = None, auth: str = "default") -> AzureEndpoints:
    """The endpoints of an SDK v1 workspace, served through azure-ai-ml in the same workspace.

    SDK v1's web services (ACI, AKS) are deprecated for new deployments and Azure points to
    managed online endpoints, which see the models a v1 run registered. ``workspace`` is an
    ``azureml.core.Workspace`` (its ids are used); else the same config file or ids and ``auth``
    make the ``MLClient``. Without azure-ai-ml installed this raises ``BackendUnavailable`` saying why.
    """
    absent = AZUREML_V2.missing()
    if absent:
        raise BackendUnavailable("azureml", AZUREML_V2.extra, f"{', '.join(absent)} to deploy a model (SDK v1's "
                                 "ACI/AKS web services are deprecated; kerasjob serves a v1 workspace's models at "
                                 "Azure ML managed online endpoints through azure-ai-ml)")
    from .workspace import credential_for, load_ml_client

    if workspace is not None:
        from azure.ai.ml import MLClient

        client = MLClient(credential_for(auth), workspace.subscription_id, workspace.resource_group, workspace.name)
    else:
        client = load_ml_client(config, subscription_id=subscription_id, resource_group=resource_group,
                                workspace_name=workspace_name, auth=auth)
    return AzureEndpoints(client, backend="azureml")
