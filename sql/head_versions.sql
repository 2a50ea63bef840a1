-- Every head version the library has trained, newest first per facet: what it learnt from (the version is a
-- hash of its training set and settings), how it did on the group-aware holdout, what it promised for a new
-- shoot (multi facets: applied precision and recall over their group-aware folds), whether it ever passed the
-- blocking check (promoted_at: only such a version can be restored, `tagsmith rollback`), whether it is the one
-- in use now and whether it is pinned ($pinned: the versions the library's pins.yaml names now).
SELECT facet, version, promoted AS in_use, list_contains($pinned, version) AS pinned, strategy,
       round(accuracy, 4) AS holdout_accuracy,
       round(coalesce(CAST(metrics->>'$.new_shoot.top1_projected' AS DOUBLE), accuracy), 4) AS new_shoot_top1,
       round(coalesce(CAST(metrics->>'$.new_shoot.applied_precision' AS DOUBLE),
                      CAST(metrics->>'$.applied_precision' AS DOUBLE)), 4) AS new_shoot_applied_precision,
       n_train, n_holdout, bar, model, trained_at, promoted_at
FROM heads
WHERE $facet = '' OR facet = $facet
ORDER BY facet, trained_at DESC, version;
