"""The OpenAPI 3.1 description of the JSON API, served at /api/openapi.json.

Kept true by tests that validate real responses against it and by
schemathesis running against it.
"""

from __future__ import annotations

from typing import Any

from searchapp import __version__
from searchapp.errors import PROBLEMS_LISTED
from searchapp.export import FIELDS as EXPORT_FIELDS
from searchapp.export import MAX_EXPORT_ROWS
from searchapp.feedback import CHOICES as FEEDBACKS
from searchapp.fields import FACETS
from searchapp.query import MAX_QUERY_TERMS
from searchapp.request import DEFAULT_FACET_SIZE, MAX_FACET_SIZE, MAX_FACET_VALUES, PRESETS
from searchapp.search import (
    DEFAULT_PER_PAGE,
    MATCHES,
    MAX_PAGE,
    MAX_PER_PAGE,
    MAX_QUERY_CHARS,
    SORTS,
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("Error"), "A parameter has a value that cannot be used; the message"
                                " names it."),
    "404": _json(_ref("Error"), "Nothing here."),
    "405": _json(_ref("Error"), "Method not allowed."),
    "503": _json(_ref("Error"), "The index cannot be opened (`index_unavailable`;"
                                " `searchapp reindex` restores it), or what needs the catalog"
                                " (an item) finds it missing (`catalog_missing`) or"
                                " damaged (`catalog_damaged`): restore it from a backup or"
                                " run `searchapp recover`."),
}


def _many(name: str, description: str, items: dict[str, Any],
          most: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": items}
    if most is not None:
        schema["maxItems"] = most
    return {"name": name, "in": "query", "description": description, "required": False,
            "style": "form", "explode": True, "schema": schema}


def _one(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "required": False,
            "schema": schema}


SEARCH_PARAMETERS = [
    _one("q", "Words, \"phrases\", OR, NOT or -word, title: / summary:, prefix*. Empty: every"
              " item, newest first. A long query is searched with its first"
              f" {MAX_QUERY_TERMS} words (the answer says `shortened`).",
         {"type": "string", "maxLength": MAX_QUERY_CHARS}),
    *(_many(name, facet.help.replace(" (repeatable)", "") + " OR within a facet, AND with"
            f" the other filters; at most {MAX_FACET_VALUES} values.", facet.parameter,
            MAX_FACET_VALUES) for name, facet in FACETS.items()),
    _one("year_from", "Only items from this year on (not after `year_to`: that is a 400).",
         {"type": "integer", "minimum": 1000, "maximum": 9999}),
    _one("year_to", "Only items up to this year.",
         {"type": "integer", "minimum": 1000, "maximum": 9999}),
    _one("date_from", "Only items dated on or after this day (YYYY-MM-DD; not after `date_to`:"
                      " that is a 400). Undated items are left out while any date filter is"
                      " on.", {"type": "string", "format": "date"}),
    _one("date_to", "Only items dated on or before this day (YYYY-MM-DD).",
         {"type": "string", "format": "date"}),
    _one("past", "Only items from the past week, month or year: dated from the same day a"
                 " week, month or year ago up to today (UTC). Combines with `date_from` /"
                 " `date_to` (both must hold).", {"type": "string", "enum": list(PRESETS)}),
    _one("sort", "Order; default `relevance` with words, `newest` without. Undated items"
                 " come last.", {"type": "string", "enum": list(SORTS)}),
    _one("match", "`all` words (default) or `any` of them.",
         {"type": "string", "enum": list(MATCHES), "default": "all"}),
    _one("page", "Page number, from 1. A page reaching past the first results of a"
                 " search (`page` x `per_page` over SEARCHAPP_MAX_RESULT_WINDOW, 10,000 by"
                 " default) is refused with a 400 naming `page`: narrow the search"
                 " instead.",
         {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}),
    _one("per_page", "Hits per page.", {"type": "integer", "minimum": 1,
                                        "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE}),
    _one("feedback", "Pseudo-relevance feedback when sorting by relevance: `rm3` reorders the"
                     " matches with words from the first hits (the matches, total and facets"
                     " stay the same); `none` turns it off. Default: the server's setting"
                     " (SEARCHAPP_FEEDBACK).", {"type": "string", "enum": list(FEEDBACKS)}),
]

_FACET_SIZE = _one("facet_size", "Values listed per facet (the most frequent first; years"
                                 " newest first); selected values are always listed, and"
                                 " `facets_truncated` says which facets have more.",
                   {"type": "integer", "minimum": 1, "maximum": MAX_FACET_SIZE,
                    "default": DEFAULT_FACET_SIZE})
_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_DATE = {"type": ["string", "null"], "format": "date"}
_YEAR = {"type": ["integer", "null"]}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "properties": {"error": {
            "type": "object", "required": ["code", "message"], "additionalProperties": False,
            "properties": {"code": {"type": "string",
                                    "examples": ["bad_parameter", "unknown_parameter"]},
                           "message": {"type": "string"},
                           "unknown": {"type": "array", "items": {"type": "string"},
                                       "description": "`unknown_parameter`: the parameters"
                                                      " the route does not know."},
                           "known": {"type": "array", "items": {"type": "string"},
                                     "description": "`unknown_parameter`: the parameters"
                                                    " it does."}}}},
    },
    "Item": {
        "type": "object",
        "required": ["id", "organisation", "title", "summary", "date", "year", "type", "url",
                     "language", "source", "source_url", "language_origin",
                     "language_confidence"],
        "properties": {
            "id": {"type": "string"}, "organisation": {"type": "string"},
            "title": {"type": "string"}, "summary": {"type": "string"},
            "date": {"type": ["string", "null"], "format": "date"}, "year": _YEAR,
            "type": {"type": "string"}, "url": _NULLABLE_STR,
            "language": {"type": "string", "pattern": "^[a-z]{2}$"},
            "source": {"type": "string"},
            "source_url": {**_NULLABLE_STR,
                           "description": "The feed or page the item was read from, if known"},
            "language_origin": {
                "type": "string", "enum": ["given", "detected"],
                "description": "Whether the language was given (by the record, its source,"
                               " feed or page, the manifest or --language) or detected from"
                               " the title and summary."},
            "language_confidence": {
                "type": ["number", "null"], "minimum": 0, "maximum": 1,
                "description": "The detector's confidence when detected (null when given);"
                               " below 0.2 the language is the English fallback."},
        },
    },
    "RelatedItem": {
        "allOf": [_ref("Item")], "type": "object", "unevaluatedProperties": False,
        "required": ["score"], "properties": {"score": {"type": "number"}},
    },
    "ItemWithRelated": {
        "type": "object", "unevaluatedProperties": False,
        "allOf": [_ref("Item")],
        "required": ["related", "related_partial"],
        "properties": {"related": {"type": "array", "items": _ref("RelatedItem"),
                                   "maxItems": 5},
                       "related_partial": {
                           "type": "boolean",
                           "description": "True when finding related items ran out of the"
                                          " time budget (SEARCHAPP_SEARCH_TIME_BUDGET): they"
                                          " are the best of those found in time."}},
    },
    "Hit": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "title", "summary", "organisation", "date", "year", "type", "url",
                     "language", "score", "highlights"],
        "properties": {
            "id": {"type": "string"}, "title": {"type": "string"},
            "summary": {"type": "string"}, "organisation": {"type": "string"},
            "date": {"type": ["string", "null"], "format": "date"}, "year": _YEAR,
            "type": {"type": "string"}, "url": _NULLABLE_STR,
            "language": {"type": "string", "pattern": "^[a-z]{2}$",
                         "description": "The item's language (its title and summary are"
                                        " highlighted in it)."},
            "score": {"type": ["number", "null"],
                      "description": "Relevance score; null when sorted by date."},
            "highlights": {
                "type": "object", "required": ["title", "summary"],
                "additionalProperties": False,
                "description": "HTML-escaped text with matched words in <mark>.",
                "properties": {"title": {"type": "string"}, "summary": {"type": "string"}}},
        },
    },
    "FacetValue": {
        "type": "object", "required": ["value", "label", "count", "selected"],
        "additionalProperties": False,
        "properties": {"value": {"type": ["string", "integer", "null"],
                                 "description": "null: undated items (year facet)."},
                       "label": {"type": "string",
                                 "description": "The value as a reader sees it (\"Undated\","
                                                " \"Français\")."},
                       "count": {"type": "integer", "minimum": 0},
                       "selected": {"type": "boolean"}},
    },
    "SearchResponse": {
        "type": "object", "additionalProperties": False,
        "required": ["query", "total", "page", "per_page", "sort", "match", "filters", "dates",
                     "hits", "facets", "facet_size", "facets_truncated", "suggestion",
                     "shortened", "any_words", "too_common", "typos", "partial", "warnings",
                     "unmatched"],
        "properties": {
            "query": {"type": "string"}, "total": {"type": "integer", "minimum": 0},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
            "sort": {"type": "string", "enum": list(SORTS)},
            "match": {"type": "string", "enum": list(MATCHES)},
            "filters": {
                "type": "object", "additionalProperties": False,
                "description": "The filters as applied: facet values as stored (`ilo`"
                               " is answered as `ILO`).",
                "required": [*FACETS, "year_from", "year_to", "date_from", "date_to", "past"],
                "properties": {
                    **{name: {"type": "array", "items": facet.value}
                       for name, facet in FACETS.items()},
                    "year_from": _YEAR, "year_to": _YEAR,
                    "date_from": _NULLABLE_DATE, "date_to": _NULLABLE_DATE,
                    "past": {"type": ["string", "null"], "enum": [*PRESETS, None]}}},
            "dates": {
                "description": "The days items had to be dated within (`date_from`,"
                               " `date_to` and `past` together; null ends are open), or null"
                               " with no date filter.",
                "oneOf": [{"type": "null"}, {
                    "type": "object", "required": ["from", "to"],
                    "additionalProperties": False,
                    "properties": {"from": _NULLABLE_DATE, "to": _NULLABLE_DATE}}]},
            "hits": {"type": "array", "items": _ref("Hit"), "maxItems": MAX_PER_PAGE},
            "facets": {
                "type": "object", "additionalProperties": False,
                "required": list(FACETS),
                "properties": {name: {"type": "array", "items": _ref("FacetValue")}
                               for name in FACETS}},
            "facet_size": {"type": "integer", "minimum": 1, "maximum": MAX_FACET_SIZE},
            "facets_truncated": {
                "type": "object", "additionalProperties": False, "required": list(FACETS),
                "description": "Per facet: true when it has more values than `facet_size`.",
                "properties": {name: {"type": "boolean"} for name in FACETS}},
            "suggestion": {"type": ["string", "null"],
                           "description": "A spelling correction, when the query finds"
                                          " little or nothing."},
            "shortened": {"type": "boolean",
                          "description": "The query was long: only its first words were"
                                         " searched."},
            "any_words": {
                "description": "When no item has every word: how many have any of them"
                               " (search again with match=any).",
                "oneOf": [{"type": "null"}, {
                    "type": "object", "required": ["match", "total"],
                    "additionalProperties": False,
                    "properties": {"match": {"const": "any"},
                                   "total": {"type": "integer", "minimum": 1}}}]},
            "partial": {"type": "boolean",
                        "description": "True when the search ran out of its time budget"
                                       " (SEARCHAPP_SEARCH_TIME_BUDGET): the hits are the"
                                       " best of the items found in time, and `total` and"
                                       " the facet counts may be low."},
            "warnings": {"type": "array", "items": {"type": "string"},
                         "description": "What of the query was left out or narrowed to"
                                        " bound its work: parts over the limits, prefixes"
                                        " searched for fewer of their words."},
            "too_common": {
                "type": "array", "items": {"type": "string"},
                "description": "Words left out of the search because they are too common"
                               " (stop words such as \"the\"), lowercased. When the query"
                               " has no other word, nothing is searched and total is 0;"
                               " with no words at all, everything is listed."},
            "typos": {
                "type": "array",
                "description": "Words no item has (5 letters or more), matched by typo"
                               " tolerance: each also found the index's words within one"
                               " edit (two from 9 letters) with the same first letter,"
                               " ranked below exact matches and marked in highlights.",
                "items": {
                    "type": "object", "required": ["word", "matched"],
                    "additionalProperties": False,
                    "properties": {
                        "word": {"type": "string", "description": "As typed, lowercased."},
                        "matched": {"type": "array", "items": {"type": "string"},
                                    "description": "The close words found, closest"
                                                   " first."}}}},
            "unmatched": {
                "type": "array",
                "description": "Values of the `organisation` and `type` filters that no"
                               " item has (a misspelling, say), each with the closest"
                               " value items have, if one is close; empty when every"
                               " value is had.",
                "items": {
                    "type": "object", "required": ["filter", "value", "did_you_mean"],
                    "additionalProperties": False,
                    "properties": {
                        "filter": {"type": "string", "enum": ["organisation", "type"]},
                        "value": {"type": "string", "description": "As given."},
                        "did_you_mean": {"type": ["string", "null"]}}}},
        },
    },
    "Suggestions": {
        "type": "object", "required": ["query", "suggestions"], "additionalProperties": False,
        "properties": {"query": {"type": "string"},
                       "suggestions": {"type": "array", "items": {"type": "string"}}},
    },
    # A component rather than inline: schemathesis 4 mangles an inline `prefixItems`
    # in a response schema and then rejects it.
    "OpenSearchSuggestions": {
        "type": "array", "description": "`format=opensearch`: [query, [completions]].",
        "prefixItems": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        "minItems": 2, "maxItems": 2,
    },
    "SourceResult": {
        "type": "object", "additionalProperties": False,
        "required": ["name", "result", "added", "updated", "unchanged", "skipped", "error",
                     "problems", "problems_left_out", "summary"],
        "properties": {
            "name": {"type": "string"},
            "result": {"type": "string", "enum": ["imported", "not modified", "failed"]},
            "added": {"type": "integer", "minimum": 0},
            "updated": {"type": "integer", "minimum": 0},
            "unchanged": {"type": "integer", "minimum": 0},
            "skipped": {"type": "integer", "minimum": 0},
            "error": {"type": ["string", "null"],
                      "description": "Why the source failed; its earlier items are kept."},
            "problems": {"type": "array", "items": {"type": "string"},
                         "maxItems": PROBLEMS_LISTED,
                         "description": "`source:line: message` for each record skipped, the"
                                        f" first {PROBLEMS_LISTED:,} of them (`skipped` counts"
                                        " them all)."},
            "problems_left_out": {"type": "integer", "minimum": 0,
                                  "description": f"Problems beyond the first"
                                                 f" {PROBLEMS_LISTED:,}, not listed."},
            "summary": {"type": "string",
                        "examples": ["3 added, 1 updated, 40 unchanged", "not modified"]}},
    },
    "RefreshResponse": {
        "type": "object", "additionalProperties": False,
        "required": ["sources", "index", "failed"],
        "properties": {
            "sources": {"type": "array", "items": _ref("SourceResult")},
            "index": {"type": "string",
                      "enum": ["updated", "rebuilt", "unchanged", "not updated"]},
            "index_problem": {"type": ["string", "null"],
                              "description": "Why the index was not updated (the items"
                                             " are stored; the next import or `searchapp"
                                             " reindex --if-needed` indexes them)."},
            "failed": {"type": "integer", "minimum": 0}},
    },
    "Problem": {
        "type": "object", "required": ["source", "line", "message"],
        "additionalProperties": False,
        "properties": {"source": {"type": "string"}, "line": {"type": "integer", "minimum": 1},
                       "message": {"type": "string"}},
    },
    "Job": {
        "type": "object", "additionalProperties": False,
        "description": "Admin work (an import, a rebuild, a refresh) and what became of it.",
        "required": ["id", "kind", "state", "phase", "done", "total", "created", "started",
                     "finished", "result", "error"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string", "enum": ["import", "reindex", "refresh"]},
            "state": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
            "phase": {"type": "string", "description": "What the job is doing now: queued,"
                      " or `waiting for other imports or rebuilds to finish` while another"
                      " import or rebuild holds the index lock (an import or rebuild job is"
                      " still `queued` then, and has not read its upload; a refresh job"
                      " waits so after fetching, `running`); `waiting for the catalog"
                      " (another program holds its write lock)` while a program other than"
                      " searchapp (a sqlite3 shell, a backup tool) keeps the catalog locked,"
                      " up to SEARCHAPP_CATALOG_WAIT seconds; starting, reading, checking,"
                      " storing, indexing, writing the index, ...; or done / failed."},
            "done": {"type": ["integer", "null"]}, "total": {"type": ["integer", "null"]},
            "created": {"type": "string", "format": "date-time"},
            "started": {"type": ["string", "null"], "format": "date-time"},
            "finished": {"type": ["string", "null"], "format": "date-time"},
            "result": {"type": ["object", "null"],
                       "description": "What the job did: an import's added / updated /"
                                      " unchanged / skipped counts, the problems of the"
                                      f" records skipped (`errors`, the first"
                                      f" {PROBLEMS_LISTED:,} of them, and `errors_left_out`,"
                                      " how many more), `index`"
                                      " (updated, rebuilt, unchanged, or `not updated` with"
                                      " `index_problem`), `index_note` (null, or how an"
                                      " update was written when not the usual way: by"
                                      " Whoosh's writer, slower to search until a reindex)"
                                      " and `repaired` (items of earlier"
                                      " imports indexed only now); a rebuild's generation,"
                                      " documents and seconds; a refresh's RefreshResponse."
                                      " An import whose items were stored but not indexed"
                                      " is `failed` with error code `stored_not_indexed`"
                                      " and has this result too."},
            "error": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["code", "message"], "additionalProperties": False,
                "properties": {"code": {"type": "string", "examples": [
                                   "invalid_import", "stored_not_indexed", "interrupted",
                                   "catalog_busy", "read_only"]},
                               "message": {"type": "string"},
                               "problems": {"type": "array", "items": _ref("Problem"),
                                            "maxItems": PROBLEMS_LISTED,
                                            "description": "A rejected import's problems"
                                                           " (`invalid_import`), in order:"
                                                           f" the first {PROBLEMS_LISTED:,}."},
                               "problems_total": {"type": "integer", "minimum": 0,
                                                  "description": "How many problems the"
                                                                 " import had."},
                               "problems_left_out": {"type": "integer", "minimum": 0,
                                                     "description": "How many of them are"
                                                                    " not listed."}}}]},
        },
    },
    "JobList": {
        "type": "object", "required": ["jobs"], "additionalProperties": False,
        "properties": {"jobs": {"type": "array", "items": _ref("Job")}},
    },
    "Health": {
        "type": "object", "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
            "items": {"type": "integer"}, "documents": {"type": "integer"},
            "generation": _NULLABLE_STR,
            "problem": {"type": "string", "description":
                        "Why not ok. unavailable (503): the index cannot be opened or a"
                        " segment file is missing or unreadable (searches answer 503 with"
                        " the same reason), or the catalog file is missing or damaged"
                        " (searches are answered from the index, items answer 503"
                        " `catalog_missing` or `catalog_damaged`;"
                        " restore it from a backup or run `searchapp recover`). degraded"
                        " (200): a posting arrays file is damaged (searches of its segment"
                        " fall back to Whoosh's postings),"
                        " or the index does not hold what the catalog holds (items stored"
                        " but not indexed, with the last import's reason; another catalog;"
                        " content changed outside searchapp; while an import or rebuild"
                        " holds the index lock, the reason says it is under way instead of"
                        " advising a rebuild), or the catalog cannot be"
                        " written (searches and pages are answered; imports, refreshes and"
                        " rebuilds answer 503). Damage is reported only when it is still"
                        " there in the current table of contents (an import may merge"
                        " away the segments a check opened)."},
            "checked": {
                "type": "object", "required": ["segments", "files", "arrays"],
                "description": "What the check read afresh from the live generation: its"
                               " segments, their files, and the posting arrays files whose"
                               " size, checksums and structure were verified.",
                "properties": {"segments": {"type": "integer", "minimum": 0},
                               "files": {"type": "integer", "minimum": 0},
                               "arrays": {"type": "integer", "minimum": 0}}},
            "engine": {
                "type": "object", "required": ["kind", "reason", "fallbacks"],
                "description": "The search path serving this process (SEARCHAPP_ENGINE) and"
                               " how often it handed work to plain Whoosh, per reason.",
                "properties": {
                    "kind": {"type": "string", "enum": ["arrays", "whoosh"]},
                    "reason": {"type": "string"},
                    "fallbacks": {"type": "object",
                                  "additionalProperties": {"type": "integer"}},
                    "bounded": {"type": "object",
                                "description": "How often a request's work was bounded, per"
                                               " reason (rescoring skipped, time budget run"
                                               " out).",
                                "additionalProperties": {"type": "integer"}}}}},
    },
}


_WAIT = _one("wait", "Seconds to wait for the job to finish before answering (0-600).",
             {"type": "integer", "minimum": 0, "maximum": 600, "default": 0})
_ADMIN_ERRORS = {
    "400": _json(_ref("Error"), "A form value or parameter cannot be used (also a form field"
                                " over 10,000 characters); the message names it."),
    "401": _json(_ref("Error"), "No valid bearer token."),
    "404": _json(_ref("Error"), "Admin routes are off (SEARCHAPP_ADMIN_TOKEN is unset), or no"
                                " such job."),
}
# Answers of the routes that record a job (and so must write beside the catalog).
_CANNOT_RECORD = {
    "503": _json(_ref("Error"), "The catalog or its folder cannot be written (`read_only`: a"
                                " read-only disk or mount); searching and reading go on. Or"
                                " the catalog is missing (`catalog_missing`): only an"
                                " import on a new install (no index built yet) starts"
                                " one; beside a built index, or for a rebuild or"
                                " refresh, no empty one is started; or damaged"
                                " (`catalog_damaged`)."),
    "507": _json(_ref("Error"), "The disk holding the catalog is full (`disk_full`); nothing"
                                " of the upload was kept and no job was started."),
}
# Answers of the routes that read the jobs from the catalog.
_CATALOG_MISSING = {
    "503": _json(_ref("Error"), "The catalog is missing (`catalog_missing`) or damaged"
                                " (`catalog_damaged`): restore it from a backup or run"
                                " `searchapp recover`."),
}
_JOB_STARTED = {
    "200": _json(_ref("Job"), "The job finished within `wait` seconds (see its state)."),
    "202": {**_json(_ref("Job"), "The job is queued or running; follow `Location`."),
            "headers": {"Location": {"description": "The job's URL.",
                                     "schema": {"type": "string"}}}},
}
_SECURED: dict[str, Any] = {"security": [{"bearer": []}]}
FEED_PARAMETERS = [p for p in SEARCH_PARAMETERS if p["name"] not in ("page", "per_page", "sort")]
EXPORT_PARAMETERS = [p for p in SEARCH_PARAMETERS if p["name"] not in ("page", "per_page")]
_UNKNOWN = ("Unknown parameters are a 400 (`unknown_parameter`) naming them and listing the"
            " known ones.")
_EXPORT_HEADERS = {
    "X-Total-Count": {"description": "How many items match the search.",
                      "schema": {"type": "integer", "minimum": 0}},
    "X-Export-Rows": {"description": f"How many rows follow (at most {MAX_EXPORT_ROWS:,}).",
                      "schema": {"type": "integer", "minimum": 0}},
    "X-Export-Capped": {"description": "true when more items match than the export holds.",
                        "schema": {"type": "string", "enum": ["true", "false"]}},
}


def _export(operation: str, mimetype: str, what: str) -> dict[str, Any]:
    return {"get": {
        "operationId": operation,
        "summary": f"Every match of a search as {what}, streamed",
        "description": f"Takes the search's parameters (`page` and `per_page` aside) and"
                       f" answers every match in the search's order, up to"
                       f" {MAX_EXPORT_ROWS:,} rows, with the fields"
                       f" {', '.join(EXPORT_FIELDS)}. " + _UNKNOWN,
        "parameters": EXPORT_PARAMETERS,
        "responses": {"200": {"description": f"The matches as {what}.",
                              "headers": _EXPORT_HEADERS, "content": {mimetype: {}}},
                      "304": {"description": "Not modified (If-None-Match)."},
                      **_ERRORS},
    }}


def _admin_paths() -> dict[str, Any]:
    return {
        "/api/admin/imports": {"post": {
            "operationId": "importFiles", **_SECURED,
            "summary": "Import uploaded files (any import format) as a job",
            "parameters": [_WAIT],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "array", "items": {"type": "string", "format": "binary"},
                             "description": "One or more files, all imported together."},
                    "organisation": {"type": "string", "maxLength": 2000},
                    "format": {"type": "string",
                               "enum": ["auto", "listing", "jsonl", "csv", "feed", "html"]},
                    "url": {"type": "string", "maxLength": 10000,
                            "description": "The page's or feed's address, for relative"
                                           " links."},
                    "skip_invalid": {"type": "string", "enum": ["true", "false"]}},
                "description": "A field other than `file` holds at most 10,000 characters"
                               " (`organisation` 2,000); a longer one is a 400 naming"
                               " it."}}}},
            "responses": {**_JOB_STARTED, **_ADMIN_ERRORS, **_CANNOT_RECORD,
                          "413": _json(_ref("Error"), "Larger than SEARCHAPP_MAX_UPLOAD_BYTES.")},
        }},
        "/api/admin/reindex": {"post": {
            "operationId": "reindex", **_SECURED,
            "summary": "Rebuild the index from the catalog as a job",
            "parameters": [_WAIT],
            "responses": {**_JOB_STARTED, **_ADMIN_ERRORS, **_CANNOT_RECORD},
        }},
        "/api/admin/refresh": {"post": {
            "operationId": "refreshSources", **_SECURED,
            "summary": "Fetch followed sources and import what changed, as a job",
            "description": "Like `searchapp refresh`: the sources named by `source`, else"
                           " every due one. The finished job's `result` is a"
                           " RefreshResponse: one result per source, even when some failed.",
            "parameters": [_many("source", "Refresh these sources (due or not).",
                                 {"type": "string", "minLength": 1}), _WAIT],
            "responses": {**_JOB_STARTED, **_ADMIN_ERRORS, **_CANNOT_RECORD},
        }},
        "/api/admin/jobs": {"get": {
            "operationId": "listJobs", **_SECURED, "summary": "Recent jobs, newest first",
            "parameters": [_one("limit", "How many.", {"type": "integer", "minimum": 1,
                                                       "maximum": 500, "default": 50})],
            "responses": {"200": _json(_ref("JobList"), "The jobs."), **_ADMIN_ERRORS,
                          **_CATALOG_MISSING},
        }},
        "/api/admin/jobs/{id}": {"get": {
            "operationId": "getJob", **_SECURED, "summary": "One job: state, phase, result",
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "string"}}, _WAIT],
            "responses": {"200": _json(_ref("Job"), "The job."), **_ADMIN_ERRORS,
                          **_CATALOG_MISSING},
        }},
    }


def _page_paths() -> dict[str, Any]:
    return {
        "/feed.atom": {"get": {
            "operationId": "feed", "summary": "Atom feed of the newest items matching a search",
            "parameters": FEED_PARAMETERS,
            "responses": {"200": {"description": "An Atom 1.0 feed (up to 20 entries).",
                                  "content": {"application/atom+xml": {}}},
                          "304": {"description": "Not modified (If-None-Match)."},
                          **_ERRORS},
        }},
        "/search.csv": _export("searchCsv", "text/csv",
                               "CSV (a header row; cells a spreadsheet would run as formulas"
                               " start with an apostrophe)"),
        "/search.jsonl": _export("searchJsonLines", "application/jsonl",
                                 "JSON Lines (one object per item)"),
        "/opensearch.xml": {"get": {
            "operationId": "opensearch", "summary": "OpenSearch description for browsers",
            "responses": {"200": {"description": "OpenSearch 1.1 description.",
                                  "content": {"application/opensearchdescription+xml": {}}}},
        }},
    }


def openapi() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "searchapp",
            "version": __version__,
            "description": "Search news published by cooperative organisations. The"
                           " search routes are read-only, need no authentication and are"
                           " open to other sites (CORS) for GET; the admin routes want the"
                           " bearer token SEARCHAPP_ADMIN_TOKEN.",
        },
        "paths": {
            "/api/search": {"get": {
                "operationId": "search",
                "summary": "Ranked hits with facet counts over every match",
                "description": _UNKNOWN,
                "parameters": [*SEARCH_PARAMETERS, _FACET_SIZE],
                "responses": {"200": _json(_ref("SearchResponse"), "One page of results."),
                              "304": {"description": "Not modified (If-None-Match)."},
                              **_ERRORS},
            }},
            "/api/items/{id}": {"get": {
                "operationId": "getItem",
                "summary": "One item, with related items",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": _json(_ref("ItemWithRelated"), "The item."),
                              "304": {"description": "Not modified (If-None-Match)."},
                              **_ERRORS},
            }},
            "/api/suggest": {"get": {
                "operationId": "suggest",
                "summary": "Completions of a query being typed",
                "parameters": [
                    _one("q", "What has been typed so far.",
                         {"type": "string", "maxLength": MAX_QUERY_CHARS}),
                    _one("format", "`opensearch` answers [query, [completions]] as browsers"
                                   " expect.", {"type": "string", "enum": ["json", "opensearch"]}),
                ],
                "responses": {"200": _json(
                    {"oneOf": [_ref("Suggestions"), _ref("OpenSearchSuggestions")]},
                    "Completions, most used words first."), **_ERRORS},
            }},
            "/healthz": {"get": {
                "operationId": "health",
                "summary": "Status, item count and index generation, with every segment of"
                           " the live generation opened and its arrays files verified",
                "responses": {"200": _json(_ref("Health"), "Serving (status ok or degraded)."),
                              "503": _json(_ref("Health"), "The index cannot be opened or a"
                                           " segment of it is damaged, or the catalog is"
                                           " missing.")},
            }},
            "/api/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This description",
                "responses": {"200": {"description": "OpenAPI 3.1",
                                      "content": {"application/json": {}}}},
            }},
            **_admin_paths(),
            **_page_paths(),
        },
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "SEARCHAPP_ADMIN_TOKEN; admin routes are off while it is unset."}}},
    }
