-- Search photos and video segments by words: every term must match a tag (its id, name, an alias or an
-- identifier, in any facet); ranked by the mean score of the matching tags.
-- Photos: the tags on the photo. Videos: the stretch where segments matching every term are on screen at once
-- (their intersection), so "aurora storm blue" finds where the product and the colourway are both shown.
-- Both sides are folded by one Python function (ml/search_text.py: NFKC, case, accents, punctuation as word
-- breaks): the catalog's `search_text` column is written folded, and $terms must come from
-- `ml.search_text.search_terms(text)`; this query compares them and folds nothing itself.
-- A term (one typed word, e.g. 'sku 4411' from "SKU-4411") matches a tag when one of the tag's entries holds it
-- as whole words in a row, or those words with the last one only begun (when it has 3+ letters: 'hyd',
-- 'sku 441'), or the same letters without the breaks ('SKU4411', 'H-500'), or - for scripts written without
-- spaces - holds it anywhere. A tag's display names in other languages (`names`) are in its search text too.
-- Parameters: $terms (VARCHAR[]), $statuses (VARCHAR[]), $facets (VARCHAR[]: only tags of these facets may
-- match; empty: any facet), $lang (VARCHAR: the language `matched` names tags in, its base language next
-- ('pt' for 'pt-br'), else the tag's `name`; '' for `name`), $limit and $offset (INTEGER: one page).
-- Result: media_id, uri, kind ('image' or 'video'), start_s and end_s (NULL for photos), score, matched (display
-- names), tag_ids (the matched tags' ids, sorted: stable whatever the language). Ties in score are ordered by
-- media_id and time, a total order, so consecutive pages never overlap or skip a hit.
-- Cost (benchmarks/search_latency.py, 1,000,000 tags): hits are ranked on numbers only and cut to the page first;
-- names, ids and uris are looked up for the page's rows alone (`media` is read for them, not for every hit).
WITH terms AS (
    SELECT DISTINCT term FROM (SELECT unnest($terms) AS term) WHERE term <> ''
),
term_tags AS (
    SELECT terms.term, c.facet, c.tag_id,
           coalesce(map_from_entries(c.names)[$lang], map_from_entries(c.names)[split_part($lang, '-', 1)],
                    c.name) AS name
    FROM terms, catalog c
    WHERE (len($facets) = 0 OR list_contains($facets, c.facet))
      AND len(list_filter(c.search_text, lambda e:
              contains(' ' || e || ' ', ' ' || terms.term || ' ')
              OR (regexp_matches(terms.term, '[^ ]{3,}$') AND contains(' ' || e, ' ' || terms.term))
              OR replace(e, ' ', '') = replace(terms.term, ' ', '')
              OR (regexp_matches(terms.term, '[^\x00-\x7F]') AND contains(e, terms.term)))) > 0
),
photo_matches AS MATERIALIZED (  -- every photo tag matching a term (read again for the page's names)
    SELECT t.media_id, tt.term, tt.tag_id, tt.name,
           CASE WHEN t.status = 'manual' THEN 1.0 ELSE t.score END AS score  -- a person's tag is sure
    FROM tags t
    JOIN term_tags tt USING (facet, tag_id)
    WHERE list_contains($statuses, t.status)
),
photo_hits AS (  -- photos with a tag for every term: the mean of each term's best score
    SELECT media_id, NULL::DOUBLE AS start_s, NULL::DOUBLE AS end_s, avg(score) AS score
    FROM (SELECT media_id, term, max(score) AS score FROM photo_matches GROUP BY media_id, term)
    GROUP BY media_id
    HAVING count(*) = (SELECT count(*) FROM terms)
),
segments AS (
    SELECT * REPLACE (CASE WHEN status = 'manual' THEN 1.0 ELSE peak_score END AS peak_score)
    FROM video_segments WHERE list_contains($statuses, status)
),
video_pairs AS (  -- every segment matching a term, paired with each segment of the same video it overlaps
    SELECT anchor.media_id, anchor.facet AS a_facet, anchor.tag_id AS a_tag, anchor.start_s AS a_start,
           tt.term, tt.name, tt.tag_id, s.peak_score,
           greatest(anchor.start_s, s.start_s) AS w_start, least(anchor.end_s, s.end_s) AS w_end
    FROM segments anchor
    JOIN segments s ON s.media_id = anchor.media_id AND s.start_s < anchor.end_s AND s.end_s > anchor.start_s
    JOIN term_tags tt ON tt.facet = s.facet AND tt.tag_id = s.tag_id
    WHERE (anchor.facet, anchor.tag_id) IN (SELECT (facet, tag_id) FROM term_tags)
),
video_terms AS (  -- per anchor and term: the matching segment that overlaps the anchor most
    SELECT media_id, a_facet, a_tag, a_start, term,
           arg_max(w_start, w_end - w_start) AS w_start, arg_max(w_end, w_end - w_start) AS w_end,
           arg_max(peak_score, w_end - w_start) AS score, arg_max(name, w_end - w_start) AS name,
           arg_max(tag_id, w_end - w_start) AS tag_id
    FROM video_pairs
    GROUP BY media_id, a_facet, a_tag, a_start, term
),
video_windows AS (  -- where every term's segment is on screen at once: the intersection
    SELECT media_id, a_facet, a_tag, a_start, max(w_start) AS start_s, min(w_end) AS end_s
    FROM video_terms
    GROUP BY media_id, a_facet, a_tag, a_start
),
video_matches AS MATERIALIZED (  -- per window and term: the best score, and what matched it
    SELECT v.media_id, w.start_s, w.end_s, v.term, v.tag_id, v.name, v.score
    FROM video_terms v
    JOIN video_windows w USING (media_id, a_facet, a_tag, a_start)
    WHERE w.start_s < w.end_s
),
video_hits AS (  -- one hit per window (anchors that give the same window are one hit)
    SELECT media_id, start_s, end_s, avg(score) AS score
    FROM (SELECT media_id, start_s, end_s, term, max(score) AS score FROM video_matches
          GROUP BY media_id, start_s, end_s, term)
    GROUP BY media_id, start_s, end_s
    HAVING count(*) = (SELECT count(*) FROM terms)
),
page AS (  -- the hits of the page asked for, ranked
    SELECT media_id, start_s, end_s, round(score, 4) AS score
    FROM (SELECT * FROM photo_hits UNION ALL SELECT * FROM video_hits)
    ORDER BY round(score, 4) DESC, media_id, start_s NULLS FIRST, end_s
    LIMIT $limit OFFSET $offset
),
page_matches AS (  -- what each hit of the page matched
    SELECT p.media_id, p.start_s, p.end_s, m.name, m.tag_id
    FROM page p JOIN photo_matches m USING (media_id) WHERE p.start_s IS NULL
    UNION ALL
    SELECT media_id, start_s, end_s, name, tag_id FROM video_matches JOIN page USING (media_id, start_s, end_s)
)
SELECT p.media_id, m.uri, m.kind, p.start_s, p.end_s, p.score,
       string_agg(DISTINCT pm.name, ', ' ORDER BY pm.name) AS matched, list_sort(list(DISTINCT pm.tag_id)) AS tag_ids
FROM page p
JOIN page_matches pm ON pm.media_id = p.media_id AND pm.start_s IS NOT DISTINCT FROM p.start_s
                        AND pm.end_s IS NOT DISTINCT FROM p.end_s
JOIN (SELECT media_id, min(uri) AS uri, min(kind) AS kind FROM media
      WHERE media_id IN (SELECT media_id FROM page) GROUP BY media_id) m ON m.media_id = p.media_id
GROUP BY p.media_id, m.uri, m.kind, p.start_s, p.end_s, p.score
ORDER BY p.score DESC, p.media_id, p.start_s NULLS FIRST, p.end_s;
