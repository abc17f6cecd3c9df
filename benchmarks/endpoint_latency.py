"""Latency of a local endpoint: a 1-image invoke through ``Endpoint.invoke`` beside a bare HTTP POST.

    python benchmarks/endpoint_latency.py [--data-folder ../shared/data/mnist] [--requests 200]

Trains one epoch on MNIST in a throwaway kerasjob home, deploys the registered
model with ``deploy_model`` (MLflow's scoring server on 127.0.0.1), then sends
``--requests`` one-image requests alternately through ``Endpoint.invoke`` and as
a bare ``urllib`` POST of the same JSON, and reports p50/p95 of each and their
ratio, plus how long the deploy took. The endpoint is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-folder", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["KERASJOB_HOME"] = home
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from kerasjob import deploy_model, submit_training
        from kerasjob.training.mnist_data import read_idx

        result = submit_training(data=args.data_folder, hyperparameters={"epochs": 1}, show_output=False)
        started = time.perf_counter()
        endpoint = deploy_model(result, endpoint="latency-probe")
        deploy_seconds = time.perf_counter() - started
        try:
            image = read_idx(Path(args.data_folder) / "t10k-images-idx3-ubyte.gz")[:1]
            body = json.dumps({"inputs": (image.reshape(1, 784) / 255.0).tolist()}).encode()
            bare, invoked = [], []
            for _ in range(args.requests):
                began = time.perf_counter()
                request = urllib.request.Request(endpoint.url + "/invocations", data=body,
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=60) as response:
                    response.read()
                bare.append(time.perf_counter() - began)
                began = time.perf_counter()
                endpoint.invoke(image)
                invoked.append(time.perf_counter() - began)
        finally:
            endpoint.delete()
    print(f"deploy (server answering /ping): {deploy_seconds:.1f} s")
    for name, values in (("bare HTTP POST", bare), ("Endpoint.invoke", invoked)):
        print(f"{name:<16} p50 {percentile(values, 0.5) * 1000:6.1f} ms   p95 {percentile(values, 0.95) * 1000:6.1f} ms")
    print(f"ratio of medians: {statistics.median(invoked) / statistics.median(bare):.2f}x")


if __name__ == "__main__":
    main()
