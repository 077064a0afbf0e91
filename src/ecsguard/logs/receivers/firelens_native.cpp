// The FireLens fast path in C++: a Fluent Bit `json_lines` body to Arrow buffers, no Python
// object per line; the same for a body of NDJSON or text lines (`parse_text`, lines.py), a
// CloudTrail file (`parse_cloudtrail`) and a body of ECS events (`parse_events`). Optional: the
// receivers use it when it was built, and fall back to their own msgspec path for any body this
// code does not answer (it returns None).
//
// It answers only what it can answer exactly as the Python path does (a hypothesis test holds
// the two equal, column by column): every line one flat FireLens record with a float `date`,
// every `log` that starts with `{` (after Python's str.strip) one JSON object whose time and
// level values, if any, are texts. Anything else (an int date, a numeric level, a duplicate key,
// a text simdjson refuses) returns None and Python decides, so this file needs no error
// reporting of its own. simdjson's DOM parser validates UTF-8 and JSON fully, and refuses a lone
// surrogate escape (`\uD800`) as msgspec and orjson do (a test holds it to that).
#include <pybind11/pybind11.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../../core/arrow_strings.h"

namespace py = pybind11;
using simdjson::dom::element;
using simdjson::dom::element_type;

namespace {

// A nullable Arrow string column being built: offsets, data and a validity bitmap.
struct Column {
  std::vector<int32_t> offsets{0};
  std::string data;
  std::vector<uint8_t> valid;
  int64_t nulls = 0;
  int64_t rows = 0;

  void mark(bool ok) {
    if ((rows & 7) == 0) valid.push_back(0);
    if (ok) valid.back() |= uint8_t(1u << (rows & 7));
    else ++nulls;
    ++rows;
  }
  void add(std::string_view v) {
    data.append(v);
    offsets.push_back(int32_t(data.size()));
    mark(true);
  }
  void add_null() {
    offsets.push_back(int32_t(data.size()));
    mark(false);
  }
  void add(const std::optional<std::string_view>& v) {
    if (v) add(*v);
    else add_null();
  }
  // (rows, offsets, data, validity or None, null count): pa.StringArray.from_buffers' arguments
  py::tuple out() const {
    py::object validity = py::none();
    if (nulls) validity = py::bytes(reinterpret_cast<const char*>(valid.data()), valid.size());
    return py::make_tuple(
        rows,
        py::bytes(reinterpret_cast<const char*>(offsets.data()), offsets.size() * sizeof(int32_t)),
        py::bytes(data), validity, nulls);
  }
};

// The bytes of a character Python's str.isspace() accepts, ending at `end` (0: none).
size_t space_before(const char* begin, const char* end) {
  size_t n = size_t(end - begin);
  if (n == 0) return 0;
  unsigned char c = (unsigned char)end[-1];
  if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
  if (n >= 2 && (unsigned char)end[-2] == 0xc2 && (c == 0x85 || c == 0xa0)) return 2;
  if (n >= 3) {
    unsigned char a = (unsigned char)end[-3], b = (unsigned char)end[-2];
    if (a == 0xe1 && b == 0x9a && c == 0x80) return 3;
    if (a == 0xe2 && b == 0x80 && (c <= 0x8a || c == 0xa8 || c == 0xa9 || c == 0xaf)) return 3;
    if (a == 0xe2 && b == 0x81 && c == 0x9f) return 3;
    if (a == 0xe3 && b == 0x80 && c == 0x80) return 3;
  }
  return 0;
}

// The same, starting at `begin`.
size_t space_at(const char* begin, const char* end) {
  size_t n = size_t(end - begin);
  if (n == 0) return 0;
  unsigned char c = (unsigned char)begin[0];
  if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
  if (n >= 2 && c == 0xc2) {
    unsigned char d = (unsigned char)begin[1];
    return (d == 0x85 || d == 0xa0) ? 2 : 0;
  }
  if (n >= 3) {
    unsigned char b = (unsigned char)begin[1], d = (unsigned char)begin[2];
    if (c == 0xe1 && b == 0x9a && d == 0x80) return 3;
    if (c == 0xe2 && b == 0x80 && (d <= 0x8a || d == 0xa8 || d == 0xa9 || d == 0xaf)) return 3;
    if (c == 0xe2 && b == 0x81 && d == 0x9f) return 3;
    if (c == 0xe3 && b == 0x80 && d == 0x80) return 3;
  }
  return 0;
}

// Python's text.strip().
std::string_view py_strip(std::string_view text) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  while (size_t k = space_at(begin, end)) begin += k;
  while (size_t k = space_before(begin, end)) end -= k;
  return std::string_view(begin, size_t(end - begin));
}

// ------------------------------------------------------------------- finding a text

// 16 bytes compared at once, in GCC's portable vector types (SSE2 on x86-64, NEON on arm64).
typedef uint8_t Bytes16 __attribute__((vector_size(16)));

Bytes16 load16(const char* at) {
  Bytes16 v;
  std::memcpy(&v, at, sizeof v);
  return v;
}

// Whether a byte is frequent in logs, so a poor one to look for: JSON's punctuation, spaces,
// lower-case letters and digits.
bool frequent(char c) {
  return std::strchr("\": ,{}", c) != nullptr || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// Where `needle` (one byte or more) first occurs in [from, end), else nullptr. Positions where
// two of the needle's bytes, its first rare one and its last (or first), both match are found
// 16 at a time and only those compared whole: each byte alone is common in logs, both at the
// right distance rarely are. This reads logs 5 to 9 times faster than Python's `re`, and 3 to
// 4 times faster than glibc's memmem (first and last bytes alone were slow for `"Type"`).
const char* find(const char* from, const char* end, std::string_view needle) {
  const size_t k = needle.size();
  if (size_t(end - from) < k) return nullptr;
  size_t one = 0;
  while (one < k - 1 && frequent(needle[one])) ++one;
  if (one == k - 1) one = 0;
  const size_t two = k - 1;
  const Bytes16 one_byte = Bytes16{} + uint8_t(needle[one]);
  const Bytes16 two_byte = Bytes16{} + uint8_t(needle[two]);
  const char* last = end - k;  // the last position a match can start at
  const char* at = from;
  for (; at + 15 <= last; at += 16) {
    auto both = (load16(at + one) == one_byte) & (load16(at + two) == two_byte);
    uint64_t halves[2];
    std::memcpy(halves, &both, sizeof halves);
    if ((halves[0] | halves[1]) == 0) continue;
    for (size_t j = 0; j < 16; ++j)
      if (both[j] && std::memcmp(at + j, needle.data(), k) == 0) return at + j;
  }
  for (; at <= last; ++at)
    if (std::memcmp(at, needle.data(), k) == 0) return at;
  return nullptr;
}

// Python's text.count(needle) (needles here cannot overlap themselves, and are 2 bytes or
// more), through `find`.
size_t count_of(std::string_view text, std::string_view needle) {
  size_t n = 0;
  const char* end = text.data() + text.size();
  for (const char* at = find(text.data(), end, needle); at != nullptr;
       at = find(at + needle.size(), end, needle))
    ++n;
  return n;
}

// The keys of a JSON log object read by records.json_rows, in its lookup order.
constexpr std::array<std::string_view, 4> kTimeKeys{"time", "timestamp", "@timestamp", "ts"};
constexpr std::array<std::string_view, 6> kLevelKeys{"level",   "severity", "lvl",
                                                     "loglevel", "log_level", "levelname"};
constexpr std::array<std::string_view, 3> kMessageKeys{"message", "msg", "log"};
constexpr std::array<std::string_view, 9> kRequestKeys{
    "request_id",   "requestId", "request-id", "x_request_id",  "x-request-id",
    "req_id",       "trace_id",  "traceId",    "correlation_id"};
constexpr size_t kHeadKeys =
    kTimeKeys.size() + kLevelKeys.size() + kMessageKeys.size() + kRequestKeys.size();

// `"request_id"` and the others, as `raw.count` looks for them.
const std::string& quoted_request_key(size_t k) {
  static const auto quoted = [] {
    std::array<std::string, kRequestKeys.size()> out;
    for (size_t i = 0; i < out.size(); ++i) out[i] = "\"" + std::string(kRequestKeys[i]) + "\"";
    return out;
  }();
  return quoted[k];
}

// Index of `key` among the head keys (time, level, message, request id), or -1. A log object
// has a dozen keys and most are none of these: the length rules out most at once.
int head_index(std::string_view key) {
  static const auto by_length = [] {
    std::array<std::vector<std::pair<std::string_view, int>>, 16> out;
    int i = 0;
    auto add = [&](std::string_view k) { out[k.size()].emplace_back(k, i++); };
    for (auto k : kTimeKeys) add(k);
    for (auto k : kLevelKeys) add(k);
    for (auto k : kMessageKeys) add(k);
    for (auto k : kRequestKeys) add(k);
    return out;
  }();
  if (key.size() >= by_length.size()) return -1;
  for (const auto& [name, i] : by_length[key.size()])
    if (name == key) return i;
  return -1;
}

constexpr std::array<std::string_view, 8> kEnvelopeKeys{
    "log", "date", "source", "ecs_cluster", "ecs_task_arn", "ecs_task_definition",
    "container_name", "container_id"};

// What records.json_rows and records.request_id_of give for one JSON object (`raw`: its text).
struct Head {
  std::optional<std::string_view> time, level, message, request;
};

// False when the object holds what only the Python path decides (see the file's comment).
bool read_head(simdjson::dom::object object, std::string_view raw, Head& head) {
  std::array<std::optional<element>, kHeadKeys> found{};
  for (auto field : object) {
    int i = head_index(field.key);
    if (i < 0) continue;
    if (found[size_t(i)]) return false;  // a repeated key: which one wins is Python's to say
    found[size_t(i)] = field.value;
  }
  size_t at = 0;
  // the first time and level keys not null decide, when they hold texts
  for (size_t k = 0; k < kTimeKeys.size(); ++k, ++at) {
    if (head.time || !found[at] || found[at]->is_null()) continue;
    if (!found[at]->is_string()) return false;
    head.time = std::string_view(*found[at]);
  }
  bool level_seen = false;
  for (size_t k = 0; k < kLevelKeys.size(); ++k, ++at) {
    if (level_seen || !found[at] || found[at]->is_null()) continue;
    if (!found[at]->is_string()) return false;
    head.level = std::string_view(*found[at]);
    level_seen = true;
  }
  // the first message key holding a text
  for (size_t k = 0; k < kMessageKeys.size(); ++k, ++at) {
    if (!head.message && found[at] && found[at]->is_string())
      head.message = std::string_view(*found[at]);
  }
  // request_id_of(obj, raw): '' with no key present; the value when every key present holds
  // the same non-empty text named once in `raw`; else null. Null too if `raw` has a \u escape.
  std::optional<std::string_view> id;
  bool unknown = false;
  for (size_t k = 0; k < kRequestKeys.size(); ++k, ++at) {
    if (!found[at]) continue;
    if (!found[at]->is_string()) {
      unknown = true;
      break;
    }
    std::string_view value(*found[at]);
    if (value.empty() || (id && value != *id) || count_of(raw, quoted_request_key(k)) != 1) {
      unknown = true;
      break;
    }
    id = value;
  }
  if (unknown) head.request.reset();
  else if (!id) head.request = std::string_view();
  else if (raw.find("\\u") != std::string_view::npos) head.request.reset();
  else head.request = id;
  return true;
}

using Meta = std::array<std::optional<std::string>, 5>;

// The metadata of each row as a code into the distinct sets seen. Rows repeat a few sets (one
// per task, container and stream), so a row's set is looked up by its bytes, not copied.
class MetaCodes {
 public:
  // the code of a row's set (null where absent), added when new
  int32_t code(const std::array<std::optional<std::string_view>, 5>& values) {
    key_.clear();
    for (const auto& v : values) {
      uint32_t size = v ? uint32_t(v->size()) : UINT32_MAX;  // absent differs from ""
      key_.append(reinterpret_cast<const char*>(&size), sizeof size);
      if (v) key_.append(*v);
    }
    auto& candidates = by_hash_[std::hash<std::string>{}(key_)];
    for (int32_t code : candidates)
      if (keys_[size_t(code)] == key_) return code;
    Meta meta;
    for (size_t i = 0; i < values.size(); ++i)
      if (values[i]) meta[i] = std::string(*values[i]);
    int32_t code = int32_t(metas.size());
    metas.push_back(std::move(meta));
    keys_.push_back(key_);
    candidates.push_back(code);
    return code;
  }
  std::vector<Meta> metas;  // in code order

 private:
  std::string key_;
  std::vector<std::string> keys_;
  std::unordered_map<size_t, std::vector<int32_t>> by_hash_;
};

// Where a row's level comes from (`level_from`).
enum LevelFrom : uint8_t {
  kTextOfMessage = 0,  // a text line, or a log object with a message key but no level key
  kLevelValue = 1,     // the log object's first level value (`level`)
  kNoLevel = 2,        // a log object with neither: its raw text is the message
};

// Every column has a row per record; `time` and `level` hold the log object's first time and
// level texts (null elsewhere), `fields` the object's text, `message` the row's final message.
struct Result {
  std::vector<double> dates;
  std::vector<int32_t> meta_codes;
  MetaCodes metas;
  std::vector<uint8_t> level_from;
  Column message, fields, time, level, request;
};

// Per-thread buffers kept between bodies, as their pages are already mapped (fresh ones cost
// page faults), but only up to a usual body's size: the server has dozens of worker threads,
// and one huge body or line must not stay held by each of them.
struct Buffers {
  static constexpr size_t kKeep = size_t(8) << 20;
  simdjson::dom::parser lines, inner;
  std::vector<char> padded, inner_buffer;

  void trim() {
    if (padded.capacity() > kKeep) std::vector<char>().swap(padded);
    if (inner_buffer.capacity() > kKeep) std::vector<char>().swap(inner_buffer);
    if (lines.capacity() > kKeep) lines = simdjson::dom::parser();
    if (inner.capacity() > kKeep) inner = simdjson::dom::parser();
  }
};

bool parse_lines(std::string_view body, Result& out, Buffers& buffers);

// The body's columns, or false for a body only the Python path answers.
bool parse_body(std::string_view body, Result& out) {
  thread_local Buffers buffers;
  bool answered = parse_lines(body, out, buffers);
  buffers.trim();
  return answered;
}

// One log's columns, `text` being the log stripped as Python strips it: a text line (no fields,
// no request id to find; its time and level come from its text, in Python), or a JSON log
// object, parsed from a padded copy (a FireLens log's text is unescaped). False: not one JSON
// object, or one whose head only Python decides (see the file's comment).
bool add_log(std::string_view log, std::string_view text, Result& out, Buffers& buffers) {
  if (text.empty() || text[0] != '{') {
    out.message.add(log);
    out.fields.add_null();
    out.time.add_null();
    out.level.add_null();
    out.request.add(std::string_view());
    out.level_from.push_back(kTextOfMessage);
    return true;
  }
  buffers.inner_buffer.resize(text.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(buffers.inner_buffer.data(), text.data(), text.size());
  simdjson::dom::object object;
  if (buffers.inner.parse(buffers.inner_buffer.data(), text.size(), false).get_object().get(object))
    return false;
  Head head;
  if (!read_head(object, text, head)) return false;
  out.message.add(head.message ? *head.message : text);
  out.fields.add(text);
  out.time.add(head.time);
  out.level.add(head.level);
  out.request.add(head.request);
  out.level_from.push_back(head.level ? kLevelValue : head.message ? kTextOfMessage : kNoLevel);
  return true;
}

bool parse_lines(std::string_view body, Result& out, Buffers& buffers) {
  if (body.empty() || body[0] != '{') return false;  // `format json` or another layout: no copy
  auto& lines = buffers.lines;
  auto& padded = buffers.padded;
  padded.resize(body.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(padded.data(), body.data(), body.size());
  std::memset(padded.data() + body.size(), 0, simdjson::SIMDJSON_PADDING);
  const char* base = padded.data();
  size_t end = body.size();
  while (end && body[end - 1] == '\n') --end;  // trailing newlines
  if (end == 0) return false;
  size_t start = 0;
  while (start < end) {
    size_t stop = body.find('\n', start);
    if (stop == std::string_view::npos || stop > end) stop = end;
    if (stop == start) return false;  // a blank line: another layout
    // the rest of the padded body follows, so simdjson may read past the line's end
    auto parsed = lines.parse(base + start, stop - start, false);
    start = stop + 1;
    simdjson::dom::object record;
    if (parsed.get_object().get(record)) return false;
    std::optional<std::string_view> log;
    std::optional<double> date;
    std::array<std::optional<std::string_view>, 5> meta;
    uint32_t seen = 0;
    for (auto field : record) {
      size_t k = 0;
      while (k < kEnvelopeKeys.size() && kEnvelopeKeys[k] != field.key) ++k;
      if (k == kEnvelopeKeys.size() || (seen >> k) & 1u) return false;  // other or repeated key
      seen |= 1u << k;
      element value = field.value;
      if (k == 0) {
        if (!value.is_string()) return false;
        log = std::string_view(value);
      } else if (k == 1) {
        if (value.type() != element_type::DOUBLE) return false;  // int, text or null: Python
        date = double(value);
      } else if (value.is_string()) {
        if (k < 7) meta[k - 2] = std::string_view(value);
      } else if (!value.is_null()) {
        return false;
      }
    }
    if (!log || !date) return false;
    out.meta_codes.push_back(out.metas.code(meta));
    out.dates.push_back(*date);
    if (!add_log(*log, py_strip(*log), out, buffers)) return false;
  }
  // 32-bit Arrow offsets
  return out.message.data.size() < INT32_MAX && out.fields.data.size() < INT32_MAX;
}

// lines.py's parse of a body of NDJSON or text lines, without joined lines: the same columns as
// a FireLens body whose `log`s are the lines (no metadata, no date). A line whose stripped text
// starts with `{` but is not one JSON object (Python reports it), a body that is not UTF-8
// (Python replaces the bytes) or a log object only Python decides: false.
bool parse_text_lines(std::string_view body, Result& out, Buffers& buffers) {
  if (!simdjson::validate_utf8(body.data(), body.size())) return false;
  size_t start = 0;
  while (start <= body.size()) {
    size_t stop = body.find('\n', start);
    if (stop == std::string_view::npos) stop = body.size();
    std::string_view line = body.substr(start, stop - start);
    start = stop + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // only the one
    std::string_view text = py_strip(line);
    if (text.empty()) continue;  // blank lines are dropped
    if (!add_log(line, text, out, buffers)) return false;
  }
  return out.message.data.size() < INT32_MAX && out.fields.data.size() < INT32_MAX;
}

py::object meta_tuple(const Meta& meta) {
  py::tuple t(meta.size());
  for (size_t i = 0; i < meta.size(); ++i)
    t[i] = meta[i] ? py::object(py::str(*meta[i])) : py::object(py::none());
  return std::move(t);
}

template <typename T>
py::bytes raw_bytes(const std::vector<T>& values) {
  return py::bytes(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// The columns of a parsed body for Python (firelens.py's _parse_native, lines.py's).
py::dict columns_of(const Result& out) {
  py::list metas;
  for (const auto& meta : out.metas.metas) metas.append(meta_tuple(meta));
  py::dict columns;
  columns["date"] = raw_bytes(out.dates);
  columns["meta_codes"] = raw_bytes(out.meta_codes);
  columns["metas"] = metas;
  columns["level_from"] = raw_bytes(out.level_from);
  columns["fields"] = out.fields.out();
  columns["time"] = out.time.out();
  columns["level"] = out.level.out();
  columns["message"] = out.message.out();
  columns["request_id"] = out.request.out();
  return columns;
}

py::object parse(py::bytes data) {
  std::string_view body = data;  // the bytes object stays alive and unchanged meanwhile
  Result out;
  bool ok;
  {
    py::gil_scoped_release unlocked;  // other threads (the WAL's fsync, HTTP) run meanwhile
    ok = parse_body(body, out);
  }
  if (!ok) return py::none();
  return columns_of(out);
}

py::object parse_text(py::bytes data) {
  std::string_view body = data;
  Result out;
  bool ok;
  {
    py::gil_scoped_release unlocked;
    thread_local Buffers buffers;
    ok = parse_text_lines(body, out, buffers);
    buffers.trim();
  }
  if (!ok) return py::none();
  return columns_of(out);
}

// ------------------------------------------------------------- CloudTrail (cloudtrail.py)

// What cloudtrail.py's `_fast` reads of a file, as Arrow buffers: the texts it keeps (empty read
// as null), the identity's, `readOnly`, and the JSON-valued keys as their text as sent. It
// answers only files `_fast` answers, and returns None for any other (a key holding another type,
// a repeated key, a record without id, time or name), so Python decides those as before.
constexpr std::array<std::string_view, 12> kTrailTexts{
    "eventID",         "eventTime", "eventSource", "eventName",  "awsRegion", "sourceIPAddress",
    "userAgent",       "errorCode", "eventType",   "errorMessage", "recipientAccountId",
    "readOnly"};
constexpr std::array<std::string_view, 5> kTrailRaw{
    "requestParameters", "responseElements", "resources", "additionalEventData", "userIdentity"};
constexpr size_t kReadOnly = 11, kAccount = 10, kId = 0, kTime = 1, kSource = 2, kName = 3;

// The text of a value as sent: an object or array whole, a scalar's token.
bool raw_text(simdjson::simdjson_result<simdjson::ondemand::value> result, std::string_view& text) {
  simdjson::ondemand::value value;
  simdjson::ondemand::json_type type;
  if (result.get(value) || value.type().get(type)) return false;
  if (type == simdjson::ondemand::json_type::object) {
    simdjson::ondemand::object object;
    return !value.get_object().get(object) && !object.raw_json().get(text);
  }
  if (type == simdjson::ondemand::json_type::array) {
    simdjson::ondemand::array array;
    return !value.get_array().get(array) && !array.raw_json().get(text);
  }
  text = value.raw_json_token();
  while (!text.empty() && std::strchr(" \t\n\r", text.back())) text.remove_suffix(1);
  return true;
}

// A text, or nothing for null (false: another type, which msgspec refuses).
bool text_or_null(simdjson::ondemand::value value, simdjson::ondemand::json_type type,
                  std::optional<std::string_view>& out) {
  if (type == simdjson::ondemand::json_type::null) return true;
  if (type != simdjson::ondemand::json_type::string) return false;
  std::string_view text;
  if (value.get_string().get(text)) return false;
  out = text;
  return true;
}

// The index of `key` among kTrailTexts then kTrailRaw, else the count of both. A record has
// twenty-odd keys: their lengths rule out most names at once.
size_t trail_key(std::string_view key) {
  static const auto by_length = [] {
    std::array<std::vector<std::pair<std::string_view, size_t>>, 20> out;
    size_t i = 0;
    for (auto k : kTrailTexts) out[k.size()].emplace_back(k, i++);
    for (auto k : kTrailRaw) out[k.size()].emplace_back(k, i++);
    return out;
  }();
  if (key.size() < by_length.size())
    for (const auto& [name, i] : by_length[key.size()])
      if (name == key) return i;
  return kTrailTexts.size() + kTrailRaw.size();
}

// A column of JSON texts as sent (empty: the key was absent), null for `null`; `escaped`: one
// holds an escape, and Python rewrites the column as raw_json_column writes it
// (records.native_records).
struct RawColumn : Column {
  bool escaped = false;

  void add_raw(std::string_view text) {
    if (text.empty() || text == "null") return add_null();
    add(text);
    escaped = escaped || text.find('\\') != std::string_view::npos;
  }
};

// Each raw column into `columns` under its name, and the names of those Python rewrites under
// "escaped".
template <size_t N>
void put_raw(py::dict& columns, const std::array<RawColumn, N>& raw,
             const std::array<const char*, N>& names) {
  py::list escaped;
  for (size_t i = 0; i < N; ++i) {
    columns[names[i]] = raw[i].out();
    if (raw[i].escaped) escaped.append(names[i]);
  }
  columns["escaped"] = escaped;
}

struct Trail {
  std::array<Column, 10> texts;  // kTrailTexts up to errorMessage, in order
  Column identity_type, identity_arn, access_key_id, account;
  std::array<RawColumn, 5> raw;
  std::vector<uint8_t> read_only, read_only_valid;
  int64_t rows = 0, read_only_nulls = 0;
};

std::optional<std::string_view> nonempty(std::optional<std::string_view> v) {
  return v && !v->empty() ? v : std::nullopt;
}

// A text or null of an identity object (false: another type).
bool identity_text(element value, std::optional<std::string_view>& out) {
  if (value.is_null()) return true;
  if (!value.is_string()) return false;
  out = std::string_view(value);
  return true;
}

// The value of `key` in `node`, an object or null (`found` false: null, or no such key); false
// for another type or a repeated key, which msgspec refuses.
bool sole_in(element node, std::string_view key, element& out, bool& found) {
  found = false;
  if (node.is_null()) return true;
  if (node.type() != element_type::OBJECT) return false;
  for (auto field : simdjson::dom::object(node)) {
    if (field.key != key) continue;
    if (found) return false;
    out = field.value;
    found = true;
  }
  return true;
}

// `_Identity`'s fields of a userIdentity object (false: what msgspec would refuse, or a
// repeated key).
bool read_identity(element node, std::optional<std::string_view>& type,
                   std::optional<std::string_view>& arn, std::optional<std::string_view>& key,
                   std::optional<std::string_view>& account,
                   std::optional<std::string_view>& issuer_arn) {
  if (node.is_null()) return true;
  if (node.type() != element_type::OBJECT) return false;
  std::array<bool, 5> seen{};
  for (auto field : simdjson::dom::object(node)) {
    const std::string_view k = field.key;
    size_t i = k == "type" ? 0 : k == "arn" ? 1 : k == "accessKeyId" ? 2 : k == "accountId" ? 3
             : k == "sessionContext" ? 4 : 5;
    if (i == 5) continue;
    if (seen[i]) return false;
    seen[i] = true;
    std::optional<std::string_view>* text[] = {&type, &arn, &key, &account};
    if (i < 4) {
      if (!identity_text(field.value, *text[i])) return false;
      continue;
    }
    // sessionContext.sessionIssuer.arn, each object null or absent at any step
    element context = field.value, issuer, leaf;
    bool found = false;
    if (!sole_in(context, "sessionIssuer", issuer, found)) return false;
    if (found && !sole_in(issuer, "arn", leaf, found)) return false;
    if (found && !identity_text(leaf, issuer_arn)) return false;
  }
  return true;
}

bool read_trail_record(simdjson::ondemand::object record, simdjson::dom::parser& identities,
                       Trail& out) {
  std::array<std::optional<std::string_view>, kTrailTexts.size()> texts{};
  std::array<bool, kTrailTexts.size() + kTrailRaw.size()> seen{};
  std::array<std::string_view, kTrailRaw.size()> raw{};
  std::optional<bool> read_only;
  for (auto field : record) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    const size_t i = trail_key(key);
    if (i >= kTrailTexts.size()) {
      const size_t j = i - kTrailTexts.size();
      if (j == kTrailRaw.size()) continue;  // a key the table does not keep
      if (seen[i]) return false;
      seen[i] = true;
      if (!raw_text(field.value(), raw[j])) return false;
      continue;
    }
    if (seen[i]) return false;
    seen[i] = true;
    simdjson::ondemand::value value;
    simdjson::ondemand::json_type type;
    if (field.value().get(value) || value.type().get(type)) return false;
    if (i == kReadOnly && type == simdjson::ondemand::json_type::boolean) {
      bool flag;
      if (value.get_bool().get(flag)) return false;
      read_only = flag;
      continue;
    }
    if (!text_or_null(value, type, texts[i])) return false;
  }
  // the identity: its text is kept, and its fields read from it
  std::optional<std::string_view> type, arn, key, account, issuer_arn;
  const std::string_view identity = raw[4];
  if (!identity.empty()) {
    element node;
    if (identities.parse(identity.data(), identity.size(), true).get(node)) return false;
    if (!read_identity(node, type, arn, key, account, issuer_arn)) return false;
  }
  if (!nonempty(texts[kId]) || !texts[kTime]) return false;  // hashed or reported by Python
  if (!nonempty(texts[kName]) && !nonempty(texts[kSource])) return false;
  for (size_t i = 0; i < out.texts.size(); ++i)
    out.texts[i].add(i == kTime ? texts[i] : nonempty(texts[i]));
  out.identity_type.add(nonempty(type));
  out.identity_arn.add(nonempty(arn) ? arn : nonempty(issuer_arn));
  out.access_key_id.add(nonempty(key));
  out.account.add(nonempty(texts[kAccount]) ? texts[kAccount] : nonempty(account));
  for (size_t j = 0; j < kTrailRaw.size(); ++j) out.raw[j].add_raw(raw[j]);
  if (texts[kReadOnly]) {  // a text: "true" or "false" in any case, else null
    std::string lower(*texts[kReadOnly]);
    for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "true" || lower == "false") read_only = lower == "true";
  }
  if ((out.rows & 7) == 0) {
    out.read_only.push_back(0);
    out.read_only_valid.push_back(0);
  }
  if (read_only) {
    out.read_only_valid.back() |= uint8_t(1u << (out.rows & 7));
    if (*read_only) out.read_only.back() |= uint8_t(1u << (out.rows & 7));
  } else {
    ++out.read_only_nulls;
  }
  ++out.rows;
  return true;
}

// The parsers of CloudTrail files and event bodies, per thread; a huge body's capacity is not
// kept by every thread (as Buffers::trim).
struct Readers {
  simdjson::dom::parser check, identities;
  simdjson::ondemand::parser reader;

  void trim() {
    if (check.capacity() > Buffers::kKeep) check = simdjson::dom::parser();
    if (identities.capacity() > Buffers::kKeep) identities = simdjson::dom::parser();
    if (reader.capacity() > Buffers::kKeep) reader = simdjson::ondemand::parser();
  }
};

// `read` of `data` into `out` with the GIL released, on this thread's Readers (trimmed after).
template <typename Out>
bool read_released(py::bytes data, bool (*read)(std::string_view, Out&, Readers&), Out& out) {
  const std::string_view body = data;  // the bytes object stays alive and unchanged meanwhile
  py::gil_scoped_release unlocked;
  static thread_local Readers readers;  // one per thread, whichever reader uses it
  const bool answered = read(body, out, readers);
  readers.trim();
  return answered;
}

// `padded` opened for the on-demand reader once the DOM parser has validated it whole: the
// reader leaves what it skips unread, and msgspec refuses a malformed value it skips.
bool open_validated(const simdjson::padded_string& padded, Readers& readers,
                    simdjson::ondemand::document& out) {
  element root;
  return !readers.check.parse(padded).get(root) && !readers.reader.iterate(padded).get(out);
}

bool read_trail(std::string_view body, Trail& out, Readers& readers) {
  const simdjson::padded_string padded(body);  // one padded copy for both readers
  simdjson::ondemand::document document;
  if (!open_validated(padded, readers, document)) return false;
  auto read_records = [&](simdjson::ondemand::array records) {
    for (auto item : records) {
      simdjson::ondemand::object record;
      if (item.get_object().get(record) || !read_trail_record(record, readers.identities, out))
        return false;
    }
    return true;
  };
  simdjson::ondemand::array records;
  if (body.empty() || body[0] != '{')  // a list, or {"Records": [...]}, as `_fast` tells them
    return !document.get_array().get(records) && read_records(records);
  simdjson::ondemand::object envelope;
  if (document.get_object().get(envelope)) return false;
  bool found = false;
  for (auto field : envelope) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    if (key != "Records") continue;
    if (found || field.value().get_array().get(records) || !read_records(records)) return false;
    found = true;
  }
  return found;
}

// ECS and EventBridge events (ecs_events.py's `_fast`): one event object or a list of them,
// the texts the table keeps (empty read as null) and `resources` and `detail` as sent; None for
// what `_fast` does not answer, or a repeated key (msgspec's to decide).
constexpr std::array<std::string_view, 8> kEventKeys{
    "id", "time", "source", "detail-type", "account", "region", "resources", "detail"};
constexpr size_t kEventTexts = 6;  // the keys before are texts, the others kept as sent

struct Events {
  std::array<Column, kEventTexts> texts;
  std::array<RawColumn, kEventKeys.size() - kEventTexts> raw;
};

bool read_event(simdjson::ondemand::object event, Events& out) {
  std::array<std::optional<std::string_view>, kEventTexts> values{};
  std::array<std::string_view, kEventKeys.size() - kEventTexts> raw{};
  std::array<bool, kEventKeys.size()> seen{};
  for (auto field : event) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    size_t i = 0;
    while (i < kEventKeys.size() && kEventKeys[i] != key) ++i;
    if (i == kEventKeys.size()) continue;  // a key the table does not keep
    if (seen[i]) return false;
    seen[i] = true;
    if (i >= kEventTexts) {
      if (!raw_text(field.value(), raw[i - kEventTexts])) return false;
      continue;
    }
    simdjson::ondemand::value value;
    simdjson::ondemand::json_type type;
    if (field.value().get(value) || value.type().get(type)) return false;
    if (!text_or_null(value, type, values[i])) return false;
  }
  if (!nonempty(values[0]) || !values[1]) return false;  // hashed or reported by Python
  for (size_t i = 0; i < kEventTexts; ++i)
    out.texts[i].add(i == 1 ? values[i] : nonempty(values[i]));  // a time is read as it is
  for (size_t j = 0; j < raw.size(); ++j) out.raw[j].add_raw(raw[j]);
  return true;
}

bool read_events(std::string_view body, Events& out, Readers& readers) {
  const simdjson::padded_string padded(body);
  simdjson::ondemand::document document;
  if (!open_validated(padded, readers, document)) return false;
  if (!body.empty() && body[0] == '[') {  // a list, as `_fast` tells them apart
    simdjson::ondemand::array events;
    if (document.get_array().get(events)) return false;
    for (auto item : events) {
      simdjson::ondemand::object event;
      if (item.get_object().get(event) || !read_event(event, out)) return false;
    }
    return true;
  }
  simdjson::ondemand::object event;
  return !document.get_object().get(event) && read_event(event, out);
}

py::object parse_events(py::bytes data) {
  Events out;
  if (!read_released(data, read_events, out)) return py::none();
  py::dict columns;
  const char* names[] = {"id", "time", "source", "detail_type", "account", "region"};
  for (size_t i = 0; i < out.texts.size(); ++i) columns[names[i]] = out.texts[i].out();
  put_raw(columns, out.raw, {"resources", "detail"});
  return columns;
}

py::object parse_cloudtrail(py::bytes data) {
  Trail out;
  if (!read_released(data, read_trail, out)) return py::none();
  py::dict columns;
  const char* names[] = {"event_id",   "time",      "event_source", "event_name",
                         "aws_region", "source_ip", "user_agent",   "error_code",
                         "event_type", "error_message"};
  for (size_t i = 0; i < out.texts.size(); ++i) columns[names[i]] = out.texts[i].out();
  columns["identity_type"] = out.identity_type.out();
  columns["identity_arn"] = out.identity_arn.out();
  columns["access_key_id"] = out.access_key_id.out();
  columns["account"] = out.account.out();
  put_raw(columns, out.raw,
          {"request_parameters", "response_elements", "resources", "additional_event_data",
           "user_identity"});
  columns["read_only"] = py::make_tuple(
      out.rows,
      py::bytes(reinterpret_cast<const char*>(out.read_only.data()), out.read_only.size()),
      py::bytes(reinterpret_cast<const char*>(out.read_only_valid.data()),
                out.read_only_valid.size()),
      out.read_only_nulls);
  return columns;
}

// ------------------------------------ rows holding a text (emf.py, detect/filterset.py's terms)

// The rows of an Arrow string array whose text holds `needle`, in order: `offsets` are the
// array's rows + 1 offsets (int32), `data` its data buffer from offsets[0] to offsets[rows].
// As emf.py's Python search: an occurrence spanning two texts counts for neither, and the
// search goes on from the next row's start.
py::list rows_with(py::buffer offsets_buffer, py::buffer data_buffer, py::bytes needle_bytes) {
  std::string_view needle = needle_bytes;
  py::buffer_info offsets_info = offsets_buffer.request(), data_info = data_buffer.request();
  if (needle.empty()) throw py::value_error("the needle must be one byte or more");
  if (offsets_info.itemsize != 4 || offsets_info.size < 1 || data_info.itemsize != 1)
    throw py::value_error("offsets must be int32 and data bytes");
  const int32_t* offsets = static_cast<const int32_t*>(offsets_info.ptr);
  const int32_t* offsets_end = offsets + offsets_info.size;
  const char* data = static_cast<const char*>(data_info.ptr);
  const char* data_end = data + data_info.size;
  const int32_t base = offsets[0];
  if (offsets_end[-1] - base != data_info.size)
    throw py::value_error("data must span offsets[0] to offsets[-1]");
  // every search starts at a row's offset: out-of-order offsets would read outside the data
  if (std::adjacent_find(offsets, offsets_end, std::greater<int32_t>()) != offsets_end)
    throw py::value_error("offsets must not decrease");
  std::vector<int64_t> rows;
  {
    py::gil_scoped_release unlocked;
    for (const char* hit = find(data, data_end, needle); hit != nullptr;) {
      const int32_t at = int32_t(hit - data) + base;
      const int64_t row = std::upper_bound(offsets, offsets_end, at) - offsets - 1;
      const int32_t row_end = offsets[row + 1];
      // an occurrence running into the next text is in neither; none later in this text can
      // end inside it either, so the search goes on from the next text's start
      if (int64_t(at) + int64_t(needle.size()) <= row_end) rows.push_back(row);
      hit = find(data + (row_end - base), data_end, needle);
    }
  }
  py::list out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) out[i] = py::int_(rows[i]);
  return out;
}

// Epoch microseconds of the texts of an Arrow string array written as records.py's _ISO_UTC
// (YYYY-MM-DDTHH:MM:SS, then .mmm or .uuuuuu, then Z), on a day that exists and within
// [0, max_us]; null for every other text, which Python reads the long way (`text_times`). The
// regular expression and Arrow's cast cost 0.3 µs a text, most of a log body's time column.
namespace iso {

int digits(const char* at, size_t n) {
  int value = 0;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char d = static_cast<unsigned char>(at[i]) - '0';
    if (d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

bool leap(int year) { return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0); }

// days from 1970-01-01 to a day of the proleptic Gregorian calendar (year >= 0), counted in
// whole 400-year eras of 146,097 days from 0000-03-01
int64_t days_since_epoch(int year, int month, int day) {
  if (month <= 2) --year;
  const int era = (year >= 0 ? year : year - 399) / 400, of_era = year - era * 400;
  const int day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int day_of_era = of_era * 365 + of_era / 4 - of_era / 100 + day_of_year;
  return int64_t(era) * 146097 + day_of_era - 719468;
}

// false: not the form, or a day that does not exist
bool read(std::string_view t, int64_t& us) {
  const size_t n = t.size();
  if ((n != 20 && n != 24 && n != 27) || t[4] != '-' || t[7] != '-' || t[10] != 'T' ||
      t[13] != ':' || t[16] != ':' || t[n - 1] != 'Z' || (n > 20 && t[19] != '.'))
    return false;
  const int year = digits(&t[0], 4), month = digits(&t[5], 2), day = digits(&t[8], 2);
  const int hour = digits(&t[11], 2), minute = digits(&t[14], 2), second = digits(&t[17], 2);
  const int fraction = n > 20 ? digits(&t[20], n - 21) : 0;
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 ||
      minute > 59 || second < 0 || second > 59 || fraction < 0)
    return false;
  static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (day > month_days[month - 1] + (month == 2 && leap(year))) return false;
  const int64_t seconds = days_since_epoch(year, month, day) * 86400 + hour * 3600 +
                          minute * 60 + second;
  us = seconds * 1000000 + (n == 24 ? fraction * 1000 : fraction);
  return true;
}

}  // namespace iso

py::tuple iso_times(py::buffer offsets_buffer, py::buffer data_buffer, py::object validity,
                    int64_t validity_offset, int64_t max_us) {
  const ecsguard::StringArrayBuffers in(offsets_buffer, data_buffer, validity, validity_offset);
  in.check_all();
  const size_t rows = size_t(in.count);
  std::vector<int64_t> values(rows, 0);
  std::vector<uint8_t> read((rows + 7) / 8, 0);
  size_t nulls = 0;
  {
    py::gil_scoped_release unlocked;
    for (size_t i = 0; i < rows; ++i) {
      int64_t us = 0;
      if (in.present(int64_t(i)) && iso::read(in.text(int64_t(i)), us) && us >= 0 &&
          us <= max_us) {
        values[i] = us;
        read[i >> 3] |= uint8_t(1 << (i & 7));
      } else {
        ++nulls;
      }
    }
  }
  return py::make_tuple(raw_bytes(values), raw_bytes(read), nulls);
}

// records.py's level_from_text of each text of an Arrow string array, as a code per row (see
// `Level`): the leftmost level word (TRACE ... PANIC, upper case, whole words) or level=, lvl=
// or severity= value within the first 200 characters, else ERROR for a Python traceback. A text
// whose first 200 bytes are not all ASCII gets kPython: Python's \b knows Unicode's word
// characters, and its slice counts characters, not bytes. Arrow's regular expression and the
// calls around it cost 1.8 µs a text line, most of a log body's level work.
namespace levels {

enum Level : uint8_t { kNone, kTrace, kDebug, kInfo, kWarn, kError, kFatal, kPython };

constexpr size_t kHead = 200;

bool word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// _CANONICAL.get(word.lower()) for an ASCII word; kNone for a word it does not know
Level canonical(std::string_view word) {
  static const std::pair<std::string_view, Level> known[] = {
      {"trace", kTrace}, {"debug", kDebug},  {"info", kInfo},     {"information", kInfo},
      {"notice", kInfo}, {"warn", kWarn},    {"warning", kWarn},  {"error", kError},
      {"err", kError},   {"fatal", kFatal},  {"critical", kFatal}, {"crit", kFatal},
      {"panic", kFatal}, {"emerg", kFatal},  {"alert", kFatal}};
  auto lowered = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
  for (const auto& [name, level] : known) {
    if (name.size() != word.size()) continue;
    size_t i = 0;
    while (i < name.size() && name[i] == lowered(word[i])) ++i;
    if (i == name.size()) return level;
  }
  return kNone;
}

// The level a match at `at` gives, if one starts there (a word boundary before it is checked
// by the caller): an upper-case word ending at a boundary, or a key, `=`, an optional quote
// and letters.
bool match_at(std::string_view head, size_t at, Level& out) {
  static const std::string_view words[] = {"TRACE", "DEBUG",    "INFO", "NOTICE",
                                           "WARN",  "WARNING",  "ERROR", "ERR",
                                           "FATAL", "CRITICAL", "CRIT", "PANIC"};
  const std::string_view rest = head.substr(at);
  for (std::string_view word : words) {
    if (rest.substr(0, word.size()) != word) continue;
    if (word.size() < rest.size() && word_char(rest[word.size()])) continue;  // no boundary
    out = canonical(word);
    return true;
  }
  static const std::string_view keys[] = {"level", "lvl", "severity"};
  for (std::string_view key : keys) {
    if (rest.substr(0, key.size()) != key || key.size() >= rest.size() || rest[key.size()] != '=')
      continue;
    size_t start = key.size() + 1;
    auto letter = [&](size_t i) {
      if (i >= rest.size()) return false;
      const char c = rest[i];
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    };
    if (start < rest.size() && rest[start] == '"' && letter(start + 1)) ++start;
    size_t end = start;
    while (letter(end)) ++end;
    if (end == start) continue;
    out = canonical(rest.substr(start, end - start));
    return true;
  }
  return false;
}

Level of(std::string_view text) {
  const std::string_view head = text.substr(0, kHead);
  for (char c : head)
    if (static_cast<unsigned char>(c) >= 0x80) return kPython;
  for (size_t at = 0; at < head.size(); ++at) {
    if (!word_char(head[at]) || (at && word_char(head[at - 1]))) continue;  // \b, then a letter
    if (!std::strchr("TDINWEFCPls", head[at])) continue;  // no word or key starts so
    if (Level found; match_at(head, at, found)) return found;
  }
  return head.substr(0, 34) == "Traceback (most recent call last):" ? kError : kNone;
}

}  // namespace levels

py::bytes text_levels(py::buffer offsets_buffer, py::buffer data_buffer, py::object validity,
                      int64_t validity_offset) {
  const ecsguard::StringArrayBuffers in(offsets_buffer, data_buffer, validity, validity_offset);
  in.check_all();
  std::vector<uint8_t> out(size_t(in.count), levels::kNone);
  {
    py::gil_scoped_release unlocked;
    for (size_t i = 0; i < out.size(); ++i)
      if (in.present(int64_t(i))) out[i] = levels::of(in.text(int64_t(i)));
  }
  return raw_bytes(out);
}

}  // namespace

PYBIND11_MODULE(_firelens_native, m) {
  m.doc() =
      "FireLens json_lines bodies and NDJSON or text lines to Arrow buffers, and a text search "
      "(firelens_native.cpp)";
  m.def("parse", &parse, py::arg("body"),
        "The columns of a common-shape body as Arrow buffers, or None for the Python path.");
  m.def("parse_text", &parse_text, py::arg("body"),
        "The columns of a body of NDJSON or text lines (lines.py) as Arrow buffers, or None for "
        "the Python path.");
  m.def("parse_events", &parse_events, py::arg("body"),
        "The columns of a body of ECS or EventBridge events as `_fast` reads it "
        "(ecs_events.py), as Arrow buffers, or None for the Python path.");
  m.def("parse_cloudtrail", &parse_cloudtrail, py::arg("body"),
        "The columns of a CloudTrail file as `_fast` reads it (cloudtrail.py), as Arrow "
        "buffers, or None for the Python path.");
  m.def("iso_times", &iso_times, py::arg("offsets"), py::arg("data"), py::arg("validity"),
        py::arg("validity_offset"), py::arg("max_us"),
        "(int64 values, validity bitmap, nulls): epoch µs of each ISO UTC text of a string "
        "array (records.py's _ISO_UTC), null where it is not one, or not in [0, max_us].");
  m.def("text_levels", &text_levels, py::arg("offsets"), py::arg("data"), py::arg("validity"),
        py::arg("validity_offset"),
        "A level code per text of a string array (records.py's level_from_text): 0 none, 1-6 "
        "TRACE DEBUG INFO WARN ERROR FATAL, 7 a text Python decides (not ASCII).");
  m.def("rows_with", &rows_with, py::arg("offsets"), py::arg("data"), py::arg("needle"),
        "The rows of an Arrow string array (int32 offsets, data) whose text holds needle.");
}
