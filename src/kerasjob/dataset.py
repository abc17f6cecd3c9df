"""MNIST: where it comes from, how a local copy is checked and cached, and how
it becomes a registered dataset on Azure ML: an SDK v1 ``FileDataset`` or an
SDK v2 ``uri_folder`` data asset, each registered again only when its sources
change (:func:`sources_digest`).

The seed's ``yann.lecun.com`` URLs refuse scripted downloads (HTTP 403 for
non-browser clients), so kerasjob reads Azure's open-datasets copy first and
falls back to the mirrors TensorFlow and PyTorch use. Every download is checked
against the digest of its *uncompressed* content, written under a temporary name
and renamed only once verified.

Example:
    >>> folder = download_mnist()              # doctest: +SKIP
    >>> check_data_folder(folder).name         # doctest: +SKIP
    'mnist'
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from .data_folder import default_cache_dir, verify_mnist_folder
from .errors import DataError, ValidationError
from .training.mnist_data import MNIST_FILES, MnistFormatError

__all__ = ["DATASET_SOURCES_TAG", "MNIST_MIRRORS", "MNIST_SHA256", "SEED_MNIST_URL", "blob_folder_uri",
           "check_data_asset", "check_data_folder", "dataset_input", "default_cache_dir", "download_mnist",
           "CONTENT_TAG", "get_or_register_folder_asset", "get_or_upload_folder_dataset", "get_or_register_mnist", "get_or_register_mnist_asset", "get_registered_dataset", "mirrors",
           "mnist_urls", "sources_digest"]

logger = logging.getLogger(__name__)

#: Mirrors tried in order. Override with KERASJOB_MNIST_MIRRORS (space-separated URLs).
MNIST_MIRRORS = (
    "https://azureopendatastorage.blob.core.windows.net/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
#: The seed walkthrough's source: documented only, it refuses scripted downloads.
SEED_MNIST_URL = "http://yann.lecun.com/exdb/mnist/"

#: sha256 of each file's uncompressed content (the .gz bytes differ between mirrors).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

DATASET_SOURCES_TAG = "kerasjob.sources_sha256"


def check_data_folder(folder: str | os.PathLike[str]) -> Path:
    """Check that ``folder`` holds the four MNIST IDX files, sound to their last byte (the verdict is cached).

    Raises ``ValidationError`` for argument ``data`` naming the faulty file.
    """
    path = Path(folder).expanduser()
    try:
        verify_mnist_folder(path)
    except MnistFormatError as exc:
        raise ValidationError("data", "a folder holding the four MNIST IDX files", str(path), hint=str(exc)) from None
    return path


def mirrors() -> list[str]:
    """The MNIST mirrors to try, in order (``KERASJOB_MNIST_MIRRORS`` overrides)."""
    override = os.environ.get("KERASJOB_MNIST_MIRRORS", "").split()
    return [url if url.endswith("/") else url + "/" for url in override] or list(MNIST_MIRRORS)


def mnist_urls(mirror: str | None = None) -> list[str]:
    """The four ``.gz`` URLs of MNIST on ``mirror`` (default: the first mirror)."""
    base = mirror or mirrors()[0]
    return [base + name + ".gz" for name in MNIST_FILES.values()]


def _uncompressed_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, destination: Path, progress: bool) -> None:
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - fixed https mirrors or the user's own
        total = int(response.headers.get("Content-Length") or 0) or None
        with open(destination, "wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], disable=not progress, leave=False
        ) as bar:
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                bar.update(len(block))


def download_mnist(cache_dir: str | os.PathLike[str] | None = None, *, progress: bool = True) -> Path:
    """Download MNIST once into ``cache_dir/mnist`` and return that folder.

    Files already in the cache were verified when written and are reused. Each
    missing file is fetched from the mirrors in turn until one gives the right
    content; if none does, ``DataError`` lists every attempt.
    """
    from filelock import FileLock

    folder = Path(cache_dir or default_cache_dir()) / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".lock")):  # two runs starting at once download once
        for name, expected in MNIST_SHA256.items():
            target = folder / (name + ".gz")
            if target.exists():
                continue
            attempts = []
            for base in mirrors():
                url = base + name + ".gz"
                handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
                os.close(handle)
                try:
                    _fetch(url, Path(temporary), progress)
                    actual = _uncompressed_sha256(Path(temporary))
                    if actual != expected:
                        raise DataError(f"content sha256 {actual[:12]}..., expected {expected[:12]}...")
                    os.replace(temporary, target)  # atomic: the cache never holds a partial file
                    logger.info("Downloaded %s", url)
                    break
                except (OSError, EOFError, DataError, ValueError) as exc:
                    attempts.append(f"{url}: {exc}")
                    logger.warning("MNIST mirror failed: %s: %s", url, exc)
                finally:
                    if os.path.exists(temporary):
                        os.unlink(temporary)
            else:
                raise DataError(
                    f"Could not download MNIST's {name}. Tried:\n  " + "\n  ".join(attempts)
                    + "\nPass `data` a folder holding the four MNIST files instead."
                )
    return folder


def sources_digest(urls: list[str]) -> str:
    """The sha256 of the source URLs a registered dataset was made from (its ``DATASET_SOURCES_TAG``).

        >>> sources_digest(["a", "b"]) == sources_digest(["a", "b"]) != sources_digest(["a"])
        True
    """
    return hashlib.sha256("\n".join(urls).encode()).hexdigest()


# --- Azure ML v1: a registered FileDataset --------------------------------------------


def get_registered_dataset(workspace: Any, name: str, version: str | int | None = None) -> Any:
    """The registered dataset ``name`` (latest version unless given), or None if absent."""
    from azureml.core import Dataset
    from azureml.exceptions import UserErrorException

    from .retry import azure_call

    try:
        return azure_call(Dataset.get_by_name, workspace, name, version=version or "latest")
    except UserErrorException as error:
        # Dataset.get_by_name makes every 4xx a UserErrorException: a 404 reads "Cannot find dataset
        # registered ...", any other "Request failed (403): ..." (azureml/data/abstract_dataset.py).
        if not str(getattr(error, "message", error)).startswith("Cannot find dataset registered"):
            raise
        return None


def get_or_register_mnist(workspace: Any, name: str = "mnist-dataset", urls: list[str] | None = None) -> Any:
    """The MNIST FileDataset registered as ``name``; registered (new version) only when
    absent or when its source URLs changed.

    Example:
        >>> dataset = get_or_register_mnist(ws)   # doctest: +SKIP
    """
    from azureml.core import Dataset

    from .retry import azure_call

    urls = urls or mnist_urls()
    digest = sources_digest(urls)
    existing = get_registered_dataset(workspace, name)
    if existing is not None and (existing.tags or {}).get(DATASET_SOURCES_TAG) == digest:
        logger.info("Reusing dataset %s version %s", name, getattr(existing, "version", "?"))
        return existing
    dataset = Dataset.File.from_files(path=urls, validate=False)  # validate=True would fetch the files here
    logger.info("Registering dataset %s from %d URLs", name, len(urls))
    return azure_call(
        dataset.register, workspace=workspace, name=name, description="MNIST training and test files (IDX, gzip)",
        tags={DATASET_SOURCES_TAG: digest}, create_new_version=True,
    )


def dataset_input(dataset: Any, mode: str = "download") -> Any:
    """How the run receives the dataset: downloaded to local disk (default) or mounted."""
    return dataset.as_mount() if mode == "mount" else dataset.as_download()



# --- Azure ML v2: a uri_folder data asset ----------------------------------------------

_BLOB_URL = re.compile(r"^https://([a-z0-9]+)\.blob\.core\.windows\.net/([^/]+)/?(.*)$")


def blob_folder_uri(url: str) -> str:
    """The ``wasbs://`` form Azure ML mounts for an Azure Blob folder given as an ``https://`` URL.

        >>> blob_folder_uri("https://azureopendatastorage.blob.core.windows.net/mnist/")
        'wasbs://mnist@azureopendatastorage.blob.core.windows.net/'

    Any other mirror is refused (``DataError``): Azure ML can't list a plain HTTP
    server as a folder. Use ``data=`` a local folder (``kerasjob.download_mnist()``) instead.
    """
    match = _BLOB_URL.match(url)
    if not match:
        raise DataError(f"The MNIST mirror {url!r} is not an Azure Blob folder, which the azureml-v2 backend "
                        "needs to register it as a data asset. Pass `data` a local folder instead "
                        "(kerasjob.download_mnist() fetches and verifies the four files), or a registered asset.")
    account, container, path = match.groups()
    return f"wasbs://{container}@{account}.blob.core.windows.net/{path.strip('/') + '/' if path.strip('/') else ''}"


def check_data_asset(ml_client: Any, name: str, version: str | None) -> str:
    """``azureml:NAME:VERSION`` of data asset ``name`` (``version``, else the latest); ``DataError`` when absent.

    The version is resolved here: azure-ai-ml does not resolve an ``azureml:NAME@latest`` job input.
    """
    from .retry import azure_call
    from .azure_errors import is_not_found

    try:
        asset = azure_call(ml_client.data.get, name=name, **({"version": version} if version else {"label": "latest"}))
    except Exception as error:  # noqa: BLE001 - "not found" becomes a DataError, the rest propagates
        if not is_not_found(error):
            raise
        raise DataError(f"No data asset {name!r} (version {version or 'latest'}) is registered in the "
                        "workspace.") from error
    return f"azureml:{name}:{asset.version}"


def get_or_register_mnist_asset(ml_client: Any, name: str, urls: list[str] | None = None) -> str:
    """``azureml:NAME:VERSION`` of the MNIST ``uri_folder`` asset; a new version only when its source changed."""
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Data

    from .retry import azure_call
    from .azure_errors import is_not_found

    urls = urls or mnist_urls()
    folder = blob_folder_uri(urls[0].rsplit("/", 1)[0] + "/")
    digest = sources_digest(urls)
    try:
        latest = azure_call(ml_client.data.get, name=name, label="latest")
    except Exception as error:  # noqa: BLE001 - only "not found" means register
        if not is_not_found(error):
            raise
        latest = None
    if latest is not None and (latest.tags or {}).get(DATASET_SOURCES_TAG) == digest:
        return f"azureml:{name}:{latest.version}"
    version = str(int(latest.version) + 1) if latest is not None and str(latest.version).isdigit() else "1"
    # A PUT of name:version is idempotent, so a plain retry can't register twice.
    asset = azure_call(ml_client.data.create_or_update, Data(
        name=name, version=version, path=folder, type=AssetTypes.URI_FOLDER,
        description="MNIST (four IDX files), registered by kerasjob", tags={DATASET_SOURCES_TAG: digest}))
    logger.info("Registered data asset %s version %s from %s", name, asset.version, folder)
    return f"azureml:{name}:{asset.version}"


#: Tag of a model job's data (asset or FileDataset): the content address of its folder (``kerasjob.data_package``).
CONTENT_TAG = "kerasjob.content_sha256"


def _latest_asset(ml_client: Any, name: str) -> Any:
    from .retry import azure_call
    from .azure_errors import is_not_found

    try:
        return azure_call(ml_client.data.get, name=name, label="latest")
    except Exception as error:  # noqa: BLE001 - only "not found" means register
        if not is_not_found(error):
            raise
        return None


def get_or_register_folder_asset(ml_client: Any, name: str, folder: Path) -> str:
    """``azureml:NAME:VERSION`` of a model job's data folder as a ``uri_folder`` asset: the latest version when it
    holds the same content (the folder's name is its content address), else a new version, uploaded by the SDK.

    Example:
        >>> get_or_register_folder_asset(ml_client, "tiny-net-data", data_folder)   # doctest: +SKIP
        'azureml:tiny-net-data:1'
    """
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Data

    from .retry import azure_call

    content = folder.name
    latest = _latest_asset(ml_client, name)
    if latest is not None and (latest.tags or {}).get(CONTENT_TAG) == content:
        logger.info("Reusing data asset %s version %s (same content)", name, latest.version)
        return f"azureml:{name}:{latest.version}"
    version = str(int(latest.version) + 1) if latest is not None and str(latest.version).isdigit() else "1"
    asset = azure_call(ml_client.data.create_or_update, Data(
        name=name, version=version, path=str(folder), type=AssetTypes.URI_FOLDER,
        description="Training data of a kerasjob.fit job (train/ and validation/ .npz shards)",
        tags={CONTENT_TAG: content}))
    logger.info("Registered data asset %s version %s from %s", name, asset.version, folder)
    return f"azureml:{name}:{asset.version}"


def get_or_upload_folder_dataset(workspace: Any, name: str, folder: Path) -> Any:
    """A model job's data folder as a registered v1 FileDataset: the latest version when it holds the same content
    (the folder's name is its content address), else uploaded once to the workspace's default datastore
    (``AzureBlobDatastore.upload``, under ``kerasjob/data/<content>``) and registered as a new version.

    Example:
        >>> get_or_upload_folder_dataset(ws, "tiny-net-data", data_folder).version   # doctest: +SKIP
        1
    """
    from azureml.core import Dataset
    from azureml.data.datapath import DataPath

    from .retry import azure_call

    content = folder.name
    existing = get_registered_dataset(workspace, name)
    if existing is not None and (existing.tags or {}).get(CONTENT_TAG) == content:
        logger.info("Reusing dataset %s version %s (same content)", name, getattr(existing, "version", "?"))
        return existing
    datastore = azure_call(workspace.get_default_datastore)
    target = f"kerasjob/data/{content}"
    # The blob datastore's own upload (Dataset.File.upload_directory would also validate the new dataset by
    # running azureml-dataprep in this process); the files land once: a content address never changes.
    datastore.upload(src_dir=str(folder), target_path=target, overwrite=False, show_progress=False)
    dataset = Dataset.File.from_files(path=DataPath(datastore, target), validate=False)
    logger.info("Registering dataset %s from %s", name, folder)
    return azure_call(dataset.register, workspace=workspace, name=name, tags={CONTENT_TAG: content},
                      description="Training data of a kerasjob.fit job (train/ and validation/ .npz shards)",
                      create_new_version=True)
