"""`ecsguard ingest` run again over files it stored before: each record once (logs/ingest.py)."""

from __future__ import annotations

import gzip
import io
from hashlib import sha256
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.core.errors import UserError
from ecsguard.logs import ingest as ingest_module
from ecsguard.logs.ingest import Seen, bodies, fingerprint, ingest_source, unread_from
from ecsguard.logs.pipeline import Pipeline

META = {"source": "ingest", "service": "api"}


def seen(data: bytes) -> Seen:
    return Seen(len(data), sha256(data).hexdigest())


def messages(data_dir: Path) -> list[str]:
    pipeline = Pipeline(data_dir)
    try:
        rows = pipeline.connect().execute("SELECT message FROM logs").fetchall()
    finally:
        pipeline.close()
    return [row[0] for row in rows]


def start_of(
    stored: bytes | None, data: bytes, appended: bool = True, chunk: int = 3
) -> int | None:
    """unread_from of `data`, read `chunk` bytes at a time, stored before as `stored`."""
    before = None if stored is None else seen(stored)
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    content = fingerprint(pieces, [] if before is None else [before.size])
    return unread_from(before, content, appended)


def test_where_a_file_is_read_from() -> None:
    old = b"one\ntwo\n"
    assert start_of(None, old) == 0  # never stored
    assert start_of(old, old) is None  # unchanged
    assert start_of(old, old + b"three\n") == len(old)
    assert start_of(old, old + b"three\n", appended=False) == 0  # a document: whole
    assert start_of(old, b"ONE\ntwo\nthree\n") == 0  # changed before
    assert start_of(old, b"one\n") == 0  # shrank: another file
    assert start_of(b"one\ntw", b"one\ntwo\n") == 4  # "two" read whole
    assert start_of(b"", b"") is None and start_of(b"", b"one\n") == 0


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet="ab \n", max_size=40),
    st.integers(min_value=0),
    st.integers(min_value=1, max_value=9),
)
def test_a_second_run_repeats_no_line_but_one_cut_short(text: str, cut_at: int, chunk: int) -> None:
    data = text.encode()
    cut = cut_at % (len(data) + 1)  # the first run read data[:cut]
    start = start_of(data[:cut], data, chunk=chunk)
    if cut == len(data):
        assert start is None
        return
    assert start is not None and start <= cut
    assert start == 0 or data[start - 1 : start] == b"\n"  # from the start of a line
    assert b"\n" not in data[start:cut]  # what is read twice is at most the line cut short


def test_a_grown_file_stores_its_new_lines_and_an_unchanged_one_nothing(tmp_path: Path) -> None:
    log, data_dir = tmp_path / "app.log", tmp_path / "data"
    log.write_bytes(b"2026-11-29T10:00:00Z INFO one\n2026-11-29T10:00:01Z INFO two\n")
    assert ingest_source(str(log), "lines", data_dir, META).records == 2

    again = ingest_source(str(log), "lines", data_dir, META)
    assert (again.records, again.unchanged) == (0, 1)

    with log.open("ab") as out:
        out.write(b"2026-11-29T10:00:02Z INFO three\n2026-11-29T10:00:03Z INFO fo")
    grown = ingest_source(str(log), "lines", data_dir, META)
    assert (grown.records, grown.resumed) == (2, 1)

    with log.open("ab") as out:
        out.write(b"ur\n")
    finished = ingest_source(str(log), "lines", data_dir, META)
    assert finished.records == 1  # the unfinished line, read again whole
    assert sorted(m.split(" INFO ")[1] for m in messages(data_dir)) == [
        "fo",
        "four",
        "one",
        "three",
        "two",
    ]


def test_other_options_or_from_start_read_a_file_again(tmp_path: Path) -> None:
    log, data_dir = tmp_path / "app.log", tmp_path / "data"
    log.write_bytes(b"one\ntwo\n")
    ingest_source(str(log), "lines", data_dir, META)
    other = ingest_source(str(log), "lines", data_dir, {**META, "service": "web"})
    assert (other.records, other.unchanged) == (2, 0)  # the same lines of another service
    forced = ingest_source(str(log), "lines", data_dir, META, from_start=True)
    # read whole again; the ids of the same body are still remembered, so nothing is doubled
    assert (forced.unchanged, forced.records, forced.duplicates) == (0, 0, 2)


def test_a_file_changed_before_its_end_is_read_whole(tmp_path: Path) -> None:
    log, data_dir = tmp_path / "app.log", tmp_path / "data"
    log.write_bytes(b"one\ntwo\n")
    ingest_source(str(log), "lines", data_dir, META)
    log.write_bytes(b"uno\ntwo\nthree\n")  # rotated: a new file under the old name
    rotated = ingest_source(str(log), "lines", data_dir, META)
    assert (rotated.records, rotated.resumed) == (3, 0)


def test_a_directory_ingested_again_reads_only_its_new_files(tmp_path: Path) -> None:
    trails = Path(__file__).parents[2].parent / "shared" / "testdata" / "cloudtrail"
    samples = sorted((trails / "stratus-red-team-detonation-logs").glob("*.json"))[:3]
    folder, data_dir = tmp_path / "AWSLogs", tmp_path / "data"
    folder.mkdir()
    for sample in samples[:2]:
        (folder / sample.name).write_bytes(sample.read_bytes())
    first = ingest_source(str(folder), "cloudtrail", data_dir, {})
    assert first.records > 0 and first.table == "cloudtrail"
    (folder / samples[2].name).write_bytes(samples[2].read_bytes())
    second = ingest_source(str(folder), "cloudtrail", data_dir, {})
    assert second.unchanged == 2
    pipeline = Pipeline(data_dir)
    try:
        [(total, distinct)] = (
            pipeline.connect()
            .execute("SELECT count(*), count(DISTINCT event_id) FROM cloudtrail")
            .fetchall()
        )
    finally:
        pipeline.close()
    assert total == distinct  # no record stored twice
    assert second.records == total - first.records > 0


def test_a_damaged_ledger_is_a_clear_error(tmp_path: Path) -> None:
    log, data_dir = tmp_path / "app.log", tmp_path / "data"
    log.write_bytes(b"one\n")
    data_dir.mkdir()
    (data_dir / "ingested-files.db").write_bytes(b"not a database" * 100)
    with pytest.raises(UserError) as caught:
        ingest_source(str(log), "lines", data_dir, META)
    assert "ingested-files.db" in caught.value.problem and "move it away" in caught.value.hint


def test_gzip_files_are_read_through_and_a_damaged_one_is_a_problem(tmp_path: Path) -> None:
    folder, data_dir = tmp_path / "logs", tmp_path / "data"
    folder.mkdir()
    (folder / "app.log.1.gz").write_bytes(gzip.compress(b"one\ntwo\n"))
    (folder / "app.log.2.gz").write_bytes(gzip.compress(b"three\n")[:-6])  # cut short
    (folder / "app.log").write_bytes(b"four\n")
    summary = ingest_source(str(folder), "lines", data_dir, META)
    assert summary.records == 3
    assert sorted(messages(data_dir)) == ["four", "one", "two"]
    [problem] = summary.problems
    assert problem.kind == "invalid_gzip" and "app.log.2.gz" in str(problem)


@given(st.text(alphabet="ab\n", max_size=60), st.integers(min_value=1, max_value=12))
def test_bodies_are_cut_at_line_ends_and_lose_nothing(text: str, size: int) -> None:
    data = text.encode()
    parts = list(bodies(data[i : i + size] for i in range(0, len(data), size)))
    assert b"".join(part for _, part, _ in parts) == data
    assert [offset for offset, _, _ in parts] == [
        sum(len(p) for _, p, _ in parts[:i]) for i in range(len(parts))
    ]
    assert [last for _, _, last in parts] == [i == len(parts) - 1 for i in range(len(parts))]
    for _, part, _ in parts[:-1]:
        assert part.endswith(b"\n")  # whole lines


def test_a_big_file_is_stored_a_body_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 64)
    log, data_dir = tmp_path / "app.log", tmp_path / "data"
    lines = [f"2026-11-29T10:00:{i:02d}Z INFO line {i}" for i in range(20)] + ["{broken"]
    log.write_text("\n".join(lines) + "\n")
    summary = ingest_source(str(log), "lines", data_dir, META)
    assert summary.records == 21
    assert sorted(messages(data_dir)) == sorted(lines)
    [problem] = summary.problems  # named by the body it was read in
    assert problem.kind == "unparsed" and "app.log from byte " in str(problem)
    again = ingest_source(str(log), "lines", data_dir, META)
    assert (again.records, again.unchanged) == (0, 1)


def test_a_rotated_file_is_found_by_its_content(tmp_path: Path) -> None:
    folder, data_dir = tmp_path / "logs", tmp_path / "data"
    folder.mkdir()
    log = folder / "app.log"
    log.write_bytes(b"one\ntwo\nthree\n")
    assert ingest_source(str(folder), "lines", data_dir, META).records == 3
    with log.open("ab") as out:
        out.write(b"four\n")  # written before the rotation, not stored yet
    log.rename(folder / "app.log.1")
    log.write_bytes(b"five\nsix\n")  # a new file takes the name
    rotated = ingest_source(str(folder), "lines", data_dir, META)
    assert (rotated.records, rotated.resumed) == (3, 1)  # four, five, six
    # compressed by the next rotation: still the same content, nothing new
    old = folder / "app.log.1"
    (folder / "app.log.2.gz").write_bytes(gzip.compress(old.read_bytes()))
    old.unlink()
    again = ingest_source(str(folder), "lines", data_dir, META)
    assert (again.records, again.unchanged) == (0, 2)
    assert sorted(messages(data_dir)) == ["five", "four", "one", "six", "three", "two"]


def test_big_inputs_are_read_a_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files, gzip files and stdin alike: no body is much bigger than a chunk, whatever the
    input's size."""
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 64)
    sizes: list[int] = []
    receiver = ingest_module.RECEIVERS.get("lines")
    monkeypatch.setattr(
        ingest_module.RECEIVERS,
        "get",
        lambda name: lambda data, options: sizes.append(len(data)) or receiver(data, options),
    )
    lines = [f"2026-11-29T10:00:{i:02d}Z INFO line {i}" for i in range(40)]
    text = ("\n".join(lines) + "\n").encode()
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "app.log").write_bytes(text)
    (folder / "app.log.1.gz").write_bytes(gzip.compress(text.replace(b"INFO", b"WARN")))
    summary = ingest_source(str(folder), "lines", tmp_path / "data", META)
    assert summary.records == 80 and len(sizes) > 20 and max(sizes) < 2 * 64 + 40

    class Stdin:
        buffer = io.BytesIO(text.replace(b"INFO", b"DEBUG"))

    sizes.clear()
    monkeypatch.setattr(ingest_module.sys, "stdin", Stdin)
    assert ingest_source("-", "lines", tmp_path / "data", META).records == 40
    assert len(sizes) > 10 and max(sizes) < 2 * 64 + 40
    assert len(messages(tmp_path / "data")) == 120


def test_a_file_growing_while_it_is_read_gets_the_rest_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 16)
    log, data_dir = tmp_path / "app.log", tmp_path / "data"
    log.write_bytes(b"one\ntwo\n")
    assert ingest_source(str(log), "lines", data_dir, META).records == 2
    log.write_bytes(b"one\ntwo\nthree\nfour\n")
    first_pass = ingest_module.fingerprint

    def appending(*args: object) -> object:  # the writer appends between the two readings
        content = first_pass(*args)  # type: ignore[arg-type]
        with log.open("ab") as out:
            out.write(b"five\n")
        return content

    monkeypatch.setattr(ingest_module, "fingerprint", appending)
    grown = ingest_source(str(log), "lines", data_dir, META)
    assert (grown.records, grown.resumed) == (2, 1)  # three, four: what was there when read
    monkeypatch.setattr(ingest_module, "fingerprint", first_pass)
    assert ingest_source(str(log), "lines", data_dir, META).records == 1
    assert sorted(messages(data_dir)) == ["five", "four", "one", "three", "two"]


def test_a_damaged_gzip_stores_nothing_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 32)
    lines = b"".join(b"2026-11-29T10:00:00Z INFO line %d\n" % i for i in range(200))
    packed = gzip.compress(lines)
    (tmp_path / "app.log.1.gz").write_bytes(packed[: len(packed) // 2])
    summary = ingest_source(str(tmp_path / "app.log.1.gz"), "lines", tmp_path / "data", META)
    assert summary.records == 0 and [p.kind for p in summary.problems] == ["invalid_gzip"]
