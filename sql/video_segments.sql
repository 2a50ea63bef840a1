-- Video segments people read: file, tag name, start/end seconds, peak score, status.
-- Parameters: $statuses (VARCHAR[]), $video (VARCHAR: part of the file name, '' for every video).
SELECT m.uri, s.media_id, s.facet, s.tag_id, c.name, s.start_s, s.end_s,
       round(s.end_s - s.start_s, 2) AS seconds, s.peak_score, s.status
FROM video_segments s
JOIN media m USING (media_id)
LEFT JOIN catalog c ON c.tag_id = s.tag_id AND c.facet = s.facet
WHERE list_contains($statuses, s.status)
  AND ($video = '' OR contains(lower(m.uri), lower($video)))
ORDER BY m.uri, s.start_s, s.facet;
