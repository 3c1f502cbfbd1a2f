"""``python -m xstilts``: every stage command of dvc.yaml and MLproject runs through here.

A training process has imported torch, transformers, datasets and mlflow; tearing that module graph down at
exit takes seconds and does nothing for the outputs (each command has written, closed and logged them, and
ended its MLflow run). So once the command returns, the streams are flushed and the process ends at once.
"""

import logging
import os
import sys

from xstilts.cli import main

code = main()
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
