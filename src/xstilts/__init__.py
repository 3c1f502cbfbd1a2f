"""xstilts: X-STILTs intermediate-task training on XTREME-R, tracked with MLflow and DVC."""

from xstilts.hardware import quiet_openmp

quiet_openmp()  # before anything loads torch
