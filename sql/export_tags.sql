-- Tags for export (CSV/Parquet), one row per photo and facet. Parameter: $statuses (VARCHAR[]).
SELECT media_id, uri, facet, tag_id, name, score, status, origin, set_by, set_at, head_version
FROM tag_details
WHERE list_contains($statuses, status)
ORDER BY uri, facet;
