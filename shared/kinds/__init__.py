"""The kinds of run, each a plan of units for shared/runner.py and the results.json its
outcomes make: a comparison (compare), several seeds (seeds), a sweep (sweep), an ablation
(ablation); and `prepare`, the checks they share before any training."""
from shared import data, distributed, levers, memory, registry, rows


def prepare(config, names: list, device=None, launched=None, data_dir=None) -> tuple:
  """Everything a comparison of `names` can fail on before any training, each a ValueError
  (or data.DataError) naming the fix; joins a launched run. Returns (config with the text's
  vocabulary, corpus, vocab)."""
  rows.check(names, config)
  distributed.check(config, device, launched)
  levers.refusals(registry.options(), config, {rows.IMPLS[n].framework for n in names})
  if launched:
    distributed.check_launched(rows.run_rows(names, config), launched)
    distributed.join(registry.module(launched["framework"], "distributed"), config, device)
  corpus, vocab = data.load_corpus(config.max_tokens, data_dir)
  config = config.set(vocab_size=len(vocab)).validate()
  data.check_sizes(corpus, config.batch_size, config.num_steps)
  memory.check(config, [r.info.layout for r in rows.run_rows(names, config)])
  return config, corpus, vocab
