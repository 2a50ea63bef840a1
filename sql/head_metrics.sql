-- The heads in use, one per facet, with their figures. holdout_* are measured on the group-aware holdout
-- (shoots and look-alike clusters the head never saw) by the head trained on the train split; new_shoot_*
-- is the promise for a new shoot of the head in use (refitted on every example: ml/projection.py), with its
-- interval (Wilson, 95 %); same_shoot_top1 is what a random split of the same photos reports for the visual
-- head alone (without text or keypoints), optimistic, beside same_shoot_group_aware_top1, the same head's
-- figure on the group-aware holdout. backbone: base, views or finetuned, as backbone_choice picked it (the
-- backbone_choice view has every candidate's linear probe).
SELECT facet, version, metrics->>'$.backbone' AS backbone, strategy, round(accuracy, 4) AS holdout_accuracy,
       round(balanced_accuracy, 4) AS holdout_balanced_accuracy,
       round(CAST(metrics->>'$.new_shoot.top1_projected' AS DOUBLE), 4) AS new_shoot_top1,
       printf('%.3f-%.3f', CAST(metrics->>'$.new_shoot.top1_low' AS DOUBLE),
              CAST(metrics->>'$.new_shoot.top1_projected_high' AS DOUBLE)) AS new_shoot_top1_interval,
       round(CAST(metrics->>'$.new_shoot.applied_precision' AS DOUBLE), 4) AS new_shoot_applied_precision,
       round(CAST(metrics->>'$.new_shoot.share_applied' AS DOUBLE), 4) AS new_shoot_share_applied,
       round(CAST(metrics->>'$.same_shoot.top1' AS DOUBLE), 4) AS same_shoot_top1,
       round(CAST(metrics->>'$.same_shoot.group_aware_top1' AS DOUBLE), 4) AS same_shoot_group_aware_top1,
       json_array_length(metrics->'$.single_group_tags') AS single_shoot_tags,
       n_train, n_holdout, bar, model, promoted_at
FROM heads
WHERE promoted
ORDER BY facet;
