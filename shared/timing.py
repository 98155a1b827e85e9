"""The d2l book's small tools: Timer and Accumulator."""
import time

import numpy as np


class Timer:
  """Records multiple running times (d2l.Timer)."""

  def __init__(self):
    self.times = []
    self.start()

  def start(self):
    self.tik = time.perf_counter()

  def stop(self) -> float:
    """Stops the timer, records and returns the elapsed seconds."""
    self.times.append(time.perf_counter() - self.tik)
    return self.times[-1]

  def avg(self) -> float:
    return sum(self.times) / len(self.times)

  def sum(self) -> float:
    return sum(self.times)

  def cumsum(self) -> list:
    return np.array(self.times).cumsum().tolist()


class Accumulator:
  """Sums over n variables (d2l.Accumulator)."""

  def __init__(self, n: int):
    self.data = [0.0] * n

  def add(self, *args):
    self.data = [a + float(b) for a, b in zip(self.data, args)]

  def reset(self):
    self.data = [0.0] * len(self.data)

  def __getitem__(self, idx):
    return self.data[idx]
