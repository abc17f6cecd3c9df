"""A fake Azure ML (SDK v1) at its network boundary, for your own unit tests.

``FakeAzureML`` patches only the classes that talk to the service --
``Workspace``, ``Experiment``, ``ComputeTarget``, ``Dataset.get_by_name``,
``FileDataset.register`` -- and records what was asked of them. Everything
azureml-core builds offline (``ScriptRunConfig``, ``Environment``,
``Dataset.File.from_files``, provisioning configurations) stays real, so a test
fails where the SDK would reject the arguments. You choose the outcome.

Example:
    >>> from kerasjob import submit_training
    >>> from kerasjob.testing import FakeAzureML
    >>> with FakeAzureML(final_status="Completed", metrics={"Final test accuracy": 0.98}) as azure:  # doctest: +SKIP
    ...     result = submit_training(workspace=azure.workspace, show_output=False)
    >>> azure.submissions[0].arguments[:2]                                                         # doctest: +SKIP
    ['--data-folder', <DatasetConsumptionConfig>]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from ._service import FakeService, spread


@dataclass
class FakeModel:
    """What ``Run.register_model`` returned."""

    name: str
    version: int
    tags: dict
    model_path: str
    run_id: str


class FakeWorkspace:
    """Stands in for ``azureml.core.Workspace``; every fake object records into ``fake``."""

    def __init__(self, fake: "FakeAzureML", name: str = "fake-workspace"):
        self.fake = fake
        self.name = name
        self.subscription_id = "00000000-0000-0000-0000-000000000000"
        self.resource_group = "fake-rg"


class FakeRun:
    """Stands in for ``azureml.core.Run``: statuses and logs as the fake was told."""

    def __init__(self, fake: "FakeAzureML", config, experiment: str, number: int | str, *,
                 metrics: dict | None = None, arguments: list | None = None, final_status: str | None = None,
                 statuses: list[str] | None = None):
        self.fake = fake
        self.config = config
        self.experiment = experiment
        self.id = f"{experiment}_{number}"
        self._statuses = list(fake.statuses if statuses is None else statuses) + [final_status or fake.final_status]
        self._metrics = metrics
        self._arguments = arguments if arguments is not None else list(getattr(config, "arguments", []) or [])
        self.canceled = False

    def get_status(self) -> str:
        self.fake._record("Run.get_status", self.id)
        if self.canceled:
            return "Canceled"
        return self._statuses.pop(0) if len(self._statuses) > 1 else self._statuses[0]

    def get_details_with_logs(self) -> dict:
        self.fake._record("Run.get_details_with_logs", self.id)
        return {"runId": self.id, "logFiles": {"azureml-logs/70_driver_log.txt": "\n".join(self.fake.log_lines)}}

    def get_metrics(self) -> dict:
        self.fake._record("Run.get_metrics", self.id)
        return dict(self.fake.metrics if self._metrics is None else self._metrics)

    def get_details(self) -> dict:
        self.fake._record("Run.get_details", self.id)
        return {"runId": self.id, "runDefinition": {"arguments": [str(a) for a in self._arguments]}}

    def get_portal_url(self) -> str:
        return f"https://ml.azure.com/runs/{self.id}"

    def cancel(self) -> None:
        self.fake._record("Run.cancel", self.id)
        self.canceled = True

    def register_model(self, model_name: str, model_path: str | None = None, tags: dict | None = None, **kwargs):
        self.fake._record("Run.register_model", model_name)
        version = 1 + sum(1 for model in self.fake.registered_models if model.name == model_name)
        model = FakeModel(name=model_name, version=version, tags=dict(tags or {}), model_path=model_path,
                          run_id=self.id)
        self.fake.registered_models.append(model)
        return model

    def get_file_names(self) -> list[str]:
        self.fake._record("Run.get_file_names", self.id)
        return sorted(self.fake.run_files)

    def download_file(self, name: str, output_file_path: str | None = None, **kwargs) -> None:
        self.fake._record("Run.download_file", name)
        Path(output_file_path).write_bytes(self.fake.run_files[name])


class FakeHyperDriveRun(FakeRun):
    """A HyperDrive run: one child run per trial, with the values the fake was told to report.

    Child ``i`` takes the ``i``-th value of each ``choice`` (cycling) and evenly
    spread values of the continuous distributions, reports ``trial_metrics[i]``
    and ends in ``trial_statuses[i]`` (default Completed).
    """

    def __init__(self, fake: "FakeAzureML", config, experiment: str, number: int):
        super().__init__(fake, config, experiment, f"{number}_hyperdrive", metrics={})
        self.children = []
        for index in range(config._max_total_runs):
            metrics, status = fake.trial_outcome(index)
            self.children.append(FakeRun(fake, config, experiment, f"{number}_hyperdrive_{index}", metrics=metrics,
                                         arguments=[*self._arguments, *_sampled_arguments(config, index)],
                                         final_status=status, statuses=[]))  # read after the sweep: all final

    def wait_for_completion(self, show_output=False, **kwargs):
        self.fake._record("HyperDriveRun.wait_for_completion", self.id)
        self._statuses = self._statuses[-1:]  # it returns once the sweep has ended
        if show_output:
            for line in self.fake.log_lines:
                print(line)
        return {"runId": self.id, "status": self.get_status()}

    def get_children(self, **kwargs):
        self.fake._record("HyperDriveRun.get_children", self.id)
        return list(self.children)


def _sampled_arguments(config, index: int) -> list[str]:
    """Child ``index``'s values of the HyperDrive parameter space, as script arguments."""
    arguments = []
    for flag, (kind, parameters) in config._generator_config["parameter_space"].items():
        values = parameters[0] if kind == "choice" else parameters
        arguments += [flag, str(spread(kind, values, index, config._max_total_runs))]
    return arguments


class FakeComputeTarget:
    """A cluster: what ``ComputeTarget(workspace, name)`` or ``ComputeTarget.create`` returned."""

    def __init__(self, name: str, provisioning_state: str = "Succeeded", configuration=None):
        self.name = name
        self.provisioning_state = provisioning_state
        self.provisioning_errors = None if provisioning_state == "Succeeded" else [{"error": "fake failure"}]
        self.configuration = configuration

    def wait_for_completion(self, show_output=False, min_node_count=None, timeout_in_minutes=20):
        self.timeout_in_minutes = timeout_in_minutes


class _RegisteredDataset:
    """A registered FileDataset: the real offline object plus the service's name, version and tags."""

    def __init__(self, dataset, name: str, version: int, tags: dict):
        self._dataset = dataset
        self.name, self.version, self.tags = name, version, tags

    def as_download(self, *args, **kwargs):
        return self._dataset.as_download(*args, **kwargs)

    def as_mount(self, *args, **kwargs):
        return self._dataset.as_mount(*args, **kwargs)


@dataclass
class FakeAzureML(FakeService):
    """Patch Azure ML v1's network boundary for the duration of a ``with`` block.

    Arguments as for :class:`kerasjob.testing._service.FakeService`; call names
    are ``Experiment.submit``, ``ComputeTarget.create``, ``Run.get_status``, ...
    A submitted ``HyperDriveConfig`` gives a :class:`FakeHyperDriveRun` whose
    children report ``trial_metrics`` and end in ``trial_statuses``.
    """

    def __post_init__(self):
        super().__post_init__()
        self.runs: list[FakeRun] = []
        self.registered_models: list[FakeModel] = []
        self.datasets: dict[str, list[_RegisteredDataset]] = {}
        self.workspace = FakeWorkspace(self)

    # --- the patched entry points -----------------------------------------------------

    def _workspace_class(self):
        fake = self

        class Workspace(FakeWorkspace):
            def __init__(self, subscription_id=None, resource_group=None, workspace_name=None, auth=None, **kwargs):
                fake._record("Workspace", workspace_name)
                super().__init__(fake, workspace_name)

            @staticmethod
            def from_config(path=None, auth=None, **kwargs):
                fake._record("Workspace.from_config", path)
                return fake.workspace

        return Workspace

    def _experiment_class(self):
        fake = self

        class Experiment:
            def __init__(self, workspace, name, **kwargs):
                self.workspace, self.name = workspace, name

            def submit(self, config, tags=None, **kwargs):
                fake._record("Experiment.submit", self.name)
                fake.submissions.append(config)
                hyperdrive = type(config).__name__ == "HyperDriveConfig"
                run = (FakeHyperDriveRun if hyperdrive else FakeRun)(fake, config, self.name, len(fake.runs) + 1)
                fake.runs.append(run)
                return run

        return Experiment

    def _compute_class(self):
        fake = self
        from azureml.exceptions import ComputeTargetException

        class ComputeTarget:
            def __new__(cls, workspace=None, name=None):
                fake._record("ComputeTarget", name)
                if name in fake.computes:
                    return FakeComputeTarget(name)
                raise ComputeTargetException(f"ComputeTargetNotFound: Compute Target with name {name} not found")

            @staticmethod
            def create(workspace, name, provisioning_configuration):
                fake._record("ComputeTarget.create", name)
                target = FakeComputeTarget(name, fake.new_compute_state, provisioning_configuration)
                fake.created_computes.append(target)
                if fake.new_compute_state == "Succeeded":
                    fake.computes.add(name)
                return target

        return ComputeTarget

    def _get_dataset(self, workspace, name, version="latest", **kwargs):
        from azureml.exceptions import UserErrorException

        self._record("Dataset.get_by_name", name)
        versions = self.datasets.get(name)
        if not versions:
            raise UserErrorException(f"Cannot find dataset registered with name '{name}' (version: {version})")
        if version in (None, "latest"):
            return versions[-1]
        for dataset in versions:
            if str(dataset.version) == str(version):
                return dataset
        raise UserErrorException(f"Cannot find dataset registered with name '{name}' (version: {version})")

    def _register_dataset(self, dataset, workspace, name, description=None, tags=None, create_new_version=False):
        self._record("FileDataset.register", name)
        versions = self.datasets.setdefault(name, [])
        registered = _RegisteredDataset(dataset, name, len(versions) + 1, dict(tags or {}))
        versions.append(registered)
        return registered

    def __enter__(self) -> "FakeAzureML":
        import azureml.core
        import azureml.core.compute
        from azureml.data.file_dataset import FileDataset

        fake = self
        patches = [
            mock.patch.object(azureml.core, "Workspace", self._workspace_class()),
            mock.patch.object(azureml.core, "Experiment", self._experiment_class()),
            mock.patch.object(azureml.core.compute, "ComputeTarget", self._compute_class()),
            mock.patch.object(azureml.core.Dataset, "get_by_name", staticmethod(self._get_dataset)),
            mock.patch.object(FileDataset, "register",
                              lambda dataset, workspace, name, **kw: fake._register_dataset(dataset, workspace, name,
                                                                                            **kw)),
        ]
        for patch in patches:
            self._stack.enter_context(patch)
        return self
