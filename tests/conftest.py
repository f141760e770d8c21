"""Test-wide settings: quiet progress bars and TensorFlow logs, a headless matplotlib."""

import os

os.environ.setdefault("TOMOSEG_NB_PROGRESS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
