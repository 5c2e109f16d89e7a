"""The method's central result at small scale (Schopmans et al., ML4pXRDs; issues 8 and 12), end to end, no Ray.

Claim under test: a network trained only on synthetic crystals drawn from a collection's statistics
classifies patterns of *unseen structure types* better than the same network trained on the
collection's own structures. The random-split control shows how much of either arm's accuracy
depends on the structure types being unseen.

The walk, one module per step (`run.run` calls them in this order), for every split of
`experiment.splits` ("structure_type", the method's; "random", the control of the original's
Table S2):

1. `data`: the collection's records (one per material id: the mp40 CSVs overlap), read serially
   once, split 70/30 (`split_seed` fixed across training seeds) and turned into statistics by
   `xrdgen.pipeline`; the class list is the space groups with at least
   `statistics.min_count_per_spacegroup` statistics-part structures. Then the labelled sets, built
   once, every simulated one in the run's pattern preset (`preset`, `pure` for the reproduction):
   - the test set: the test part of the class list within the generator's limits, labelled with
     the collection's own label where it has one, else spglib's (`testsets`); beside it the
     unfiltered test set;
   - on the structure-type split, the reference set (the test crystals made ordered, labels
     recomputed) and the randomized sets built from it (coordinates / lattice / both redrawn from
     the statistics, the method's supplementary S3);
   - the measured patterns whose space group is a class;
   - arm B's training set: the statistics-part structures of the class list within the limits,
     `training.baseline_patterns_per_structure` patterns each, every crystallite size drawn.
   Saved in data/<split>/ and reused while the data settings are unchanged.
2. `arms`: two arms per split and training seed, the same architecture (`training.model`), batch
   size, optimiser and number of gradient steps (`experiment.steps`, the equal budget):
   - A "synthetic": the `PatternStream` (generate -> spglib check -> simulate -> the preset's
     imperfections, none in `pure`);
   - B "structures": shuffled passes over arm B's fixed set, dropout on.
   The `Trainer` evaluates the test set every `eval_every` steps (the learning curves); at the end
   every labelled set is evaluated (top-1, top-5, per-space-group recall).
3. `report`: mean ± std over seeds, chance levels, one table per split, the random-split control
   table, the counts (labels, limits, references), and the two figures of the structure-type split.
4. `run`: the outputs in OUT: results.json (with the preset), results.md, learning_curves.png,
   recall_per_spacegroup.png, config.yaml (exact config and seeds), command.txt, data/<split>/
   (statistics, held-out test entries, prepared patterns) and runs/<split>/<arm>_seed<s>/ (run
   directories, whose meta.json records the preset, plus evaluation.json). Repeating the command
   (e.g. with more seeds) reuses the prepared data (keyed by a hash of the settings they depend on)
   and every finished run (evaluation.json present); an unfinished run is redone from scratch,
   because the position of a synthetic stream cannot be restored.
"""
