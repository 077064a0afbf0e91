// JSON values per row of an Arrow string array, numbered by distinct value, for detection's
// per-row work that Python did by parsing every row into dicts and walking them:
//
// - `LeafIds(parts)`: an EventBridge path's leaves below a JSON root, for the event-pattern
//   prefilter (eventpattern/prefilter.py). detail.containers.exitCode over the detail column is
//   ["containers", "exitCode"]; the leaves are those records.py's `_collect` finds: arrays are
//   transparent, a key may itself hold dots, the last of duplicate keys wins (as in a dict built
//   from the text).
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
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <simdjson.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace py = pybind11;
using simdjson::dom::element;
using simdjson::dom::element_type;

namespace {

constexpr int32_t kRefused = -1, kNoObject = -2;
constexpr size_t kLargestNumbered = 4096;  // bytes of one value's JSON

// The shared part: checking Arrow's buffers, the loop over rows, the numbering.
class Numbered {
 public:
  virtual ~Numbered() = default;

  size_t size() const { return ids_.size(); }
  // the bytes the numbered texts hold (Python starts a new numbering past its budget)
  size_t bytes() const { return bytes_; }

  py::tuple encode(py::buffer offsets_buffer, py::buffer data_buffer, py::object validity,
                   int64_t validity_offset, const std::vector<int64_t>& rows) {
    py::buffer_info offsets_info = offsets_buffer.request(), data_info = data_buffer.request();
    if (offsets_info.itemsize != 4 || offsets_info.size < 1 || data_info.itemsize != 1)
      throw py::value_error("offsets must be int32 and data bytes");
    const int32_t* offsets = static_cast<const int32_t*>(offsets_info.ptr);
    const int64_t count = offsets_info.size - 1;
    const char* data = static_cast<const char*>(data_info.ptr);
    const int64_t data_size = data_info.size;
    const uint8_t* valid = nullptr;
    py::buffer_info valid_info;
    if (!validity.is_none()) {
      valid_info = validity.cast<py::buffer>().request();
      valid = static_cast<const uint8_t*>(valid_info.ptr);
      if (validity_offset < 0 || validity_offset + count > valid_info.size * 8)
        throw py::value_error("the validity bitmap does not cover the rows");
    }
    for (int64_t row : rows) {
      if (row < 0 || row >= count) throw py::index_error("a row outside the array");
      const int32_t start = offsets[row], end = offsets[row + 1];
      if (start < 0 || end < start || end > data_size)
        throw py::value_error("offsets outside the data");
    }
    const size_t known = ids_.size();
    std::vector<int32_t> out(rows.size());
    // the GIL stays held: the numbering is this object's state, and one thread at a time uses it
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t row = rows[i], bit = validity_offset + row;
      const bool present = valid == nullptr || (valid[bit >> 3] >> (bit & 7)) & 1;
      const int32_t start = offsets[row], end = offsets[row + 1];
      out[i] = present && end > start ? id_of(std::string_view(data + start, size_t(end - start)))
                                      : id_of_nothing();
    }
    py::list ids(out.size());
    for (size_t i = 0; i < out.size(); ++i) ids[i] = py::int_(out[i]);
    py::list fresh(ids_.size() - known);
    for (size_t i = known; i < ids_.size(); ++i) fresh[i - known] = py::bytes(texts_[i]);
    return py::make_tuple(ids, fresh);
  }

 protected:
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
    for (unsigned char c : text) {
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(char(c));
      } else if (c < 0x20) {
        out.append("\\u00");
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
      } else {
        out.push_back(char(c));
      }
    }
    out.push_back('"');
  }

  simdjson::dom::parser parser_;
  std::string scratch_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::string> texts_;
  size_t bytes_ = 0;
};

class LeafIds : public Numbered {
 public:
  explicit LeafIds(std::vector<std::string> parts) : parts_(std::move(parts)) {
    if (parts_.empty()) throw py::value_error("a path needs at least one key");
  }

 protected:
  // no JSON, or a root that is none: no leaves
  int32_t id_of_nothing() override { return number("[]"); }

  int32_t id_of(std::string_view text) override {
    element root;
    if (!parse(text, root)) return kRefused;
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
    for (size_t j = i + 1;; ++j) {
      element child;
      bool found = false;
      for (auto field : fields) {
        if (field.key == key) {  // the last one wins, as in a dict built from the text
          child = field.value;
          found = true;
        }
      }
      if (found) collect(child, j);
      if (j == parts_.size()) return;
      key += '.';
      key += parts_[j];
    }
  }

  std::vector<std::string> parts_;
  std::vector<element> leaves_;
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
           "of each new number's values])");
  py::class_<LeafIds, Numbered>(m, "LeafIds")
      .def(py::init<std::vector<std::string>>(), py::arg("parts"));
  py::class_<SelectorIds, Numbered>(m, "SelectorIds")
      .def(py::init<std::vector<SelectorIds::Step>>(), py::arg("steps"));
}
