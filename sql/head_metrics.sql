-- The heads in use, one per facet, with their holdout figures.
SELECT facet, version, strategy, round(accuracy, 4) AS holdout_accuracy,
       round(balanced_accuracy, 4) AS holdout_balanced_accuracy, n_train, n_holdout, bar, model, promoted_at
FROM heads
WHERE promoted
ORDER BY facet;
