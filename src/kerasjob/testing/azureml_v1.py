"""A fake Azure ML (SDK v1) *below* azureml-core's own classes, for your own unit tests.

The SDK's classes run for real: a real ``Workspace`` (built offline with a fake
login), real ``Experiment``, ``Run``/``ScriptRun`` and ``HyperDriveRun`` objects,
so ``Run.wait_for_completion`` (its Ctrl-C and failure conversions),
``HyperDriveRun.get_hyperparameters`` and ``get_children_sorted_by_primary_metric``,
``ComputeTarget(workspace, name)`` and ``Dataset.get_by_name`` (their error
conversions) and ``Run.register_model`` all run their own code. What is faked
is the service underneath:

- the run-history clients (``RunClient``, ``ArtifactsClient``, ``MetricsClient``,
  ``AssetsClient``, ``SnapshotsClient``, ``WorkspaceClient``), the model
  registry client (``ModelsClient``) and the HyperDrive REST client: their
  methods answer from the fake's state;
- service discovery and the workspace lookup (``_commands.get_workspace``), and
  the default interactive login (a fake ``AbstractAuthentication``);
- the execution service's "start run" POST (``_commands._start_internal``) and the
  blob reads of log files (``download_file_stream``, ``_get_content_from_uri``);
- the compute Resource Provider: an HTTP session answering ``GET`` with 200/404
  (or a status you choose); ``ComputeTarget.create`` itself is imitated (its
  PUT-and-poll protocol is not worth replaying), as is ``FileDataset.register``;
- the dataset REST client: ``get_dataset_by_name`` raises msrest's real
  ``HttpOperationError`` (404, or the status you choose), which the SDK converts;
  a found dataset is handed back as registered (``_dto_to_dataset`` needs the
  service's dataflow JSON, which cannot be built offline).

Call names in ``calls`` are the service operations: ``Workspace.get``,
``ComputeTarget`` (the RP GET), ``ComputeTarget.create``, ``Dataset.get_by_name``,
``FileDataset.register``, ``Experiment.submit`` (the start-run POST, or the
HyperDrive create), ``Run.get_status`` (a status read), ``Run.get_details_with_logs``
(a log read), ``Run.get_metrics``, ``Run.cancel`` (run history's "canceled" event),
``HyperDrive.cancel`` (``HyperDriveRun.cancel``: the parent and its trials), ``Run.get_children``,
``Run.register_model``, ``Model.list``, ``Model.update`` (a tag change), ``Run.get_file_names``,
``Run.download_file``, ``Run.get``. ``failures={"<name>": [...]}`` raises at that operation; a
``LostResponse(exc)`` carries the operation out first, then raises ``exc`` (a
response lost on the way back).

Example:
    >>> from kerasjob import submit_training
    >>> from kerasjob.testing import FakeAzureML
    >>> with FakeAzureML(final_status="Completed", metrics={"Final test accuracy": 0.98}) as azure:  # doctest: +SKIP
    ...     result = submit_training(workspace=azure.workspace, show_output=False)
"""

from __future__ import annotations

import copy
import datetime
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from types import SimpleNamespace
from unittest import mock

from ._service import FakeService, LostResponse, azure_resolves, spread

__all__ = ["BLOB", "DRIVER_LOG", "FAKE_HOST", "HYPERDRIVE_LOG", "STUDIO", "FakeAzureML", "FakeComputeTarget", "FakeModel", "LostResponse"]

FAKE_HOST = "https://fake.api.azureml.invalid"
STUDIO = "https://ml.azure.com"  # the portal, as service discovery names it
BLOB = "https://fake.blob.invalid"
DRIVER_LOG = "azureml-logs/70_driver_log.txt"
HYPERDRIVE_LOG = "azureml-logs/hyperdrive.txt"


@dataclass
class FakeModel:
    """A registered model version, as the model registry holds it."""

    name: str
    version: int
    tags: dict
    model_path: str
    run_id: str


@dataclass
class _RunRecord:
    """The service's record of one run."""

    run_id: str
    experiment: str
    number: int
    statuses: list
    metrics: dict
    arguments: list
    parent: str | None = None
    tags: dict = field(default_factory=dict)
    run_type: str = "azureml.scriptrun"
    canceled: bool = False
    config: object = None

    def status(self, advance: bool) -> str:
        if self.canceled:
            return "Canceled"
        if advance and len(self.statuses) > 1:
            return self.statuses.pop(0)
        return self.statuses[0]


def _http_error(status: int, message: str) -> Any:
    """msrest's real ``HttpOperationError`` for an HTTP ``status`` response."""
    from msrest.exceptions import HttpOperationError

    response = SimpleNamespace(status_code=status, reason=message, headers={}, text=message,
                               content=json.dumps({"error": {"message": message}}).encode())
    error = HttpOperationError.__new__(HttpOperationError)
    Exception.__init__(error, message)
    error.message, error.response, error.error, error.inner_exception = message, response, None, None
    return error


class FakeComputeTarget:
    """What the imitated ``ComputeTarget.create`` returns: the cluster being provisioned."""

    def __init__(self, name: str, provisioning_state: str, configuration: Any) -> None:
        self.name = name
        self.provisioning_state = provisioning_state
        self.provisioning_errors = None if provisioning_state == "Succeeded" else [{"error": "fake failure"}]
        self.configuration = configuration

    def wait_for_completion(self, show_output: bool = False, min_node_count: int | None = None,
                            timeout_in_minutes: int = 20) -> None:
        self.timeout_in_minutes = timeout_in_minutes


@dataclass
class FakeAzureML(FakeService):
    """Fake Azure ML v1's service for the duration of a ``with`` block.

    Arguments as for :class:`kerasjob.testing._service.FakeService`, plus
    ``compute_errors``/``dataset_errors``: ``{name: HTTP status}`` the compute
    RP or the dataset service answers for that name (e.g. 403, 503), and
    ``computes`` as ``{name: vm_size}`` or a set of names. A submitted
    ``HyperDriveConfig`` gets one child per trial: child ``i`` takes the ``i``-th
    choice of each parameter (spread values for ranges), reports
    ``trial_metrics[i]`` and ends in ``trial_statuses[i]``.
    """

    compute_errors: dict = field(default_factory=dict)
    dataset_errors: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.runs: list[_RunRecord] = []
        self._runs: dict[str, _RunRecord] = {}
        self.registered_models: list[FakeModel] = []
        self._assets: dict[str, str] = {}  # asset id -> the run folder it holds
        self.datasets: dict[str, list[Any]] = {}
        self.uploads: list[Path] = []  # local folders uploaded to the default datastore (AzureBlobDatastore.upload)
        self._numbers = itertools.count(1)
        self.workspace: Any = None
        self.submissions: list[Any] = []  # the submitted run configurations, in order
        self.created_computes: list[FakeComputeTarget] = []

    # --- failures ------------------------------------------------------------------------

    def _refuse_workspace(self, subscription_id: str, resource_group: str, workspace_name: str) -> None:
        """What ``get_workspace`` raises when this login may not read the workspace.

        Not logged in: the login raises ``AuthenticationException`` with the words of
        ``AzureCliAuthentication`` (azureml/core/authentication.py) when the CLI has no account. A 403 or 404 from ARM goes
        through azureml-core's own ``resource_error_handling``: ``ProjectSystemException``.
        """
        import requests
        from azureml._base_sdk_common.common import resource_error_handling
        from azureml.exceptions import AuthenticationException

        if self.access == "not-logged-in":
            raise AuthenticationException("Could not retrieve user refresh token. Please run 'az login'.")
        status, code = (403, "AuthorizationFailed") if self.access == "forbidden" else (404, "ResourceNotFound")
        response = requests.Response()
        response.status_code, response.url = status, (
            f"https://management.azure.com/subscriptions/{subscription_id}/resourceGroups/{resource_group}/"
            f"providers/Microsoft.MachineLearningServices/workspaces/{workspace_name}")
        response._content = json.dumps({"error": {"code": code, "message": f"{code} (fake)"}}).encode()
        resource_error_handling(SimpleNamespace(response=response), "Workspace")

    def run(self, run_id: str) -> _RunRecord:
        """The service's record of ``run_id``."""
        return self._runs[run_id]

    # --- runs ----------------------------------------------------------------------------

    def _new_run(self, run_id: str, experiment: str, config: Any, *, parent: str | None = None,
                 metrics: dict[str, Any] | None = None, final_status: str | None = None,
                 statuses: list[str] | None = None, arguments: list[str] | None = None,
                 run_type: str = "azureml.scriptrun") -> _RunRecord:
        if arguments is None:
            arguments = [str(a) for a in (getattr(config, "arguments", None) or [])]
        record = _RunRecord(run_id, experiment, next(self._numbers),
                            list(self.statuses if statuses is None else statuses) + [final_status or self.final_status],
                            dict(self.metrics if metrics is None else metrics), arguments, parent=parent,
                            run_type=run_type, config=config)
        self._runs[run_id] = record
        if parent is None:
            self.runs.append(record)
        return record

    def _run_dto(self, record: _RunRecord) -> Any:
        from azureml._restclient.models import RunDto

        return RunDto(run_id=record.run_id, run_number=record.number, root_run_id=record.parent or record.run_id,
                      parent_run_id=record.parent, experiment_id=f"id-{record.experiment}",
                      status=record.status(advance=False), data_container_id=f"dcid.{record.run_id}",
                      run_type=record.run_type, tags=dict(record.tags), properties={}, target="gpu-cluster",
                      created_utc=datetime.datetime(2024, 1, 1) + datetime.timedelta(minutes=record.number),
                      name=record.run_id,
                      run_definition={"arguments": record.arguments})

    def _logs(self, record: _RunRecord) -> dict:
        if record.run_type == "hyperdrive":  # the parent runs no script: HyperDrive's own log, no driver log
            return {HYPERDRIVE_LOG: f"{BLOB}/{record.run_id}/{HYPERDRIVE_LOG}"}
        return {DRIVER_LOG: f"{BLOB}/{record.run_id}/{DRIVER_LOG}"}

    def _log_text(self, url: str) -> str:
        if url.endswith(HYPERDRIVE_LOG):
            parent = url[len(BLOB) + 1:].split("/", 1)[0]
            return "".join(f"[{child.run_id}] trial submitted\n" for child in self._runs.values()
                           if child.parent == parent)
        return "\n".join(self.log_lines) + "\n" if url.startswith(BLOB) else ""

    def _submit_hyperdrive(self, config: Any, run_id: str, experiment: str, sent: dict[str, Any]) -> _RunRecord:
        parent = self._new_run(run_id, experiment, config, metrics={},
                               arguments=[str(a) for a in config.run_config.arguments],
                               run_type="hyperdrive")
        # The HyperDrive service keeps the sweep's settings as system tags of the parent run, from which
        # HyperDriveConfig._get_runconfig_from_run_dto rebuilds it when the run is read back (Run.get).
        for key in ("generator_config", "primary_metric_config", "policy_config", "platform_config",
                    "max_total_jobs", "max_concurrent_jobs", "max_duration_minutes"):
            parent.tags[f"_aml_system_{key}"] = json.dumps(sent[key])
        self.submissions.append(config)
        for index in range(config._max_total_runs):
            metrics, status = self.trial_outcome(index)
            values = _sampled_values(config, index)
            child_id = f"{run_id}_{index}"
            # HyperDrive appends the sampled flags to the script's arguments (azureml/core/runconfig.py).
            arguments = parent.arguments + [str(item) for pair in values.items() for item in pair]
            self._new_run(child_id, experiment, config, parent=run_id, metrics=metrics, final_status=status,
                          statuses=[], arguments=arguments)
            parent.tags[f"_aml_system_{child_id}"] = json.dumps(values)
        return parent

    # --- the patched service operations ----------------------------------------------------

    def _patches(self) -> list[Any]:
        import azureml._restclient.service_context as service_context
        import azureml.core.compute.compute as compute_module
        import azureml.core.run as run_module
        import azureml.core.workspace as workspace_module
        import azureml.data._dataset_rest_helper as dataset_rest
        import azureml.data.abstract_dataset as abstract_dataset
        import azureml.train.restclients.hyperdrive as hyperdrive_rest
        from azureml._execution import _commands as execution
        from azureml._project import _commands as project
        from azureml._restclient.artifacts_client import ArtifactsClient
        from azureml._restclient.assets_client import AssetsClient
        from azureml._restclient.experiment_client import ExperimentClient
        from azureml._restclient.metrics_client import MetricsClient
        from azureml._restclient.models import ErrorResponse, ExperimentDto, RootError, RunDetailsDto
        from azureml._restclient.models_client import ModelsClient
        from azureml._restclient.run_client import RunClient
        from azureml._restclient.snapshots_client import SnapshotsClient
        from azureml._restclient.workspace_client import WorkspaceClient
        from azureml.core import Run
        from azureml.core.authentication import AbstractAuthentication
        from azureml.core.compute import ComputeTarget
        from azureml.data.azure_storage_datastore import AzureBlobDatastore
        from azureml.data.datastore_client import _DatastoreClient
        from azureml.data.file_dataset import FileDataset

        fake = self

        class FakeAuthentication(AbstractAuthentication):
            """A login that never talks to Azure AD."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__()

            def _get_arm_token(self) -> str:
                return "fake-token"

            def _get_graph_token(self) -> str:
                return "fake-token"

            def _get_all_subscription_ids(self) -> tuple[list[str], bool]:
                return [], False

            def get_authentication_header(self) -> dict[str, str]:
                return {"Authorization": "Bearer fake-token"}

        def get_workspace(auth: Any, subscription_id: Any, resource_group: Any, workspace_name: Any, *args: Any,
                          **kwargs: Any) -> Any:
            # mirrors azureml._project._commands.get_workspace: the ARM read of the workspace
            if fake.access != "ok":
                return fake._record("Workspace.get", workspace_name, lambda: fake._refuse_workspace(
                    subscription_id, resource_group, workspace_name))
            return fake._record("Workspace.get", workspace_name, lambda: SimpleNamespace(
                location="eastus", discovery_url=FAKE_HOST + "/discovery", workspaceid=f"id-{workspace_name}",
                sku="basic", tags={}, sdk_telemetry_app_insights_key=None))

        def get_or_create_experiment(client: Any, experiment_name: Any, **kwargs: Any) -> Any:
            return ExperimentDto(experiment_id=f"id-{experiment_name}", name=experiment_name)

        def get_experiment_by_id(client: Any, experiment_id: Any, **kwargs: Any) -> Any:
            return ExperimentDto(experiment_id=experiment_id, name=experiment_id[3:])

        def workspace_get_run(client: Any, run_id: Any, **kwargs: Any) -> Any:
            def find() -> Any:
                if run_id not in fake._runs:
                    from azureml._restclient.exceptions import ServiceException
                    raise ServiceException(_http_error(404, f"Run {run_id} not found"))
                return fake._run_dto(fake._runs[run_id])
            return fake._record("Run.get", run_id, find)

        def get_run(client: Any, **kwargs: Any) -> Any:
            # mirrors RunClient.get_run, which Run.get_status reads (refresh_run_dto): time passes per read
            def read() -> Any:
                fake._status_read()
                record = fake._runs[client._run_id]
                record.status(advance=True)
                return fake._run_dto(record)
            return fake._record("Run.get_status", client._run_id, read)

        def patch_run(client: Any, create_run_dto: Any, **kwargs: Any) -> Any:
            # mirrors RunClient.patch_run (Run.set_tags sends CreateRunDto(tags=...)): the tags sent are merged
            record = fake._runs[client._run_id]
            record.tags.update(create_run_dto.tags or {})
            return fake._run_dto(record)

        def list_experiments(client: Any, last: Any = None, order_by: Any = None, experiment_name: Any = None,
                             view_type: Any = None, tags: Any = None) -> Any:
            # mirrors WorkspaceClient.list_experiments (Experiment.list): the workspace's experiments, by name
            names = sorted({record.experiment for record in fake._runs.values()})
            return fake._record("Experiment.list", experiment_name, lambda: [
                ExperimentDto(experiment_id=f"id-{name}", name=name) for name in names
                if experiment_name is None or name == experiment_name])

        def experiment_get_runs(client: Any, last: Any = 0, _filter_on_server: Any = True, page_size: Any = None,
                                order_by: Any = None, caller: Any = None, custom_headers: Any = None,
                                **filters: Any) -> Any:
            # mirrors ExperimentClient.get_runs (Experiment.get_runs -> Run.list): run history's query over one
            # experiment, newest first (ORDER_BY_STARTTIME_EXPRESSION), with the filters of
            # WorkspaceClient._run_filter_mapping that Run.list sends: tags (a key or {key: value}), runtype,
            # status, include_children (top-level runs only unless true)
            tags, runtype, status = filters.get("tags"), filters.get("runtype"), filters.get("status")

            def matches(record: _RunRecord) -> bool:
                wanted = {tags: None} if isinstance(tags, str) else dict(tags or {})
                return (record.experiment == client._experiment_name
                        and (filters.get("include_children") or record.parent is None)
                        and all(key in record.tags and value in (None, record.tags[key])
                                for key, value in wanted.items())
                        and runtype in (None, record.run_type) and status in (None, record.status(False)))

            found = fake._record("Run.list", client._experiment_name, lambda: sorted(
                (record for record in fake._runs.values() if matches(record)), key=lambda record: -record.number))
            return (fake._run_dto(record) for record in (found[:last] if last else found))

        def get_runstatus(client: Any, **kwargs: Any) -> Any:
            def read() -> Any:
                fake._status_read()
                record = fake._runs[client._run_id]
                status = record.status(advance=True)
                error = (ErrorResponse(error=RootError(code="UserError", message="The run failed; see the driver log."))
                         if status == "Failed" else None)
                return RunDetailsDto(run_id=record.run_id, status=status, target="gpu-cluster",
                                     log_files=fake._logs(record), properties={}, error=error,
                                     run_definition={"script": "keras_mnist.py", "arguments": record.arguments,
                                                     "target": "gpu-cluster", "framework": "Python"})
            return fake._record("Run.get_status", client._run_id, read)

        def get_child_runs(client: Any, root_run_id: Any, recursive: Any = False, **kwargs: Any) -> Any:
            children = [r for r in fake._runs.values() if r.parent == client._run_id]
            return fake._record("Run.get_children", client._run_id,
                                lambda: [fake._run_dto(child) for child in children])

        def post_event_canceled(client: Any, **kwargs: Any) -> None:
            def cancel() -> None:
                fake._runs[client._run_id].canceled = True
            fake._record("Run.cancel", client._run_id, cancel)

        def get_all_metrics_v2(client: Any, name: Any = None, run_ids: Any = None, **kwargs: Any) -> Any:
            metrics = fake._record("Run.get_metrics", client._run_id, lambda: dict(fake._runs[client._run_id].metrics))
            return {key: value for key, value in metrics.items() if name is None or key == name}

        def run_id_of(container: str) -> str:
            return container.split("dcid.", 1)[1]

        def files_of(run_id: str) -> list[str]:
            # A HyperDrive parent uploads no files of its own (its trials do): so RunHistoryFacade.register_model
            # finds nothing under outputs/model and raises ModelPathNotFoundException (run_history_facade.py).
            record = fake._runs.get(run_id)
            return [] if record is not None and record.run_type == "hyperdrive" else sorted(fake.run_files)

        def get_file_paths(client: Any, origin: Any, container: Any, **kwargs: Any) -> Any:
            return fake._record("Run.get_file_names", run_id_of(container), lambda: files_of(run_id_of(container)))

        def get_files_by_artifact_prefix_id(client: Any, prefix_id: Any, **kwargs: Any) -> Any:
            _, container, prefix = prefix_id.split("/", 2)
            if container.startswith("dcid.") and not prefix.startswith(("user_logs", "system_logs")):
                return [(name, f"{BLOB}/{name}") for name in files_of(run_id_of(container)) if name.startswith(prefix)]
            return []

        def download_artifact(client: Any, origin: Any, container: Any, path: Any, output_file_path: Any, *args: Any,
                              **kwargs: Any) -> None:
            fake._record("Run.download_file", path,
                         lambda: Path(output_file_path).write_bytes(fake.run_files[path]))

        def register_model(client: Any, name: Any, tags: Any = None, run_id: Any = None, url: Any = None,
                           experiment_name: Any = None, **kwargs: Any) -> Any:
            from azureml._restclient.models import Model as ModelDto

            def register() -> Any:
                version = 1 + sum(1 for model in fake.registered_models if model.name == name)
                model = FakeModel(name=name, version=version, tags=dict(tags or {}), run_id=run_id,
                                  model_path=fake._assets.get((url or "").rsplit("/", 1)[-1], url or ""))
                fake.registered_models.append(model)
                return _model_dto(model, ModelDto, experiment_name)
            return fake._record("Run.register_model", name, register)

        def query_models(client: Any, name: Any = None, run_id: Any = None, **kwargs: Any) -> Any:
            from azureml._restclient.models import Model as ModelDto

            return fake._record("Model.list", name, lambda: [
                _model_dto(model, ModelDto) for model in fake.registered_models
                if (name is None or model.name == name) and (run_id is None or model.run_id == run_id)])

        def patch_model(client: Any, model_id: Any, body: Any = None) -> Any:
            # mirrors ModelsClient.patch (azureml/_restclient/models_client.py), which Model.update and
            # Model.update_tags_properties send: JSON-patch operations; "replace /kvTags" sets the tags. An
            # unknown id is the 404 its error_with_model_id_handling turns into a WebserviceException.
            def patch() -> None:
                from azureml.exceptions import WebserviceException

                name, version = model_id.rsplit(":", 1)
                model = next((each for each in fake.registered_models
                              if each.name == name and str(each.version) == version), None)
                if model is None:
                    raise WebserviceException(f"ModelNotFound: Model with id {model_id} not found in provided "
                                              "workspace")
                for operation in body or []:
                    if operation["op"] == "replace" and operation["path"] == "/kvTags":
                        model.tags = dict(operation["value"] or {})
            return fake._record("Model.update", model_id, patch)

        def create_asset(client: Any, model_name: Any, artifacts: Any, metadata_dict: Any = None, run_id: Any = None,
                         **kwargs: Any) -> Any:
            # mirrors AssetsClient.create_asset: an asset over the run's files under the model's prefix
            asset_id = f"asset-{len(fake._assets) + 1}"
            fake._assets[asset_id] = artifacts[0]["prefix"].split("/", 2)[-1]
            return SimpleNamespace(id=asset_id)

        def start_internal(project_object: Any, run_config_object: Any, run_id: Any = None, **kwargs: Any) -> Any:
            # mirrors azureml._execution._commands._start_internal: snapshot upload + the start-run POST
            experiment = project_object.history.name
            config = fake._pending_config
            def submit() -> None:
                # Run history refuses a run id that exists; _start_internal's _raise_request_error turns the
                # execution service's 4xx into ExperimentExecutionException (azureml/_execution/_commands.py).
                if run_id in fake._runs:
                    from azureml.exceptions import ExperimentExecutionException

                    raise ExperimentExecutionException(json.dumps({"error": {
                        "code": "UserError", "message": f"Run {run_id} already exists in the workspace."}}))
                fake._new_run(run_id, experiment, config)
                fake.submissions.append(config)

            fake._record("Experiment.submit", experiment, submit)
            return execution._get_run_details(project_object, run_config_object, run_id, snapshot_id="snapshot")

        def create_hyperdrive(client: Any, run_id: Any, config_file: Any, **kwargs: Any) -> Any:
            config = fake._pending_config
            sent = json.load(config_file)
            experiment = sent["name"]
            fake._record("Experiment.submit", experiment,
                         lambda: fake._submit_hyperdrive(config, run_id, experiment, sent))
            return SimpleNamespace(result=SimpleNamespace(platform_config={"ParentRunId": run_id}))

        def create_hyperdrive_without_id(client: Any, config_file: Any, **kwargs: Any) -> Any:
            # HyperDrive names the parent itself when no custom run id is given
            return create_hyperdrive(client, f"HD_{next(fake._numbers):08d}", config_file)

        def cancel_hyperdrive(client: Any, run_id: Any, run_history_host: Any, **kwargs: Any) -> Any:
            # mirrors HyperDriveClient.cancel_experiment, which HyperDriveRun.cancel calls
            # (azureml/train/hyperdrive/run.py): the service cancels the parent and every unfinished trial.
            # Run.cancel on the same parent only posts run history's "canceled" event (post_event_canceled).
            def cancel() -> None:
                for record in fake._runs.values():
                    if record.run_id == run_id or (record.parent == run_id and not record.status(False) in
                                                   ("Completed", "Failed")):
                        record.canceled = True
            fake._record("HyperDrive.cancel", run_id, cancel)
            return True

        def spy_submit(experiment: Any, config: Any, *args: Any, **kwargs: Any) -> Any:
            fake._pending_config = config
            return real_submit(experiment, config, *args, **kwargs)

        def get_dataset_by_name(subscription_id: Any, resource_group: Any, workspace_name: Any,
                                dataset_name: Any = None,
                                version_id: Any = None, **kwargs: Any) -> Any:
            def find() -> Any:
                status = fake.dataset_errors.get(dataset_name)
                if status:
                    raise _http_error(status, f"Request for dataset {dataset_name} refused")
                versions = fake.datasets.get(dataset_name) or []
                found = [d for d in versions if version_id in (None, "latest") or str(d.version) == str(version_id)]
                if not found:
                    raise _http_error(404, f"Dataset {dataset_name} not found")
                return found[-1]
            return fake._record("Dataset.get_by_name", dataset_name, find)

        def fetch_v2_data_asset(workspace: Any, name: Any, version: Any) -> None:
            raise _http_error(fake.dataset_errors.get(name) or 404, f"Data asset {name} not found")

        def register_dataset(dataset: Any, workspace: Any, name: Any, description: Any = None, tags: Any = None,
                             create_new_version: Any = False) -> Any:
            # imitates FileDataset.register: a new version per call
            def register() -> Any:
                from azureml.data.abstract_dataset import _DatasetRegistration

                versions = fake.datasets.setdefault(name, [])
                registered = copy.copy(dataset)  # the real dataset, now saved and named by the service
                registered._registration = _DatasetRegistration(
                    workspace, saved_id=f"saved-{name}-{len(versions) + 1}", registered_id=f"id-{name}",
                    name=name, version=len(versions) + 1, description=description, tags=dict(tags or {}))
                versions.append(registered)
                return registered
            return fake._record("FileDataset.register", name, register)

        def get_default_datastore(workspace: Any, auth: Any = None, host: Any = None) -> Any:
            # imitates _DatastoreClient._get_default: the workspace's default blob datastore, as the service
            # describes it (a real AzureBlobDatastore, built offline)
            from azureml.data.azure_storage_datastore import AzureBlobDatastore

            return fake._record("Datastore.get_default", workspace.name, lambda: AzureBlobDatastore(
                workspace, "workspaceblobstore", "fake-container", "fakeaccount"))

        def upload_directory(datastore: Any, src_dir: Any, target_path: Any = None, overwrite: Any = False,
                             show_progress: Any = True) -> None:
            # imitates AzureBlobDatastore.upload (the folder's files put to the container under target_path):
            # records the folder instead of uploading it
            fake._record("Datastore.upload", str(src_dir), lambda: fake.uploads.append(Path(src_dir)))

        def compute_create(workspace: Any, name: Any, provisioning_configuration: Any) -> Any:
            # imitates ComputeTarget.create (+ its provisioning poll, see FakeComputeTarget)
            def create() -> Any:
                target = FakeComputeTarget(name, fake.new_compute_state, provisioning_configuration)
                fake.created_computes.append(target)
                if fake.new_compute_state == "Succeeded":
                    fake._add_compute(name, provisioning_configuration.vm_size)
                return target
            return fake._record("ComputeTarget.create", name, create)

        real_submit = __import__("azureml.core", fromlist=["Experiment"]).Experiment.submit
        # azureml-dataprep ships its telemetry switched on (azureml/dataprep/api/_telemetry.json): its
        # AppInsightsLoggingHandler.emit queues each activity for a sender thread that posts it over HTTPS. A test
        # never talks to Microsoft: the handler records nothing, so no such thread ever runs (one that opened TLS
        # while TensorFlow's bundled SSL was loaded in the same process crashed pytest).
        from azureml.telemetry.logging_handler import AppInsightsLoggingHandler
        dataset_client = SimpleNamespace(dataset=SimpleNamespace(get_dataset_by_name=get_dataset_by_name))
        return [
            mock.patch.object(workspace_module, "InteractiveLoginAuthentication", FakeAuthentication),
            mock.patch.object(AppInsightsLoggingHandler, "emit", lambda handler, record: None),
            mock.patch.object(project, "get_workspace", get_workspace),
            mock.patch.object(service_context.ServiceContext, "_fetch_endpoints",
                              lambda context: {**dict.fromkeys(service_context._ServiceKeys.get_discovery_keys(),
                                                               FAKE_HOST),
                                               service_context._ServiceKeys.STUDIO: STUDIO}),
            mock.patch.object(WorkspaceClient, "get_or_create_experiment", get_or_create_experiment),
            mock.patch.object(WorkspaceClient, "get_experiment_by_id", get_experiment_by_id),
            mock.patch.object(WorkspaceClient, "get_run", workspace_get_run),
            mock.patch.object(WorkspaceClient, "list_experiments", list_experiments),
            mock.patch.object(ExperimentClient, "get_runs", experiment_get_runs),
            mock.patch.object(RunClient, "get_run", get_run),
            mock.patch.object(RunClient, "patch_run", patch_run),
            mock.patch.object(RunClient, "get_runstatus", get_runstatus),
            mock.patch.object(RunClient, "get_child_runs", get_child_runs),
            mock.patch.object(RunClient, "post_event_canceled", post_event_canceled),
            mock.patch.object(MetricsClient, "get_all_metrics_v2", get_all_metrics_v2),
            mock.patch.object(MetricsClient, "flush", lambda client, *a, **k: None),  # nothing logged from here
            mock.patch.object(ArtifactsClient, "get_file_paths", get_file_paths),
            mock.patch.object(ArtifactsClient, "get_files_by_artifact_prefix_id", get_files_by_artifact_prefix_id),
            mock.patch.object(ArtifactsClient, "download_artifact", download_artifact),
            mock.patch.object(AssetsClient, "create_asset", create_asset),
            mock.patch.object(ModelsClient, "register_model", register_model),
            mock.patch.object(ModelsClient, "query", query_models),
            mock.patch.object(ModelsClient, "patch", patch_model),
            mock.patch.object(SnapshotsClient, "create_snapshot", lambda client, *a, **k: "snapshot"),
            mock.patch.object(execution, "_start_internal", start_internal),
            mock.patch.object(execution, "_get_content_from_uri", lambda uri, *a, **k: fake._log_text(uri)),
            mock.patch.object(run_module, "download_file_stream", lambda uri, *a, **k: fake._log_text(uri)),
            mock.patch.object(Run, "_wait_before_polling", staticmethod(lambda elapsed: 0)),
            mock.patch.object(hyperdrive_rest.RestClient, "create_experiment_with_custom_run_id", create_hyperdrive),
            mock.patch.object(hyperdrive_rest.RestClient, "create_experiment", create_hyperdrive_without_id),
            mock.patch.object(hyperdrive_rest.RestClient, "cancel_experiment", cancel_hyperdrive),
            mock.patch("azureml.core.Experiment.submit", spy_submit),
            mock.patch.object(compute_module, "get_requests_session", lambda: _ComputeProvider(fake)),
            mock.patch.object(ComputeTarget, "create", staticmethod(compute_create)),
            mock.patch.object(dataset_rest, "_restclient", lambda workspace: dataset_client),
            mock.patch.object(abstract_dataset, "_restclient", lambda workspace: dataset_client),
            mock.patch.object(abstract_dataset, "_fetch_v2_data_asset", fetch_v2_data_asset),
            mock.patch.object(abstract_dataset, "_dto_to_dataset", lambda workspace, found: found),
            mock.patch.object(FileDataset, "register", register_dataset),
            mock.patch.object(_DatastoreClient, "_get_default", staticmethod(get_default_datastore)),
            mock.patch.object(AzureBlobDatastore, "upload", upload_directory),
        ]

    def _add_compute(self, name: str, vm_size: str) -> None:
        if not isinstance(self.computes, dict):
            self.computes = dict.fromkeys(self.computes, "Standard_NC4as_T4_v3")
        self.computes[name] = vm_size

    def __enter__(self) -> "FakeAzureML":
        from azureml.core import Workspace

        for patch in [*self._patches(), azure_resolves()]:
            self._stack.enter_context(patch)
        self._pending_config = None
        from azureml.core.workspace import InteractiveLoginAuthentication

        self.workspace = Workspace("00000000-0000-0000-0000-000000000000", "fake-rg", "fake-workspace",
                                   auth=InteractiveLoginAuthentication(), _disable_service_check=True,
                                   _workspace_id="id-fake-workspace", _location="eastus")
        self.workspace._discovery_url_internal = FAKE_HOST + "/discovery"
        return self


def _model_dto(model: FakeModel, dto_class: Any, experiment_name: Any = None) -> Any:
    return dto_class(name=model.name, url=f"aml://asset/{model.model_path}", mime_type="application/json",
                     id=f"{model.name}:{model.version}", version=model.version, run_id=model.run_id,
                     experiment_name=experiment_name, kv_tags=dict(model.tags), properties={},
                     datasets=[], created_time=datetime.datetime(2024, 1, 1))


def _sampled_values(config: Any, index: int) -> dict:
    """Child ``index``'s values of the HyperDrive parameter space, keyed by flag (as HyperDrive tags them)."""
    values = {}
    for flag, (kind, parameters) in config._generator_config["parameter_space"].items():
        choices = parameters[0] if kind == "choice" else parameters
        values[flag] = spread(kind, choices, index, config._max_total_runs)
    return values


class _ComputeProvider:
    """An HTTP session for the compute Resource Provider (``ComputeTarget._get``'s GET)."""

    def __init__(self, fake: FakeAzureML) -> None:
        self.fake = fake

    def get(self, url: Any, params: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        name = url.rstrip("/").rsplit("/", 1)[-1]

        def answer() -> Any:
            status = self.fake.compute_errors.get(name)
            computes = self.fake.computes
            if status is None:
                status = 200 if name in computes else 404
            body = _aml_compute_payload(url, name, computes.get(name) if isinstance(computes, dict)
                                        else "Standard_NC4as_T4_v3") if status == 200 else {"error": {}}
            return SimpleNamespace(status_code=status, headers={}, content=json.dumps(body).encode(),
                                   text=json.dumps(body), json=lambda: body)
        return self.fake._record("ComputeTarget", name, answer)


def _aml_compute_payload(url: str, name: str, vm_size: str | None) -> dict[str, Any]:
    """The RP's JSON for an existing AmlCompute cluster (what ``AmlCompute.deserialize`` reads)."""
    return {"id": url.split("?")[0].split(".invalid", 1)[-1], "name": name, "location": "eastus", "tags": None,
            "properties": {"computeType": "AmlCompute", "isAttachedCompute": False, "provisioningErrors": None,
                           "description": None, "provisioningState": "Succeeded", "resourceId": None,
                           "computeLocation": "eastus",
                           "properties": {"vmPriority": "Dedicated", "vmSize": vm_size,
                                          "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 4,
                                                            "nodeIdleTimeBeforeScaleDown": "PT1800S"},
                                          "subnet": None, "remoteLoginPortPublicAccess": "Disabled",
                                          "enableNodePublicIp": True}}}
