-- A library's catalog as people read it in one language (the API's catalog endpoint, service.catalog_table):
-- `name` is the tag's display name in $lang, else in its base language ('pt' for 'pt-br'), else the catalog's
-- `name` (kept as `default_name`); the same fallback as `matched` in sql/search.sql.
-- Parameters: $lang (VARCHAR: a code ml/catalog_names.py folded, '' for the catalog's names).
-- Result: tag_id, facet, name, default_name, aliases, identifiers, retired; by facet, then tag_id.
SELECT tag_id, facet,
       coalesce(map_from_entries(names)[$lang], map_from_entries(names)[split_part($lang, '-', 1)], name) AS name,
       name AS default_name, aliases, identifiers, retired
FROM catalog
ORDER BY facet, tag_id;
