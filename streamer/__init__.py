"""streamer: breakout and defect monitoring for continuous casting strands.

Data path: consume -> buffer -> batch -> infer -> publish -> commit.
"""

__version__ = "0.1.0"
