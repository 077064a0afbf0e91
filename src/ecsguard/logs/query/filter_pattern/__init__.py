"""CloudWatch Logs filter patterns: parse once, then match messages one by one or in bulk.

    from ecsguard.logs.query.filter_pattern import compile_pattern

    pattern = compile_pattern('[ip, user, ..., status = 4*, bytes > 1000]')  # UserError if bad
    pattern.kind                     # "all" | "terms" | "regex" | "json" | "delimited"
    pattern.match(message)           # Match(extracted_values={"$ip": ..., "$3": ...}) or None
    pattern.sql("message")           # exact DuckDB predicate, or None (delimited, JSON wildcards)
    pattern.prefilter_sql("message") # necessary DuckDB predicate, always; == sql() when exact
    pattern.mask(arrow_strings)      # BooleanArray, one call per batch (DuckDB or per message)

The syntax (syntax.py): terms (AND), `?term` (OR; ignored when mixed with other terms, as AWS
documents), `"phrases"`, `-exclusions`, `%regex%` (AWS's operator set, regex.py), JSON patterns
`{ $.a.b[0] = "x*" && ($.n >= 5 || $.f IS TRUE) }` and space-delimited `[a, b = 4*, ..., c > 9]`.
Errors are UserError with the 1-based position: "unexpected ')' at position 14 in filter pattern".
The semantics the SQL translation is tested against are in evaluate.py.

For a store search use `sql()` in the WHERE clause when it is not None; otherwise put
`prefilter_sql()` in the WHERE clause and filter the fetched Arrow batches with `mask()`
(search.py does exactly that for `ecsguard logs filter`). Live tail and the detection engine
filter incoming Arrow batches with `mask()`.
"""

from ecsguard.logs.query.filter_pattern.pattern import FilterPattern, Match, compile_pattern

__all__ = ["FilterPattern", "Match", "compile_pattern"]
