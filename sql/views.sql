-- Analyst views over a library's tables; run with the library's schema as the current schema.

-- Every tag on a photo with the tag's names and the photo's location.
CREATE OR REPLACE VIEW tag_details AS
SELECT t.media_id, m.uri, t.facet, t.tag_id, c.name, c.aliases, c.identifiers, t.score, t.status, t.head_version, t.box,
       t.origin, t.set_by, t.set_at, t.candidates
FROM tags t
JOIN catalog c USING (facet, tag_id)
JOIN (SELECT media_id, min(uri) AS uri FROM media GROUP BY media_id) m USING (media_id);

-- What people should look at: predictions under their tag's threshold, least confident first.
CREATE OR REPLACE VIEW review_queue AS
SELECT * FROM tag_details WHERE status = 'review' ORDER BY score ASC;

-- How much of the library each tag covers.
CREATE OR REPLACE VIEW coverage AS
SELECT c.facet, c.tag_id, c.name,
       count(t.media_id) FILTER (WHERE t.status IN ('applied', 'manual')) AS applied,
       count(t.media_id) FILTER (WHERE t.status = 'review') AS in_review
FROM catalog c
LEFT JOIN tags t USING (facet, tag_id)
GROUP BY ALL
ORDER BY c.facet, applied DESC;
