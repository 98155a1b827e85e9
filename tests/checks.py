"""Assertions both frameworks' tests share."""


def assert_prediction(text, prefix, num_preds):
  """prefix + num_preds tokens, each a letter, a space or (untrained models) "<unk>"."""
  suffix = text[len(prefix):]
  assert text.startswith(prefix)
  assert len(suffix) - 4 * suffix.count("<unk>") == num_preds
  assert set(suffix.replace("<unk>", "")) <= set("abcdefghijklmnopqrstuvwxyz ")
