"""Train the seed's Keras MNIST job with kerasjob, locally or on Azure ML.

    python examples/submit_mnist.py --data-folder ../shared/data/mnist --epochs 2
    python examples/submit_mnist.py --workspace-config config.json                          # Azure ML, SDK v1
    python examples/submit_mnist.py --workspace-config config.json --backend azureml-v2     # Azure ML, SDK v2
    python examples/submit_mnist.py --data-folder ../shared/data/mnist --epochs 2 --workers 2  # 2 workers here

Moving from SDK v1 to v2 is the one ``backend=`` argument below; nothing else changes.
"""

import argparse
import logging
import sys

from kerasjob import KerasJobError, TensorflowDistribution, TrainingFailed, download_model, submit_training


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-folder", help="the four MNIST files (default: download them)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--workspace-config", help="Azure ML config.json; without it the job runs locally")
    parser.add_argument("--backend", choices=["local", "azureml", "azureml-v2"], default=None,
                        help="default: local, or azureml (SDK v1) with --workspace-config")
    parser.add_argument("--workers", type=int, default=1, help="data-parallel workers (nodes on Azure ML)")
    parser.add_argument("--download-to", help="also download the trained model into this new folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        result = submit_training(data=args.data_folder, hyperparameters={"epochs": args.epochs},
                                 distribution=TensorflowDistribution(args.workers) if args.workers > 1 else None,
                                 workspace_config=args.workspace_config, backend=args.backend)
    except TrainingFailed as failure:  # the run started and failed: its log's tail is in the message
        print(failure, file=sys.stderr)
        return 1
    except KerasJobError as error:  # nothing started: a bad argument, missing data, Azure refused the login...
        print(error, file=sys.stderr)
        return 2
    print(f"Final test accuracy {result.metrics['Final test accuracy']:.4f}; "
          f"model {result.model_name} v{result.model_version}; {result.url}")
    if args.download_to:
        print("Model downloaded to", download_model(result, args.download_to))
    else:
        print(f"Download it: kerasjob models download {result.model_name} DEST --version {result.model_version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
