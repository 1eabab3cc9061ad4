"""Splitting a migration file into the statements ClickHouse runs one at a time.

A `;` ends a statement only outside string literals ('...'), quoted identifiers ("..." and
`...`) and comments (`-- ...` to the end of the line, `/* ... */`, nested as ClickHouse allows).
Inside quotes a character escaped with a backslash, or the quote doubled, does not close them.
Comments are dropped from the statements (a comment ends a token, like a space); a piece that
holds only comments and blanks is no statement.
"""

_QUOTES = frozenset("'\"`")


def _quoted_end(sql: str, start: int) -> int:
    """Index just past the literal or identifier opened at `start`; the end of `sql` if it
    is never closed (ClickHouse then reports the error, with the statement)."""
    quote, i = sql[start], start + 1
    while i < len(sql):
        if sql[i] == "\\":
            i += 2
        elif sql[i] == quote:
            if sql[i + 1 : i + 2] == quote:  # doubled: the quote itself
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return len(sql)


def _block_comment_end(sql: str, start: int) -> int:
    """Index just past the `/* ... */` opened at `start`, counting nested ones."""
    depth, i = 0, start
    while i < len(sql):
        pair = sql[i : i + 2]
        if pair == "/*":
            depth, i = depth + 1, i + 2
        elif pair == "*/":
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def split_statements(sql: str) -> list[str]:
    """The statements of `sql` in order, stripped, without comments."""
    statements: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(sql):
        char, pair = sql[i], sql[i : i + 2]
        if char in _QUOTES:
            end = _quoted_end(sql, i)
            current.append(sql[i:end])
            i = end
        elif pair == "--":
            end = sql.find("\n", i)
            i = len(sql) if end == -1 else end
            current.append(" ")
        elif pair == "/*":
            i = _block_comment_end(sql, i)
            current.append(" ")
        elif char == ";":
            statements.append("".join(current).strip())
            current = []
            i += 1
        else:
            current.append(char)
            i += 1
    statements.append("".join(current).strip())
    return [statement for statement in statements if statement]
