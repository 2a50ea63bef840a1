-- Per event, per sponsor: photos, screen time and share of voice, recomputed from the sponsor tables each event's
-- report writes (sponsor_photos: one row per sponsor and photo; sponsor_segments: the sponsor's stretches on
-- screen, overlaps already merged), so analysts can rerun it, filter it or change it. Shares are among the
-- sponsors of the event only (null where no sponsor was seen in that medium), as in the HTML report.
-- Parameters: $event (VARCHAR: an event name, '' for every event).
WITH photos AS (
    SELECT event, tag_id, count(DISTINCT media_id) AS photos, avg(score) AS mean_score
    FROM sponsor_photos
    GROUP BY event, tag_id
), screen AS (
    SELECT event, tag_id, sum(end_s - start_s) AS screen_time_s, count(DISTINCT media_id) AS videos
    FROM sponsor_segments
    GROUP BY event, tag_id
), figures AS (
    SELECT s.event, s.tag_id, s.name,
           coalesce(p.photos, 0) AS photos,
           p.mean_score,
           coalesce(v.videos, 0) AS videos,
           coalesce(v.screen_time_s, 0.0) AS screen_time_s
    FROM sponsor_summary s
    LEFT JOIN photos p USING (event, tag_id)
    LEFT JOIN screen v USING (event, tag_id)
    WHERE $event = '' OR s.event = $event
)
SELECT event, tag_id, name, photos, round(mean_score, 4) AS mean_score, videos,
       round(screen_time_s, 3) AS screen_time_s,
       photos / nullif(sum(photos) OVER (PARTITION BY event), 0) AS photo_share,
       screen_time_s / nullif(sum(screen_time_s) OVER (PARTITION BY event), 0) AS screen_share
FROM figures
ORDER BY event, screen_time_s DESC, photos DESC, name;
