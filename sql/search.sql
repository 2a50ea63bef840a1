-- Search photos by words: every term must match some tag on the photo (its name, an alias, an identifier
-- or its id, in any facet, accents and case ignored); ranked by the mean score of the matching tags.
-- A term matches a tag when it is a word of the tag's text, a prefix (3+ letters) of one, or - for scripts
-- written without spaces - a substring of the text.
-- Parameters: $terms (VARCHAR[]), $statuses (VARCHAR[]), $limit (INTEGER).
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
hits AS (
    SELECT t.media_id, tt.term, max(t.score) AS score, string_agg(DISTINCT tt.name, ', ') AS matched
    FROM tags t
    JOIN term_tags tt USING (facet, tag_id)
    WHERE list_contains($statuses, t.status)
    GROUP BY t.media_id, tt.term
)
SELECT h.media_id, m.uri, round(avg(h.score), 4) AS score, string_agg(DISTINCT h.matched, ', ') AS matched
FROM hits h
JOIN (SELECT media_id, min(uri) AS uri FROM media GROUP BY media_id) m USING (media_id)
GROUP BY h.media_id, m.uri
HAVING count(DISTINCT h.term) = (SELECT count(*) FROM terms) AND (SELECT count(*) FROM terms) > 0
ORDER BY score DESC, m.uri
LIMIT $limit;
