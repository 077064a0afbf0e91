// JSON values per row of an Arrow string array, numbered by distinct value, for detection's
// per-row work that Python did by parsing every row into dicts and walking them:
//
// - `LeafIds(parts)`: an EventBridge path's leaves below a JSON root, for the event-pattern
//   prefilter (eventpattern/prefilter.py). detail.containers.exitCode over the detail column is
//   ["containers", "exitCode"]; the leaves are those records.py's `_collect` finds: arrays are
//   transparent, a key may itself hold dots, the last of duplicate keys wins (as in a dict built
//   from the text).
// - `FieldIds(parts)`: a Sigma field's values below a JSON root (userIdentity.sessionContext.
//   sessionIssuer.type over the user_identity column), for Sigma rules (sigma/evaluate.py), as
//   sigma/fields.py's `_walk` finds them; a row reaching an object or array is refused.
// - `SelectorIds(steps)`: what a CloudWatch filter pattern's JSON selector without wildcards
//   ($.a.b[0]) reaches in a log line, for log filter rules (filterset.py), as
//   `evaluate.load_object` + `evaluate.resolve` decide it: the line must hold one JSON object,
//   the first of duplicate keys wins, an index reads an array.
//
// `encode` parses the asked rows with simdjson's DOM parser, writes what it finds as a JSON
// array (numbers keep their kind: an integer stays one, a float gets a point; an object or array
// a selector reaches is written as {}, which equals nothing) and gives each distinct array a
// number, kept across calls. It returns the number per row and the texts of the numbers new in
// this call, so Python decides a value once, however many rows hold it. A row simdjson refuses
// gets -1 and Python reads it itself, so whatever the parsers disagree on (integers beyond 64
// bits, NaN, lone surrogates, depth) is decided as before; so does a value whose JSON exceeds
// 4 KB, which is not kept. -2 is a line that holds no JSON object (selectors only).
//
// `Narrowing` is the prefilter's per-row work after the numbering: the rows still live and the
// pattern branches alive on each, as bit masks of 64-bit words, narrowed path after path by a
// table of the mask each number (or each value of a column) leaves alive. Python worked out a
// number's mask once; ANDing it into a thousand rows and dropping the rows left with none was
// five list comprehensions over big integers per path, a fifth of the detection process.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "../core/arrow_strings.h"

namespace py = pybind11;
using simdjson::dom::element;
using simdjson::dom::element_type;

namespace {

constexpr int32_t kRefused = -1, kNoObject = -2;
constexpr size_t kLargestNumbered = 4096;  // bytes of one value's JSON

using ecsguard::StringArrayBuffers;

// The rows of a batch still live and the branches alive on each (prefilter.py's _survive):
// `words` 64-bit words of mask per row, narrowed by `apply` with a table of masks.
class Narrowing {
 public:
  Narrowing(int64_t rows, py::bytes all, size_t kept_bytes = size_t(64) << 20)
      : kept_limit_(kept_bytes) {
    const std::string mask = all;
    if (mask.empty() || mask.size() % 8) throw py::value_error("a mask is whole 64-bit words");
    words_ = mask.size() / 8;
    batch_rows_ = std::max<int64_t>(rows, 0);
    rows_.resize(size_t(batch_rows_));
    masks_.resize(rows_.size() * words_);
    for (size_t i = 0; i < rows_.size(); ++i) {
      rows_[i] = int64_t(i);
      std::memcpy(&masks_[i * words_], mask.data(), mask.size());
    }
    drop_empty();  // an all-zero mask: no branch, no row
  }

  size_t size() const { return rows_.size(); }
  size_t kept_bytes() const { return kept_bytes_; }
  const std::vector<int64_t>& rows() const { return rows_; }
  std::vector<int32_t>& pending() { return pending_; }

  py::list live() const {
    py::list out(rows_.size());
    for (size_t i = 0; i < rows_.size(); ++i) out[i] = py::int_(rows_[i]);
    return out;
  }

  // each live row's mask, words_ little-endian words after another (int.from_bytes reads one)
  py::bytes masks() const {
    return py::bytes(reinterpret_cast<const char*>(masks_.data()), masks_.size() * 8);
  }

  // set the number of live row `position` for the next apply (-1: leave its mask as it is)
  void set(size_t position, int32_t number) {
    if (position >= pending_.size()) throw py::index_error("no such live row numbered");
    pending_[position] = number;
  }

  // AND each live row's mask with the table's mask of its number and drop the rows left with
  // none; numbers from `numbers` (per live row, or per row of the batch with `by_row`), else
  // those encode_live gave. A negative number leaves the row's mask as it is. The rows dropped.
  size_t apply(py::buffer table_buffer, py::object numbers, bool by_row) {
    py::buffer_info table = table_buffer.request();
    if (table.itemsize != 1 || table.size % int64_t(words_ * 8))
      throw py::value_error("the table is whole masks of bytes");
    const size_t entries = size_t(table.size) / (words_ * 8);
    const int32_t* ids = pending_.data();
    py::buffer_info given;
    if (!numbers.is_none()) {
      given = numbers.cast<py::buffer>().request();
      if (given.itemsize != 4) throw py::value_error("numbers must be int32");
      const size_t needed = by_row ? (rows_.empty() ? 0 : size_t(rows_.back()) + 1) : rows_.size();
      if (size_t(given.size) < needed) throw py::value_error("fewer numbers than rows");
      ids = static_cast<const int32_t*>(given.ptr);
    } else if (pending_.size() != rows_.size()) {
      throw py::value_error("no numbers for the live rows: encode_live first");
    }
    for (size_t i = 0; i < rows_.size(); ++i)  // checked first: a refusal changes no mask
      if (const int32_t id = ids[by_row ? size_t(rows_[i]) : i]; id >= 0 && size_t(id) >= entries)
        throw py::index_error("a number beyond the table");
    const uint8_t* bytes = static_cast<const uint8_t*>(table.ptr);
    for (size_t i = 0; i < rows_.size(); ++i) {
      const int32_t id = ids[by_row ? size_t(rows_[i]) : i];
      if (id < 0) continue;
      uint64_t* mask = &masks_[i * words_];
      for (size_t w = 0; w < words_; ++w) {
        uint64_t word;
        std::memcpy(&word, bytes + (size_t(id) * words_ + w) * 8, 8);
        mask[w] &= word;
      }
    }
    pending_.clear();
    return drop_empty();
  }

  // one row's parse, kept for the batch's later paths
  struct Kept {
    enum State : uint8_t { kUnread, kParsed, kRefused } state = kUnread;
    std::unique_ptr<simdjson::dom::document> document;
    element root;
  };

  // the kept parses of a column (`column`: its buffers' addresses), one slot per batch row
  std::vector<Kept>& kept_for(std::pair<const void*, const void*> column) {
    auto& kept = documents_[column];
    if (kept.empty()) kept.resize(size_t(batch_rows_));
    return kept;
  }

  // The parsed JSON of row `row` of a column (`kept`: kept_for the column), parsed on the
  // first path that reads it and kept for the others: a batch's event-pattern paths read the
  // same few columns a dozen times. False: simdjson refused the text. Past `kept_bytes` of
  // text a row is parsed each time (a replayed batch can hold far more rows than a posted one).
  bool root(std::vector<Kept>& kept, int64_t row, std::string_view text, element& out) {
    Kept& doc = kept[size_t(row)];
    if (doc.state == Kept::kUnread) {
      if (kept_bytes_ + text.size() > kept_limit_)
        return scratch_.parse(text.data(), text.size(), true).get(out) == simdjson::SUCCESS;
      kept_bytes_ += text.size();
      doc.document = std::make_unique<simdjson::dom::document>();
      auto parsed = parser_.parse_into_document(*doc.document, text.data(), text.size(), true);
      doc.state = parsed.get(doc.root) == simdjson::SUCCESS ? Kept::kParsed : Kept::kRefused;
    }
    out = doc.root;
    return doc.state == Kept::kParsed;
  }

 private:
  struct PairHash {
    size_t operator()(const std::pair<const void*, const void*>& p) const {
      return std::hash<const void*>()(p.first) * 31 + std::hash<const void*>()(p.second);
    }
  };

  size_t drop_empty() {
    size_t kept = 0;
    for (size_t i = 0; i < rows_.size(); ++i) {
      const uint64_t* mask = &masks_[i * words_];
      bool any = false;
      for (size_t w = 0; w < words_ && !any; ++w) any = mask[w] != 0;
      if (!any) continue;
      if (kept != i) {
        rows_[kept] = rows_[i];
        std::memmove(&masks_[kept * words_], mask, words_ * 8);
      }
      ++kept;
    }
    const size_t dropped = rows_.size() - kept;
    rows_.resize(kept);
    masks_.resize(kept * words_);
    return dropped;
  }

  size_t words_ = 1;
  int64_t batch_rows_ = 0;
  std::vector<int64_t> rows_;
  std::unordered_map<std::pair<const void*, const void*>, std::vector<Kept>, PairHash> documents_;
  size_t kept_limit_, kept_bytes_ = 0;
  simdjson::dom::parser parser_, scratch_;
  std::vector<uint64_t> masks_;
  std::vector<int32_t> pending_;
};

// The shared part: checking Arrow's buffers, the loop over rows, the numbering.
class Numbered {
 public:
  virtual ~Numbered() = default;

  size_t size() const { return ids_.size(); }
  // the bytes the numbered texts hold (Python starts a new numbering past its budget)
  size_t bytes() const { return bytes_; }

  py::tuple encode(py::buffer offsets_buffer, py::buffer data_buffer, py::object validity,
                   int64_t validity_offset, const std::vector<int64_t>& rows) {
    const StringArrayBuffers in(offsets_buffer, data_buffer, validity, validity_offset);
    in.check(rows);
    const size_t known = ids_.size();
    std::vector<int32_t> out;
    number_rows(in, rows, out);
    py::list ids(out.size());
    for (size_t i = 0; i < out.size(); ++i) ids[i] = py::int_(out[i]);
    return py::make_tuple(ids, fresh_since(known));
  }

  // encode for the live rows of `narrowing`, their numbers kept there for its next apply:
  // (the texts of the new numbers, the positions among the live rows that got a negative one)
  py::tuple encode_live(Narrowing& narrowing, py::buffer offsets_buffer, py::buffer data_buffer,
                        py::object validity, int64_t validity_offset) {
    const StringArrayBuffers in(offsets_buffer, data_buffer, validity, validity_offset);
    in.check(narrowing.rows());
    const size_t known = ids_.size();
    number_rows(in, narrowing.rows(), narrowing.pending(), &narrowing);
    py::list refused;
    const std::vector<int32_t>& out = narrowing.pending();
    for (size_t i = 0; i < out.size(); ++i)
      if (out[i] < 0) refused.append(py::int_(i));
    return py::make_tuple(fresh_since(known), refused);
  }

 protected:
  // the numbers of `rows` (checked) into `out`; with `documents`, a numbering that reads
  // parsed roots takes them from it (parsed once per batch for every path)
  void number_rows(const StringArrayBuffers& in, const std::vector<int64_t>& rows,
                   std::vector<int32_t>& out, Narrowing* documents = nullptr) {
    out.resize(rows.size());
    const bool shared = documents != nullptr && reads_roots();
    // looked up once per call, not per row (the map lookup was 2% of the events' detection)
    auto* kept = shared ? &documents->kept_for({in.offsets, in.data}) : nullptr;
    // the GIL stays held: the numbering is this object's state, and one thread at a time uses it
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t row = rows[i];
      const std::string_view text = in.text(row);
      if (!in.present(row) || text.empty()) {
        out[i] = id_of_nothing();
        continue;
      }
      element root;
      out[i] = !shared                                ? id_of(text)
               : documents->root(*kept, row, text, root) ? id_of_root(root)
                                                          : kRefused;
    }
  }

  // whether id_of is a parse then id_of_root (so a parse may be shared between numberings)
  virtual bool reads_roots() const { return false; }
  virtual int32_t id_of_root(element) { return kRefused; }

  // the texts of the numbers given since there were `known`
  py::list fresh_since(size_t known) const {
    py::list fresh(texts_.size() - known);
    for (size_t i = known; i < texts_.size(); ++i) fresh[i - known] = py::bytes(texts_[i]);
    return fresh;
  }

  // a non-empty text's number
  virtual int32_t id_of(std::string_view text) = 0;
  // a null or empty text's
  virtual int32_t id_of_nothing() = 0;

  bool parse(std::string_view text, element& root) {
    return parser_.parse(text.data(), text.size(), true).get(root) == simdjson::SUCCESS;
  }

  // the number of the JSON array of `values`; kRefused if one cannot be written
  int32_t number_of(const std::vector<element>& values) {
    scratch_.assign(1, '[');
    for (size_t i = 0; i < values.size(); ++i) {
      if (i) scratch_.push_back(',');
      if (!write(values[i], scratch_)) return kRefused;
    }
    scratch_.push_back(']');
    return number(scratch_);
  }

  int32_t number(const std::string& text) {
    // log text is untrusted: a large value is not kept (Python reads that row, uncached), so a
    // stream of unique large values cannot grow the numbering by more than this a value
    if (text.size() > kLargestNumbered) return kRefused;
    auto found = ids_.find(text);
    if (found != ids_.end()) return found->second;
    const int32_t id = int32_t(texts_.size());
    ids_.emplace(text, id);
    texts_.push_back(text);
    bytes_ += 2 * text.size();  // the key and the text kept for Python
    return id;
  }

 private:
  // One value as JSON that Python's parsers read back to the value they read from the row.
  static bool write(element value, std::string& out) {
    char buffer[32];
    switch (value.type()) {
      case element_type::STRING:
        quote(value.get_string().value_unsafe(), out);
        return true;
      case element_type::INT64: {
        auto done = std::to_chars(buffer, buffer + sizeof buffer, value.get_int64().value_unsafe());
        out.append(buffer, done.ptr);
        return true;
      }
      case element_type::UINT64: {
        auto done =
            std::to_chars(buffer, buffer + sizeof buffer, value.get_uint64().value_unsafe());
        out.append(buffer, done.ptr);
        return true;
      }
      case element_type::DOUBLE: {
        auto done = std::to_chars(buffer, buffer + sizeof buffer,
                                  value.get_double().value_unsafe());  // shortest round trip
        if (done.ec != std::errc()) return false;
        std::string_view text(buffer, size_t(done.ptr - buffer));
        if (text.find_first_of("in") != std::string_view::npos) return false;  // inf, nan
        out.append(text);
        if (text.find_first_not_of("-0123456789") == std::string_view::npos) out.append(".0");
        return true;
      }
      case element_type::BOOL:
        out.append(value.get_bool().value_unsafe() ? "true" : "false");
        return true;
      case element_type::NULL_VALUE:
        out.append("null");
        return true;
      case element_type::OBJECT:
      case element_type::ARRAY:
        out.append("{}");  // reached by a selector: present, and equal to nothing
        return true;
      default:
        return false;
    }
  }

  static void quote(std::string_view text, std::string& out) {
    static const char hex[] = "0123456789abcdef";
    out.push_back('"');
    size_t plain = 0;  // the start of the run of characters written as they are
    for (size_t i = 0; i < text.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(text[i]);
      if (c != '"' && c != '\\' && c >= 0x20) continue;
      out.append(text.data() + plain, i - plain);  // a run at a time, not a byte at a time
      plain = i + 1;
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(char(c));
      } else {
        out.append("\\u00");
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
      }
    }
    out.append(text.data() + plain, text.size() - plain);
    out.push_back('"');
  }

  simdjson::dom::parser parser_;
  std::string scratch_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::string> texts_;
  size_t bytes_ = 0;
};

// A numbering of what a path of keys reaches below each row's JSON root (`id_of_root`).
class PathIds : public Numbered {
 public:
  explicit PathIds(std::vector<std::string> parts) : parts_(std::move(parts)) {
    if (parts_.empty()) throw py::value_error("a path needs at least one key");
  }

 protected:
  // no JSON, or a root that is none: nothing reached
  int32_t id_of_nothing() override { return number("[]"); }

  int32_t id_of(std::string_view text) override {
    element root;
    return parse(text, root) ? id_of_root(root) : kRefused;
  }

  bool reads_roots() const override { return true; }

  // the value of the last `key` in `fields` (as in a dict built from the text)
  static bool last(simdjson::dom::object fields, std::string_view key, element& out) {
    bool found = false;
    for (auto field : fields) {
      if (field.key == key) {
        out = field.value;
        found = true;
      }
    }
    return found;
  }

  std::vector<std::string> parts_;
};

class LeafIds : public PathIds {
 public:
  using PathIds::PathIds;

 protected:
  int32_t id_of_root(element root) override {
    leaves_.clear();
    collect(root, 0);
    return number_of(leaves_);
  }

 private:
  // records.py's _collect: the scalars under parts[i:] of node
  void collect(element node, size_t i) {
    if (node.type() == element_type::ARRAY) {
      // copied out of the result first: value_unsafe() refers into the temporary
      simdjson::dom::array items = node.get_array().value_unsafe();
      for (element item : items) collect(item, i);
      return;
    }
    const bool object = node.type() == element_type::OBJECT;
    if (i == parts_.size()) {
      if (!object) leaves_.push_back(node);
      return;
    }
    if (!object) return;
    simdjson::dom::object fields = node.get_object().value_unsafe();
    std::string key = parts_[i];
    for (size_t j = i + 1;; ++j) {  // each spelling of the rest, dotted keys included
      if (element child; last(fields, key, child)) collect(child, j);
      if (j == parts_.size()) return;
      key += '.';
      key += parts_[j];
    }
  }

  std::vector<element> leaves_;
};

// A Sigma field's values below a JSON root, as sigma/fields.py's `_walk` finds them: arrays are
// walked item by item on the way, a list at the end gives its items (one level), the rest of
// the path joined by dots is tried as one key first and then alone, the last of duplicate keys
// wins. Where a value reached is an object or an array, Sigma compares its JSON text: the row
// is refused and Python reads it.
class FieldIds : public PathIds {
 public:
  using PathIds::PathIds;

 protected:
  int32_t id_of_root(element root) override {
    values_.clear();
    return walk(root, 0) ? number_of(values_) : kRefused;
  }

 private:
  static bool scalar(element node) {
    return node.type() != element_type::OBJECT && node.type() != element_type::ARRAY;
  }

  // false: a value reached is an object or an array
  bool walk(element node, size_t i) {
    if (i == parts_.size()) {
      if (node.type() != element_type::ARRAY) {
        values_.push_back(node);
        return scalar(node);
      }
      simdjson::dom::array items = node.get_array().value_unsafe();
      for (element item : items) {
        if (!scalar(item)) return false;
        values_.push_back(item);
      }
      return true;
    }
    if (node.type() == element_type::ARRAY) {
      simdjson::dom::array items = node.get_array().value_unsafe();
      for (element item : items)
        if (!walk(item, i)) return false;
      return true;
    }
    if (node.type() != element_type::OBJECT) return true;
    simdjson::dom::object fields = node.get_object().value_unsafe();
    if (parts_.size() - i > 1) {  // a key that itself holds dots is taken first, and alone
      std::string joined = parts_[i];
      for (size_t j = i + 1; j < parts_.size(); ++j) joined += '.' + parts_[j];
      if (element child; last(fields, joined, child)) return walk(child, parts_.size());
    }
    element child;
    return last(fields, parts_[i], child) ? walk(child, i + 1) : true;
  }

  std::vector<element> values_;
};

class SelectorIds : public Numbered {
 public:
  using Step = std::variant<std::string, int64_t>;

  explicit SelectorIds(std::vector<Step> steps) : steps_(std::move(steps)) {
    if (steps_.empty()) throw py::value_error("a selector needs at least one step");
  }

 protected:
  int32_t id_of_nothing() override { return kNoObject; }

  int32_t id_of(std::string_view text) override {
    // load_object: the text, stripped, must start an object; Python strips more kinds of space
    // than JSON allows, but json.loads then refuses them, so no object either way
    const size_t first = text.find_first_not_of(" \t\n\r");
    if (first == std::string_view::npos || text[first] != '{') return kNoObject;
    element node;
    if (!parse(text, node)) return kRefused;
    reached_.clear();
    for (const Step& step : steps_) {
      if (const std::string* key = std::get_if<std::string>(&step)) {
        if (node.type() != element_type::OBJECT) return number_of(reached_);
        simdjson::dom::object fields = node.get_object().value_unsafe();
        bool found = false;
        for (auto field : fields) {
          if (field.key == *key) {  // the first one wins, as load_object keeps it
            node = field.value;
            found = true;
            break;
          }
        }
        if (!found) return number_of(reached_);
      } else {
        const int64_t index = std::get<int64_t>(step);
        if (node.type() != element_type::ARRAY) return number_of(reached_);
        simdjson::dom::array items = node.get_array().value_unsafe();
        if (index < 0 || size_t(index) >= items.size()) return number_of(reached_);
        node = items.at(size_t(index)).value_unsafe();
      }
    }
    reached_.push_back(node);
    return number_of(reached_);
  }

 private:
  std::vector<Step> steps_;
  std::vector<element> reached_;
};

}  // namespace

PYBIND11_MODULE(_json_native, m) {
  m.doc() = "JSON values per row of Arrow string arrays, numbered, for detection (json_native.cpp)";
  py::class_<Numbered>(m, "Numbered")
      .def("__len__", &Numbered::size)
      .def_property_readonly("bytes", &Numbered::bytes)
      .def("encode", &Numbered::encode, py::arg("offsets"), py::arg("data"), py::arg("validity"),
           py::arg("validity_offset"), py::arg("rows"),
           "([number per row; -1: refused, Python reads it; -2: no JSON object], [JSON array "
           "of each new number's values])")
      .def("encode_live", &Numbered::encode_live, py::arg("narrowing"), py::arg("offsets"),
           py::arg("data"), py::arg("validity"), py::arg("validity_offset"),
           "encode the narrowing's live rows, their numbers kept for its apply: ([JSON array "
           "of each new number's values], [positions among the live rows numbered -1])");
  py::class_<Narrowing>(m, "Narrowing")
      .def(py::init<int64_t, py::bytes, size_t>(), py::arg("rows"), py::arg("all"),
           py::arg("kept_bytes") = size_t(64) << 20,
           "`kept_bytes`: the JSON text whose parse is kept for the batch's next paths")
      .def_property_readonly("kept_bytes", &Narrowing::kept_bytes)
      .def("__len__", &Narrowing::size)
      .def("live", &Narrowing::live, "the live rows, in order")
      .def("masks", &Narrowing::masks, "the live rows' masks, whole 64-bit words, little-endian")
      .def("set", &Narrowing::set, py::arg("position"), py::arg("number"))
      .def(
          "pending", [](Narrowing& n) { return n.pending(); },
          "the numbers encode_live gave the live rows, for the next apply")
      .def("apply", &Narrowing::apply, py::arg("table"), py::arg("numbers") = py::none(),
           py::arg("by_row") = false,
           "AND each live row's mask with its number's in `table` and drop the rows left with "
           "none; the number of rows dropped");
  py::class_<LeafIds, Numbered>(m, "LeafIds")
      .def(py::init<std::vector<std::string>>(), py::arg("parts"));
  py::class_<FieldIds, Numbered>(m, "FieldIds")
      .def(py::init<std::vector<std::string>>(), py::arg("parts"));
  py::class_<SelectorIds, Numbered>(m, "SelectorIds")
      .def(py::init<std::vector<SelectorIds::Step>>(), py::arg("steps"));
}
