"""The method's central result at small scale (Schopf et al., ML4pXRDs; issue 8), end to end, no Ray.

Claim under test: a network trained only on synthetic crystals drawn from a collection's statistics
classifies patterns of *unseen structure types* better than the same network trained on the
collection's own structures.

The walk, one module per step (`run.run` calls them in this order):

1. `data`: the collection's records (one per material id: the mp40 CSVs overlap), read serially,
   split by structure type and turned into statistics by `xrdgen.pipeline` (`split_seed` fixed
   across training seeds); the class list is the space groups with at least
   `statistics.min_count_per_spacegroup` statistics-part structures. Then the labelled sets
   (`xrdgen.training.datasets`), built once and restricted to the class list: pure patterns of the
   test-part structures, the same structures with coordinates / lattice / both re-drawn from the
   statistics (the method's supplementary S3 test), the measured patterns whose space group is a
   class, and arm B's training set. Saved in data/ and reused while the data settings are unchanged.
2. `arms`: two arms per training seed, the same architecture (`training.model`), batch size,
   optimiser and number of gradient steps (`experiment.steps`, the equal budget):
   - A "synthetic": the `PatternStream` (generate -> spglib check -> simulate -> imperfections);
   - B "structures": the statistics-part structures of the class list simulated at the two
     crystallite sizes `training.baseline_sizes_nm`, dropout on, shuffled passes over that fixed set.
   The `Trainer` evaluates the test set every `eval_every` steps (the learning curves); at the end
   every labelled set is evaluated (top-1, top-5, per-space-group recall).
3. `report`: mean ± std over seeds, chance levels, results.md and the two figures.
4. `run`: the outputs in OUT: results.json, results.md, learning_curves.png,
   recall_per_spacegroup.png, config.yaml (exact config and seeds), command.txt, data/ (statistics,
   held-out test entries, prepared patterns) and runs/<arm>_seed<s>/ (run directories plus
   evaluation.json). Repeating the command (e.g. with more seeds) reuses the prepared data (keyed by
   a hash of the settings they depend on) and every finished run (evaluation.json present); an
   unfinished run is redone from scratch, because the position of a synthetic stream cannot be
   restored.
"""
