-- Search photos and video segments by words: every term must match a tag (its name, an alias, an identifier
-- or its id, in any facet, accents and case ignored); ranked by the mean score of the matching tags.
-- Photos: the tags on the photo. Videos: a segment and the segments of the same video that overlap it in time,
-- so "aurora storm blue" finds the stretch where the product and the colourway are both on screen.
-- A term matches a tag when it is a word of the tag's text, a prefix (3+ letters) of one, or - for scripts
-- written without spaces - a substring of the text.
-- Parameters: $terms (VARCHAR[]), $statuses (VARCHAR[]), $limit (INTEGER).
-- Result: media_id, uri, kind ('image' or 'video'), start_s and end_s (NULL for photos), score, matched.
WITH terms AS (
    SELECT DISTINCT lower(strip_accents(trim(term))) AS term
    FROM (SELECT unnest($terms) AS term)
    WHERE trim(term) <> ''
),
tag_text AS (
    SELECT facet, tag_id, name,
           lower(strip_accents(concat_ws(' ', tag_id, name, array_to_string(aliases, ' '),
                                         array_to_string(identifiers, ' ')))) AS txt
    FROM catalog
),
tag_words AS (
    SELECT facet, tag_id, name, txt, regexp_split_to_array(txt, '[\s\-_/,.;:()]+') AS words FROM tag_text
),
term_tags AS (
    SELECT terms.term, w.facet, w.tag_id, w.name
    FROM terms, tag_words w
    WHERE list_contains(w.words, terms.term)
       OR (length(terms.term) >= 3 AND len(list_filter(w.words, lambda x: starts_with(x, terms.term))) > 0)
       OR (regexp_matches(terms.term, '[^\x00-\x7F]') AND contains(w.txt, terms.term))
),
photo_hits AS (
    SELECT t.media_id, NULL::DOUBLE AS start_s, NULL::DOUBLE AS end_s, tt.term, max(t.score) AS score,
           string_agg(DISTINCT tt.name, ', ') AS matched
    FROM tags t
    JOIN term_tags tt USING (facet, tag_id)
    WHERE list_contains($statuses, t.status)
    GROUP BY t.media_id, tt.term
),
segments AS (
    SELECT * FROM video_segments WHERE list_contains($statuses, status)
),
video_hits AS (
    SELECT anchor.media_id, anchor.start_s, anchor.end_s, tt.term, max(s.peak_score) AS score,
           string_agg(DISTINCT tt.name, ', ') AS matched
    FROM segments anchor
    JOIN segments s ON s.media_id = anchor.media_id AND s.start_s < anchor.end_s AND s.end_s > anchor.start_s
    JOIN term_tags tt ON tt.facet = s.facet AND tt.tag_id = s.tag_id
    GROUP BY anchor.media_id, anchor.start_s, anchor.end_s, tt.term
),
hits AS (
    SELECT * FROM photo_hits UNION ALL SELECT * FROM video_hits
)
SELECT h.media_id, m.uri, m.kind, h.start_s, h.end_s, round(avg(h.score), 4) AS score,
       string_agg(DISTINCT h.matched, ', ') AS matched
FROM hits h
JOIN (SELECT media_id, min(uri) AS uri, min(kind) AS kind FROM media GROUP BY media_id) m USING (media_id)
GROUP BY h.media_id, m.uri, m.kind, h.start_s, h.end_s
HAVING count(DISTINCT h.term) = (SELECT count(*) FROM terms) AND (SELECT count(*) FROM terms) > 0
ORDER BY score DESC, m.uri, h.start_s
LIMIT $limit;
