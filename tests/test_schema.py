"""Schema prompt text: what each rendering shows, odd databases, caching, and the Spider data."""

import hashlib
import sqlite3

import pytest

from trl_processsql.sql.schema import (
    Column,
    DatabaseSchema,
    ForeignKey,
    SchemaError,
    Table,
    format_create,
    read_schema,
    render_schema,
)


def make_db(tmp_path, script: str):
    path = tmp_path / "odd.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(script)
    conn.close()
    return path


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def table_infos(conn: sqlite3.Connection) -> dict:
    names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")]
    return {n: conn.execute("SELECT * FROM pragma_table_info(?)", (n,)).fetchall() for n in names}


def test_mschema_layout_on_toy_db(toy_db):
    assert render_schema(toy_db) == "\n".join(
        [
            "Database: toy",
            "# Table: singer",
            "(id: INTEGER, Primary Key, Examples: [1, 2, 3])",
            "(name: TEXT, Not Null, Examples: [Joe, Ann, Bo])",
            "(age: INTEGER, Examples: [52, 32, 41])",
            "(country: TEXT, Examples: [Netherlands, France])",
            "# Table: concert",
            "(id: INTEGER, Primary Key, Examples: [1, 2, 3])",
            "(singer_id: INTEGER, Examples: [1, 2, 3])",
            "(year: INTEGER, Examples: [2014, 2015, 2013])",
            "Foreign keys:",
            "concert.singer_id = singer.id",
        ]
    )


def test_read_schema_structure(toy_db):
    schema = read_schema(toy_db)
    singer, concert = schema.tables
    assert (schema.db_id, singer.name, concert.name) == ("toy", "singer", "concert")
    assert singer.primary_key == ("id",)
    assert singer.columns[1] == Column("name", "TEXT", not_null=True, examples=("Joe", "Ann", "Bo"))
    assert schema.foreign_keys == (ForeignKey("concert", "singer_id", "singer", "id"),)


def test_examples_are_distinct_non_null_in_table_order(toy_db):
    country = read_schema(toy_db).tables[0].columns[3]
    assert country.examples == ("Netherlands", "France")


def test_n_examples_bounds_values_and_rows(toy_db):
    singer = read_schema(toy_db, n_examples=1).tables[0]
    assert [c.examples for c in singer.columns] == [("1",), ("Joe",), ("52",), ("Netherlands",)]
    assert singer.example_rows == (("1", "Joe", "52", "Netherlands"),)


def test_zero_examples_leaves_data_out(toy_db):
    assert "Examples" not in render_schema(toy_db, n_examples=0)
    assert "--" not in render_schema(toy_db, "create", n_examples=0)


def test_create_text_shows_example_rows_as_comments(toy_db):
    text = render_schema(toy_db, "create", n_examples=2)
    assert text.startswith("CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER, country TEXT);")
    assert "-- id | name | age | country\n-- 1 | Joe | 52 | Netherlands\n-- 2 | Ann | 32 | France\n\n" in text


def test_tables_restricts_in_file_order_ignoring_case(toy_db):
    text = render_schema(toy_db, tables=["CONCERT", "singer"])
    assert text.index("# Table: singer") < text.index("# Table: concert")
    only = render_schema(toy_db, "create", tables=["concert"])
    assert "CREATE TABLE concert" in only and "singer (" not in only


def test_tables_restriction_drops_foreign_keys_leaving_it(toy_db):
    assert "Foreign keys" not in render_schema(toy_db, tables=["concert"])


def test_unknown_table_raises(toy_db):
    with pytest.raises(SchemaError, match="no table nope in database toy"):
        render_schema(toy_db, tables=["singer", "nope"])


def test_unknown_style_raises(toy_db):
    with pytest.raises(ValueError, match="unknown schema style"):
        render_schema(toy_db, "json")


def test_odd_identifiers_are_quoted(tmp_path):
    path = make_db(
        tmp_path,
        """
        CREATE TABLE "order items" ("order" INTEGER PRIMARY KEY, "we""ird" TEXT, [first name] TEXT, "select");
        CREATE TABLE [group] (id INTEGER PRIMARY KEY, "item id" INTEGER REFERENCES "order items"("order"));
        INSERT INTO "order items" VALUES (1, 'a', 'Ann', 'x');
        INSERT INTO [group] VALUES (7, 1);
        """,
    )
    text = render_schema(path)
    assert '# Table: "order items"' in text
    assert '("order": INTEGER, Primary Key, Examples: [1])' in text
    assert '("we""ird": TEXT, Examples: [a])' in text
    assert '("first name": TEXT, Examples: [Ann])' in text
    assert '("select", Examples: [x])' in text
    assert text.endswith('Foreign keys:\n"group"."item id" = "order items"."order"')


def test_create_text_rebuilds_the_same_tables(tmp_path):
    path = make_db(
        tmp_path,
        """
        CREATE TABLE "order items" (
            "order"   INTEGER PRIMARY KEY,   -- it's the key
            "two  spaces" TEXT DEFAULT 'a   b',
            /* multi
               line */ [group] TEXT
        );
        CREATE TABLE `select` (x, y NOT NULL);
        INSERT INTO "order items" VALUES (1, 'line one
        line two */ -- not a comment', 'g');
        INSERT INTO `select` VALUES (1, 2);
        """,
    )
    rebuilt = sqlite3.connect(":memory:")
    rebuilt.executescript(render_schema(path, "create"))
    with sqlite3.connect(path) as original:
        assert table_infos(rebuilt) == table_infos(original)
    original.close()


def test_whitespace_is_tidied_outside_quotes_only():
    table = Table("t", (), sql="CREATE TABLE t (\n\t  a  TEXT DEFAULT 'x   y' ,  \"b  c\" )  ")
    assert format_create(DatabaseSchema("db", (table,))) == "CREATE TABLE t (\na TEXT DEFAULT 'x   y' , \"b  c\" );"


def test_composite_primary_key_in_key_order(tmp_path):
    path = make_db(tmp_path, "CREATE TABLE t (a INT, b INT, c INT NOT NULL, PRIMARY KEY (b, a));")
    table = read_schema(path).tables[0]
    assert table.primary_key == ("b", "a")
    assert render_schema(path).splitlines()[2:] == [
        "(a: INT, Primary Key)",
        "(b: INT, Primary Key)",
        "(c: INT, Not Null)",
    ]


def test_foreign_keys_in_declaration_order_with_composite_and_implicit_references(tmp_path):
    path = make_db(
        tmp_path,
        """
        CREATE TABLE p (a INT, b INT, PRIMARY KEY (a, b));
        CREATE TABLE q (x INT, y INT, z INT, w INT,
                        FOREIGN KEY (x) REFERENCES p(b),
                        FOREIGN KEY (y, z) REFERENCES p,
                        FOREIGN KEY (w) REFERENCES p(a));
        """,
    )
    assert read_schema(path).foreign_keys == (
        ForeignKey("q", "x", "p", "b"),
        ForeignKey("q", "y", "p", "a"),
        ForeignKey("q", "z", "p", "b"),
        ForeignKey("q", "w", "p", "a"),
    )


def test_blobs_shown_by_size_and_long_text_cut(tmp_path):
    path = make_db(
        tmp_path,
        f"""
        CREATE TABLE t (data BLOB, note TEXT);
        INSERT INTO t VALUES (x'00010203', '{"word " * 30}');
        """,
    )
    data, note = read_schema(path).tables[0].columns
    assert data.examples == ("<blob 4 bytes>",)
    assert note.examples[0].endswith("…") and len(note.examples[0]) == 40


def test_multiline_text_stays_on_one_line(tmp_path):
    path = make_db(tmp_path, "CREATE TABLE t (note TEXT); INSERT INTO t VALUES ('one\r\n\ttwo');")
    assert read_schema(path).tables[0].example_rows == (("one two",),)
    assert "(note: TEXT, Examples: [one two])" in render_schema(path)


def test_empty_strings_are_not_examples(tmp_path):
    path = make_db(tmp_path, "CREATE TABLE t (s TEXT); INSERT INTO t VALUES (''), (NULL), ('x');")
    assert read_schema(path).tables[0].columns[0].examples == ("x",)


def test_empty_table_is_listed_without_examples(tmp_path):
    path = make_db(tmp_path, "CREATE TABLE empty (id INTEGER PRIMARY KEY, v TEXT);")
    assert render_schema(path).splitlines()[1:] == ["# Table: empty", "(id: INTEGER, Primary Key)", "(v: TEXT)"]
    assert render_schema(path, "create") == "CREATE TABLE empty (id INTEGER PRIMARY KEY, v TEXT);"


def test_examples_come_from_the_first_rows_only(tmp_path):
    path = make_db(
        tmp_path,
        """
        CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
        INSERT INTO big SELECT i, CASE WHEN i = 100000 THEN 'last' END FROM n;
        """,
    )
    assert read_schema(path).tables[0].columns[1].examples == ()


def test_internal_tables_are_skipped(tmp_path):
    path = make_db(tmp_path, "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO t DEFAULT VALUES;")
    assert [t.name for t in read_schema(path).tables] == ["t"]


def test_not_a_database_raises_naming_the_path(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("this is not a database, just some text long enough to be read as a header\n" * 20)
    with pytest.raises(SchemaError, match=r".*notes\.sqlite is not a SQLite database: its first bytes are not 'SQLite format 3'"):
        render_schema(path)


def test_an_empty_file_is_not_read_as_a_database_without_tables(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.touch()
    with pytest.raises(SchemaError, match=r"empty\.sqlite is not a SQLite database: it is an empty file \(0 bytes\)"):
        read_schema(path)


def test_missing_file_raises_naming_the_path(tmp_path):
    with pytest.raises(SchemaError, match=r"database not found: .*missing\.sqlite"):
        read_schema(tmp_path / "missing.sqlite")


def test_directory_raises(tmp_path):
    with pytest.raises(SchemaError, match="is not a file"):
        read_schema(tmp_path)


def test_schema_error_is_a_value_error():
    assert issubclass(SchemaError, ValueError)


def test_repeated_rendering_is_cached(toy_db):
    assert render_schema(toy_db) is render_schema(toy_db)
    assert read_schema(toy_db) is read_schema(toy_db)


def test_changed_file_is_read_again(toy_db):
    before = render_schema(toy_db)
    with sqlite3.connect(toy_db) as conn:
        conn.execute("CREATE TABLE venue (id INTEGER PRIMARY KEY)")
    conn.close()
    after = render_schema(toy_db)
    assert "venue" not in before and "# Table: venue" in after


def test_reading_leaves_the_file_and_folder_unchanged(toy_db):
    digest, files = sha256(toy_db), sorted(toy_db.parent.iterdir())
    render_schema(toy_db, "create", n_examples=5)
    assert sha256(toy_db) == digest and sorted(toy_db.parent.iterdir()) == files


@pytest.mark.spider
def test_spider_databases_render_unchanged(spider_dir):
    paths = sorted((spider_dir / "database").glob("*/*.sqlite"))
    assert paths
    digests = {p: sha256(p) for p in paths}
    for path in paths:
        for style in ("mschema", "create"):
            assert render_schema(path, style).strip()
    assert {p: sha256(p) for p in paths} == digests

    path = spider_dir / "database" / "concert_singer" / "concert_singer.sqlite"
    text = render_schema(path)
    tables = [line.removeprefix("# Table: ") for line in text.splitlines() if line.startswith("# Table: ")]
    assert tables == ["stadium", "singer", "concert", "singer_in_concert"]
    assert "(Singer_ID: INT, Primary Key, Examples: [1, 2, 3])" in text
    assert "(concert_ID: INT, Primary Key, Examples: [1, 2, 3])\n(Singer_ID: TEXT, Primary Key" in text
    assert text.endswith(
        "Foreign keys:\n"
        "concert.Stadium_ID = stadium.Stadium_ID\n"
        "singer_in_concert.concert_ID = concert.concert_ID\n"
        "singer_in_concert.Singer_ID = singer.Singer_ID"
    )
    create = render_schema(path, "create", n_examples=0)
    assert create.count("CREATE TABLE") == 4
    assert 'FOREIGN KEY ("Singer_ID") REFERENCES "singer"("Singer_ID")' in create
