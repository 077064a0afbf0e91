"""Log templates: messages grouped by the words they share, mined with drain3's Drain.

"user 42 logged in from 10.0.0.7" and "user 7 logged in from 10.0.0.9" are one template,
`user <NUM> logged in from <IP>`. Two steps:

1. Masking: variable parts (UUIDs, IPs, hex, numbers, ...) are replaced by `<NAME>` over a whole
   Arrow column at once with RE2 (vectorised, and linear time: a log line cannot make a mask
   backtrack).
2. Clustering: drain3's `TemplateMiner` (configured here in code, no ini file) files each distinct
   masked message in its prefix tree of templates. A batch goes through it once per *distinct*
   masked message with that message's count, which after masking is usually a small fraction of
   the rows.

`Miner.state()` is plain JSON (templates with their tokens and counts); `Miner.from_state` rebuilds
the prefix tree from it. We do not use drain3's jsonpickle snapshots: decoding them can construct
arbitrary objects, which a state file should never be able to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from drain3.drain import LogCluster
from drain3.template_miner import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

if TYPE_CHECKING:
    import duckdb

    from ecsguard.logs.query.timerange import TimeRange

STATE_VERSION = 1
SEPARATOR = "\x1f"  # joins cluster and service into one key; never in either name


@dataclass(frozen=True)
class Mask:
    """Text matching `pattern` (RE2 syntax) becomes `<name>` before clustering. `after` is what
    must come just before it (kept as it is): RE2 has no look-behind, so it is matched and put back.
    """

    name: str
    pattern: str
    after: str = ""

    def regex(self) -> tuple[str, str]:
        """The RE2 pattern and its replacement."""
        if not self.after:
            return self.pattern, f"<{self.name}>"
        return f"({self.after})(?:{self.pattern})", rf"\1<{self.name}>"


_START = r"^|[^A-Za-z0-9]"  # a value starts a token, or follows punctuation (blk_-42, id=7)

#: masks for service logs; order matters (a UUID is masked before its digit runs are)
GENERIC_MASKS: tuple[Mask, ...] = (
    Mask("TIME", r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"),
    Mask("UUID", r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    Mask("ARN", r"arn:aws[a-z-]*:[A-Za-z0-9_./:*-]+"),
    Mask("IP", r"(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b", after=r"^|[^0-9.]"),
    Mask("HEX", r"0[xX][0-9a-fA-F]+\b", after=_START),
    Mask("NUM", r"-?\d+(?:\.\d+)*\b", after=_START),
    # task ids, trace ids, hashes: long hex runs (digit-only runs were numbers above)
    Mask("ID", r"[0-9a-fA-F]{8,}\b", after=_START),
)


@dataclass(frozen=True)
class MinerOptions:
    """Drain's parameters (names as in the Drain paper) and the masks applied before it."""

    similarity: float = 0.4  # share of tokens a message must share with a template to join it
    depth: int = 4  # prefix tree depth: length class + the first depth-2 tokens
    max_children: int = 100
    max_templates: int | None = None  # beyond it the least recently used template is dropped
    masks: tuple[Mask, ...] = GENERIC_MASKS
    extra_delimiters: tuple[str, ...] = ()


#: Per-dataset parameters for the Loghub-2k samples, tuned as the Drain benchmark tuned its own
#: (Zhu et al., ICSE-SEIP 2019): our generic masks, depth 4, and the similarity that suits each
#: system. With the defaults (similarity 0.4) HDFS, Apache and Hadoop already reach 1.0, 1.0 and
#: 0.963; Zookeeper reaches 0.9665 (0.9885 at 0.7), Hadoop 0.969 at 0.6.
LOGHUB_OPTIONS: dict[str, MinerOptions] = {
    "HDFS": MinerOptions(),
    "Apache": MinerOptions(),
    "Zookeeper": MinerOptions(similarity=0.7),
    "Hadoop": MinerOptions(similarity=0.6),
}


#: a run of masked values: "blk_<NUM> blk_<NUM>" (prefixed, from two) or "<ID>, <ID>, <ID>"
_PREFIXED_RUN = r"([A-Za-z_]+<[A-Z]+>)(?:[ ,;]+[A-Za-z_]+<[A-Z]+>)+"
_BARE_RUN = r"(<[A-Z]+>)(?:[ ,;]+<[A-Z]+>){2,}"


def mask_messages(messages: pa.Array | pa.ChunkedArray, masks: Sequence[Mask]) -> pa.Array:
    """`messages` with every mask applied, in order, over the whole column (RE2). Then a list
    of masked values is one parameter, however long: "rm blk_<NUM> blk_<NUM>" -> "rm blk_<NUM>",
    "ids <NUM>, <NUM>, <NUM>" -> "ids <NUM>"; two bare values are usually two fields ("200
    <NUM>": status and size) and stay two."""
    masked: pa.Array = (
        messages.combine_chunks() if isinstance(messages, pa.ChunkedArray) else messages
    )
    for mask in masks:
        pattern, replacement = mask.regex()
        masked = _replace(masked, pattern, replacement)
    masked = _replace(masked, _PREFIXED_RUN, r"\1")
    return _replace(masked, _BARE_RUN, r"\1")


def _replace(column: pa.Array, pattern: str, replacement: str) -> pa.Array:
    """replace_substring_regex, run only on the rows that match: finding a match (a DFA) costs
    a fraction of rewriting one, and most masks match few rows."""
    found = pc.fill_null(pc.match_substring_regex(column, pattern=pattern), False)
    hits = pc.sum(found).as_py() or 0
    if hits == 0:
        return column
    if hits * 2 > len(column):
        return pc.replace_substring_regex(column, pattern=pattern, replacement=replacement)
    changed = pc.replace_substring_regex(
        column.filter(found), pattern=pattern, replacement=replacement
    )
    return pc.replace_with_mask(column, found, changed)


@dataclass(frozen=True)
class Template:
    id: int
    text: str
    count: int


@dataclass
class BatchResult:
    """Which template each row of a batch joined, and which templates the batch created."""

    ids: pa.Array  # int64 per row; null where the message was null
    created: list[int] = field(default_factory=list)


def _config(options: MinerOptions) -> TemplateMinerConfig:
    config = TemplateMinerConfig()
    config.drain_sim_th = options.similarity
    config.drain_depth = options.depth
    config.drain_max_children = options.max_children
    config.drain_max_clusters = options.max_templates
    config.drain_extra_delimiters = list(options.extra_delimiters)
    config.masking_instructions = []  # masking runs over whole columns in mask_messages
    config.snapshot_compress_state = False
    return config


class Miner:
    """drain3's template miner for one stream of messages (one service's logs, say)."""

    def __init__(self, options: MinerOptions | None = None) -> None:
        self.options = options or MinerOptions()
        self._miner = TemplateMiner(persistence_handler=None, config=_config(self.options))
        self._drain = self._miner.drain

    def add(self, messages: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> BatchResult:
        """File a batch of messages; each distinct masked message goes through Drain once."""
        if not isinstance(messages, pa.Array | pa.ChunkedArray):
            messages = pa.array(messages, pa.string())
        masked = mask_messages(messages, self.options.masks)
        encoded = pc.dictionary_encode(masked)
        distinct = encoded.dictionary.to_pylist()
        if not distinct:
            return BatchResult(pa.nulls(len(masked), pa.int64()))
        counts = pc.value_counts(encoded.indices.drop_null())
        count_of = dict(
            zip(
                counts.field("values").to_pylist(),
                counts.field("counts").to_pylist(),
                strict=True,
            )
        )
        ids: list[int] = []
        created: list[int] = []
        for index, text in enumerate(distinct):
            cluster, change = self._drain.add_log_message(text)
            cluster.size += count_of.get(index, 1) - 1
            ids.append(cluster.cluster_id)
            if change == "cluster_created":
                created.append(cluster.cluster_id)
        row_ids = pc.take(pa.array(ids, pa.int64()), encoded.indices)
        return BatchResult(row_ids, created)

    def add_one(self, message: str) -> int:
        """The template id of one message (filed as a batch of one)."""
        result = self.add([message])
        value = result.ids[0].as_py()
        assert value is not None
        return int(value)

    def template(self, template_id: int) -> str | None:
        cluster = self._drain.id_to_cluster.get(template_id)
        return None if cluster is None else cluster.get_template()

    def templates(self) -> list[Template]:
        """Every template, the most frequent first."""
        found = [
            Template(cluster.cluster_id, cluster.get_template(), cluster.size)
            for cluster in self._clusters()
        ]
        return sorted(found, key=lambda t: (-t.count, t.id))

    def __len__(self) -> int:
        return len(self._drain.id_to_cluster)

    def _clusters(self) -> Iterable[LogCluster]:
        clusters: Any = self._drain.id_to_cluster
        # an LRU cache's values() would touch every entry's position: read with get(), which doesn't
        return [clusters.get(key) for key in list(clusters)]

    def state(self) -> dict[str, Any]:
        """The templates as plain JSON: [id, tokens, count] in creation order."""
        clusters = sorted(self._clusters(), key=lambda c: c.cluster_id)
        return {
            "version": STATE_VERSION,
            "next_id": self._drain.clusters_counter,
            "templates": [[c.cluster_id, list(c.log_template_tokens), c.size] for c in clusters],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], options: MinerOptions | None = None) -> Miner:
        """A miner holding the templates of `state` (as `state()` wrote it)."""
        miner = cls(options)
        if not state or state.get("version") != STATE_VERSION:
            return miner  # an unknown or empty state: start learning afresh
        drain = miner._drain
        for template_id, tokens, size in state.get("templates", []):
            cluster = LogCluster([str(token) for token in tokens], int(template_id))
            cluster.size = int(size)
            drain.id_to_cluster[cluster.cluster_id] = cluster
            drain.add_seq_to_prefix_tree(drain.root_node, cluster)
        drain.clusters_counter = max(
            int(state.get("next_id", 0)), max(drain.id_to_cluster, default=0)
        )
        return miner


def by_service(batch: pa.RecordBatch) -> Iterator[tuple[tuple[str, str], pa.Array]]:
    """The row numbers of each (cluster, service) in `batch` (null names read as "")."""
    clusters = pc.fill_null(batch.column("cluster"), "")
    services = pc.fill_null(batch.column("service"), "")
    encoded = pc.dictionary_encode(pc.binary_join_element_wise(clusters, services, SEPARATOR))
    order = pc.sort_indices(encoded.indices)  # stable: each service's rows stay in order
    start = 0
    for item in pc.value_counts(encoded.indices.take(order)):  # sorted, so one run per key
        length = item["counts"].as_py()
        cluster, service = encoded.dictionary[item["values"].as_py()].as_py().split(SEPARATOR, 1)
        yield (cluster, service), order.slice(start, length)
        start += length


@dataclass(frozen=True)
class Pattern:
    """A template's lines in a window of the store (`ecsguard logs patterns`)."""

    cluster: str
    service: str
    pattern: str
    count: int
    ratio: float  # of the service's lines in the window
    sample: str  # the first line of it
    first_seen: datetime
    last_seen: datetime


@dataclass
class _Seen:
    count: int
    sample: str
    first_seen: datetime
    last_seen: datetime


def store_patterns(
    con: duckdb.DuckDBPyConnection,
    window: TimeRange,
    *,
    cluster: str | None = None,
    service: str | None = None,
    options: MinerOptions | None = None,
    batch_rows: int = 65_536,
) -> list[Pattern]:
    """The templates of the `logs` lines in `window`, the most frequent first: the lines stream
    through in Arrow batches, so memory holds the templates, never the lines."""
    where = [window.sql("time"), "message IS NOT NULL"]
    params: list[Any] = []
    for name, value in (("cluster", cluster), ("service", service)):
        if value is not None:
            where.append(f"{name} = ?")
            params.append(value)
    query = (
        "SELECT time, cluster, service, message FROM logs "
        f"WHERE {' AND '.join(where)} ORDER BY cluster, service, time"
    )
    miners: dict[tuple[str, str], Miner] = {}
    seen: dict[tuple[str, str], dict[int, _Seen]] = {}
    for batch in con.sql(query, params=params).to_arrow_reader(batch_rows):
        for key, rows in by_service(batch):
            part = batch.take(rows)
            miner = miners.setdefault(key, Miner(options))
            ids = miner.add(part.column("message")).ids
            stats = (
                pa.table({"t": ids, "time": part.column("time"), "m": part.column("message")})
                .group_by("t", use_threads=False)
                .aggregate([("t", "count"), ("time", "min"), ("time", "max"), ("m", "first")])
            )
            templates = seen.setdefault(key, {})
            for row in stats.to_pylist():
                old = templates.get(row["t"])
                if old is None:
                    templates[row["t"]] = _Seen(
                        row["t_count"], row["m_first"], row["time_min"], row["time_max"]
                    )
                else:
                    old.count += row["t_count"]
                    old.first_seen = min(old.first_seen, row["time_min"])
                    old.last_seen = max(old.last_seen, row["time_max"])
    found = []
    for key, templates in seen.items():
        total = sum(t.count for t in templates.values())
        for template_id, t in templates.items():
            found.append(
                Pattern(
                    cluster=key[0],
                    service=key[1],
                    pattern=miners[key].template(template_id) or t.sample,
                    count=t.count,
                    ratio=t.count / total,
                    sample=t.sample,
                    first_seen=t.first_seen,
                    last_seen=t.last_seen,
                )
            )
    return sorted(found, key=lambda p: (-p.count, p.cluster, p.service, p.pattern))


def grouping_accuracy(truth: Sequence[str], predicted: Sequence[int | str]) -> float:
    """The share of messages whose predicted group is exactly their true group, as sets of
    messages (the grouping accuracy of Zhu et al. 2019)."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted must label the same messages")
    if not truth:
        return 1.0
    true_groups: dict[str, set[int]] = {}
    predicted_groups: dict[int | str, set[int]] = {}
    for line, (label, group) in enumerate(zip(truth, predicted, strict=True)):
        true_groups.setdefault(label, set()).add(line)
        predicted_groups.setdefault(group, set()).add(line)
    correct = sum(
        len(members)
        for members in predicted_groups.values()
        if true_groups[truth[next(iter(members))]] == members
    )
    return correct / len(truth)
