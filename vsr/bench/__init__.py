"""Benchmarks: dataset layouts, the quality runner and its reports (``vsr bench``).

The speed benchmark lives with the engine; this package scores quality with ``vsr.quality``.
"""

from .datasets import BenchDataset, BenchItem, open_dataset, shared_datasets_dir
from .report import format_table, write_report
from .runner import BenchResults, FrameScore, run_quality_bench

__all__ = ["BenchDataset", "BenchItem", "BenchResults", "FrameScore", "format_table",
           "open_dataset", "run_quality_bench", "shared_datasets_dir", "write_report"]
